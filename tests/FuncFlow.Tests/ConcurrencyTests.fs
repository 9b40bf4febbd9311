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
