/// Every elementwise operation at the edges of float64 and float32 (signed zeros, subnormals, overflow
/// thresholds, the largest finite values, infinities, NaN) against PyTorch (reference/extremes.json, written
/// by reference/make_reference.py): forward values, and gradients for a cotangent of ones wherever
/// PyTorch's are finite. Each operation runs on one vector of all the points (TensorPrimitives' vector
/// paths), through one-shot evaluation and a compiled plan, and on each point as a scalar (the scalar paths).
module FuncFlow.Tests.ExtremeValueTests

open System
open FuncFlow
open FuncFlow.NN
open FuncFlow.Tests.Support
open FuncFlow.Tests.TorchReference
open Expecto

let private extremes = lazy (load "extremes.json")

let private key (dtype: DType) =
    match dtype with
    | Float64 -> "float64"
    | Float32 -> "float32"

/// Relative tolerance on values: a few units in the last place, for transcendental functions computed by
/// different libraries (TensorPrimitives, PyTorch's Sleef).
let private valueTolerance (dtype: DType) =
    match dtype with
    | Float64 -> 1e-15
    | Float32 -> 5e-7

/// Absolute tolerance: two units of the smallest subnormal, whose results carry only a few significant bits,
/// so that libraries rounding a subnormal result differently by one unit agree.
let private subnormalTolerance (dtype: DType) =
    match dtype with
    | Float64 -> 2.0 * Double.Epsilon
    | Float32 -> 2.0 * float Single.Epsilon

/// Absolute tolerance on gradients: the smallest normal number. A gradient below it is built from subnormal
/// intermediates (silu's at -100 in float32 multiplies sigmoid(-100), 4e-44, by 101), which carry only a few
/// significant bits in any library.
let private gradientFloor (dtype: DType) =
    match dtype with
    | Float64 -> 2.2250738585072014e-308
    | Float32 -> float 1.17549435e-38f

/// Relative tolerance on gradients: ten times looser, since a gradient like tanh's 1 - y^2 magnifies the
/// value's last-place error (27-fold at x = 2).
let private gradientTolerance (dtype: DType) = 10.0 * valueTolerance dtype

/// f's value and its gradients for a cotangent of ones with respect to each input.
let private withGradients (f: Expr list -> Expr) (vars: Expr list) : Expr list =
    let y = f vars
    let grads = Grad.vjp (Expr.onesLike y) vars y
    y :: (vars |> List.map (fun v -> grads[v]))

/// [value; gradient per input] of f over vectors of points, by each evaluation path: one-shot evaluation
/// and a plan over the whole vectors, and one-shot evaluation of each element as a rank-0 scalar.
let private computeAll (dtype: DType) (f: Expr list -> Expr) (inputs: float[] list) : (string * float[] list) list =
    let n = inputs.Head.Length
    let names = inputs |> List.mapi (fun i _ -> sprintf "x%d" i)
    let vectors = names |> List.map (fun name -> Expr.varOf dtype name [| n |])
    let outputs = withGradients f vectors
    let env = Eval.bindings (List.map2 (fun name values -> name, tensor dtype [| n |] values) names inputs)
    let arrays (ts: Tensor seq) = ts |> Seq.map (fun t -> t.ToArray()) |> List.ofSeq
    let scalars = names |> List.map (fun name -> Expr.varOf dtype name [||])
    let scalarOutputs = withGradients f scalars
    let perElement =
        [
            for i in 0 .. n - 1 ->
                let env =
                    Eval.bindings (List.map2 (fun name (values: float[]) -> name, tensor dtype [||] [| values[i] |]) names inputs)
                Eval.many env scalarOutputs |> List.map Tensor.item
        ]
    [
        "eval", arrays (Eval.many env outputs)
        "plan", arrays (Plan.compile outputs |> Plan.run env)
        "scalar", List.init outputs.Length (fun k -> perElement |> List.map (fun values -> values[k]) |> Array.ofList)
    ]

