/// Times the workloads and prints one JSON line each, in torch_baseline.py's form.
module FuncFlow.Bench.Program

open System
open System.Diagnostics
open System.Globalization
open FuncFlow.Bench.Workloads

/// Median microseconds and allocated bytes per step over 5 repetitions, after warm-up repetitions
/// that let the tiered JIT reach its optimised code (torch's kernels are compiled ahead of time).
let private measure (w: Workload) =
    for _ in 1 .. 2 do
        for _ in 1 .. w.Steps do
            w.Step()
    let reps =
        [| for _ in 1 .. 5 ->
               // Total (all threads) allocation: the managed GEMM fallback uses worker threads.
               let before = GC.GetTotalAllocatedBytes true
               let sw = Stopwatch.StartNew()
               for _ in 1 .. w.Steps do
                   w.Step()
               sw.Stop()
               let bytes = GC.GetTotalAllocatedBytes true - before
               sw.Elapsed.TotalMicroseconds / float w.Steps, float bytes / float w.Steps |]
        |> Array.sortBy fst
    reps[reps.Length / 2]

[<EntryPoint>]
let main argv =
    let only = set argv
    for w in all () do
        if only.IsEmpty || only.Contains w.Name then
            let us, bytes = measure w
            Console.WriteLine(String.Format(CultureInfo.InvariantCulture, "{{\"workload\": \"{0}\", \"engine\": \"funcflow\", \"blas\": \"{1}\", \"us_per_step\": {2:0.0}, \"alloc_bytes_per_step\": {3:0}}}",
                                            w.Name, (FuncFlow.Blas.provider ()).ToString().ToLowerInvariant(), us, bytes))
    0
