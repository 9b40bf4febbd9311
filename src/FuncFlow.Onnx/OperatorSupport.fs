namespace FuncFlow.Onnx

open System
open System.Collections.Generic
open FuncFlow
open FuncFlow.Data
open global.Onnx

/// What the operators share: values of an input's element type, dtype conversions of known values, axes, the
/// elementwise operators' common forms, windows' pads, and the bound on values computed while importing.
module internal OperatorSupport =
    /// A computed value of the element type of `like`.
    let like (v: OnnxValue) (e: Expr) = { Expr = e; ElemType = v.ElemType; Known = None }

    /// A value as an expression of the given dtype: a known value is converted, a computed one must match.
    let asDType (n: OnnxNode) (dtype: DType) (v: OnnxValue) =
        if v.Expr.DType = dtype then
            v.Expr
        else
            match v.Known with
            | Some t -> Expr.constant (Tensor.cast dtype t)
            | None ->
                n.Unsupported(
                    sprintf "an operand is %s and another %s; FuncFlow computes a graph in one dtype" v.Expr.DType.Name dtype.Name
                )

    let one (v: OnnxValue) = [ v ]

    /// The most elements a value computed while importing may have: a small file cannot make the import allocate
    /// more (a constant of a declared shape larger than this is left to evaluation or refused).
    let knownLimit = 1 <<< 24

    /// Refuses, before allocating, a constant of `shape` built at import time beyond knownLimit.
    let bounded (n: OnnxNode) (what: string) (shape: int[]) =
        let count = shape |> Array.fold (fun acc d -> acc * int64 (max d 0)) 1L
        if count > int64 knownLimit then
            n.Unsupported(
                sprintf
                    "%s would be a constant of %d elements (shape %s) built while importing, more than %d"
                    what
                    count
                    (Shape.show shape)
                    knownLimit
            )

    let axis (n: OnnxNode) (rank: int) (a: int) =
        let r = if a < 0 then a + rank else a
        if r < 0 || r >= rank then n.Fail(sprintf "axis %d is out of range for rank %d" a rank)
        r

    /// Fails unless x has at least `rank` axes (an [N; C; ...] input, a sequence).
    let atLeast (n: OnnxNode) (rank: int) (x: Expr) =
        if x.Rank < rank then
            n.Fail(sprintf "expects an input of rank %d or more, got shape %s" rank (Shape.show x.Shape))

    let unary (f: Expr -> Expr) (n: OnnxNode) = let x = n.Input 0 in one (like x (f x.Expr))

    // Binary operations broadcast (NumPy rules, as ONNX's since opset 7); Pow's exponent may have another type.
    let binary (f: Expr -> Expr -> Expr) (n: OnnxNode) =
        let a, b = n.Input 0, n.Input 1
        one (like a (f a.Expr (asDType n a.Expr.DType b)))

    // Max, Min, Sum, Mean: any number of inputs that broadcast together.
    let variadic (f: Expr -> Expr -> Expr) (n: OnnxNode) =
        match n.All with
        | [] -> n.Fail "needs at least one input"
        | first :: rest -> one (like first (rest |> List.fold (fun acc v -> f acc (asDType n first.Expr.DType v)) first.Expr))

    let scalar (x: Expr) (v: float) = Expr.scalarLike x v

    // Where x > threshold: 1, else 0 (Step is 1 where its operand is positive).
    let above (threshold: float) (x: Expr) = Expr.step (x - threshold)

    let reciprocal (x: Expr) = scalar x 1.0 / x

    /// The axes of a reduction or normalisation, normalised and sorted.
    let axesOf (n: OnnxNode) (rank: int) (axes: int[]) =
        let normalised = axes |> Array.map (axis n rank) |> Array.sort
        if Array.distinct normalised <> normalised then
            n.Fail(sprintf "axes [%s] repeat an axis" (String.Join(", ", axes)))
        normalised

    /// x reduced over the given axes with a per-axis reduction that keeps the axis; the axes dropped unless keep.
    let reduceOver (step: int -> Expr -> Expr) (axes: int[]) (keep: bool) (x: Expr) =
        let kept = Array.foldBack step axes x
        if keep then
            kept
        else
            kept
            |> Expr.reshape (
                x.Shape
                |> Array.indexed
                |> Array.filter (fun (i, _) -> not (Array.contains i axes))
                |> Array.map snd
            )

    let sumStep a x = Expr.sumAxisKeep a x
    let maxStep a x = Expr.maxAxisKeep a x

    /// ONNX's pads/auto_pad for the spatial axes of an [N; C; spatial...] input: (begin, end) per axis.
    let spatialPads (n: OnnxNode) (size: int[]) (kernel: int[]) (strides: int[]) (dilations: int[]) =
        let k = size.Length
        match n.String("auto_pad", "NOTSET") with
        | "NOTSET" ->
            let pads = n.Ints "pads" |> Option.defaultValue (Array.zeroCreate (2 * k))
            if pads.Length <> 2 * k then
                n.Fail(sprintf "pads has %d entries, expected %d (begin and end of %d spatial axes)" pads.Length (2 * k) k)
            if pads |> Array.exists (fun p -> p < 0) then
                n.Fail(sprintf "pads [%s] must be non-negative" (String.Join(", ", pads)))
            Array.init k (fun i -> pads[i], pads[i + k])
        | "VALID" -> Array.create k (0, 0)
        | "SAME_UPPER"
        | "SAME_LOWER" as mode ->
            Array.init k (fun i ->
                let out = (size[i] + strides[i] - 1) / strides[i]
                let total = max 0 ((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size[i])
                let small = total / 2
                if mode = "SAME_UPPER" then small, total - small else total - small, small)
        | other -> n.Fail(sprintf "auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID" other)

    /// A window's kernel, strides and dilations over k spatial axes, checked.
    let windowOf (n: OnnxNode) (k: int) (kernel: int[] option) =
        let kernel =
            match kernel with
            | Some ks -> ks
            | None ->
                n.Ints "kernel_shape"
                |> Option.defaultWith (fun () -> n.Fail "the attribute kernel_shape is required")
        let strides = n.Ints "strides" |> Option.defaultValue (Array.create k 1)
        let dilations = n.Ints "dilations" |> Option.defaultValue (Array.create k 1)
        for name, values in [ "kernel_shape", kernel; "strides", strides; "dilations", dilations ] do
            if values.Length <> k || values |> Array.exists (fun v -> v < 1) then
                n.Fail(sprintf "%s [%s] must hold %d positive entries (one per spatial axis)" name (String.Join(", ", values)) k)
        kernel, strides, dilations

    // (x - mean) / sqrt(variance + eps) over the given axes (population variance).
    let standardise (axes: int list) (eps: float) (x: Expr) =
        let mean = Expr.meanAxes axes true x
        let centred = x - mean
        mean, centred, Expr.meanAxes axes true (centred * centred) + eps

    let constantOf (t: Tensor) (elemType: int) = { Expr = Expr.constant t; ElemType = elemType; Known = Some t }
