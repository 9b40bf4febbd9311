/// Expressions and compiled plans evaluated from many threads at once give exactly the sequential results.
module FuncFlow.Tests.ConcurrencyTests

open System
open System.Threading.Tasks
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private iterations = 200
let private parallelism = ParallelOptions(MaxDegreeOfParallelism = 12)

// A small MLP with a loss and its gradients: matmuls (BLAS), broadcasting, reductions, softmax.
let private x = Expr.var "x" [| 16; 8 |]
let private w = Expr.var "w" [| 8; 4 |]
let private b = Expr.var "b" [| 4 |]
let private loss = -Expr.mean(Expr.logSoftmax 1 (Expr.tanh (Expr.matmul x w + b)))
let private grads = Grad.wrt [ w; b ] loss
let private outputs = [ loss; grads[w]; grads[b] ]

let private bindings (i: int) =
    Eval.bindings
        [
            "x", Tensor.randNormal Float64 i [| 16; 8 |] 0.0 1.0
            "w", Tensor.randNormal Float64 (i + 1000) [| 8; 4 |] 0.0 0.5
            "b", Tensor.randUniform Float64 (i + 2000) [| 4 |] -1.0 1.0
        ]

let private bits (ts: Tensor seq) = ts |> Seq.map (fun t -> t.ToArray() |> Array.map BitConverter.DoubleToInt64Bits) |> Array.concat

let private inParallel (compute: int -> Tensor seq) =
    let sequential = Array.init iterations (fun i -> bits (compute i))
    let concurrent = Array.zeroCreate iterations
    Parallel.For(0, iterations, parallelism, fun i -> concurrent[i] <- bits (compute i)) |> ignore
    for i in 0 .. iterations - 1 do
        Expect.isTrue ((sequential[i] = concurrent[i])) (sprintf "iteration %d differs" i)

/// A job that counts how often each element is run and by which thread, optionally throwing on one thread,
/// and spinning a little per piece so that both threads take some.
type private CountingJob(count: int, throwOn: int) =
    let runs = Array.zeroCreate<int> count
    let byThread = Array.zeroCreate<int> 2
    member _.Runs = runs
    member _.ByThread = byThread
    interface IRangeJob with
        member _.Run(first, stop, thread) =
            Threading.Interlocked.Increment(&byThread[thread]) |> ignore
            if thread = throwOn then
                raise (InvalidOperationException(sprintf "piece [%d, %d) on thread %d" first stop thread))
            Threading.Thread.SpinWait 2000
            for i in first .. stop - 1 do
                Threading.Interlocked.Increment(&runs[i]) |> ignore

[<Tests>]
let tests =
    moduleTests
        "ConcurrencyTests"
        [
            testCase "one expression evaluated from many threads matches the sequential results bit for bit"
            <| fun () -> inParallel (fun i -> Eval.many (bindings i) outputs)
            testCase "one plan run from many threads matches the sequential results bit for bit"
            <| fun () ->
                let plan = Plan.compile outputs
                inParallel (fun i -> plan.Run(bindings i))
            testCase "nodes built on many threads get distinct ids"
            <| fun () ->
                let ids = Collections.Concurrent.ConcurrentBag<int64>()
                Parallel.For(0, 10_000, parallelism, fun i -> ids.Add (Expr.tanh x).Id) |> ignore
                Expect.equal (Seq.length (Seq.distinct ids)) 10_000 "Seq.length (Seq.distinct ids)"
            testCase "a job shared between two threads runs every element of every fork once, from many callers at once"
            <| fun () ->
                let workerRan = ref 0
                Parallel.For(
                    0,
                    2000,
                    parallelism,
                    fun i ->
                        let count = 1 + i % 97
                        let job = CountingJob(count, -1)
                        Halves.run job count (1 + i % 13)
                        Expect.equal job.Runs (Array.create count 1) (sprintf "fork %d: runs of each element" i)
                        Threading.Interlocked.Add(&workerRan.contents, job.ByThread[1]) |> ignore
                )
                |> ignore
                if Halves.available then Expect.isGreaterThan workerRan.Value 0 "pieces the worker ran"
            testCase "an exception in a piece on either thread reaches the caller, and the next fork runs whole"
            <| fun () ->
                for thread in (if Halves.available then [ 0; 1 ] else [ 0 ]) do
                    // The worker takes a piece sooner or later: a fork with nothing for it throws nothing.
                    let mutable thrown = None
                    let mutable tries = 0
                    while thrown.IsNone && tries < 200 do
                        tries <- tries + 1
                        try
                            Halves.run (CountingJob(64, thread)) 64 8
                        with :? InvalidOperationException as e ->
                            thrown <- Some e
                    match thrown with
                    | Some e -> Expect.stringContains e.Message (sprintf "on thread %d" thread) "the exception"
                    | None -> failtestf "no fork threw on thread %d in %d tries" thread tries
                    let job = CountingJob(50, -1)
                    Halves.run job 50 8
                    Expect.equal job.Runs (Array.create 50 1) "runs of each element after the exception"
            testCase "gradients built on many threads evaluate to the same values"
            <| fun () ->
                let env = bindings 7
                let expected = bits (Eval.many env outputs)
                Parallel.For(
                    0,
                    64,
                    parallelism,
                    fun _ ->
                        let g = Grad.wrt [ w; b ] loss
                        Expect.equal (bits (Eval.many env [ loss; g[w]; g[b] ])) expected "bits (Eval.many env [ loss; g[w]; g[b] ])"
                )
                |> ignore
        ]
