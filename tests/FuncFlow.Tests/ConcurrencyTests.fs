/// Expressions and compiled plans evaluated from many threads at once give exactly the sequential results.
module FuncFlow.Tests.ConcurrencyTests

open System
open System.Threading.Tasks
open Xunit
open FuncFlow

let private iterations = 200
let private parallelism = ParallelOptions(MaxDegreeOfParallelism = 12)

// A small MLP with a loss and its gradients: matmuls (BLAS), broadcasting, reductions, softmax.
let private x = Expr.var "x" [| 16; 8 |]
let private w = Expr.var "w" [| 8; 4 |]
let private b = Expr.var "b" [| 4 |]
let private loss = -Expr.mean (Expr.logSoftmax 1 (Expr.tanh (Expr.matmul x w + b)))
let private grads = Grad.wrt [ w; b ] loss
let private outputs = [ loss; grads[w]; grads[b] ]

let private bindings (i: int) =
    Eval.bindings
        [ "x", Tensor.randNormal Float64 i [| 16; 8 |] 0.0 1.0
          "w", Tensor.randNormal Float64 (i + 1000) [| 8; 4 |] 0.0 0.5
          "b", Tensor.randUniform Float64 (i + 2000) [| 4 |] -1.0 1.0 ]

let private bits (ts: Tensor seq) = ts |> Seq.map (fun t -> t.ToArray() |> Array.map BitConverter.DoubleToInt64Bits) |> Array.concat

let private inParallel (compute: int -> Tensor seq) =
    let sequential = Array.init iterations (fun i -> bits (compute i))
    let concurrent = Array.zeroCreate iterations
    Parallel.For(0, iterations, parallelism, fun i -> concurrent[i] <- bits (compute i)) |> ignore
    for i in 0 .. iterations - 1 do
        Assert.True((sequential[i] = concurrent[i]), sprintf "iteration %d differs" i)

[<Fact>]
let ``one expression evaluated from many threads matches the sequential results bit for bit`` () =
    inParallel (fun i -> Eval.many (bindings i) outputs)

[<Fact>]
let ``one plan run from many threads matches the sequential results bit for bit`` () =
    let plan = Plan.compile outputs
    inParallel (fun i -> plan.Run(bindings i))

[<Fact>]
let ``nodes built on many threads get distinct ids`` () =
    let ids = Collections.Concurrent.ConcurrentBag<int64>()
    Parallel.For(0, 10_000, parallelism, fun i -> ids.Add (Expr.tanh x).Id) |> ignore
    Assert.Equal(10_000, Seq.length (Seq.distinct ids))

[<Fact>]
let ``gradients built on many threads evaluate to the same values`` () =
    let env = bindings 7
    let expected = bits (Eval.many env outputs)
    Parallel.For(0, 64, parallelism, fun _ ->
        let g = Grad.wrt [ w; b ] loss
        Assert.Equal<int64[]>(expected, bits (Eval.many env [ loss; g[w]; g[b] ])))
    |> ignore
