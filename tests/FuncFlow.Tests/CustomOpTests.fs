/// User-defined operations (CustomOp): forward kernels into destinations, gradient rules as expressions.
module FuncFlow.Tests.CustomOpTests

open System
open System.Numerics
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

/// Log-sum-exp over each row of a matrix, computed stably (the row's maximum subtracted first), written
/// once over the element type so that one definition serves float64 and float32.
let private logSumExpRows<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
    (args: CustomArgs<'T>)
    =
    let x = args.Input 0
    let columns = args.InputShape(0)[1]
    let out = args.Output
    for r in 0 .. out.Length - 1 do
        let mutable m = 'T.NegativeInfinity
        for c in 0 .. columns - 1 do
            m <- 'T.Max(m, x[r * columns + c])
        let mutable s = 'T.Zero
        for c in 0 .. columns - 1 do
            s <- s + 'T.Exp(x[r * columns + c] - m)
        out[r] <- m + 'T.Log s

let private rowsShape (shapes: int[] list) =
    match shapes with
    | [ s ] when s.Length = 2 -> [| s[0] |]
    | _ -> invalidArg "shapes" "expects one matrix [rows; columns]"

/// The gradient of log-sum-exp: g times softmax, written from the output (exp(x - y)), so it stays finite
/// where exp x overflows and differentiates again.
let private softmaxRule (inputs: Expr list) (y: Expr) (g: Expr) =
    let column (e: Expr) = Expr.reshape [| -1; 1 |] e
    [ Some(column g * Expr.exp (inputs.Head - column y)) ]

let private logSumExp =
    CustomOp.create "logSumExp" rowsShape logSumExpRows<float> softmaxRule
    |> CustomOp.withFloat32 logSumExpRows<float32>

/// The same forward with a wrong rule: the gradient of the sum (softmax's exp(x - y) left out).
let private wrongLogSumExp =
    CustomOp.create "wrongLogSumExp" rowsShape logSumExpRows<float> (fun inputs _ g ->
        [ Some(Expr.broadcastTo inputs.Head.Shape (Expr.reshape [| -1; 1 |] g)) ])

/// Hand-computed log-sum-exp of each row, in float64 (the reference for the kernel).
let private expectedRows (rows: int) (columns: int) (x: float[]) =
    Array.init rows (fun r ->
        let row = x[r * columns .. r * columns + columns - 1]
        let m = Array.max row
        m + log (row |> Array.sumBy (fun v -> exp (v - m))))

let private hypotKernel (args: CustomArgs<float>) =
    let a = args.Input 0
    let b = args.Input 1
    let out = args.Output
    for i in 0 .. out.Length - 1 do
        out[i] <- sqrt (a[i] * a[i] + b[i] * b[i])

/// sqrt(a^2 + b^2) of two same-shape operands: a rule with an entry per operand.
let private hypot =
    CustomOp.create
        "hypot"
        (fun shapes ->
            match shapes with
            | [ a; b ] when a = b -> a
            | _ -> invalidArg "shapes" "expects two operands of one shape")
        hypotKernel
        (fun inputs y g ->
            match inputs with
            | [ a; b ] -> [ Some(g * a / y); Some(g * b / y) ]
            | _ -> failwith "hypot has two operands")

let private values (seed: int) (shape: int[]) = Tensor.randNormal Float64 seed shape 0.0 1.0

[<Tests>]
let tests =
    moduleTests
        "CustomOpTests"
        [
            testCase "a user-written log-sum-exp evaluates to the hand-computed values, in float64 and float32"
            <| fun () ->
                let t = values 1 [| 3; 4 |]
                let expected = expectedRows 3 4 (t.ToArray())
                let x = Expr.var "x" [| 3; 4 |]
                let y = CustomOp.apply logSumExp [ x ]
                Expect.equal y.Shape [| 3 |] "the shape rule's shape"
                assertClose 1e-14 expected ((Eval.evaluate (Eval.bindings [ "x", t ]) y).ToArray())
                let x32 = Expr.var32 "x" [| 3; 4 |]
                let y32 =
                    Eval.evaluate (Eval.bindings [ "x", Tensor.cast Float32 t ]) (CustomOp.apply logSumExp [ x32 ])
                Expect.equal y32.DType Float32 "float32 in, float32 out"
                assertClose 1e-6 expected (y32.ToArray())
            testCase "a user op with a correct rule passes GradCheck, on its own and inside a graph, and its second derivatives too"
            <| fun () ->
                let t = values 2 [| 3; 4 |]
                let report = GradCheck.checkOp GradCheckOptions.Default logSumExp [ t ]
                Expect.isTrue report.Passed report.Message
                Expect.stringContains report.Message "logSumExp" "the report names the operation"
                let x, w = Expr.var "x" [| 3; 4 |], Expr.var "w" [| 4; 4 |]
                let f = Expr.sum (Expr.tanh (CustomOp.apply logSumExp [ Expr.matmul x w ]))
                gradcheck [ x, t; w, values 3 [| 4; 4 |] ] f
                gradgradcheck [ x, t; w, values 3 [| 4; 4 |] ] f
                let a, b = Expr.var "a" [| 2; 3 |], Expr.var "b" [| 2; 3 |]
                gradcheck [ a, values 4 [| 2; 3 |]; b, values 5 [| 2; 3 |] ] (Expr.sum (CustomOp.apply hypot [ a; b ] * a))
            testCase "the user op's gradients equal the built-in composition's, and so does its Hessian-vector product"
            <| fun () ->
                let t, v = values 6 [| 2; 5 |], values 7 [| 2; 5 |]
                let x = Expr.var "x" [| 2; 5 |]
                let env = Eval.bindings [ "x", t; "v", v ]
                let custom = Expr.sum (Expr.sin (CustomOp.apply logSumExp [ x ]))
                let builtIn = Expr.sum (Expr.sin (Expr.log (Expr.sumAxis 1 (Expr.exp x))))
                let evaluate e = (Eval.evaluate env e).ToArray()
                assertClose 1e-12 (evaluate builtIn) (evaluate custom)
                assertClose 1e-12 (evaluate (Grad.grad x builtIn)) (evaluate (Grad.grad x custom))
                let direction = Expr.var "v" [| 2; 5 |]
                assertClose 1e-12 (evaluate (Grad.hvp x direction builtIn)) (evaluate (Grad.hvp x direction custom))
            testCase "a user op with a wrong rule fails GradCheck with a report naming the op"
            <| fun () ->
                let t = values 8 [| 2; 3 |]
                let report = GradCheck.checkOp GradCheckOptions.Default wrongLogSumExp [ t ]
                Expect.isFalse report.Passed "the rule leaves out the softmax"
                Expect.stringContains report.Message "gradcheck of user-defined operation wrongLogSumExp FAILED" report.Message
                let x = Expr.var "x" [| 2; 3 |]
                let inGraph =
                    GradCheck.check
                        GradCheckOptions.Default
                        (Eval.bindings [ "x", t ])
                        [ x ]
                        (Expr.sum (CustomOp.apply wrongLogSumExp [ x ] * 2.0))
                Expect.isFalse inGraph.Passed "the same rule inside a graph"
                Expect.stringContains
                    inGraph.Message
                    "user-defined operations, whose gradient rules are their authors': wrongLogSumExp"
                    inGraph.Message
            testCase "a stable user log-sum-exp has finite gradients (the softmax) where the naive composition gives NaN"
            <| fun () ->
                let t = Tensor.create [| 2; 3 |] [| 1000.0; 999.0; 998.0; -1.0; 0.0; 1.0 |]
                let x = Expr.var "x" [| 2; 3 |]
                let env = Eval.bindings [ "x", t ]
                let naive = Expr.sum (Expr.log (Expr.sumAxis 1 (Expr.exp x)))
                let naiveGrad = (Eval.evaluate env (Grad.grad x naive)).ToArray()
                Expect.isTrue (Double.IsNaN naiveGrad[0]) "exp 1000 overflows: infinity / infinity"
                let custom = Expr.sum (CustomOp.apply logSumExp [ x ])
                let softmax (row: float[]) =
                    let m = Array.max row
                    let e = row |> Array.map (fun v -> exp (v - m))
                    e |> Array.map (fun v -> v / Array.sum e)
                let expected = Array.append (softmax [| 1000.0; 999.0; 998.0 |]) (softmax [| -1.0; 0.0; 1.0 |])
                assertClose 1e-12 expected ((Eval.evaluate env (Grad.grad x custom)).ToArray())
                expectWithin
                    1e-9
                    (1000.0 + log (1.0 + exp -1.0 + exp -2.0) + 1.0 + log (1.0 + exp -1.0 + exp -2.0))
                    (Tensor.item (Eval.evaluate env custom))
                    "the value"
            testCase "a plan with user ops gives Eval's values, and its training step allocates nothing per run"
            <| fun () ->
                for dtype in [ Float64; Float32 ] do
                    let x = Expr.varOf dtype "x" [| 6; 5 |]
                    let w = Expr.varOf dtype "w" [| 5; 4 |]
                    let scores = Expr.matmul x w
                    let loss = Expr.mean (CustomOp.apply logSumExp [ scores ]) - Expr.mean scores
                    let gw = Grad.grad w loss
                    let env =
                        Eval.bindings [ "x", Tensor.cast dtype (values 9 [| 6; 5 |]); "w", Tensor.cast dtype (values 10 [| 5; 4 |]) ]
                    let expected = Eval.many env [ loss; w - gw * 0.1 ] |> List.map Tensor.toArray
                    let plan = Plan.compileWithUpdates [ loss ] [ w, w - gw * 0.1 ]
                    let outputs = Plan.run env plan
                    let tol = if dtype = Float64 then 1e-12 else 1e-5
                    assertClose tol expected[0] (outputs.Head.ToArray())
                    assertClose tol expected[1] ((plan.Get "w").ToArray())
                    expectNoAllocation dtype.Name plan
            testCase "a user op prints by its name in formulas and DOT"
            <| fun () ->
                let x = Expr.var "x" [| 2; 3 |]
                let y = CustomOp.apply logSumExp [ x ]
                Expect.equal (Print.formula (Expr.exp y)) "exp(logSumExp(x))" "formula"
                Expect.stringContains (Print.dot [ y ]) "label=\"logSumExp\\n(2,)\"" "DOT label"
                Expect.equal y.Op.Name "logSumExp" "Op.Name"
            testCase "bad input names the op: operands its shape rule rejects, a missing float32 kernel, mixed dtypes"
            <| fun () ->
                let e = throws<ArgumentException>(fun () -> CustomOp.apply logSumExp [ Expr.var "v" [| 3 |] ] |> ignore)
                Expect.stringContains
                    e.Message
                    "logSumExp: operands of shapes (3,) rejected by its shape rule: expects one matrix"
                    e.Message
                let e =
                    throws<ArgumentException>(fun () -> CustomOp.apply hypot [ Expr.var32 "a" [| 2 |]; Expr.var32 "b" [| 2 |] ] |> ignore)
                Expect.stringContains e.Message "hypot: the operands are float32 but the operation has no float32 forward kernel" e.Message
                let e =
                    throws<ArgumentException>(fun () -> CustomOp.apply hypot [ Expr.var "a" [| 2 |]; Expr.var32 "b" [| 2 |] ] |> ignore)
                Expect.stringContains e.Message "hypot: operands have dtypes float64, float32" e.Message
                let negative = CustomOp.create "negativeShape" (fun _ -> [| -1 |]) hypotKernel (fun _ _ _ -> [ None ])
                let e = throws<ArgumentException>(fun () -> CustomOp.apply negative [ Expr.var "a" [| 2 |] ] |> ignore)
                Expect.stringContains e.Message "negativeShape (shape rule, operands (2,)): shape (-1,) has a negative dimension" e.Message
                let e = throws<ArgumentException>(fun () -> CustomOp.apply hypot [] |> ignore)
                Expect.stringContains e.Message "hypot: a user-defined operation needs at least one operand" e.Message
            testCase "a gradient rule of the wrong shape or arity, and a failing forward kernel, are errors naming the op"
            <| fun () ->
                let x = Expr.var "x" [| 2; 3 |]
                let wrongShape = CustomOp.create "wrongShape" rowsShape logSumExpRows<float> (fun _ _ g -> [ Some g ])
                let e =
                    throws<InvalidOperationException>(fun () -> Grad.grad x (Expr.sum (CustomOp.apply wrongShape [ x ])) |> ignore)
                Expect.stringContains
                    e.Message
                    "wrongShape: the gradient rule gave operand 0 a gradient of shape (2,) (float64), but the operand has shape (2, 3) (float64)"
                    e.Message
                let wrongArity = CustomOp.create "wrongArity" rowsShape logSumExpRows<float> (fun _ _ _ -> [])
                let e =
                    throws<InvalidOperationException>(fun () -> Grad.grad x (Expr.sum (CustomOp.apply wrongArity [ x ])) |> ignore)
                Expect.stringContains e.Message "wrongArity: the gradient rule gave 0 entries for 1 operands" e.Message
                let reading =
                    CustomOp.create "readsTooFar" rowsShape (fun args -> args.Input(1).Length |> ignore) softmaxRule
                let env = Eval.bindings [ "x", values 11 [| 2; 3 |] ]
                let e =
                    throws<InvalidOperationException>(fun () -> Eval.evaluate env (CustomOp.apply reading [ x ]) |> ignore)
                Expect.stringContains
                    e.Message
                    "readsTooFar (user-defined operation, output shape (2,)): the forward kernel failed"
                    e.Message
                Expect.stringContains e.Message "operand 1 does not exist; the operation has 1 operands" e.Message
                let plan = Plan.compile [ CustomOp.apply reading [ x ] ]
                throws<InvalidOperationException>(fun () -> Plan.run env plan |> ignore) |> ignore
            testCase "forward-mode and batching rules are optional; a transform without one fails naming the op"
            <| fun () ->
                Expect.isNone logSumExp.Jvp "no forward-mode rule unless given"
                Expect.isNone logSumExp.Batching "no batching rule unless given"
                let e = logSumExp.Unsupported("forward-mode (jvp)", "CustomOp.withJvp")
                Expect.isTrue (e :? NotSupportedException) "a NotSupportedException"
                Expect.equal
                    e.Message
                    "logSumExp is a user-defined operation without a forward-mode (jvp) rule; give one with CustomOp.withJvp"
                    "the message"
                // The tangent of log-sum-exp is softmax . t per row; the stored rule is the one given.
                let withJvp =
                    logSumExp
                    |> CustomOp.withJvp (fun inputs y tangents ->
                        Expr.sumAxis 1 (Expr.exp (inputs.Head - Expr.reshape [| -1; 1 |] y) * tangents.Head.Value))
                    // Batched rows [b; rows; columns] are b * rows rows.
                    |> CustomOp.withBatching (fun inputs _ ->
                        let s = inputs.Head.Shape
                        let rows = Expr.reshape [| s[0] * s[1]; s[2] |] inputs.Head
                        Expr.reshape [| s[0]; s[1] |] (CustomOp.apply logSumExp [ rows ]), 0)
                let x, t = Expr.var "x" [| 2; 3 |], values 12 [| 2; 3 |]
                let y = CustomOp.apply withJvp [ x ]
                let env = Eval.bindings [ "x", values 13 [| 2; 3 |] ]
                let tangent = Eval.evaluate env (withJvp.Jvp.Value [ x ] y [ Some(Expr.constant t) ])
                // Central difference of the forward along t.
                let at (s: float) = Eval.evaluate env (CustomOp.apply logSumExp [ x + Expr.constant t * s ])
                let numeric = Array.map2 (fun p m -> (p - m) / 2e-6) ((at 1e-6).ToArray()) ((at -1e-6).ToArray())
                assertClose 1e-8 numeric (tangent.ToArray())
                Expect.equal (snd (withJvp.Batching.Value [ Expr.var "b" [| 4; 2; 3 |] ] [ Some 0 ])) 0 "the batching rule is the one given"
                Expect.isNone logSumExp.Jvp "withJvp leaves the original operation as it was"
                // The transforms themselves: forward mode and vmap name the operation and the rule to add.
                let jvpError =
                    throws<NotSupportedException>(fun () -> Grad.jvp x (Expr.constant t) (CustomOp.apply logSumExp [ x ]) |> ignore)
                Expect.stringContains jvpError.Message "logSumExp" "Grad.jvp names the operation"
                Expect.stringContains jvpError.Message "CustomOp.withJvp" "and how to add the rule"
                let xs = Expr.var "xs" [| 4; 2; 3 |]
                let vmapError =
                    throws<NotSupportedException>(fun () -> Vmap.vmap (fun e -> CustomOp.apply logSumExp [ e ]) xs |> ignore)
                Expect.stringContains vmapError.Message "logSumExp" "vmap names the operation"
                Expect.stringContains vmapError.Message "CustomOp.withBatching" "and how to add the rule"
                // With the rules given, both transforms go through.
                Expect.equal (Grad.jvp x (Expr.constant t) (CustomOp.apply withJvp [ x ])).Shape [| 2 |] "jvp's shape"
                let xsValue = values 14 [| 4; 2; 3 |]
                let batched =
                    Eval.evaluate (Eval.bindings [ "xs", xsValue ]) (Vmap.vmap (fun e -> CustomOp.apply withJvp [ e ]) xs)
                let looped =
                    Array.init 4 (fun i ->
                        let slice = Tensor.create [| 2; 3 |] (xsValue.ToArray()[i * 6 .. i * 6 + 5])
                        (Eval.evaluate (Eval.bindings [ "x", slice ]) (CustomOp.apply logSumExp [ x ])).ToArray())
                    |> Array.concat
                Expect.equal (batched.ToArray()) looped "vmap with the batching rule equals a loop over the examples"
            testCase "a rule giving None leaves that operand without gradient (zeros), like indices"
            <| fun () ->
                let scaleKernel (args: CustomArgs<float>) =
                    let a = args.Input 0
                    let s = args.Input 1
                    let out = args.Output
                    for i in 0 .. out.Length - 1 do
                        out[i] <- a[i] * s[0]
                let scaleBy =
                    CustomOp.create "scaleBy" (fun shapes -> shapes.Head) scaleKernel (fun inputs _ g -> [ Some(g * inputs[1]); None ])
                let a, s = Expr.var "a" [| 3 |], Expr.var "s" [| 1 |]
                let env = Eval.bindings [ "a", Tensor.ofArray [| 1.0; 2.0; 3.0 |]; "s", Tensor.ofArray [| 4.0 |] ]
                let f = Expr.sum (CustomOp.apply scaleBy [ a; s ])
                let grads = Grad.wrt [ a; s ] f
                Expect.equal ((Eval.evaluate env grads[a]).ToArray()) [| 4.0; 4.0; 4.0 |] "d/da = s"
                Expect.equal ((Eval.evaluate env grads[s]).ToArray()) [| 0.0 |] "no gradient for s"
                Expect.equal (Tensor.item (Eval.evaluate env f)) 24.0 "the value"
        ]
