/// Recurrent cells and layers (against PyTorch, finite differences and hand-unrolled equations), a long
/// sequence in a plan, the sequence cross-entropy and gradient clipping by global norm.
module FuncFlow.Tests.NN.RecurrentTests

open System
open System.Collections.Generic
open System.Text.Json
open Expecto
open FuncFlow
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support
open FuncFlow.Tests.TorchReference

/// The reference file written by reference/make_recurrent_reference.py.
let private reference = lazy (load "recurrent_reference.json")

let private tolerance = 1e-10

/// A training-mode scope over parameters of the given shapes.
let private scopeOf (parameters: (string * Tensor) list) =
    let shapes = Dictionary<string, int[]>()
    for name, t in parameters do
        shapes[name] <- t.Shape
    Scope.Create(Float64, true, shapes, Dictionary<string, int[]>())

/// The parameters of a reference case, with PyTorch's values.
let private torchParameters (case: JsonElement) =
    [
        for p in (field "params" case).EnumerateObject() ->
            p.Name, Tensor.create (ints (field "shape" p.Value)) (numbers (field "value" p.Value)), numbers (field "grad" p.Value)
    ]

/// Evaluates outputs and the gradients of loss with respect to vars, with the inputs and parameters bound.
let private valuesAndGradients (bound: (Expr * Tensor) list) (outputs: Expr list) (loss: Expr) =
    let grads = Grad.wrt (List.map fst bound) loss
    let env = Eval.bindings [ for v, t in bound -> (Expr.tryName v).Value, t ]
    let values = Eval.many env (outputs @ [ for v, _ in bound -> grads[v] ])
    List.take outputs.Length values, List.skip outputs.Length values

let private weighted (e: Expr) (r: float[]) = Expr.sum (e * Expr.constant (Tensor.create e.Shape r))

let private checkLayerCase (case: JsonElement) =
    let name = (field "name" case).GetString()
    let bool (key: string) = (field key case).GetBoolean()
    let int (key: string) = (field key case).GetInt32()
    let options =
        {
            Layers = int "layers"
            Bidirectional = bool "bidirectional"
            BatchFirst = bool "batch_first"
            Bias = bool "bias"
        }
    let inputs, hidden = int "input_size", int "hidden_size"
    let layer: RecurrentLayer =
        match (field "kind" case).GetString() with
        | "RNN" -> RNN(inputs, hidden, bool "relu", options)
        | "GRU" -> GRU(inputs, hidden, options)
        | "LSTM" -> LSTM(inputs, hidden, options)
        | other -> failwithf "recurrent_reference.json: unknown layer %s" other
    let parameters = torchParameters case
    // The layer declares the same names and shapes as PyTorch's module.
    Expect.equal
        (layer.Parameters 0 |> List.map (fun (n, t) -> n, List.ofArray t.Shape))
        (parameters |> List.map (fun (n, t, _) -> n, List.ofArray t.Shape))
        (name + ": parameter names and shapes")
    let scope = scopeOf [ for n, t, _ in parameters -> n, t ]
    let shape = ints (field "shape" case)
    let x = Expr.var "input" shape
    let stateShape =
        [|
            options.Layers * (if options.Bidirectional then 2 else 1)
            (if options.BatchFirst then shape[0] else shape[1])
            hidden
        |]
    let h0 = Expr.var "h0" stateShape
    let c0 = Expr.var "c0" stateShape
    let initial =
        match case.TryGetProperty "h0" with
        | true, _ -> Some { Hidden = h0; Cell = if layer.Kind = CellKind.Lstm then Some c0 else None }
        | _ -> None
    let output, final = layer.Run(scope, x, initial)
    let loss =
        weighted output (numbers (field "r" case))
        + weighted final.Hidden (numbers (field "rh" case))
        + (final.Cell
           |> Option.map (fun c -> weighted c (numbers (field "rc" case)))
           |> Option.defaultValue (Expr.scalar 0.0))
    let bound =
        [
            yield x, Tensor.create shape (numbers (field "x" case))
            if initial.IsSome then
                yield h0, Tensor.create stateShape (numbers (field "h0" case))
                if layer.Kind = CellKind.Lstm then yield c0, Tensor.create stateShape (numbers (field "c0" case))
            for n, t, _ in parameters -> scope.Param n, t
        ]
    let outputs = output :: final.Hidden :: Option.toList final.Cell
    let values, grads = valuesAndGradients bound outputs loss
    [
        yield! mismatches tolerance tolerance "output" (numbers (field "output" case)) (values[0].ToArray())
        yield! mismatches tolerance tolerance "h_n" (numbers (field "h_n" case)) (values[1].ToArray())
        if final.Cell.IsSome then
            yield! mismatches tolerance tolerance "c_n" (numbers (field "c_n" case)) (values[2].ToArray())
        let expected =
            [
                yield "grad_input", numbers (field "grad_input" case)
                if initial.IsSome then
                    yield "grad_h0", numbers (field "grad_h0" case)
                    if layer.Kind = CellKind.Lstm then yield "grad_c0", numbers (field "grad_c0" case)
                for n, _, g in parameters -> "grad " + n, g
            ]
        for (what, e), g in List.zip expected grads do
            yield! mismatches tolerance tolerance what e (g.ToArray())
    ]
    |> assertNone name

