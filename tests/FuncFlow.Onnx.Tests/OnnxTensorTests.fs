/// TensorProto <-> Tensor: round trips, the typed fields, ONNX's own test data, and malformed tensors.
module FuncFlow.Onnx.Tests.OnnxTensorTests

// ONNX's schema (namespace Onnx), opened before FuncFlow, whose FuncFlow.Onnx would shadow it.
open Onnx
open System.IO
open System.Text.Json
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.Onnx
open FuncFlow.Tests
open FuncFlow.Onnx.Tests.Support
open Google.Protobuf

/// A tensor through a TensorProto, its bytes and back.
let private roundTrip (t: Tensor) =
    let bytes = (OnnxTensor.ofTensor "t" t).ToByteArray()
    OnnxTensor.toTensor "memory" (TensorProto.Parser.ParseFrom bytes)

let private malformed (proto: TensorProto) (parts: string list) =
    let e = throws<DataFormatException>(fun () -> OnnxTensor.toTensor "bad.pb" proto |> ignore)
    expectMentions e.Message ("bad.pb" :: parts)

[<Tests>]
let tests =
    moduleTests
        "OnnxTensor"
        [
            test "float32 and float64 tensors of every rank round-trip bit for bit through raw_data" {
                for dtype in [ Float32; Float64 ] do
                    for shape in [ [||]; [| 5 |]; [| 2; 3 |]; [| 2; 0; 4 |]; [| 1; 2; 3; 4 |] ] do
                        let t = Tensor.randNormal dtype 7 shape 0.0 1.0
                        let proto = OnnxTensor.ofTensor "w" t
                        Expect.equal proto.DataType (if dtype = Float32 then 1 else 11) "ONNX's element type code"
                        Expect.equal (Array.ofSeq proto.Dims) (shape |> Array.map int64) "dims"
                        Expect.equal proto.RawData.Length (t.Size * (if dtype = Float32 then 4 else 8)) "raw_data bytes"
                        let back = roundTrip t
                        Expect.equal back.DType dtype "dtype"
                        Expect.equal back.Shape shape "shape"
                        Expect.equal (back.ToArray()) (t.ToArray()) "values"
            }

            test "raw_data is little-endian IEEE 754" {
                let proto = OnnxTensor.ofTensor "x" (Tensor.create32 [| 2 |] [| 1.0f; -2.5f |])
                // 1.0f = 0x3F800000, -2.5f = 0xC0200000, low byte first.
                Expect.equal (proto.RawData.ToByteArray()) [| 0uy; 0uy; 0x80uy; 0x3Fuy; 0uy; 0uy; 0x20uy; 0xC0uy |] "bytes"
            }

            test "the typed fields float_data and double_data are read when raw_data is empty" {
                let f = TensorProto(DataType = 1)
                f.Dims.AddRange [ 2L; 2L ]
                f.FloatData.AddRange [ 1.5f; -2.0f; 0.25f; 8.0f ]
                let t = OnnxTensor.toTensor "memory" f
                Expect.equal (t.DType, t.Shape, t.ToArray()) (Float32, [| 2; 2 |], [| 1.5; -2.0; 0.25; 8.0 |]) "float_data"
                let d = TensorProto(DataType = 11)
                d.Dims.Add 3L
                d.DoubleData.AddRange [ 0.1; 0.2; 0.3 ]
                let t = OnnxTensor.toTensor "memory" d
                Expect.equal (t.DType, t.Shape, t.ToArray()) (Float64, [| 3 |], [| 0.1; 0.2; 0.3 |]) "double_data"
            }

            test "ONNX's node-test inputs read as numpy_helper reads them (fixtures/node_inputs.json)" {
                requireNodeTests ()
                use json = JsonDocument.Parse(File.ReadAllText(fixture "node_inputs.json"))
                let cases = json.RootElement.GetProperty("cases").EnumerateArray() |> List.ofSeq
                Expect.equal cases.Length 2 "fixture cases"
                for case in cases do
                    let path = Path.Combine(nodeTests, case.GetProperty("path").GetString())
                    let name, t = OnnxTensor.readFile path
                    let ints (p: string) = case.GetProperty(p).EnumerateArray() |> Seq.map (fun e -> e.GetInt32()) |> Array.ofSeq
                    let values =
                        case.GetProperty("values").EnumerateArray() |> Seq.map (fun e -> e.GetDouble()) |> Array.ofSeq
                    Expect.equal name (case.GetProperty("name").GetString()) (path + ": name")
                    Expect.equal t.DType.Name (case.GetProperty("dtype").GetString()) (path + ": dtype")
                    Expect.equal t.Shape (ints "shape") (path + ": shape")
                    Expect.equal (t.ToArray()) values (path + ": values")
            }

            test "a tensor whose data does not fill its dims, or of another element type, is refused naming the file" {
                let short =
                    TensorProto(DataType = 1, Name = "w", RawData = ByteString.CopyFrom(Array.zeroCreate<byte> 8))
                short.Dims.AddRange [ 2L; 2L ]
                malformed short [ "'w'"; "(2, 2)"; "2 values in raw_data"; "expected 4" ]
                let ragged = TensorProto(DataType = 11, RawData = ByteString.CopyFrom(Array.zeroCreate<byte> 7))
                ragged.Dims.Add 1L
                malformed ragged [ "7 bytes"; "multiple of 8" ]
                let typed = TensorProto(DataType = 11)
                typed.Dims.Add 2L
                typed.DoubleData.Add 1.0
                malformed typed [ "1 values in double_data"; "expected 2" ]
                let ints = TensorProto(DataType = 7, Name = "i")
                malformed ints [ "'i'"; "INT64"; "FLOAT and DOUBLE" ]
            }

            test "declared dims that are negative or beyond what a tensor can hold are refused before allocating" {
                let negative = TensorProto(DataType = 1)
                negative.Dims.AddRange [ 3L; -1L ]
                malformed negative [ "dims"; "expected each in 0.." ]
                let huge = TensorProto(DataType = 1)
                huge.Dims.AddRange [ 1L <<< 20; 1L <<< 20 ]
                malformed huge [ "1099511627776 elements" ]
            }

            test "a truncated or missing file is a DataFormatException naming it" {
                let dir = tempFolder ()
                try
                    let path = Path.Combine(dir, "t.pb")
                    let bytes = (OnnxTensor.ofTensor "x" (Tensor.randNormal Float32 1 [| 10 |] 0.0 1.0)).ToByteArray()
                    File.WriteAllBytes(path, bytes[.. bytes.Length - 5])
                    let e = throws<DataFormatException>(fun () -> OnnxTensor.readFile path |> ignore)
                    expectMentions e.Message [ path; "TensorProto" ]
                    let missing = Path.Combine(dir, "none.pb")
                    let e = throws<DataFormatException>(fun () -> OnnxTensor.readFile missing |> ignore)
                    expectMentions e.Message [ missing; "not found" ]
                finally
                    Directory.Delete(dir, true)
            }
        ]
