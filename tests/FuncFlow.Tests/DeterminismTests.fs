/// Determinism: seeded random tensors repeat bit for bit, and evaluation and plans give bit-identical
/// results run after run.
module FuncFlow.Tests.DeterminismTests

open System
open Xunit
open FuncFlow

let private bits (t: Tensor) = t.ToArray() |> Array.map BitConverter.DoubleToInt64Bits

[<Fact>]
let ``the same seed gives the same random tensors bit for bit`` () =
    for dtype in [ Float64; Float32 ] do
        Assert.Equal<int64[]>(bits (Tensor.randNormal dtype 5 [| 3; 7 |] 0.5 2.0), bits (Tensor.randNormal dtype 5 [| 3; 7 |] 0.5 2.0))
        Assert.Equal<int64[]>(bits (Tensor.randUniform dtype 5 [| 21 |] -1.0 3.0), bits (Tensor.randUniform dtype 5 [| 21 |] -1.0 3.0))
    Assert.NotEqual<int64[]>(bits (Tensor.randNormal Float64 5 [| 21 |] 0.0 1.0), bits (Tensor.randNormal Float64 6 [| 21 |] 0.0 1.0))

[<Fact>]
let ``random values are stable across runs and machines`` () =
    // System.Random(seed) and MathNet's normal sampler are specified algorithms: these values must not drift.
    let first = Tensor.randUniform Float64 0 [| 1 |] 0.0 1.0 |> Tensor.item
    Assert.Equal(Random(0).NextDouble(), first)

let private x = Expr.var "x" [| 32; 24 |]
let private w = Expr.var "w" [| 24; 10 |]
let private loss = Expr.mean (Expr.softplus (Expr.matmul x w)) + Expr.sum (w * w) * 0.01
let private grads = Grad.wrt [ w ] loss
let private env =
    Eval.bindings [ "x", Tensor.randNormal Float64 1 [| 32; 24 |] 0.0 1.0; "w", Tensor.randNormal Float64 2 [| 24; 10 |] 0.0 0.3 ]

[<Fact>]
let ``one-shot evaluation is bit-identical run after run`` () =
    let first = Eval.many env [ loss; grads[w] ] |> List.map bits
    for _ in 1 .. 20 do
        Assert.Equal<int64[] list>(first, Eval.many env [ loss; grads[w] ] |> List.map bits)

[<Fact>]
let ``plans are bit-identical run after run and across compilations`` () =
    let run () = (Plan.compile [ loss; grads[w] ]).Run env |> Array.map bits
    let first = run ()
    let plan = Plan.compile [ loss; grads[w] ]
    for _ in 1 .. 20 do
        Assert.Equal<int64[][]>(first, plan.Run env |> Array.map bits)
    Assert.Equal<int64[][]>(first, run ())

[<Fact>]
let ``a training plan with updates follows the same trajectory every time`` () =
    let step = Plan.compileWithUpdates [ loss ] [ w, w - grads[w] * 0.1 ]
    let trajectory () =
        step.Set("x", env["x"])
        step.Set("w", env["w"])
        [ for _ in 1 .. 10 -> step.Execute(); BitConverter.DoubleToInt64Bits(step.OutputScalar 0) ]
    Assert.Equal<int64 list>(trajectory (), trajectory ())
