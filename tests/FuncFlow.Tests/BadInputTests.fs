/// Bad inputs to every public core entry point, as data: each must fail with an argument, key or
/// invalid-operation error whose message names the operation and the shapes or values involved,
/// never with IndexOutOfRange or NullReference. Also: empty tensors work where they mean something.
module FuncFlow.Tests.BadInputTests

open System
open System.Collections.Generic
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private x23 = Expr.var "x" [| 2; 3 |]
let private v2 = Expr.var "x" [| 2 |]
let private env (pairs: (string * Tensor) list) = Eval.bindings pairs
let private ones (shape: int[]) = Tensor.ones Float64 shape
let private planOf (outputs: Expr list) = Plan.compile outputs

/// (description, action, fragments its message must contain).
let private cases: (string * (unit -> unit) * string list) list =
    [
        // Tensors.
        "create: too few values",
        (fun () -> Tensor.create [| 2; 3 |] [| 1.0; 2.0; 3.0; 4.0; 5.0 |] |> ignore),
        [ "Tensor.create"; "5 values"; "(2, 3)"; "6 expected" ]
        "create32: too many values",
        (fun () -> Tensor.create32 [| 4 |] (Array.zeroCreate 5) |> ignore),
        [ "Tensor.create32"; "5 values"; "(4,)" ]
        "create: negative dimension", (fun () -> Tensor.create [| 2; -1 |] [||] |> ignore), [ "Tensor.create"; "(2, -1)"; "negative" ]
        "zeros: more elements than an array holds",
        (fun () -> Tensor.zeros Float64 [| 100000; 100000 |] |> ignore),
        [ "Tensor.full"; "(100000, 100000)"; "10000000000 elements" ]
        "ofRows: ragged rows",
        (fun () -> Tensor.ofRows [| [| 1.0; 2.0 |]; [| 3.0 |] |] |> ignore),
        [ "Tensor.ofRows"; "row 1 has 1 values"; "row 0 has 2" ]
        "reshape: wrong size",
        (fun () -> Tensor.reshape [| 4; 2 |] (ones [| 2; 3 |]) |> ignore),
        [ "Tensor.reshape"; "(2, 3)"; "(4, 2)"; "6 elements" ]
        "reshape: two -1",
        (fun () -> Tensor.reshape [| -1; -1 |] (ones [| 2; 3 |]) |> ignore),
        [ "Tensor.reshape"; "(-1, -1)"; "only one dimension can be -1" ]
        "reshape: negative dimensions whose product fits",
        (fun () -> Tensor.reshape [| -2; -3 |] (ones [| 6 |]) |> ignore),
        [ "Tensor.reshape"; "(-2, -3)"; "non-negative" ]
        "reshape: -1 cannot be inferred",
        (fun () -> Tensor.reshape [| -1; 4 |] (ones [| 6 |]) |> ignore),
        [ "Tensor.reshape"; "(-1, 4)"; "no dimension" ]
        "item: many elements", (fun () -> Tensor.item (ones [| 2; 2 |]) |> ignore), [ "Tensor.item"; "(2, 2)" ]
        "toArray2D: a 3-D tensor", (fun () -> Tensor.toArray2D (ones [| 1; 2; 3 |]) |> ignore), [ "Tensor.toArray2D"; "(1, 2, 3)" ]
        "range: zero step", (fun () -> Tensor.range Float64 0.0 1.0 0.0 |> ignore), [ "Tensor.range"; "step"; "got 0" ]
        "range: infinite stop", (fun () -> Tensor.range Float64 0.0 infinity 1.0 |> ignore), [ "Tensor.range"; "finite" ]
        "range: too many values",
        (fun () -> Tensor.range Float64 0.0 1e12 1.0 |> ignore),
        [ "Tensor.range"; "more than one tensor can hold" ]
        "arange: negative length", (fun () -> Tensor.arange Float64 -3 |> ignore), [ "Tensor.arange"; "-3" ]
        "randUniform: negative dimension",
        (fun () -> Tensor.randUniform Float64 1 [| -1; 2 |] 0.0 1.0 |> ignore),
        [ "Tensor.randUniform"; "(-1, 2)" ]
        "randUniform: NaN bound", (fun () -> Tensor.randUniform Float64 1 [| 2 |] nan 1.0 |> ignore), [ "Tensor.randUniform"; "low=NaN" ]
        "randUniform: low above high",
        (fun () -> Tensor.randUniform Float32 1 [| 2 |] 2.0 1.0 |> ignore),
        [ "Tensor.randUniform"; "low=2"; "high=1" ]
        "randNormal: negative std", (fun () -> Tensor.randNormal Float64 1 [| 2 |] 0.0 -1.0 |> ignore), [ "Tensor.randNormal"; "std=-1" ]
        "randNormal: NaN mean", (fun () -> Tensor.randNormal Float64 1 [| 2 |] nan 1.0 |> ignore), [ "Tensor.randNormal"; "mean=NaN" ]
        // Expression builders.
        "var: empty name", (fun () -> Expr.var "" [| 2 |] |> ignore), [ "Expr.var"; "name" ]
        "var: negative dimension", (fun () -> Expr.var "w" [| 3; -2 |] |> ignore), [ "Expr.var w"; "(3, -2)"; "negative" ]
        "binary: shapes that do not broadcast",
        (fun () -> x23 + Expr.var "y" [| 4 |] |> ignore),
        [ "binary +"; "(2, 3)"; "(4,)"; "axis 1 has 3 and 4" ]
        "binary: mixed dtypes", (fun () -> x23 * Expr.var32 "y" [| 2; 3 |] |> ignore), [ "binary *"; "float64"; "float32" ]
        "matmul: inner sizes differ", (fun () -> Expr.matmul x23 (Expr.var "y" [| 4; 5 |]) |> ignore), [ "matmul"; "(2, 3)"; "(4, 5)" ]
        "matmul: a vector",
        (fun () -> Expr.matmul (Expr.var "v" [| 3 |]) (Expr.var "y" [| 3; 2 |]) |> ignore),
        [ "matmul"; "(3,)"; "(3, 2)"; "at least 2 axes" ]
        "matmul: batch axes differ",
        (fun () -> Expr.matmul (Expr.var "a" [| 2; 2; 3 |]) (Expr.var "b" [| 3; 3; 2 |]) |> ignore),
        [ "matmul"; "(2, 2, 3)"; "(3, 3, 2)" ]
        "matmul: mixed dtypes", (fun () -> Expr.matmul x23 (Expr.var32 "y" [| 3; 2 |]) |> ignore), [ "matmul"; "float64"; "float32" ]
        "Expr.reshape: wrong size", (fun () -> Expr.reshape [| 5 |] x23 |> ignore), [ "reshape"; "(2, 3)"; "(5,)" ]
        "permute: not a permutation", (fun () -> Expr.permute [| 0; 0 |] x23 |> ignore), [ "permute"; "[0, 0]"; "(2, 3)" ]
        "permute: wrong length", (fun () -> Expr.permute [| 1; 0; 2 |] x23 |> ignore), [ "permute"; "[1, 0, 2]"; "(2, 3)" ]
        "sumAxis: axis too large", (fun () -> Expr.sumAxis 2 x23 |> ignore), [ "sum"; "axis 2"; "(2, 3)"; "expected -2..1" ]
        "meanAxisKeep: axis too negative", (fun () -> Expr.meanAxisKeep -3 x23 |> ignore), [ "mean"; "axis -3"; "(2, 3)" ]
        "maxAxis: a scalar", (fun () -> Expr.maxAxis 0 (Expr.scalar 1.0) |> ignore), [ "max"; "axis 0"; "()"; "a scalar has no axes" ]
        "max: empty tensor", (fun () -> Expr.max (Expr.var "e" [| 0 |]) |> ignore), [ "max"; "(0,)"; "empty" ]
        "maxAxis: empty axis", (fun () -> Expr.maxAxis 1 (Expr.var "e" [| 2; 0 |]) |> ignore), [ "max"; "axis 1"; "(2, 0)"; "empty" ]
        "softmax: axis out of range", (fun () -> Expr.softmax 1 v2 |> ignore), [ "softmax"; "axis 1"; "(2,)" ]
        "logSoftmax: axis out of range", (fun () -> Expr.logSoftmax -3 x23 |> ignore), [ "logSoftmax"; "axis -3"; "(2, 3)" ]
        "concat: axis out of range", (fun () -> Expr.concat 3 [ x23; x23 ] |> ignore), [ "concat"; "axis 3"; "(2, 3)" ]
        "concat: other axes differ",
        (fun () -> Expr.concat 0 [ x23; Expr.var "y" [| 2; 4 |] ] |> ignore),
        [ "concat"; "(2, 3)"; "(2, 4)"; "outside axis 0" ]
        "concat: ranks differ", (fun () -> Expr.concat 0 [ x23; Expr.var "y" [| 2 |] ] |> ignore), [ "concat"; "(2, 3)"; "(2,)" ]
        "concat: nothing", (fun () -> Expr.concat 0 [] |> ignore), [ "concat"; "at least one" ]
        "slice: past the end", (fun () -> Expr.slice 1 2 3 x23 |> ignore), [ "slice"; "[2, 5)"; "axis 1"; "(2, 3)" ]
        "slice: one past the end", (fun () -> Expr.slice 1 1 3 x23 |> ignore), [ "slice"; "[1, 4)"; "axis 1"; "(2, 3)" ]
        "slice: negative start", (fun () -> Expr.slice 0 -1 1 x23 |> ignore), [ "slice"; "[-1, 0)"; "(2, 3)" ]
        "slice: axis out of range", (fun () -> Expr.slice 2 0 1 x23 |> ignore), [ "slice"; "axis 2"; "(2, 3)" ]
        "pad: negative", (fun () -> Expr.pad 0 -1 2 x23 |> ignore), [ "pad"; "-1" ]
        "gather: from a scalar", (fun () -> Expr.gather (Expr.var "i" [| 2 |]) (Expr.scalar 1.0) |> ignore), [ "gather"; "scalar"; "()" ]
        "scatterAdd: negative rows", (fun () -> Expr.scatterAdd -1 (Expr.var "i" [| 2 |]) x23 |> ignore), [ "scatterAdd"; "-1" ]
        "oneHot: no classes", (fun () -> Expr.oneHot 0 v2 |> ignore), [ "oneHot"; "got 0" ]
        "expand: dim out of range", (fun () -> Expr.expand 3 2 v2 |> ignore), [ "expand"; "dim 3"; "(2,)"; "0..1" ]
        "expand: negative copies", (fun () -> Expr.expand 0 -2 v2 |> ignore), [ "expand"; "-2" ]
        "broadcastTo: impossible",
        (fun () -> Expr.broadcastTo [| 2; 4 |] (Expr.var "v" [| 3 |]) |> ignore),
        [ "broadcastTo"; "(3,)"; "(2, 4)" ]
        "broadcastTo: negative target",
        (fun () -> Expr.broadcastTo [| -1 |] (Expr.var "v" [| 1 |]) |> ignore),
        [ "broadcastTo"; "(-1,)"; "negative" ]
        "powScalar: NaN exponent", (fun () -> Expr.powScalar nan v2 |> ignore), [ "powScalar"; "NaN"; "(2,)" ]
        "addN: shapes differ", (fun () -> Expr.addN [ v2; v2; Expr.var "y" [| 3 |] ] |> ignore), [ "addN"; "(2,)"; "(3,)" ]
        // One-shot evaluation.
        "evaluate: unbound variable", (fun () -> Eval.evaluate (env []) (v2 * 2.0) |> ignore), [ "evaluate"; "'x'"; "not bound"; "(2,)" ]
        "evaluate: wrong shape bound",
        (fun () -> Eval.evaluate (env [ "x", ones [| 3 |] ]) v2 |> ignore),
        [ "evaluate"; "'x'"; "(2,)"; "(3,)" ]
        "evaluate: wrong dtype bound",
        (fun () -> Eval.evaluate (env [ "x", Tensor.ones Float32 [| 2 |] ]) v2 |> ignore),
        [ "evaluate"; "'x'"; "float64"; "float32" ]
        "evaluate: gather index out of range",
        (fun () ->
            Eval.evaluate
                (env [ "i", Tensor.ofArray [| 0.0; 5.0 |] ])
                (Expr.gather (Expr.var "i" [| 2 |]) (Expr.constant (ones [| 3; 2 |])))
            |> ignore),
        [ "gather"; "index 5"; "[0, 3)" ]
        "evaluate: gather index not whole",
        (fun () ->
            Eval.evaluate (env [ "i", Tensor.ofArray [| 1.5 |] ]) (Expr.gather (Expr.var "i" [| 1 |]) (Expr.constant (ones [| 3; 2 |])))
            |> ignore),
        [ "gather"; "index 1.5" ]
        "add: a null operand (from C#)", (fun () -> Expr.add (Unchecked.defaultof<Expr>) v2 |> ignore), [ "binary +"; "operand is null" ]
        "matmul: a null operand", (fun () -> Expr.matmul v2 (Unchecked.defaultof<Expr>) |> ignore), [ "matmul"; "operand is null" ]
        "softmax: a null operand", (fun () -> Expr.softmax 0 (Unchecked.defaultof<Expr>) |> ignore), [ "softmax"; "operand is null" ]
        "concat: a null in the list", (fun () -> Expr.concat 0 [ v2; Unchecked.defaultof<Expr> ] |> ignore), [ "concat"; "operand is null" ]
        "evaluate: oneHot label out of range",
        (fun () -> Eval.evaluate (env [ "x", Tensor.ofArray [| 1.0; 4.0 |] ]) (Expr.oneHot 3 v2) |> ignore),
        [ "oneHot"; "label 4"; "[0, 3)" ]
        "evaluate: oneHot NaN label",
        (fun () -> Eval.evaluate (env [ "x", Tensor.ofArray [| nan; 0.0 |] ]) (Expr.oneHot 3 v2) |> ignore),
        [ "oneHot"; "label NaN" ]
        "evaluate: outputs mix dtypes",
        (fun () -> Eval.many (env []) [ Expr.scalar 1.0; Expr.scalarOf Float32 1.0 ] |> ignore),
        [ "evaluate"; "mix dtypes"; "float64"; "float32" ]
        "evaluate: no bindings object", (fun () -> Eval.evaluate null v2 |> ignore), [ "env" ]
        // Compiled plans.
        "Plan.Set: unknown variable", (fun () -> (planOf [ v2 * 2.0 ]).Set("y", ones [| 2 |])), [ "Plan.Set"; "'y'"; "it has x" ]
        "Plan.Set: wrong shape", (fun () -> (planOf [ v2 * 2.0 ]).Set("x", ones [| 3 |])), [ "Plan.Set"; "'x'"; "(2,)"; "(3,)" ]
        "Plan.Set: wrong dtype",
        (fun () -> (planOf [ v2 * 2.0 ]).Set("x", Tensor.ones Float32 [| 2 |])),
        [ "Plan.Set"; "'x'"; "float64"; "float32" ]
        "Plan.Set: wrong number of raw values",
        (fun () -> (planOf [ v2 * 2.0 ]).Set("x", [| 1.0; 2.0; 3.0 |])),
        [ "Plan.Set"; "'x'"; "(2,)"; "needs 2 values, got 3" ]
        "Plan.Set: raw values of the wrong dtype",
        (fun () -> (planOf [ v2 * 2.0 ]).Set("x", [| 1.0f; 2.0f |])),
        [ "Plan.Set"; "'x'"; "float64" ]
        "Plan.Execute: unset variable", (fun () -> (planOf [ v2 * 2.0 ]).Execute()), [ "Plan.Execute"; "x"; "no value" ]
        "Plan.Run: unset variable",
        (fun () -> (planOf [ v2 + Expr.var "y" [| 2 |] ]).Run(env [ "x", ones [| 2 |] ]) |> ignore),
        [ "Plan.Execute"; "y" ]
        "Plan.OutputScalar: not a scalar",
        (fun () -> (planOf [ v2 * 2.0 ]).OutputScalar 0 |> ignore),
        [ "Plan.OutputScalar"; "output 0"; "(2,)" ]
        "Plan.Output: index out of range", (fun () -> (planOf [ v2 * 2.0 ]).Output 3 |> ignore), [ "Plan.Output"; "output 3"; "1 outputs" ]
        "Plan.compile: nothing", (fun () -> Plan.compile [] |> ignore), [ "Plan.compile"; "nothing to compute" ]
        "Plan.compile: update of a non-variable",
        (fun () -> Plan.compileWithUpdates [] [ v2 * 2.0, v2 ] |> ignore),
        [ "Plan.compile"; "only variables"; "binary *" ]
        "Plan.compile: update of the wrong shape",
        (fun () -> Plan.compileWithUpdates [] [ v2, Expr.var "y" [| 3 |] ] |> ignore),
        [ "Plan.compile"; "'x'"; "(2,)"; "(3,)" ]
        "Plan.compile: mixed dtypes", (fun () -> Plan.compile [ v2; Expr.var32 "y" [| 2 |] ] |> ignore), [ "Plan.compile"; "mixes dtypes" ]
        "Plan.compile: one name, two shapes",
        (fun () -> Plan.compile [ Expr.sum v2 + Expr.sum (Expr.var "x" [| 3 |]) ] |> ignore),
        [ "Plan.compile"; "'x'"; "(2,)"; "(3,)" ]
        // Gradients.
        "Grad.wrt: non-scalar output", (fun () -> Grad.wrt [ x23 ] (Expr.tanh x23) |> ignore), [ "Grad.wrt"; "(2, 3)"; "seed" ]
        "Grad.vjp: seed of the wrong shape",
        (fun () -> Grad.vjp (Expr.var "s" [| 3 |]) [ v2 ] (v2 * 2.0) |> ignore),
        [ "Grad.vjp"; "(3,)"; "(2,)" ]
        "Grad.vjp: seed of the wrong dtype",
        (fun () -> Grad.vjp (Expr.var32 "s" [| 2 |]) [ v2 ] (v2 * 2.0) |> ignore),
        [ "Grad.vjp"; "float32"; "float64" ]
        // GEMM.
        "Blas.dgemm: a too small",
        (fun () ->
            Blas.dgemm (false, false, 2, 2, 3, 1.0, Array.zeroCreate 5, 0, 3, Array.zeroCreate 6, 0, 2, 0.0, Array.zeroCreate 4, 0, 2)),
        [ "Blas.dgemm"; "operand a"; "2x3"; "5 values" ]
        "Blas.dgemm: leading dimension below the row length",
        (fun () ->
            Blas.dgemm (false, false, 2, 2, 2, 1.0, Array.zeroCreate 4, 0, 1, Array.zeroCreate 4, 0, 2, 0.0, Array.zeroCreate 4, 0, 2)),
        [ "Blas.dgemm"; "operand a"; "leading dimension 1" ]
        "Blas.dgemm: c at an offset past the end",
        (fun () -> Blas.dgemm (false, false, 1, 1, 1, 1.0, [| 1.0 |], 0, 1, [| 1.0 |], 0, 1, 0.0, [| 0.0 |], 1, 1)),
        [ "Blas.dgemm"; "operand c"; "offset 1" ]
        "Blas.sgemm: negative size",
        (fun () ->
            Blas.sgemm (false, false, -1, 2, 2, 1.0f, Array.zeroCreate 4, 0, 2, Array.zeroCreate 4, 0, 2, 0.0f, Array.zeroCreate 4, 0, 2)),
        [ "Blas.sgemm"; "m=-1" ]
        "Blas.sgemm: null operand",
        (fun () -> Blas.sgemm (false, false, 1, 1, 1, 1.0f, null, 0, 1, [| 1.0f |], 0, 1, 0.0f, [| 0.0f |], 0, 1)),
        [ "a" ]
    ]