let private checkCellCase (case: JsonElement) =
    let name = (field "name" case).GetString()
    let inputs, hidden = (field "input_size" case).GetInt32(), (field "hidden_size" case).GetInt32()
    let bias = (field "bias" case).GetBoolean()
    let cell: RecurrentCell =
        match (field "kind" case).GetString() with
        | "RNNCell" -> RNNCell(inputs, hidden, (field "relu" case).GetBoolean(), bias)
        | "GRUCell" -> GRUCell(inputs, hidden, bias)
        | "LSTMCell" -> LSTMCell(inputs, hidden, bias)
        | other -> failwithf "recurrent_reference.json: unknown cell %s" other
    let parameters = torchParameters case
    Expect.equal (cell.Parameters 0 |> List.map fst) (parameters |> List.map (fun (n, _, _) -> n)) (name + ": parameter names")
    let scope = scopeOf [ for n, t, _ in parameters -> n, t ]
    let batch = (numbers (field "x" case)).Length / inputs
    let x, h, c =
        Expr.var "x" [| batch; inputs |], Expr.var "h" [| batch; hidden |], Expr.var "c" [| batch; hidden |]
    let lstm = cell.Kind = CellKind.Lstm
    let next = cell.Step(scope, x, Some { Hidden = h; Cell = if lstm then Some c else None })
    let loss =
        weighted next.Hidden (numbers (field "rh" case))
        + (next.Cell
           |> Option.map (fun c' -> weighted c' (numbers (field "rc" case)))
           |> Option.defaultValue (Expr.scalar 0.0))
    let bound =
        [
            yield x, Tensor.create [| batch; inputs |] (numbers (field "x" case))
            yield h, Tensor.create [| batch; hidden |] (numbers (field "h" case))
            if lstm then yield c, Tensor.create [| batch; hidden |] (numbers (field "c" case))
            for n, t, _ in parameters -> scope.Param n, t
        ]
    let values, grads = valuesAndGradients bound (next.Hidden :: Option.toList next.Cell) loss
    [
        yield! mismatches tolerance tolerance "h'" (numbers (field "h1" case)) (values[0].ToArray())
        if lstm then
            yield! mismatches tolerance tolerance "c'" (numbers (field "c1" case)) (values[1].ToArray())
        let expected =
            [
                yield "grad_x", numbers (field "grad_x" case)
                yield "grad_h", numbers (field "grad_h" case)
                if lstm then yield "grad_c", numbers (field "grad_c" case)
                for n, _, g in parameters -> "grad " + n, g
            ]
        for (what, e), g in List.zip expected grads do
            yield! mismatches tolerance tolerance what e (g.ToArray())
    ]
    |> assertNone name

/// Random float64 values for a layer's parameters, the input and the states, as (variable, value) pairs.
let private randomBindings (seed: int) (scope: Scope) (parameters: (string * Tensor) list) (others: (Expr * int[]) list) =
    [
        for i, (v, shape) in List.indexed others -> v, Tensor.randNormal Float64 (seed + i) shape 0.0 1.0
        for n, t in parameters -> scope.Param n, t
    ]

