/// The seeds' worked examples (seed-examples.json), rebuilt with FuncFlow's expressions.
module FuncFlow.Tests.SeedTests

open System.Text.Json
open FuncFlow
open FuncFlow.Tests.Fixtures
open FuncFlow.Tests.Support
open Expecto

/// The JSON element at a path of property names.
let private at (path: string list) : JsonElement =
    path
    |> List.fold (fun (e: JsonElement) (name: string) -> e.GetProperty name) seedExamples.Value.RootElement

let private tensor2D (e: JsonElement) = Tensor.ofRows (matrix e)
let private tensor1D (e: JsonElement) = Tensor.ofArray (numbers e)
let private value (env: System.Collections.Generic.IReadOnlyDictionary<string, Tensor>) (e: Expr) = (Eval.evaluate env e).ToArray()

/// The value of the gradient of sum(f) with respect to v.
let private gradientOf env (v: Expr) (f: Expr) = value env ((Grad.vjp (Expr.onesLike f) [ v ] f)[v])

/// A variable shaped like its value.
let private varOf (name: string) (t: Tensor) = Expr.var name t.Shape, t

let private linear (case: string) =
    let json = at [ "miniflow"; case ]
    let xs, ws, bs =
        varOf "X" (tensor2D (json.GetProperty "X")),
        varOf "W" (tensor2D (json.GetProperty "W")),
        varOf "b" (tensor1D (json.GetProperty "b"))
    bind [ xs; ws; bs ], Expr.matmul (fst xs) (fst ws) + fst bs, Array.concat (matrix (json.GetProperty "value"))

/// MiniFlow's MSE: both operands read as columns, then the mean of the squared differences.
let private mse (y: Expr) (a: Expr) =
    let diff = Expr.reshape [| -1; 1 |] y - Expr.reshape [| -1; 1 |] a
    Expr.mean (diff * diff)

/// Runs the seed's SGD loop: the loss ((pred - target)^2).sum(0) of each step, before the step's update.
let private sgd (alpha: float) (steps: int) (parameters: (Expr * Tensor) list) (predict: Expr) =
    let target = Expr.constant (tensor2D (at [ "grokking"; "target" ]))
    let loss = Expr.sumAxis 0 ((predict - target) * (predict - target))
    let vars = List.map fst parameters
    let mutable values = parameters
    [
        for _ in 1..steps do
            let l, grads = Eval.valueAndGrad (bind values) vars loss
            values <-
                values
                |> List.map (fun (v, t) ->
                    v, Tensor.create t.Shape (Array.map2 (fun p g -> p - alpha * g) (t.ToArray()) (grads[v].ToArray())))
            yield Tensor.item l
    ]

// The Grokking chapter's autograd walk-throughs, as core expressions.
let private a = Expr.var "a" [| 5 |]
let private b = Expr.var "b" [| 5 |]
let private c = Expr.var "c" [| 5 |]
let private abc =
    bind
        [
            a, Tensor.ofArray [| 1.0; 2.0; 3.0; 4.0; 5.0 |]
            b, Tensor.ofArray [| 2.0; 2.0; 2.0; 2.0; 2.0 |]
            c, Tensor.ofArray [| 5.0; 4.0; 3.0; 2.0; 1.0 |]
        ]

