/// Determinism: seeded random tensors repeat bit for bit, and evaluation and plans give bit-identical
/// results run after run.
module FuncFlow.Tests.DeterminismTests

open System
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private bits (t: Tensor) = t.ToArray() |> Array.map BitConverter.DoubleToInt64Bits

let private x = Expr.var "x" [| 32; 24 |]
let private w = Expr.var "w" [| 24; 10 |]
let private loss = Expr.mean (Expr.softplus (Expr.matmul x w)) + Expr.sum (w * w) * 0.01
let private grads = Grad.wrt [ w ] loss
let private env =
    Eval.bindings
        [
            "x", Tensor.randNormal Float64 1 [| 32; 24 |] 0.0 1.0
            "w", Tensor.randNormal Float64 2 [| 24; 10 |] 0.0 0.3
        ]

[<Tests>]
let tests =
    moduleTests
        "DeterminismTests"
        [
            testCase "the same seed gives the same random tensors bit for bit"
            <| fun () ->
                for dtype in [ Float64; Float32 ] do
                    Expect.equal
                        (bits (Tensor.randNormal dtype 5 [| 3; 7 |] 0.5 2.0))
                        (bits (Tensor.randNormal dtype 5 [| 3; 7 |] 0.5 2.0))
                        "bits (Tensor.randNormal dtype 5 [| 3; 7 |] 0.5 2.0)"
                    Expect.equal
                        (bits (Tensor.randUniform dtype 5 [| 21 |] -1.0 3.0))
                        (bits (Tensor.randUniform dtype 5 [| 21 |] -1.0 3.0))
                        "bits (Tensor.randUniform dtype 5 [| 21 |] -1.0 3.0)"
                Expect.notEqual
                    (bits (Tensor.randNormal Float64 6 [| 21 |] 0.0 1.0))
                    (bits (Tensor.randNormal Float64 5 [| 21 |] 0.0 1.0))
                    "bits (Tensor.randNormal Float64 6 [| 21 |] 0.0 1.0)"
            testCase "random values are stable across runs and machines"
            <| fun () ->
                // System.Random(seed) and MathNet's normal sampler are specified algorithms: these values must not drift.
                let first = Tensor.randUniform Float64 0 [| 1 |] 0.0 1.0 |> Tensor.item
                Expect.equal first (Random(0).NextDouble()) "first"
            testCase "one-shot evaluation is bit-identical run after run"
            <| fun () ->
                let first = Eval.many env [ loss; grads[w] ] |> List.map bits
                for _ in 1..20 do
                    Expect.equal
                        (Eval.many env [ loss; grads[w] ] |> List.map bits)
                        first
                        "Eval.many env [ loss; grads[w] ] |> List.map bits"
            testCase "plans are bit-identical run after run and across compilations"
            <| fun () ->
                let run () = (Plan.compile [ loss; grads[w] ]).Run env |> Array.map bits
                let first = run ()
                let plan = Plan.compile [ loss; grads[w] ]
                for _ in 1..20 do
                    Expect.equal (plan.Run env |> Array.map bits) first "plan.Run env |> Array.map bits"
                Expect.equal (run ()) first "run ()"
            testCase "a training plan with updates follows the same trajectory every time"
            <| fun () ->
                let step = Plan.compileWithUpdates [ loss ] [ w, w - grads[w] * 0.1 ]
                let trajectory () =
                    step.Set("x", env["x"])
                    step.Set("w", env["w"])
                    [
                        for _ in 1..10 ->
                            step.Execute()
                            BitConverter.DoubleToInt64Bits(step.OutputScalar 0)
                    ]
                Expect.equal (trajectory ()) (trajectory ()) "trajectory ()"
        ]
