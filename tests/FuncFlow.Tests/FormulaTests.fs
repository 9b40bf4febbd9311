/// Derivatives printed as one writes them by hand (Print.formula after the simplifier), and the printers F#
/// Interactive uses for expressions and tensors.
module FuncFlow.Tests.FormulaTests

open Expecto
open FuncFlow
open FuncFlow.Tests.Support

[<Tests>]
let tests =
    moduleTests
        "FormulaTests"
        [
            testCase "derivatives read as by hand"
            <| fun () ->
                let x = Expr.var "x" [||]
                let v = Expr.var "v" [| 3 |]
                let cases =
                    [
                        Grad.grad x (x ** 3.0 + 2.0 * tanh x), "3 * x ** 2 + 2 * (1 - tanh(x) ** 2)"
                        // The same on a vector: the seed's reshapes and broadcasts are gone.
                        Grad.grad v (Expr.sum (v ** 3.0 + 2.0 * tanh v)), "3 * v ** 2 + 2 * (1 - tanh(v) ** 2)"
                        Grad.grad x (Expr.sigmoid x), "let t1 = sigmoid(x) in\nt1 * (1 - t1)"
                        Grad.grad x (Expr.sin (x * x)), "let t1 = cos(x ** 2) in\nt1 * x + t1 * x"
                        Grad.grad x (Expr.log x - 1.0 / x), "1 / x + 1 / x / x"
                    ]
                for derivative, expected in cases do
                    Expect.equal (Print.formula derivative) expected expected
            testCase "formulas: x * x as x ** 2, constant factors first, scalar broadcasts hidden"
            <| fun () ->
                let x = Expr.var "x" [| 2 |]
                Expect.equal (Print.formula (x * x)) "x ** 2" "square"
                let y = x + 1.0
                Expect.equal (Print.formula (y * y)) "(x + 1) ** 2" "square of a sum"
                Expect.equal (Print.formula (Expr.exp x * 3.0)) "3 * exp(x)" "constant first"
                Expect.equal
                    (Print.formula (x * Expr.broadcastTo [| 2 |] (Expr.reshape [| 1 |] (Expr.scalar 2.0))))
                    "2 * x"
                    "broadcast hidden"
                Expect.equal (Print.formula (x - Expr.broadcastTo [| 2 |] (Expr.scalar -2.0))) "x - -2" "a negative constant"
            testCase "the F# Interactive printers: an expression as formula and shape, a tensor as NumPy lays it out"
            <| fun () ->
                let x = Expr.var "x" [| 2; 3 |]
                Expect.equal (Print.interactive (Expr.tanh x * 2.0)) "2 * tanh(x)  (shape (2, 3), float64)" "expression"
                let t = Tensor.create [| 2; 2 |] [| 1.0; -2.5; 30.0; 4.0 |]
                Expect.equal (Print.tensor t) "tensor([[   1, -2.5],\n        [  30,    4]], shape=(2, 2), dtype=float64)" "matrix"
                Expect.equal (Print.tensor (Tensor.scalar 0.5)) "tensor(0.5, shape=(), dtype=float64)" "scalar"
                let blocks = Tensor.create [| 2; 1; 2 |] [| 1.0; 2.0; 3.0; 4.0 |]
                Expect.equal (Print.tensor blocks) "tensor([[[1, 2]],\n\n        [[3, 4]]], shape=(2, 1, 2), dtype=float64)" "blocks"
                let long = Tensor.create [| 1001 |] (Array.init 1001 float)
                Expect.equal (Print.tensor long) "tensor([   0,    1,    2, ...,  998,  999, 1000], shape=(1001,), dtype=float64)" "elided"
        ]
