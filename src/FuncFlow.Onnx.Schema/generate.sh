#!/usr/bin/env bash
# Regenerates Onnx.cs from onnx.proto (copied from Debian's python3-onnx 1.12, /usr/lib/python3/dist-packages/onnx/onnx.proto)
# with protoc from the Google.Protobuf.Tools package. The generated code is committed, so building needs neither.
# Run from this folder after `dotnet restore`: bash generate.sh
set -euo pipefail
protoc="${NUGET_PACKAGES:-$HOME/.nuget/packages}/google.protobuf.tools/3.36.2/tools/linux_x64/protoc"
chmod +x "$protoc"
# internal_access: the schema's classes are FuncFlow.Onnx's implementation detail, not public API.
"$protoc" --csharp_out=. --csharp_opt=internal_access onnx.proto