[<Tests>]
let tests =
    moduleTests
        "SeedTests"
        [
            testCase "MiniFlow: x + y + z = 19 and x * y * z = 200"
            <| fun () ->
                for case, op, expected in [ "add", (+), 19.0; "mul", (*), 200.0 ] do
                    let inputs = at [ "miniflow"; case; "inputs" ]
                    let vars = [ for n in [ "x"; "y"; "z" ] -> varOf n (Tensor.scalar (inputs.GetProperty(n).GetDouble())) ]
                    let f = vars |> List.map fst |> List.reduce op
                    Expect.equal
                        (at [ "miniflow"; case; "value" ] |> fun e -> e.GetDouble())
                        expected
                        "at [ \"miniflow\"; case; \"value\" ] |> fun e -> e.GetDouble()"
                    Expect.equal (Tensor.item (Eval.evaluate (bind vars) f)) expected "Tensor.item (Eval.evaluate (bind vars) f)"
            testCase "MiniFlow: Linear"
            <| fun () ->
                let env, f, expected = linear "linear"
                assertRelative 1e-12 expected (value env f)
            testCase "MiniFlow: Linear then Sigmoid (9 printed digits)"
            <| fun () ->
                let env, f, expected = linear "linear_sigmoid"
                assertRelative 1e-6 expected (value env (Expr.sigmoid f))
            testCase "MiniFlow: MSE = 23.416..."
            <| fun () ->
                let json = at [ "miniflow"; "mse" ]
                let y, a = varOf "y" (tensor1D (json.GetProperty "y")), varOf "a" (tensor1D (json.GetProperty "a"))
                assertRelative 1e-15 [| json.GetProperty("value").GetDouble() |] (value (bind [ y; a ]) (mse (fst y) (fst a)))
            testCase "MiniFlow: gradients of MSE(y, Sigmoid(Linear(X, W1, b)))"
            <| fun () ->
                let json = at [ "miniflow"; "linear_sigmoid_mse_gradients" ]
                // The seed's MSE reshapes y to a column, and reports y's gradient in that shape.
                let y = varOf "y" (Tensor.reshape [| -1; 1 |] (tensor1D (json.GetProperty "y")))
                let vars =
                    [
                        varOf "X" (tensor2D (json.GetProperty "X"))
                        varOf "W1" (tensor2D (json.GetProperty "W1"))
                        varOf "b" (tensor1D (json.GetProperty "b"))
                        y
                    ]
                let expr name = vars |> List.find (fun (v, _) -> Expr.tryName v = Some name) |> fst
                let cost = mse (expr "y") (Expr.sigmoid (Expr.matmul (expr "X") (expr "W1") + expr "b"))
                let _, grads = Eval.valueAndGrad (bind vars) (List.map fst vars) cost
                let gradients = json.GetProperty "gradients"
                for name in [ "X"; "W1"; "y" ] do
                    assertRelative 1e-6 (Array.concat (matrix (gradients.GetProperty name))) (grads[expr name].ToArray())
                assertRelative 1e-6 (numbers (gradients.GetProperty "b")) (grads[expr "b"].ToArray())
            testCase "MiniFlow: gradient descent on x^4 - 3x^3 + 2 stops at 2.249965"
            <| fun () ->
                let json = at [ "miniflow"; "gradient_descent_1d" ]
                let x = Expr.var "x" [||]
                let df = Grad.grad x (x ** 4.0 - 3.0 * x ** 3.0 + 2.0)
                let step, stop =
                    json.GetProperty("step").GetDouble(), json.GetProperty("stop_when_step_below").GetDouble()
                let mutable current = json.GetProperty("start").GetDouble()
                let mutable moved = 1.0
                while moved > stop do
                    let previous = current
                    current <- previous - step * Tensor.item (Eval.evaluate (bind [ x, Tensor.scalar previous ]) df)
                    moved <- abs (current - previous)
                expectWithin 5e-7 (json.GetProperty("minimum_printed").GetDouble()) current "the minimum found"
            testCase "lecture: softmax and cross-entropy with an integer label"
            <| fun () ->
                let softmax = at [ "lecture"; "softmax" ]
                let x = varOf "x" (tensor1D (softmax.GetProperty "x"))
                assertRelative 1e-14 (numbers (softmax.GetProperty "value")) (value (bind [ x ]) (Expr.softmax 0 (fst x)))
                let ce = at [ "lecture"; "cross_entropy" ]
                let logits = varOf "logits" (Tensor.reshape [| 1; -1 |] (tensor1D (ce.GetProperty "logits")))
                let labels = Expr.constant (Tensor.ofArray [| ce.GetProperty("label").GetDouble() |])
                let loss = -Expr.mean(Expr.sumAxis 1 (Expr.oneHot 4 labels * Expr.logSoftmax 1 (fst logits)))
                assertRelative 1e-14 [| ce.GetProperty("value").GetDouble() |] (value (bind [ logits ]) loss)
                // Its gradient is softmax - onehot.
                let expected =
                    numbers (softmax.GetProperty "value") |> Array.mapi (fun i p -> if i = 3 then p - 1.0 else p)
                assertClose 1e-14 expected (value (bind [ logits ]) (Grad.grad (fst logits) loss))
            testCase "Grokking: two matmuls trained by SGD"
            <| fun () ->
                let json = at [ "grokking"; "two_matmul_sgd" ]
                let data = Expr.constant (tensor2D (at [ "grokking"; "data" ]))
                let weights =
                    [
                        for i, w in Seq.indexed ((json.GetProperty "weights").EnumerateArray()) -> varOf (sprintf "w%d" i) (tensor2D w)
                    ]
                let predict = Expr.matmul (Expr.matmul data (fst weights[0])) (fst weights[1])
                let losses =
                    sgd (json.GetProperty("alpha").GetDouble()) (json.GetProperty("steps").GetInt32()) weights predict
                assertRelative 1e-12 (numbers (json.GetProperty "losses")) (Array.ofList losses)
            testCase "Grokking: Sequential(Linear, Linear) with MSE trained by SGD"
            <| fun () ->
                let json = at [ "grokking"; "sequential_linear_mse" ]
                let data = Expr.constant (tensor2D (at [ "grokking"; "data" ]))
                let p = [| for e in (json.GetProperty "parameters").EnumerateArray() -> e |]
                let parameters =
                    [
                        varOf "W0" (tensor2D p[0])
                        varOf "b0" (tensor1D p[1])
                        varOf "W1" (tensor2D p[2])
                        varOf "b1" (tensor1D p[3])
                    ]
                let v i = fst parameters[i]
                let predict = Expr.matmul (Expr.matmul data (v 0) + v 1) (v 2) + v 3
                let losses =
                    sgd (json.GetProperty("alpha").GetDouble()) (json.GetProperty("steps").GetInt32()) parameters predict
                assertRelative 1e-12 (numbers (json.GetProperty "losses")) (Array.ofList losses)
            testCase "Grokking: a tensor used twice gets the sum of both gradients"
            <| fun () ->
                let f = (a + b) + (b + c)
                Expect.equal (gradientOf abc b f) ([| 2.0; 2.0; 2.0; 2.0; 2.0 |]) "gradientOf abc b f"
                Expect.equal (value abc f) ([| 10.0; 10.0; 10.0; 10.0; 10.0 |]) "value abc f"
            testCase "Grokking: negation flips the gradient"
            <| fun () ->
                let f = (a + -b) + (-b + c)
                Expect.equal (gradientOf abc b f) ([| -2.0; -2.0; -2.0; -2.0; -2.0 |]) "gradientOf abc b f"
            testCase "Grokking: sum and expand"
            <| fun () ->
                let x = Expr.var "x" [| 2; 3 |]
                let env = bind [ x, Tensor.create [| 2; 3 |] [| 1.0; 2.0; 3.0; 4.0; 5.0; 6.0 |] ]
                Expect.equal (value env (Expr.sumAxis 0 x)) ([| 5.0; 7.0; 9.0 |]) "value env (Expr.sumAxis 0 x)"
                Expect.equal (value env (Expr.sumAxis 1 x)) ([| 6.0; 15.0 |]) "value env (Expr.sumAxis 1 x)"
                let expanded = Expr.expand 2 4 x
                Expect.equal expanded.Shape ([| 2; 3; 4 |]) "expanded.Shape"
                Expect.equal (value env expanded) (Array.init 24 (fun i -> float (i / 4 + 1))) "value env expanded"
                // Each element was copied 4 times, so its gradient is 4; through sum(0) it is 1.
                Expect.equal (gradientOf env x expanded) (Array.create 6 4.0) "gradientOf env x expanded"
                Expect.equal
                    (value env (Grad.grad x (Expr.sum (Expr.sumAxis 0 x))))
                    (Array.create 6 1.0)
                    "value env (Grad.grad x (Expr.sum (Expr.sumAxis 0 x)))"
        ]