[<Tests>]
let tests =
    moduleTests
        "RecurrentTests"
        [
            testCase "RNN, GRU and LSTM layers match PyTorch's outputs, final states and gradients"
            <| fun () ->
                for case in (field "layers" reference.Value).EnumerateArray() do
                    checkLayerCase case
            testCase "RNNCell, GRUCell and LSTMCell match PyTorch's step and its gradients"
            <| fun () ->
                for case in (field "cells" reference.Value).EnumerateArray() do
                    checkCellCase case
            testCase "gradients of every kind of layer, two layers and both directions, agree with finite differences"
            <| fun () ->
                for kind in [ CellKind.RnnTanh; CellKind.RnnRelu; CellKind.Gru; CellKind.Lstm ] do
                    let options = { Layers = 2; Bidirectional = true; BatchFirst = true; Bias = true }
                    let layer = RecurrentLayer(kind, 2, 2, options)
                    let parameters = layer.Parameters 3
                    let scope = scopeOf parameters
                    let x, h0, c0 = Expr.var "x" [| 2; 3; 2 |], Expr.var "h0" [| 4; 2; 2 |], Expr.var "c0" [| 4; 2; 2 |]
                    let lstm = kind = CellKind.Lstm
                    let output, final = layer.Run(scope, x, Some { Hidden = h0; Cell = if lstm then Some c0 else None })
                    let r = Expr.constant (Tensor.randNormal Float64 9 output.Shape 0.0 1.0)
                    let loss =
                        Expr.sum (output * r)
                        + Expr.sum (final.Hidden * final.Hidden)
                        + (final.Cell |> Option.map Expr.sum |> Option.defaultValue (Expr.scalar 0.0))
                    let states = (h0, [| 4; 2; 2 |]) :: (if lstm then [ c0, [| 4; 2; 2 |] ] else [])
                    gradcheck (randomBindings 20 scope parameters ((x, [| 2; 3; 2 |]) :: states)) loss
            testCase "an LSTM and a GRU equal their equations unrolled by hand, values and gradients"
            <| fun () ->
                let steps, batch, inputs, hidden = 4, 2, 3, 2
                let x = Expr.var "x" [| steps; batch; inputs |]
                let h0 = Expr.var "h0" [| 1; batch; hidden |]
                let c0 = Expr.var "c0" [| 1; batch; hidden |]
                let xs = Tensor.randNormal Float64 1 [| steps; batch; inputs |] 0.0 1.0
                let hs = Tensor.randNormal Float64 2 [| 1; batch; hidden |] 0.0 1.0
                let cs = Tensor.randNormal Float64 3 [| 1; batch; hidden |] 0.0 1.0
                // Gate k's rows of a stacked weight, as its own constant, and the input at step t.
                let rows (t: Tensor) k =
                    let cols = if t.Rank = 2 then t.Shape[1] else 1
                    let a = t.ToArray()[k * hidden * cols .. (k + 1) * hidden * cols - 1]
                    Expr.constant (if t.Rank = 2 then Tensor.create [| hidden; cols |] a else Tensor.create [| hidden |] a)
                let at t = Expr.reshape [| batch; inputs |] (Expr.slice 0 t 1 x)
                let first (e: Expr) = Expr.reshape [| batch; hidden |] e
                for layer in [ LSTM(inputs, hidden) :> RecurrentLayer; GRU(inputs, hidden) ] do
                    let parameters = layer.Parameters 5
                    let p = Map parameters
                    let scope = scopeOf parameters
                    let lstm = layer.Kind = CellKind.Lstm
                    let linear k (input: Expr) (w: string) (b: string) = Expr.matmul input (Expr.transpose (rows p[w] k)) + rows p[b] k
                    let xi k t = linear k (at t) "weight_ih_l0" "bias_ih_l0"
                    let hh k h = linear k h "weight_hh_l0" "bias_hh_l0"
                    let mutable h = first h0
                    let mutable c = first c0
                    let outputs = ResizeArray()
                    for t in 0 .. steps - 1 do
                        if lstm then
                            let i = Expr.sigmoid (xi 0 t + hh 0 h)
                            let f = Expr.sigmoid (xi 1 t + hh 1 h)
                            let g = Expr.tanh (xi 2 t + hh 2 h)
                            let o = Expr.sigmoid (xi 3 t + hh 3 h)
                            c <- f * c + i * g
                            h <- o * Expr.tanh c
                        else
                            let r = Expr.sigmoid (xi 0 t + hh 0 h)
                            let z = Expr.sigmoid (xi 1 t + hh 1 h)
                            let n = Expr.tanh (xi 2 t + r * hh 2 h)
                            h <- (1.0 - z) * n + z * h
                        outputs.Add h
                    let unrolled = Expr.concat 0 [ for o in outputs -> Expr.reshape [| 1; batch; hidden |] o ]
                    let output, _ = layer.Run(scope, x, Some { Hidden = h0; Cell = if lstm then Some c0 else None })
                    let r = Expr.constant (Tensor.randNormal Float64 7 output.Shape 0.0 1.0)
                    let bound = [ x, xs; h0, hs; c0, cs ] @ [ for n, t in parameters -> scope.Param n, t ]
                    let env = Eval.bindings [ for v, t in bound -> (Expr.tryName v).Value, t ]
                    let gradsOf (y: Expr) =
                        let g = Grad.wrt [ x; h0; c0 ] (Expr.sum (y * r))
                        Eval.many env [ y; g[x]; g[h0]; g[c0] ] |> List.map (fun t -> t.ToArray())
                    List.iter2 (assertClose 1e-13) (gradsOf unrolled) (gradsOf output)
            testCase "the gradients of disjoint slices of one tensor are joined by one concat, with zeros in the gaps"
            <| fun () ->
                // A recurrent layer reads each time step by a slice: summing each step's zero-padded gradient
                // would cost the full size per step.
                let x = Expr.var "x" [| 7; 2 |]
                let piece start length = Expr.slice 0 start length x
                let third = piece 3 1
                let disjoint =
                    Expr.sum (Expr.tanh (piece 0 2)) + Expr.sum (third * third) + Expr.sum (Expr.sin (piece 5 2))
                let g = Grad.grad x disjoint
                Expect.equal g.Op (Op.Concat 0) "one concat"
                let value = Tensor.randNormal Float64 3 [| 7; 2 |] 0.0 1.0
                let v = value.ToArray()
                let expected =
                    Array.init 14 (fun i ->
                        match i / 2 with
                        | 0
                        | 1 -> 1.0 - tanh v[i] * tanh v[i]
                        | 3 -> 2.0 * v[i]
                        | 5
                        | 6 -> cos v[i]
                        | _ -> 0.0)
                assertClose 1e-15 expected ((Eval.evaluate (Eval.bindings [ "x", value ]) g).ToArray())
                // Overlapping pieces and other uses are added as before.
                gradcheck [ x, value ] (disjoint + Expr.sum (piece 1 3 * piece 2 3) + Expr.sum (x * x))
            testCase "a 10,000-step LSTM builds, differentiates and runs in a plan, converging to the short sequence's values"
            <| fun () ->
                // A constant input drives a contracting LSTM to a fixed point, so after 10,000 steps the state,
                // and the weight gradients (sums over steps of contributions that fade), equal those after 200.
                let layer = LSTM(2, 3, { RecurrentOptions.Default with BatchFirst = true })
                let parameters =
                    layer.Parameters 1
                    |> List.map (fun (n, t) -> n, Tensor.create t.Shape (t.ToArray() |> Array.map (fun v -> 0.5 * v)))
                let run steps =
                    let scope = scopeOf parameters
                    let x = Expr.var "x" [| 1; steps; 2 |]
                    let _, final = layer.Run(scope, x, None)
                    let loss = Expr.sum final.Hidden
                    let w = scope.Param "weight_hh_l0"
                    let g = Grad.wrt [ x; w ] loss
                    let plan = Plan.compile [ final.Hidden; g[w]; g[x] ]
                    let env =
                        Eval.bindings (
                            ("x", Tensor.create [| 1; steps; 2 |] (Array.init (2 * steps) (fun i -> if i % 2 = 0 then 0.7 else -0.4)))
                            :: parameters
                        )
                    plan.Run env |> Array.map (fun t -> t.ToArray())
                let long, short = run 10_000, run 200
                assertClose 1e-12 short[0] long[0]
                assertClose 1e-12 short[1] long[1]
                Expect.isTrue (short[0] |> Array.forall (fun v -> abs v > 1e-3 && abs v < 1.0)) "h is neither 0 nor saturated"
                // The last step's input gradient is the same; the first's has faded to nothing.
                let shortX, longX = short[2], long[2]
                assertClose 1e-12 shortX[shortX.Length - 2 ..] longX[longX.Length - 2 ..]
                Expect.isTrue (abs longX[0] < 1e-30) (sprintf "gradient of the first input %g" longX[0])
            testCase "the sequence cross-entropy with an ignore index matches PyTorch's loss and gradient"
            <| fun () ->
                for case in (field "cross_entropy" reference.Value).EnumerateArray() do
                    let shape = ints (field "shape" case)
                    let logits = Expr.var "logits" shape
                    let targets = Expr.var "targets" shape[..1]
                    let loss = Losses.sequenceCrossEntropy ((field "ignore_index" case).GetInt32()) logits targets
                    let env =
                        Eval.bindings
                            [
                                "logits", Tensor.create shape (numbers (field "logits" case))
                                "targets", Tensor.create shape[..1] (numbers (field "targets" case))
                            ]
                    let values = Eval.many env [ loss; Grad.grad logits loss ]
                    assertClose 1e-12 [| number (field "loss" case) |] (values[0].ToArray())
                    assertClose 1e-12 (numbers (field "grad" case)) (values[1].ToArray())
                let e =
                    throws<ArgumentException>(fun () ->
                        Losses.sequenceCrossEntropy 0 (Expr.var "l" [| 2; 3; 4 |]) (Expr.var "t" [| 2; 4 |]) |> ignore)
                Expect.stringContains e.Message "Losses.sequenceCrossEntropy: expected logits [batch; time; classes]" "message"
            testCase "clipping by global norm matches PyTorch's clip_grad_norm_, as a function and inside a training step"
            <| fun () ->
                for case in (field "clip" reference.Value).EnumerateArray() do
                    let shapes = [ for s in (field "shapes" case).EnumerateArray() -> ints s ]
                    let grads =
                        List.map2
                            (fun (s: int[]) (g: JsonElement) -> Expr.constant (Tensor.create s (numbers g)))
                            shapes
                            [ for g in (field "grads" case).EnumerateArray() -> g ]
                    let maxNorm = (field "max_norm" case).GetDouble()
                    let norm = Eval.evaluate (Eval.bindings []) (Clip.globalNorm grads)
                    assertClose 1e-12 [| number (field "total_norm" case) |] (norm.ToArray())
                    let clipped = ClipGradNorm(SGD 1.0, maxNorm).Gradients grads |> Eval.many (Eval.bindings [])
                    List.iter2
                        (fun (e: JsonElement) (t: Tensor) -> assertClose 1e-12 (numbers e) (t.ToArray()))
                        [ for g in (field "clipped" case).EnumerateArray() -> g ]
                        clipped
                // In a training step: SGD's update sees the clipped gradient, p <- p - lr * clip(g).
                let model = Model.Create(Linear(3, 2), 4)
                let x = Tensor.randNormal Float64 5 [| 4; 3 |] 0.0 1.0
                let y = Tensor.randNormal Float64 6 [| 4; 2 |] 0.0 3.0
                let input = Expr.var "input" [| 4; 3 |]
                let g = model.Build(input, true)
                let loss = Losses.mse g.Output (Expr.constant y)
                let names = [ "weight"; "bias" ]
                let grads = Grad.wrt [ for n in names -> g.Parameters[n] ] loss
                let env = Eval.bindings (("input", x) :: [ for n in names -> n, model.Parameters[n] ])
                let raw = Eval.many env [ for n in names -> grads[g.Parameters[n]] ]
                let total = sqrt (raw |> List.sumBy (fun t -> t.ToArray() |> Array.sumBy (fun v -> v * v)))
                Expect.isGreaterThan total 0.2 "the gradient is longer than the clip, so clipping acts"
                let step = TrainStep.Compile(model, Loss.MSE, ClipGradNorm(SGD 0.5, 0.2), [| 4; 3 |], [| 4; 2 |])
                step.Run(x, y) |> ignore
                let scale = 0.2 / (total + 1e-6)
                for n, r in List.zip names raw do
                    let expected =
                        Array.map2 (fun p gv -> p - 0.5 * scale * gv) (model.Parameters[n].ToArray()) (r.ToArray())
                    assertClose 1e-12 expected (step.Model.Parameters[n].ToArray())
            testCase "bad shapes name the layer, the shapes and what was expected"
            <| fun () ->
                let lstm = LSTM(3, 4, { RecurrentOptions.Default with BatchFirst = true })
                let scope = scopeOf (lstm.Parameters 0)
                let e = throws<ArgumentException>(fun () -> lstm.Run(scope, Expr.var "x" [| 2; 5; 4 |], None) |> ignore)
                Expect.stringContains e.Message "LSTM: expected an input [batch; time; 3], got" "input message"
                let e =
                    throws<ArgumentException>(fun () ->
                        lstm.Run(scope, Expr.var "x" [| 2; 5; 3 |], Some { Hidden = Expr.var "h" [| 1; 2; 4 |]; Cell = None })
                        |> ignore)
                Expect.stringContains e.Message "LSTM: a LSTM state needs h and c of shape" "state message"
                let e =
                    throws<ArgumentException>(fun () ->
                        Recurrent.step
                            CellKind.Gru
                            {
                                InputWeight = Expr.var "a" [| 5; 3 |]
                                HiddenWeight = Expr.var "b" [| 6; 2 |]
                                InputBias = None
                                HiddenBias = None
                            }
                            (Expr.var "x" [| 1; 3 |])
                            { Hidden = Expr.var "h" [| 1; 2 |]; Cell = None }
                        |> ignore)
                Expect.stringContains e.Message "Recurrent.step: a GRU cell needs weight_ih [3 x hidden; inputs]" "weights message"
                throws<ArgumentException>(fun () -> GRU(0, 4) |> ignore) |> ignore
        ]
