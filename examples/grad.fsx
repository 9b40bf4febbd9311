// grad and grad-of-grad of a small function, in an F# script.
// Build first (dotnet build -c Release), then: dotnet fsi examples/grad.fsx
#I "../src/FuncFlow/bin/Release/net10.0"
#r "FuncFlow.dll"

open FuncFlow

// f(x) = x^3 + 2 tanh(x): every value below is an expression until it is evaluated.
let x = Expr.var "x" [||]
let f = x ** 3.0 + 2.0 * tanh x
let df = Grad.grad x f // 3x^2 + 2(1 - tanh^2 x)
let d2f = Grad.grad x df // 6x - 4 tanh x (1 - tanh^2 x)

let at = Eval.bindings [ ("x", Tensor.scalar 0.5) ]
let value e = Eval.evaluate at e |> Tensor.item

let t = tanh 0.5
printfn "f(0.5)   = %.12f" (value f)
printfn "f'(0.5)  = %.12f  (by hand: %.12f)" (value df) (3.0 * 0.25 + 2.0 * (1.0 - t * t))
printfn "f''(0.5) = %.12f  (by hand: %.12f)" (value d2f) (6.0 * 0.5 - 4.0 * t * (1.0 - t * t))

// Gradients of a matrix expression: a one-layer network's loss.
let w = Expr.var "w" [| 3; 2 |]
let input = Expr.var "input" [| 4; 3 |]
let loss = Expr.mean (Expr.sigmoid (Expr.matmul input w) ** 2.0)
let env =
    Eval.bindings
        [
            "w", Tensor.randNormal Float64 0 [| 3; 2 |] 0.0 1.0
            "input", Tensor.randNormal Float64 1 [| 4; 3 |] 0.0 1.0
        ]
let lossValue, grads = Eval.valueAndGrad env [ w ] loss
printfn "loss = %O\ndloss/dw = %O" lossValue grads[w]
