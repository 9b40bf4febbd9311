/// Times the workloads and prints one JSON line each, in torch_baseline.py's form.
module FuncFlow.Bench.Program

open System
open System.Diagnostics
open System.Globalization
open FuncFlow
open FuncFlow.Bench.Workloads

/// Median microseconds and allocated bytes per step over 5 repetitions, after warm-up repetitions
/// that let the tiered JIT reach its optimised code (torch's kernels are compiled ahead of time): at
/// least 2, and at least 2 seconds' worth, since tier-1 compilation happens in the background after
/// timed delays, so a workload of few, long steps (the scalar graph) needs time rather than calls.
let private measure (w: Workload) =
    let warm = Stopwatch.StartNew()
    let mutable reps = 0
    while reps < 2 || warm.Elapsed.TotalSeconds < 2.0 do
        for _ in 1 .. w.Steps do
            w.Step()
        reps <- reps + 1
    let reps =
        [|
            for _ in 1..5 ->
                // Total (all threads) allocation: the managed GEMM fallback uses worker threads.
                let before = GC.GetTotalAllocatedBytes true
                let sw = Stopwatch.StartNew()
                for _ in 1 .. w.Steps do
                    w.Step()
                sw.Stop()
                let bytes = GC.GetTotalAllocatedBytes true - before
                sw.Elapsed.TotalMicroseconds / float w.Steps, float bytes / float w.Steps
        |]
        |> Array.sortBy fst
    reps[reps.Length / 2]

/// Where a plan's step time goes, per kind of instruction, after the same warm-up as measure.
let private profile (w: Workload) =
    match w.Plan with
    | None -> printfn "%s: not a compiled plan, no profile" w.Name
    | Some plan ->
        let warm = Stopwatch.StartNew()
        while warm.Elapsed.TotalSeconds < 2.0 do
            w.Step()
        let entries = plan.Profile(w.Steps)
        let total = entries |> Seq.sumBy (fun e -> e.Microseconds)
        printfn "%s: %.1f us per step in %d instructions" w.Name total plan.InstructionCount
        for e in entries do
            printfn "%8.1f us %5.1f%% %3dx %s" e.Microseconds (100.0 * e.Microseconds / total) e.Count e.Instruction

/// OpenBLAS's (or the managed GEMM's) peak: one 2048 x 2048 product on all cores (OpenBLAS's own threads, which
/// FuncFlow otherwise keeps at one while it splits products itself), best of 5 after warm-up, in GFLOP/s: the
/// limit each workload's GEMM FLOPs are compared with.
let private gemmPeak (dtype: DType) : float =
    let n = 2048
    let a, b = Tensor.randNormal dtype 1 [| n; n |] 0.0 1.0, Tensor.randNormal dtype 2 [| n; n |] 0.0 1.0
    let product =
        match a.Data, b.Data with
        | (:? (float32[]) as a), (:? (float32[]) as b) ->
            let c = Array.zeroCreate (n * n)
            fun () -> Blas.sgemm (false, false, n, n, n, 1.0f, a, 0, n, b, 0, n, 0.0f, c, 0, n)
        | (:? (float[]) as a), (:? (float[]) as b) ->
            let c = Array.zeroCreate (n * n)
            fun () -> Blas.dgemm (false, false, n, n, n, 1.0, a, 0, n, b, 0, n, 0.0, c, 0, n)
        | _ -> invalidOp "gemmPeak: float32 or float64"
    let openBlas = Blas.provider () = OpenBlas
    if openBlas then OpenBlasNative.openblas_set_num_threads Environment.ProcessorCount
    try
        product ()
        let best =
            Array.init 5 (fun _ ->
                let sw = Stopwatch.StartNew()
                product ()
                sw.Elapsed.TotalSeconds)
            |> Array.min
        2.0 * float n * float n * float n / best / 1e9
    finally
        if openBlas && Blas.threadsProducts then OpenBlasNative.openblas_set_num_threads 1

[<EntryPoint>]
let main argv =
    let profiling = Array.contains "--profile" argv
    // --no-peak leaves the 2048 x 2048 operands out, for a workload's own peak memory.
    let peak = not profiling && not (Array.contains "--no-peak" argv)
    let only = argv |> Array.filter (fun a -> not (a.StartsWith "--")) |> set
    // This virtual machine's speed moves by up to 2x within minutes: the peak is the better of a measurement
    // before the workloads and one after them.
    let peaks () = if peak then [| gemmPeak Float32; gemmPeak Float64 |] else [||]
    let before = peaks ()
    for w in all () do
        if (only.IsEmpty || only.Contains w.Name) && profiling then
            profile w
        elif only.IsEmpty || only.Contains w.Name then
            let us, bytes = measure w
            Console.WriteLine(
                String.Format(
                    CultureInfo.InvariantCulture,
                    "{{\"workload\": \"{0}\", \"engine\": \"funcflow\", \"blas\": \"{1}\", \"us_per_step\": {2:0.0}, \"alloc_bytes_per_step\": {3:0}, \"gemm_flops\": {4}}}",
                    w.Name,
                    (FuncFlow.Blas.provider ()).ToString().ToLowerInvariant(),
                    us,
                    bytes,
                    (w.Plan |> Option.map (fun p -> p.MatMulFlops) |> Option.defaultValue 0L)
                )
            )
    if peak then
        let after = peaks ()
        for i, dtype in Array.indexed [| "f32"; "f64" |] do
            Console.WriteLine(
                String.Format(
                    CultureInfo.InvariantCulture,
                    "{{\"workload\": \"gemm_peak_2048_{0}\", \"engine\": \"funcflow\", \"gflops\": {1:0.0}}}",
                    dtype,
                    max before[i] after[i]
                )
            )
    0