/// Compares an operation's values and gradients with PyTorch's record {output, grad | gradA, gradB}.
/// Gradients are compared where PyTorch's is finite and no input is NaN: elsewhere any value is a convention
/// (at NaN, PyTorch's relu passes the gradient and its abs gives 0; FuncFlow's give 0 and NaN).
let private compare
    (dtype: DType)
    (what: string)
    (record: Text.Json.JsonElement)
    (inputs: float[] list)
    (results: (string * float[] list) list)
    =
    let describe i = inputs |> List.map (fun x -> sprintf "%.9g" x[i]) |> String.concat ", " |> sprintf "(%s)"
    let expectedOutput = numbers (field "output" record)
    let gradKeys = if inputs.Length = 1 then [ "grad" ] else [ "gradA"; "gradB" ]
    [
        for path, values in results do
            let label = sprintf "%s %s (%s)" what (key dtype) path
            yield!
                mismatchesWhere
                    (fun _ -> true)
                    describe
                    (valueTolerance dtype)
                    (subnormalTolerance dtype)
                    (label + " value")
                    expectedOutput
                    values.Head
            for gradKey, actual in List.zip gradKeys values.Tail do
                match record.TryGetProperty gradKey with
                | true, g ->
                    let expected = numbers g
                    let comparable i = Double.IsFinite expected[i] && inputs |> List.forall (fun x -> not (Double.IsNaN x[i]))
                    yield!
                        mismatchesWhere
                            comparable
                            describe
                            (gradientTolerance dtype)
                            (gradientFloor dtype)
                            (sprintf "%s %s" label gradKey)
                            expected
                            actual
                | _ ->
                    // PyTorch has no gradient here (equal): FuncFlow's must be zero.
                    yield!
                        mismatchesWhere
                            (fun _ -> true)
                            describe
                            0.0
                            0.0
                            (sprintf "%s %s" label gradKey)
                            (Array.zeroCreate actual.Length)
                            actual
    ]

let internal unaryAtExtremes (dtype: DType) =
    let data = field (key dtype) extremes.Value
    let points = numbers (field "unaryPoints" data)
    [
        for name, op in unaryOps do
            yield! compare dtype name (field name (field "unary" data)) [ points ] (computeAll dtype (fun xs -> op xs.Head) [ points ])
    ]

let internal powScalarAtExtremes (dtype: DType) =
    let data = field (key dtype) extremes.Value
    let points = numbers (field "unaryPoints" data)
    [
        for p in (field "powScalar" data).EnumerateObject() do
            let exponent = Double.Parse(p.Name, Globalization.CultureInfo.InvariantCulture)
            yield!
                compare
                    dtype
                    (sprintf "powScalar %s" p.Name)
                    p.Value
                    [ points ]
                    (computeAll dtype (fun xs -> Expr.powScalar exponent xs.Head) [ points ])
    ]

let internal binaryAtExtremes (dtype: DType) =
    let data = field (key dtype) extremes.Value
    let points = numbers (field "binaryPoints" data)
    // Every pair: a[i * n + j] = points[i], b[i * n + j] = points[j], as the script lays them out.
    let a =
        [|
            for x in points do
                for _ in points -> x
        |]
    let b =
        [|
            for _ in points do
                for y in points -> y
        |]
    [
        for name, op in binaryOps do
            yield! compare dtype name (field name (field "binary" data)) [ a; b ] (computeAll dtype (fun xs -> op xs[0] xs[1]) [ a; b ])
    ]


/// Binary cross-entropy per (p, t) pair against PyTorch's (reduction "none"), through evaluation and a plan.
let internal binaryCrossEntropyAtEdges (dtype: DType) =
    let data = field "binaryCrossEntropy" (field (key dtype) extremes.Value)
    let ps, ts = numbers (field "p" data), numbers (field "target" data)
    let losses, grads = numbers (field "loss" data), numbers (field "grad" data)
    let p, t = Expr.varOf dtype "p" [| 1 |], Expr.varOf dtype "t" [| 1 |]
    let loss = Losses.binaryCrossEntropy p t
    let g = Grad.wrt [ p; t ] loss
    let outputs = [ loss; g[p]; g[t] ]
    let plan = Plan.compile outputs
    let largest =
        match dtype with
        | Float64 -> Double.MaxValue
        | Float32 -> float Single.MaxValue
    [
        for i in 0 .. ps.Length - 1 do
            let env = Eval.bindings [ "p", tensor dtype [| 1 |] [| ps[i] |]; "t", tensor dtype [| 1 |] [| ts[i] |] ]
            for path, values in [ "eval", Eval.many env outputs; "plan", Plan.run env plan ] do
                let values = values |> List.map Tensor.item |> Array.ofList
                let what = sprintf "binaryCrossEntropy %s (%s) p = %g, t = %g:" (key dtype) path ps[i] ts[i]
                if not (matches (valueTolerance dtype) 0.0 losses[i] values[0]) then
                    sprintf "%s loss %.17g, PyTorch's %.17g" what values[0] losses[i]
                // The one documented infinity: log p is not clamped but its derivative t / p exceeds the dtype.
                let beyondRange = ps[i] > 0.0 && log ps[i] > -100.0 && ts[i] / ps[i] > largest
                if beyondRange && values[1] <> -infinity then
                    sprintf "%s gradient %g, expected -infinity (t / p > MaxValue)" what values[1]
                if not beyondRange && not (Double.IsFinite values[1] && Double.IsFinite values[2]) then
                    sprintf "%s gradients %g (p) and %g (t) are not finite" what values[1] values[2]
                // PyTorch's gradient divides by max(p (1-p), 1e-12): where that and neither clamp is active it is ours.
                let unclamped = ps[i] * (1.0 - ps[i]) >= 1e-12 && log ps[i] > -100.0 && log (1.0 - ps[i]) > -100.0
                if unclamped && not (matches (gradientTolerance dtype) 0.0 grads[i] values[1]) then
                    sprintf "%s gradient %.17g, PyTorch's %.17g" what values[1] grads[i]
    ]

