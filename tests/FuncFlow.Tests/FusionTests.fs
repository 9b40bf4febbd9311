/// Compiled plans with fused instructions (the SGD update a - b * c, row broadcasts, the vectorised step)
/// compute what one-shot evaluation computes.
module FuncFlow.Tests.FusionTests

open Xunit
open FuncFlow

let private close (expected: Tensor) (actual: Tensor) =
    Assert.True(Tensor.allClose 1e-12 1e-12 actual expected, sprintf "expected %O, got %O" expected actual)

[<Fact>]
let ``an SGD step compiled with its update equals the update evaluated one-shot`` () =
    let x = Expr.var "x" [| 5; 3 |]
    let y = Expr.var "y" [| 5; 1 |]
    let w1, b1 = Expr.var "w1" [| 3; 4 |], Expr.var "b1" [| 4 |]
    let w2, b2 = Expr.var "w2" [| 4; 1 |], Expr.var "b2" [| 1 |]
    let out = Expr.matmul (Expr.sigmoid (Expr.matmul x w1 + b1)) w2 + b2
    let loss = Expr.mean (Expr.powScalar 2.0 (out - y))
    let ps = [ w1; b1; w2; b2 ]
    let grads = Grad.wrt ps loss
    let updates = [ for p in ps -> p, p - grads[p] * 0.1 ]
    let values =
        [ "x", Tensor.randNormal Float64 1 [| 5; 3 |] 0.0 1.0
          "y", Tensor.randNormal Float64 2 [| 5; 1 |] 0.0 1.0
          "w1", Tensor.randNormal Float64 3 [| 3; 4 |] 0.0 1.0
          "b1", Tensor.randNormal Float64 4 [| 4 |] 0.0 1.0
          "w2", Tensor.randNormal Float64 5 [| 4; 1 |] 0.0 1.0
          "b2", Tensor.randNormal Float64 6 [| 1 |] 0.0 1.0 ]
    let env = Eval.bindings values
    let expectedLoss = Eval.evaluate env loss
    let expected = Eval.many env (updates |> List.map snd)
    let plan = Plan.compileWithUpdates [ loss ] updates
    for (name, t) in values do
        plan.Set(name, t)
    plan.Execute()
    Assert.Equal(Tensor.item expectedLoss, plan.OutputScalar 0)
    List.iter2 (fun (p, _) e -> close e (plan.Get (Expr.tryName p).Value)) updates expected

[<Fact>]
let ``row and column broadcasts in a plan equal one-shot evaluation`` () =
    let a = Expr.var "a" [| 2; 3; 4 |]
    let row = Expr.var "row" [| 4 |]
    let row3 = Expr.var "row3" [| 1; 1; 4 |]
    let col = Expr.var "col" [| 2; 3; 1 |]
    let outputs =
        [ a + row; row3 - a; a * col; col - a; row / (a + 10.0); Expr.step (a - row)
          Expr.broadcastTo [| 2; 3; 4 |] col; Expr.broadcastTo [| 2; 3; 4 |] row; Expr.broadcastTo [| 2; 3; 4 |] (Expr.sum col) ]
    let values =
        [ "a", Tensor.randNormal Float64 7 [| 2; 3; 4 |] 0.0 1.0
          "row", Tensor.randNormal Float64 8 [| 4 |] 0.0 1.0
          "row3", Tensor.randNormal Float64 9 [| 1; 1; 4 |] 0.0 1.0
          "col", Tensor.randNormal Float64 10 [| 2; 3; 1 |] 0.0 1.0 ]
    let plan = Plan.compile outputs
    for (name, t) in values do
        plan.Set(name, t)
    plan.Execute()
    let expected = Eval.many (Eval.bindings values) outputs
    expected |> List.iteri (fun i e -> close e (plan.Output i))

[<Fact>]
let ``step is 1 exactly where x > 0, NaN included, across vector widths`` () =
    let values = Array.init 37 (fun i -> if i = 5 then nan elif i = 6 then 0.0 else float (i % 5) - 2.0)
    let x = Expr.var32 "x" [| values.Length |]
    let got = Eval.evaluate (Eval.bindings [ "x", Tensor.ofArray32 (Array.map float32 values) ]) (Expr.step x) |> Tensor.toArray
    Assert.Equal<float[]>(values |> Array.map (fun v -> if v > 0.0 then 1.0 else 0.0), got)
