#!/usr/bin/env bash
# Peak resident memory (MB) of each benchmark workload run alone in its own process: FuncFlow (without the GEMM
# peak's 2048 x 2048 operands) and PyTorch (bench/torch_baseline.py, 1 thread), as a Markdown table. Build first
# (bench/run.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "| workload | FuncFlow peak MB | PyTorch peak MB |"
echo "|---|---:|---:|"
for w in boston_mlp_13_10_1_b11_f64 mnist_softmax_784_10_b64_f32 mnist_mlp_784_128_10_b64_f32 wide_mlp_1024x3_b256_f32 \
    scalar_graph_2000_tanh_f64 lenet_mnist_b64_f32 lstm_charlm_b32_t64_f32; do
    f=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/time -f "%M" \
        dotnet bench/FuncFlow.Bench/bin/Release/net10.0/FuncFlow.Bench.dll --no-peak "$w" 2>&1 >/dev/null | tail -1)
    p=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 THREADS=1 /usr/bin/time -f "%M" \
        /usr/bin/python3 bench/torch_baseline.py "$w" 2>&1 >/dev/null | tail -1)
    echo "| $w | $((f / 1024)) | $((p / 1024)) |"
done