let private byName = dict [ for (name, action, fragments) in cases -> name, (action, fragments) ]

// Empty tensors: a 0-length axis flows through every operation. Following NumPy, the sum of nothing is 0
// and the mean of nothing is NaN (0/0); the maximum of nothing has no value and is refused when built.

let private empty (shape: int[]) = Tensor.zeros Float64 shape

[<Tests>]
let tests =
    moduleTests
        "BadInputTests"
        [
            testCase "at least 40 bad inputs are listed, with distinct descriptions"
            <| fun () ->
                Expect.isTrue (cases.Length >= 40) (sprintf "%d cases" cases.Length)
                Expect.equal byName.Count cases.Length "byName.Count"
            yield!
                [
                    for name, action, fragments in cases ->
                        testCase (sprintf "a bad input fails with a clear message %s" name)
                        <| fun () ->
                            let error =
                                try
                                    action ()
                                    None
                                with e ->
                                    Some e
                            match error with
                            | None -> failtestf "%s: no exception" name
                            | Some e ->
                                match e with
                                | :? ArgumentException
                                | :? KeyNotFoundException
                                | :? InvalidOperationException -> ()
                                | _ ->
                                    failtestf
                                        "%s: %s is not an argument, key or invalid-operation error: %s"
                                        name
                                        (e.GetType().Name)
                                        e.Message
                                for fragment in fragments do
                                    Expect.isTrue
                                        (e.Message.Contains(fragment, StringComparison.Ordinal))
                                        (sprintf "%s: message lacks \"%s\": %s" name fragment e.Message)
                ]
            testCase "sum of an empty tensor is 0 and its mean is NaN"
            <| fun () ->
                let e = Expr.var "e" [| 0 |]
                let values = Eval.many (env [ "e", empty [| 0 |] ]) [ Expr.sum e; Expr.mean e ]
                Expect.equal (Tensor.item values[0]) 0.0 "Tensor.item values[0]"
                Expect.isTrue (Double.IsNaN(Tensor.item values[1])) "Double.IsNaN(Tensor.item values[1])"
            testCase "reductions over and along empty axes give the documented shapes and values"
            <| fun () ->
                let e = Expr.var "e" [| 2; 0 |]
                let values =
                    Eval.many
                        (env [ "e", empty [| 2; 0 |] ])
                        [ Expr.sumAxis 1 e; Expr.meanAxis 1 e; Expr.sumAxis 0 e; Expr.meanAxisKeep 0 e ]
                Expect.equal (values[0].ToArray()) ([| 0.0; 0.0 |]) "values[0].ToArray()"
                Expect.isTrue (values[1].ToArray() |> Array.forall Double.IsNaN) "values[1].ToArray() |> Array.forall Double.IsNaN"
                Expect.equal (values[2].Shape) ([| 0 |]) "values[2].Shape"
                Expect.equal (values[3].Shape) ([| 1; 0 |]) "values[3].Shape"
            testCase "elementwise, softmax, matmul, concat, gather and permute accept empty tensors"
            <| fun () ->
                let e = Expr.var "e" [| 0; 3 |]
                let m = Expr.var "m" [| 3; 0 |]
                let bindings = env [ "e", empty [| 0; 3 |]; "m", empty [| 3; 0 |] ]
                let outputs =
                    [
                        Expr.tanh e + Expr.constant (Tensor.ofArray [| 1.0; 2.0; 3.0 |])
                        Expr.softmax 1 e
                        Expr.logSoftmax 0 m
                        Expr.matmul e (Expr.constant (ones [| 3; 2 |]))
                        Expr.matmul m (Expr.constant (ones [| 0; 4 |]))
                        Expr.concat 0 [ e; Expr.constant (ones [| 1; 3 |]) ]
                        Expr.gather (Expr.constant (empty [| 0 |])) (Expr.constant (ones [| 4; 2 |]))
                        Expr.transpose e
                        Expr.pad 0 1 0 e
                    ]
                let values = Eval.many bindings outputs
                for (o, v) in List.zip outputs values do
                    Expect.equal v.Shape o.Shape "v.Shape"
                // (3, 0) x (0, 4) has no terms to add: zeros.
                Expect.equal (values[4].ToArray()) (Array.zeroCreate 12) "values[4].ToArray()"
                Expect.equal (values[5].ToArray()) ([| 1.0; 1.0; 1.0 |]) "values[5].ToArray()"
                Expect.equal (values[8].ToArray()) ([| 0.0; 0.0; 0.0 |]) "values[8].ToArray()"
            testCase "every elementwise operation accepts empty tensors"
            <| fun () ->
                let e = Expr.var "e" [| 0; 2 |]
                let row = Expr.constant (Tensor.ofArray [| 1.0; 2.0 |])
                let outputs =
                    [
                        for op in
                            [
                                UnaryOp.Neg
                                UnaryOp.Exp
                                UnaryOp.Log
                                UnaryOp.Sqrt
                                UnaryOp.Abs
                                UnaryOp.Sigmoid
                                UnaryOp.Tanh
                                UnaryOp.Relu
                                UnaryOp.Softplus
                                UnaryOp.Sign
                                UnaryOp.Step
                            ] -> Expr.unary op e
                    ]
                    @ [
                        for op in [ BinaryOp.Add; BinaryOp.Sub; BinaryOp.Mul; BinaryOp.Div; BinaryOp.Pow; BinaryOp.Equal ] ->
                            Expr.binary op e row
                    ]
                    @ [ Expr.powScalar 3.0 e; Expr.powScalar 2.0 e; Expr.addN [ e; e; e ] ]
                for v in Eval.many (env [ "e", empty [| 0; 2 |] ]) outputs do
                    Expect.equal v.Shape ([| 0; 2 |]) "v.Shape"
            testCase "gradients and plans work through empty tensors"
            <| fun () ->
                let e = Expr.var "e" [| 0; 3 |]
                let w = Expr.var "w" [| 3 |]
                let f = Expr.sum (Expr.sigmoid (e * w))
                let bindings = env [ "e", empty [| 0; 3 |]; "w", ones [| 3 |] ]
                let value, grads = Eval.valueAndGrad bindings [ e; w ] f
                Expect.equal (Tensor.item value) 0.0 "Tensor.item value"
                Expect.equal (grads[e].Shape) ([| 0; 3 |]) "grads[e].Shape"
                Expect.equal (grads[w].ToArray()) ([| 0.0; 0.0; 0.0 |]) "grads[w].ToArray()"
                let plan = Plan.compile [ f; (Grad.wrt [ w ] f)[w] ]
                let out = plan.Run bindings
                Expect.equal (Tensor.item out[0]) 0.0 "Tensor.item out[0]"
                Expect.equal (out[1].ToArray()) ([| 0.0; 0.0; 0.0 |]) "out[1].ToArray()"
            testCase "empty tensors print and convert"
            <| fun () ->
                Expect.equal (string (empty [| 0 |])) "tensor([], shape=(0,), dtype=float64)" "string (empty [| 0 |])"
                Expect.equal (string (empty [| 2; 0 |])) "tensor([[], []], shape=(2, 0), dtype=float64)" "string (empty [| 2; 0 |])"
                Expect.equal ((Tensor.toArray2D (empty [| 0; 5 |])).Length) 0 "(Tensor.toArray2D (empty [| 0; 5 |])).Length"
                Expect.equal
                    ((Tensor.reshape [| -1; 7 |] (empty [| 0 |])).Shape)
                    ([| 0; 7 |])
                    "(Tensor.reshape [| -1; 7 |] (empty [| 0 |])).Shape"
        ]
