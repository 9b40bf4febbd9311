/// Gradients of gradients: exact second derivatives, gradgradcheck on common functions, and a Hessian
/// built column by column from Hessian-vector products.
module FuncFlow.Tests.HigherOrderTests

open FuncFlow
open FuncFlow.Tests.Support
open Expecto

let private x = Expr.var "x" [| 2; 3 |]
let private w = Expr.var "w" [| 3; 3 |]
let private xValue = Tensor.create [| 2; 3 |] [| 0.3; -0.8; 1.2; -0.4; 0.9; 0.1 |]
let private wValue = Tensor.create [| 3; 3 |] [| 0.5; -0.2; 0.1; 0.7; 0.3; -0.6; -0.1; 0.4; 0.8 |]

[<Tests>]
let tests =
    moduleTests
        "HigherOrderTests"
        [
            testCase "d2/dx2 of x^3 is exactly 6x"
            <| fun () ->
                let x = Expr.var "x" [||]
                let second = Grad.grad x (Grad.grad x (x ** 3.0))
                for v in [ -2.5; -1.0; 0.0; 0.3; 1.0; 7.0; 1e3 ] do
                    Expect.equal
                        (Tensor.item (Eval.evaluate (bind [ x, Tensor.scalar v ]) second))
                        (6.0 * v)
                        "Tensor.item (Eval.evaluate (bind [ x, Tensor.scalar v ]) second)"
            testCase "third derivative of x^4 is 24x"
            <| fun () ->
                let x = Expr.var "x" [| 3 |]
                let d (f: Expr) = Expr.sum (Grad.grad x f)
                let third = Grad.grad x (d (d (Expr.sum (x ** 4.0))))
                let value = Tensor.ofArray [| -1.0; 0.5; 2.0 |]
                assertClose 1e-12 [| -24.0; 12.0; 48.0 |] ((Eval.evaluate (bind [ x, value ]) third).ToArray())
            testCase "gradgradcheck: tanh, sigmoid, softplus, exp"
            <| fun () ->
                for f in
                    [
                        Expr.tanh x
                        Expr.sigmoid x
                        Expr.softplus x
                        Expr.exp x
                        Expr.sum (Expr.tanh x * Expr.sigmoid x)
                    ] do
                    gradgradcheck [ x, xValue ] f
            // ops group.
            testCase "gradgradcheck: the elementwise functions of the ops group"
            <| fun () ->
                let positive = Tensor.create [| 2; 3 |] [| 0.3; 0.8; 1.2; 0.4; 0.9; 1.7 |]
                for f in
                    [
                        Expr.sin x
                        Expr.cos x
                        Expr.erf x
                        Expr.erfc x
                        Expr.gelu x
                        Expr.silu x
                        Expr.logSigmoid x
                        Expr.elu 1.5 x
                        Expr.expm1 x
                        Expr.leakyRelu 0.2 x * x
                        Expr.clamp (Some -0.5) (Some 1.0) x * x
                        Expr.maximum x (Expr.transpose (Expr.matmul w (Expr.transpose x))) * x
                        Expr.where (Expr.step x) (Expr.sin x) (x * x)
                    ] do
                    gradgradcheck [ x, xValue; w, wValue ] f
                gradgradcheck [ x, positive ] (Expr.log1p x)
                gradgradcheck [ x, positive ] (Expr.rsqrt x)
            testCase "gradgradcheck: the reductions of the ops group"
            <| fun () ->
                let withZero = Tensor.create [| 2; 3 |] [| 0.3; 0.0; 1.2; -0.4; 0.9; 0.1 |]
                for f in
                    [
                        Expr.prod x
                        Expr.prodAxis 1 x
                        Expr.logSumExpAxis 0 x
                        Expr.logSumExp (Expr.matmul x w)
                        Expr.variance true x
                        Expr.stdAxes false [ 1 ] true x
                        Expr.sumAxes [ 0; 1 ] false (x * x)
                    ] do
                    gradgradcheck [ x, xValue; w, wValue ] f
                gradgradcheck [ x, withZero ] (Expr.prodAxis 1 x)
                gradgradcheck [ x, withZero ] (Expr.prod x)
            testCase "gradgradcheck: softmax and logSoftmax over each axis"
            <| fun () ->
                for axis in [ 0; 1 ] do
                    gradgradcheck [ x, xValue ] (Expr.softmax axis x)
                    gradgradcheck [ x, xValue ] (Expr.logSoftmax axis x)
                    gradgradcheck [ x, xValue; w, wValue ] (Expr.softmax axis (Expr.matmul x w))
            testCase "gradgradcheck: matmul chains"
            <| fun () ->
                let layer (h: Expr) = Expr.tanh (Expr.matmul h w)
                gradgradcheck [ x, xValue; w, wValue ] (layer (layer (layer x)))
                gradgradcheck [ x, xValue; w, wValue ] (Expr.matmul (Expr.matmul x w) (Expr.transpose w))
                gradgradcheck [ x, xValue; w, wValue ] (Expr.mean (Expr.sigmoid (Expr.matmul x w) ** 2.0))
            testCase "gradgradcheck: division, powers and logarithms"
            <| fun () ->
                let positive = Tensor.create [| 2; 3 |] [| 0.3; 0.8; 1.2; 0.4; 0.9; 1.7 |]
                gradgradcheck [ x, positive ] (Expr.log x / (x + 1.0))
                gradgradcheck [ x, positive ] (Expr.pow x (Expr.sqrt x))
                gradgradcheck [ x, positive ] (Expr.powScalar -1.5 x)
            testCase "the Hessian of x^T A x is A + A^T"
            <| fun () ->
                let n = 4
                let a = Tensor.randNormal Float64 7 [| n; n |] 0.0 1.0
                let x = Expr.var "x" [| n; 1 |]
                let f = Expr.sum (Expr.matmul (Expr.transpose x) (Expr.matmul (Expr.constant a) x))
                let env = bind [ x, Tensor.randNormal Float64 8 [| n; 1 |] 0.0 1.0 ]
                let unit j = Expr.constant (Tensor.create [| n; 1 |] (Array.init n (fun i -> if i = j then 1.0 else 0.0)))
                let columns = Eval.many env [ for j in 0 .. n - 1 -> Grad.hvp x (unit j) f ] |> List.map Tensor.toArray
                let values = Tensor.toArray2D a
                columns
                |> List.iteri (fun j column -> assertClose 1e-12 (Array.init n (fun i -> values[i, j] + values[j, i])) column)
        ]
