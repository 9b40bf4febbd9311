#!/usr/bin/env bash
# Builds and runs FuncFlow's benchmark; with --torch also runs PyTorch's baseline in the same command, at its
# best thread set-up (as ../shared/bench/torch_best.sh: 1 thread; 2 intra-op threads with single-threaded
# OpenBLAS; 2 and 2; the fastest median per workload), and prints both side by side with the ratios and
# their targets (docs/performance.md). --torchsharp also runs TorchSharp's (../shared/bench/torchsharp/run.sh, or
# $TORCHSHARP_BENCH; TorchSharp 0.107 on libtorch 2.10, best of 1 and 2 threads, all workloads) and measures each
# ratio against the faster anchor. Workload names given after the flags run only those.
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset so that both engines use OpenBLAS as it configures itself.
set -euo pipefail
cd "$(dirname "$0")/.."
torch=0
torchsharp=0
only=()
for arg in "$@"; do
    case "$arg" in
        --torch) torch=1 ;;
        --torchsharp) torchsharp=1 ;;
        -*) echo "usage: bench/run.sh [--torch] [--torchsharp] [workload ...]" >&2; exit 2 ;;
        *) only+=("$arg") ;;
    esac
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dotnet build bench/FuncFlow.Bench/FuncFlow.Bench.fsproj -c Release --nologo -v quiet >&2
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE dotnet bench/FuncFlow.Bench/bin/Release/net10.0/FuncFlow.Bench.dll "${only[@]}" | tee "$out/funcflow.jsonl"
if [ "$torch" = 1 ]; then
    for cfg in "1 1" "2 1" "2 2"; do
        set -- $cfg
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=$1 OPENBLAS_NUM_THREADS=$2 THREADS=$1 \
            /usr/bin/python3 bench/torch_baseline.py "${only[@]}" | tee -a "$out/torch.jsonl"
    done
    touch "$out/torchsharp.jsonl"
    if [ "$torchsharp" = 1 ]; then
        bash "${TORCHSHARP_BENCH:-../shared/bench/torchsharp/run.sh}" | tee "$out/torchsharp.jsonl"
    fi
    /usr/bin/python3 - "$out/funcflow.jsonl" "$out/torch.jsonl" "$out/torchsharp.jsonl" <<'PY'
import json, sys
targets = {"boston_mlp_13_10_1_b11_f64": 0.15, "mnist_softmax_784_10_b64_f32": 0.5, "mnist_mlp_784_128_10_b64_f32": 0.5,
           "wide_mlp_1024x3_b256_f32": 0.5, "scalar_graph_2000_tanh_f64": 0.1, "lenet_mnist_b64_f32": 0.7,
           "lstm_charlm_b32_t64_f32": 0.7}
ff = {r["workload"]: r for r in map(json.loads, open(sys.argv[1]))}
peak = {d: ff.pop(f"gemm_peak_2048_{d}")["gflops"] for d in ("f32", "f64") if f"gemm_peak_2048_{d}" in ff}
pt = {}
for r in map(json.loads, open(sys.argv[2])):
    w = r["workload"]
    if w not in pt or r["us_per_step"] < pt[w]["us_per_step"]:
        pt[w] = r
ts = {r["workload"]: r for r in map(json.loads, open(sys.argv[3])) if r.get("workload")}
print()
print(f"GEMM peak (2048 x 2048, OpenBLAS as configured): {peak.get('f32', 0):,.0f} GFLOP/s float32, {peak.get('f64', 0):,.0f} float64")
print("| workload | funcflow us/step | pytorch us/step (best set-up) | torchsharp us/step | ratio to the faster | target | met | GEMM limit us | x limit | funcflow alloc B/step |")
print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")
for w, target in targets.items():
    if w in ff and w in pt:
        f, p = ff[w]["us_per_step"], pt[w]["us_per_step"]
        t = ts[w]["us_per_step"] if w in ts else None
        ratio = f / min(p, t) if t else f / p
        setup = pt[w]["engine"].split("-cpu-")[-1]
        tcell = f"{t:,.1f}" if t else "-"
        # The step's matrix products at GEMM's peak rate: the time no engine can beat on this machine.
        limit = ff[w].get("gemm_flops", 0) / (peak.get(w[-3:], 0) * 1e3) if peak.get(w[-3:]) else 0
        times = f"{f / limit:.2f}" if limit > 0 else "-"
        print(f"| {w} | {f:,.1f} | {p:,.1f} ({setup}) | {tcell} | {ratio:.3f} | <= {target} | {'yes' if ratio <= target else 'no'} | {limit:,.1f} | {times} | {ff[w]['alloc_bytes_per_step']:,.0f} |")
PY
fi