[<Tests>]
let tests =
    moduleTests
        "ExtremeValueTests"
        [
            testCase "unary operations match PyTorch at the extremes of float64"
            <| fun () -> assertNone "unary float64" (unaryAtExtremes Float64)
            testCase "unary operations match PyTorch at the extremes of float32"
            <| fun () -> assertNone "unary float32" (unaryAtExtremes Float32)
            testCase "powScalar matches PyTorch at the extremes of float64"
            <| fun () -> assertNone "powScalar float64" (powScalarAtExtremes Float64)
            testCase "powScalar matches PyTorch at the extremes of float32"
            <| fun () -> assertNone "powScalar float32" (powScalarAtExtremes Float32)
            testCase "binary operations match PyTorch at the extremes of float64"
            <| fun () -> assertNone "binary float64" (binaryAtExtremes Float64)
            testCase "binary operations match PyTorch at the extremes of float32"
            <| fun () -> assertNone "binary float32" (binaryAtExtremes Float32)
            testCase "pow's masked gradients pass gradcheck and gradgradcheck at generic points"
            <| fun () ->
                let a, b = Expr.var "a" [| 2; 3 |], Expr.var "b" [| 2; 3 |]
                let aValue = Tensor.create [| 2; 3 |] [| 0.3; 0.8; 1.2; 0.45; 1.9; 1.7 |]
                let bValue = Tensor.create [| 2; 3 |] [| -1.7; -0.4; 0.6; 1.3; 2.0; -2.5 |]
                gradcheck [ a, aValue; b, bValue ] (Expr.pow a b)
                gradgradcheck [ a, aValue; b, bValue ] (Expr.pow a b)
                for p in [ 3.0; 0.5; -0.5; -2.5 ] do
                    gradgradcheck [ a, aValue ] (Expr.powScalar p a)
            testCase "second derivatives of a ** b at b = 0 are 0, even at a = 0"
            <| fun () ->
                // a^0 = 1 for every a, so every derivative in a is 0; the first gradient's mask must not leave a
                // 0 * infinity for the second.
                let a, b = Expr.var "a" [| 3 |], Expr.var "b" [| 3 |]
                let f = Expr.sum (Expr.pow a b)
                let second = Grad.grad a (Expr.sum (Grad.grad a f))
                let env = bind [ a, Tensor.ofArray [| 0.0; 2.0; -3.0 |]; b, Tensor.zeros Float64 [| 3 |] ]
                Expect.equal ((Eval.evaluate env second).ToArray()) [| 0.0; 0.0; 0.0 |] "d2(a^b)/da2 at b = 0"
                let powZero = Grad.grad a (Expr.sum (Expr.powScalar 0.0 a))
                Expect.equal ((Eval.evaluate env powZero).ToArray()) [| 0.0; 0.0; 0.0 |] "d(a^0)/da"
            testCase "binaryCrossEntropy matches PyTorch at probabilities 0 and 1 in float64, with finite gradients"
            <| fun () -> assertNone "binaryCrossEntropy float64" (binaryCrossEntropyAtEdges Float64)
            testCase "binaryCrossEntropy matches PyTorch at probabilities 0 and 1 in float32, with finite gradients"
            <| fun () -> assertNone "binaryCrossEntropy float32" (binaryCrossEntropyAtEdges Float32)
            testCase "tanh computed in place matches PyTorch"
            <| fun () ->
                // The kernel's in-place path (the input is overwritten as it goes) runs element by element.
                for dtype in [ Float64; Float32 ] do
                    let data = field (key dtype) extremes.Value
                    let expected = numbers (field "output" (field "tanh" (field "unary" data)))
                    let points = numbers (field "unaryPoints" data)
                    let actual =
                        match dtype with
                        | Float64 ->
                            let a = Array.copy points
                            Kernels<float>.Tanh(ReadOnlySpan a, Span a)
                            a
                        | Float32 ->
                            let a = Array.map float32 points
                            Kernels<float32>.Tanh(ReadOnlySpan a, Span a)
                            Array.map float a
                    assertNone
                        "tanh in place"
                        (mismatches (valueTolerance dtype) 0.0 (sprintf "tanh %s in place" (key dtype)) expected actual)
        ]
