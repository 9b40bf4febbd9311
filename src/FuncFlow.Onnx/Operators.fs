namespace FuncFlow.Onnx

open System
open System.Collections.Generic
open FuncFlow
open FuncFlow.Data
open global.Onnx

/// A value of a graph being imported: its expression, its ONNX element type, and its value when it is known at
/// import time (constants, integer initializers, shapes), from which shape-like inputs such as Reshape's shape are
/// read. Integers are float64 expressions (exact below 2^53): FuncFlow computes in floats.
type internal OnnxValue = { Expr: Expr; ElemType: int; Known: Tensor option }

/// ONNX's element types beyond OnnxTensor's float codes.
module internal ElemType =
    let int64 = int TensorProto.Types.DataType.Int64
    let bool = int TensorProto.Types.DataType.Bool

    /// Integer and boolean types: values FuncFlow holds only as import-time constants.
    let isExact (code: int) = (OnnxTensor.exactWidth code).IsSome

/// One node being imported: its attributes and inputs, read with errors that name the node.
/// `read` gives a TensorProto attribute's values and element type (Constant's value), resolving external data;
/// `parameter` a float initializer's value by its variable, for inputs that must be known (Resize's scales).
type internal OnnxNode
    (
        proto: NodeProto,
        label: string,
        inputs: OnnxValue option[],
        opset: int64,
        read: TensorProto -> Tensor * int,
        parameter: Expr -> Tensor option
    ) =
    let attributes = proto.Attribute |> Seq.map (fun a -> a.Name, a) |> dict

    /// The node as messages name it, e.g. "model.onnx: node 'conv1' (#3, Conv)".
    member _.OpType = proto.OpType
    /// The version of the default ONNX operator set the model imports.
    member _.Opset = opset
    member _.InputCount = inputs.Length
    /// How many outputs the node names (an empty name is an output not asked for).
    member _.OutputCount = proto.Output.Count
    member _.Wants(i: int) = i < proto.Output.Count && proto.Output[i] <> ""

    /// An error in the file: the node does not follow ONNX's definition of its operator.
    member _.Fail(message: string) : 'a = raise (DataFormatException(sprintf "%s: %s" label message))

    /// An operator's feature that FuncFlow does not import.
    member _.Unsupported(message: string) : 'a = raise (NotSupportedException(sprintf "%s: %s" label message))

    /// An optional input (None where it is absent or named "").
    member _.Optional(i: int) = if i < inputs.Length then inputs[i] else None

    /// A required input.
    member n.Input(i: int) =
        match n.Optional i with
        | Some v -> v
        | None -> n.Fail(sprintf "input %d is required but absent (the node has %d inputs)" i inputs.Length)

    /// All inputs, each required.
    member n.All = List.init inputs.Length n.Input

    member n.Attribute(name: string, expected: AttributeProto.Types.AttributeType) =
        match attributes.TryGetValue name with
        | true, a ->
            if a.Type <> expected then
                n.Fail(sprintf "attribute '%s' has type %O, expected %O" name a.Type expected)
            Some a
        | _ -> None

    member n.HasAttribute(name: string) = attributes.ContainsKey name

    member n.Int(name: string, fallback: int64) =
        match n.Attribute(name, AttributeProto.Types.AttributeType.Int) with
        | Some a -> a.I
        | None -> fallback

    member n.Float(name: string, fallback: float) =
        match n.Attribute(name, AttributeProto.Types.AttributeType.Float) with
        | Some a -> float a.F
        | None -> fallback

    member n.String(name: string, fallback: string) =
        match n.Attribute(name, AttributeProto.Types.AttributeType.String) with
        | Some a -> a.S.ToStringUtf8()
        | None -> fallback

    member n.Int64s(name: string) =
        n.Attribute(name, AttributeProto.Types.AttributeType.Ints)
        |> Option.map (fun a -> Array.ofSeq a.Ints)

    /// An integers attribute as ints; huge values (INT64_MAX as "to the end") are clamped to the int range.
    member n.Ints(name: string) =
        n.Int64s name
        |> Option.map (Array.map (fun v -> int (Math.Clamp(v, int64 Int32.MinValue, int64 Int32.MaxValue))))

    member n.Floats(name: string) =
        n.Attribute(name, AttributeProto.Types.AttributeType.Floats)
        |> Option.map (fun a -> a.Floats |> Seq.map float |> Array.ofSeq)

    /// A tensor attribute's values and element type.
    member n.Tensor(name: string) = n.Attribute(name, AttributeProto.Types.AttributeType.Tensor) |> Option.map (fun a -> read a.T)

    /// An attribute that is a count or an axis, as an int.
    member n.Small(name: string, fallback: int) =
        let v = n.Int(name, int64 fallback)
        if v < int64 Int32.MinValue || v > int64 Int32.MaxValue then
            n.Fail(sprintf "attribute '%s' = %d is out of range" name v)
        int v

    /// An input whose value must be known at import time (an initializer, a Constant node or a value computed
    /// from those), e.g. Reshape's shape.
    member n.KnownInput(i: int) : Tensor =
        let v = n.Input i
        match v.Known |> Option.orElse (parameter v.Expr) with
        | Some t -> t
        | None ->
            n.Unsupported(
                sprintf
                    "input %d must be known when the model is imported (an initializer, a Constant node or a value computed from them such as a shape); FuncFlow builds fixed-shape graphs"
                    i
            )

    /// A known input's values as ints; huge values (INT64_MAX as "to the end") are clamped to the int range.
    member n.KnownInts(i: int) : int[] =
        n.KnownInput i
        |> Tensor.toArray
        |> Array.map (fun v ->
            if Double.IsNaN v then
                n.Fail(sprintf "input %d holds NaN, expected integers" i)
            else
                int (Math.Clamp(v, float Int32.MinValue, float Int32.MaxValue)))

    /// Integers from an attribute or, from the given opset on, an optional input (axes moved to inputs in opset 13).
    member n.IntsFrom(name: string, input: int, inputSince: int64) : int[] option =
        if n.Opset >= inputSince then
            n.Optional input |> Option.map (fun _ -> n.KnownInts input)
        else
            n.Ints name

/// The operator table: one function per ONNX operator type from the node (its attributes and inputs) to its
/// outputs' values. Shapes come from the inputs' expressions, so no ONNX shape inference is needed.
module internal Operators =
    /// A computed value of the element type of `like`.
    let private like (v: OnnxValue) (e: Expr) = { Expr = e; ElemType = v.ElemType; Known = None }

    /// A value as an expression of the given dtype: a known value is converted, a computed one must match.
    let private asDType (n: OnnxNode) (dtype: DType) (v: OnnxValue) =
        if v.Expr.DType = dtype then
            v.Expr
        else
            match v.Known with
            | Some t -> Expr.constant (Tensor.cast dtype t)
            | None ->
                n.Unsupported(
                    sprintf "an operand is %s and another %s; FuncFlow computes a graph in one dtype" v.Expr.DType.Name dtype.Name
                )

    let private one (v: OnnxValue) = [ v ]

    /// The most elements a value computed while importing may have: a small file cannot make the import allocate
    /// more (a constant of a declared shape larger than this is left to evaluation or refused).
    let knownLimit = 1 <<< 24

    /// Refuses, before allocating, a constant of `shape` built at import time beyond knownLimit.
    let private bounded (n: OnnxNode) (what: string) (shape: int[]) =
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

    let private axis (n: OnnxNode) (rank: int) (a: int) =
        let r = if a < 0 then a + rank else a
        if r < 0 || r >= rank then n.Fail(sprintf "axis %d is out of range for rank %d" a rank)
        r

    /// Fails unless x has at least `rank` axes (an [N; C; ...] input, a sequence).
    let private atLeast (n: OnnxNode) (rank: int) (x: Expr) =
        if x.Rank < rank then
            n.Fail(sprintf "expects an input of rank %d or more, got shape %s" rank (Shape.show x.Shape))

    let private unary (f: Expr -> Expr) (n: OnnxNode) = let x = n.Input 0 in one (like x (f x.Expr))

    // Binary operations broadcast (NumPy rules, as ONNX's since opset 7); Pow's exponent may have another type.
    let private binary (f: Expr -> Expr -> Expr) (n: OnnxNode) =
        let a, b = n.Input 0, n.Input 1
        one (like a (f a.Expr (asDType n a.Expr.DType b)))

    // Max, Min, Sum, Mean: any number of inputs that broadcast together.
    let private variadic (f: Expr -> Expr -> Expr) (n: OnnxNode) =
        match n.All with
        | [] -> n.Fail "needs at least one input"
        | first :: rest -> one (like first (rest |> List.fold (fun acc v -> f acc (asDType n first.Expr.DType v)) first.Expr))

    let private scalar (x: Expr) (v: float) = Expr.scalarLike x v

    // Where x > threshold: 1, else 0 (Step is 1 where its operand is positive).
    let private above (threshold: float) (x: Expr) = Expr.step (x - threshold)

    let private reciprocal (x: Expr) = scalar x 1.0 / x

    /// The axes of a reduction or normalisation, normalised and sorted.
    let private axesOf (n: OnnxNode) (rank: int) (axes: int[]) =
        let normalised = axes |> Array.map (axis n rank) |> Array.sort
        if Array.distinct normalised <> normalised then
            n.Fail(sprintf "axes [%s] repeat an axis" (String.Join(", ", axes)))
        normalised

    /// x reduced over the given axes with a per-axis reduction that keeps the axis; the axes dropped unless keep.
    let private reduceOver (step: int -> Expr -> Expr) (axes: int[]) (keep: bool) (x: Expr) =
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

    // ReduceX: axes from an attribute (an input for ReduceSum from opset 13); none means all axes, unless
    // noop_with_empty_axes. `pre` and `post` make L1, L2, LogSum and SumSquare from the plain reductions.
    let private reduction (pre: Expr -> Expr) (step: int -> Expr -> Expr) (post: Expr -> Expr) (inputSince: int64) (n: OnnxNode) =
        let x = n.Input 0
        let keep = n.Int("keepdims", 1L) <> 0L
        let rank = x.Expr.Rank
        match n.IntsFrom("axes", 1, inputSince) with
        | Some [||]
        | None when n.Int("noop_with_empty_axes", 0L) <> 0L -> one x
        | given ->
            let axes =
                match given with
                | Some a when a.Length > 0 -> axesOf n rank a
                | _ -> Array.init rank id
            one (like x (pre x.Expr |> reduceOver step axes keep |> post))

    let private sumStep a x = Expr.sumAxisKeep a x
    let private maxStep a x = Expr.maxAxisKeep a x

    /// ONNX's pads/auto_pad for the spatial axes of an [N; C; spatial...] input: (begin, end) per axis.
    let private spatialPads (n: OnnxNode) (size: int[]) (kernel: int[]) (strides: int[]) (dilations: int[]) =
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
    let private windowOf (n: OnnxNode) (k: int) (kernel: int[] option) =
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

    /// A pooling node's window over the spatial axes: kernel, strides, dilations, (begin, end) pads, and per axis
    /// the output's length and the room that ceil mode adds at the end.
    type private PoolWindow = { Kernel: int[]; Strides: int[]; Dilations: int[]; Pads: (int * int)[]; Out: int[]; Extra: int[] }

    let private poolWindow (n: OnnxNode) (x: Expr) =
        let k = x.Rank - 2
        if k < 1 then
            n.Fail(sprintf "expects an input [N; C; spatial...], got shape %s" (Shape.show x.Shape))
        let size = x.Shape[2..]
        let kernel, strides, dilations = windowOf n k None
        let pads = spatialPads n size kernel strides dilations
        let ceilMode = n.Int("ceil_mode", 0L) <> 0L
        let geometry =
            Array.init k (fun i ->
                let b, e = pads[i]
                let extent = (kernel[i] - 1) * dilations[i] + 1
                let span = size[i] + b + e - extent
                if span < 0 then
                    n.Fail(
                        sprintf
                            "along spatial axis %d the window's extent %d is larger than the padded input %d"
                            i
                            extent
                            (size[i] + b + e)
                    )
                let out = if ceilMode then (span + strides[i] - 1) / strides[i] + 1 else span / strides[i] + 1
                // PyTorch's and ONNX's rule: the last window starts inside the input or its begin padding.
                let out = if ceilMode && (out - 1) * strides[i] >= size[i] + b then out - 1 else out
                out, max 0 ((out - 1) * strides[i] + extent - (size[i] + b + e)))
        {
            Kernel = kernel
            Strides = strides
            Dilations = dilations
            Pads = pads
            Out = Array.map fst geometry
            Extra = Array.map snd geometry
        }

    /// PyTorch's 2-D pooling spec when the window is one (dilation 1, the same padding on both sides and at most
    /// half the kernel, no room added by ceil mode): then FuncFlow's own max and average pooling compute it.
    let private plain2d (w: PoolWindow) =
        if
            w.Kernel.Length = 2
            && Array.forall ((=) 1) w.Dilations
            && Array.forall2 (fun (b, e) k -> b = e && 2 * b <= k) w.Pads w.Kernel
            && Array.forall ((=) 0) w.Extra
        then
            Some
                {
                    PoolSpec.Kernel = List.ofArray w.Kernel
                    Stride = List.ofArray w.Strides
                    Padding = w.Pads |> Array.map fst |> List.ofArray
                }
        else
            None

    /// Pooling's windows as slices, for the windows plain2d does not take: for each kernel tap, the strided slice of
    /// the padded input that the tap reads in every window, so that a pooling is an elementwise fold over the taps
    /// for any number of spatial axes, any dilation and ceil mode. Explicit pads hold padValue; the room that ceil
    /// mode adds at the end holds extraValue.
    let private windowTaps (n: OnnxNode) (w: PoolWindow) (padValue: float) (extraValue: float) (x: Expr) =
        let k = w.Kernel.Length
        let taps = w.Kernel |> Array.fold (fun acc t -> acc * int64 t) 1L
        if taps > 65536L then
            n.Unsupported(sprintf "a window of %d taps (kernel [%s]) is more than 65536" taps (String.Join(", ", w.Kernel)))
        let padded =
            Array.fold
                (fun (y: Expr) i ->
                    let b, e = w.Pads[i]
                    y |> Expr.padWith padValue (2 + i) b e |> Expr.padWith extraValue (2 + i) 0 w.Extra[i])
                x
                [| 0 .. k - 1 |]
        let rec offsets i : int list list =
            if i = k then
                [ [] ]
            else
                [
                    for t in 0 .. w.Kernel[i] - 1 do
                        for rest in offsets (i + 1) -> t :: rest
                ]
        offsets 0
        |> List.map (fun taps ->
            taps
            |> List.indexed
            |> List.fold
                (fun (y: Expr) (i, t) ->
                    let start = t * w.Dilations[i]
                    Expr.stridedSlice (2 + i) (Some start) (Some(start + (w.Out[i] - 1) * w.Strides[i] + 1)) w.Strides[i] y)
                padded)

    let private maxPool (n: OnnxNode) =
        if n.Wants 1 then n.Unsupported "the Indices output (int64 positions of the maxima) is not imported"
        if n.Int("storage_order", 0L) <> 0L then
            n.Unsupported "storage_order 1 (column-major indices) is not imported"
        let x = n.Input 0
        let w = poolWindow n x.Expr
        match plain2d w with
        | Some spec -> one (like x (Expr.maxPool2d spec x.Expr))
        | None -> one (like x (windowTaps n w -infinity -infinity x.Expr |> List.reduce Expr.maximum))

    let private averagePool (n: OnnxNode) =
        let x = n.Input 0
        let w = poolWindow n x.Expr
        let includePad = n.Int("count_include_pad", 0L) <> 0L
        match plain2d w with
        | Some spec when includePad || Array.forall (fun (b, _) -> b = 0) w.Pads -> one (like x (Expr.avgPool2d spec x.Expr))
        | _ ->
            let sum = windowTaps n w 0.0 0.0 x.Expr |> Expr.addN
            // How many taps of each window count: the same windows over ones, padded with ones where padding counts.
            let spatial = Array.append [| 1; 1 |] x.Expr.Shape[2..]
            bounded n "the windows' counts" spatial
            let ones = Expr.constant (Tensor.ones x.Expr.DType spatial)
            let count = windowTaps n w (if includePad then 1.0 else 0.0) 0.0 ones |> Expr.addN
            one (like x (sum / Expr.constant (Eval.evaluate (Eval.bindings []) count)))

    let private globalPool (step: int -> Expr -> Expr) (n: OnnxNode) =
        let x = n.Input 0
        one (like x (reduceOver step [| 2 .. x.Expr.Rank - 1 |] true x.Expr))

    let private conv (n: OnnxNode) =
        let x, w = n.Input 0, n.Input 1
        let k = x.Expr.Rank - 2
        if k <> 1 && k <> 2 then
            n.Unsupported(sprintf "%d spatial axes (input shape %s): FuncFlow's convolution has 1 or 2" k (Shape.show x.Expr.Shape))
        if w.Expr.Rank <> k + 2 then
            n.Fail(sprintf "the weight has shape %s, expected rank %d" (Shape.show w.Expr.Shape) (k + 2))
        let kernel, strides, dilations =
            windowOf n k (n.Ints "kernel_shape" |> Option.orElse (Some w.Expr.Shape[2..]))
        if kernel <> w.Expr.Shape[2..] then
            n.Fail(sprintf "kernel_shape [%s] differs from the weight's %s" (String.Join(", ", kernel)) (Shape.show w.Expr.Shape))
        let pads = spatialPads n x.Expr.Shape[2..] kernel strides dilations
        // FuncFlow pads both sides alike; other pads are added to the input first.
        let symmetric = pads |> Array.forall (fun (b, e) -> b = e)
        let input =
            if symmetric then
                x.Expr
            else
                pads |> Array.indexed |> Array.fold (fun y (i, (b, e)) -> Expr.pad (2 + i) b e y) x.Expr
        let spec =
            {
                Stride = List.ofArray strides
                Padding = pads |> Array.map (fun (b, _) -> if symmetric then b else 0) |> List.ofArray
                Dilation = List.ofArray dilations
                Groups = n.Small("group", 1)
            }
        let y = (if k = 1 then Expr.conv1d else Expr.conv2d) spec input (asDType n x.Expr.DType w)
        let y =
            match n.Optional 2 with
            | Some b -> y + Expr.reshape (Array.append [| 1; -1 |] (Array.create k 1)) (asDType n x.Expr.DType b)
            | None -> y
        one (like x y)

    /// The transposed convolution as convolution's adjoint: the weight's transpose times the input gives each
    /// output window's taps as columns, which fold (col2im) sums into the unpadded output; pads then crop it.
    let private convTranspose (n: OnnxNode) =
        let x, w = n.Input 0, n.Input 1
        let k = x.Expr.Rank - 2
        if k <> 1 && k <> 2 then
            n.Unsupported(sprintf "%d spatial axes (input shape %s): FuncFlow's fold has 1 or 2" k (Shape.show x.Expr.Shape))
        let weight = asDType n x.Expr.DType w
        if weight.Rank <> k + 2 then
            n.Fail(sprintf "the weight has shape %s, expected rank %d" (Shape.show weight.Shape) (k + 2))
        let kernel, strides, dilations = windowOf n k (Some weight.Shape[2..])
        let groups = n.Small("group", 1)
        let size = x.Expr.Shape[2..]
        let batch, channels = x.Expr.Shape[0], x.Expr.Shape[1]
        if channels <> weight.Shape[0] || channels % groups <> 0 then
            n.Fail(sprintf "the weight %s does not fit %d input channels in %d groups" (Shape.show weight.Shape) channels groups)
        let outputs = weight.Shape[1] * groups
        let extent i = (kernel[i] - 1) * dilations[i] + 1
        let full = Array.init k (fun i -> strides[i] * (size[i] - 1) + extent i)
        let outputPadding = n.Ints "output_padding" |> Option.defaultValue (Array.zeroCreate k)
        if outputPadding.Length <> k then
            n.Fail(sprintf "output_padding has %d entries, expected %d" outputPadding.Length k)
        match n.Ints "output_shape" with
        | Some shape when shape.Length < k -> n.Fail(sprintf "output_shape has %d entries, expected at least %d" shape.Length k)
        | _ -> ()
        let pads =
            match n.Ints "output_shape", n.String("auto_pad", "NOTSET") with
            | Some shape, mode ->
                let shape = shape[shape.Length - k ..]
                Array.init k (fun i ->
                    let total = full[i] + outputPadding[i] - shape[i]
                    // An output larger than the full one gets zeros at the end.
                    if total < 0 then 0, total
                    elif mode = "SAME_UPPER" then total / 2, total - total / 2
                    else total - total / 2, total / 2)
            | None, ("SAME_UPPER" | "SAME_LOWER" as mode) ->
                Array.init k (fun i ->
                    let total = max 0 (full[i] + outputPadding[i] - size[i] * strides[i])
                    if mode = "SAME_UPPER" then total / 2, total - total / 2 else total - total / 2, total / 2)
            | None, _ -> spatialPads n size kernel strides dilations
        let taps = Shape.size kernel
        let perGroup = channels / groups
        let columns =
            Expr.matmul
                (weight |> Expr.reshape [| groups; perGroup; -1 |] |> Expr.transpose)
                (x.Expr |> Expr.reshape [| batch; groups; perGroup; Shape.size size |])
            |> Expr.reshape [| batch; outputs * taps; Shape.size size |]
        let window =
            {
                Kernel = List.ofArray kernel
                Stride = List.ofArray strides
                Padding = List.replicate k 0
                Dilation = List.ofArray dilations
            }
        let folded = Expr.fold (List.ofArray full) window columns
        let y =
            pads
            |> Array.indexed
            |> Array.fold
                (fun (y: Expr) (i, (b, e)) ->
                    let padded = Expr.pad (2 + i) 0 (outputPadding[i] + max 0 -e) y
                    Expr.slice (2 + i) b (padded.Shape[2 + i] - b - max 0 e) padded)
                folded
        let y =
            match n.Optional 2 with
            | Some b -> y + Expr.reshape (Array.append [| 1; -1 |] (Array.create k 1)) (asDType n x.Expr.DType b)
            | None -> y
        one (like x y)

    /// An activation of ONNX's recurrent operators, by name.
    let private activation (n: OnnxNode) (name: string) : Expr -> Expr =
        match name with
        | "Sigmoid" -> Expr.sigmoid
        | "Tanh" -> Expr.tanh
        | "Relu" -> Expr.relu
        | "Softsign" -> fun x -> x / (Expr.abs x + 1.0)
        | "Softplus" -> Expr.softplus
        | other -> n.Unsupported(sprintf "the recurrent activation %s is not imported (Sigmoid, Tanh, Relu, Softsign, Softplus are)" other)

    /// RNN, GRU and LSTM unrolled over the sequence: per direction, one step of matrix products and gates per time
    /// step (a loop, not recursion), in ONNX's gate orders (GRU z r h, LSTM i o f c).
    let private recurrent (n: OnnxNode) =
        let x = n.Input 0
        let dtype = x.Expr.DType
        let kind = n.OpType
        let gates, defaults =
            match kind with
            | "RNN" -> 1, [ "Tanh" ]
            | "GRU" -> 3, [ "Sigmoid"; "Tanh" ]
            | _ -> 4, [ "Sigmoid"; "Tanh"; "Tanh" ]
        let hidden = n.Small("hidden_size", 0)
        let batchFirst = n.Int("layout", 0L) <> 0L
        let directions =
            match n.String("direction", "forward") with
            | "forward" -> [ false ]
            | "reverse" -> [ true ]
            | "bidirectional" -> [ false; true ]
            | other -> n.Fail(sprintf "direction '%s' is not one of forward, reverse, bidirectional" other)
        if n.HasAttribute "clip" then n.Unsupported "the cell clip is not imported"
        if n.Int("input_forget", 0L) <> 0L then n.Unsupported "input_forget (coupled gates) is not imported"
        if n.HasAttribute "activation_alpha" || n.HasAttribute "activation_beta" then
            n.Unsupported "activations with parameters are not imported"
        let names =
            match n.OpType, n.HasAttribute "activations" with
            | _, false -> List.replicate directions.Length defaults |> List.concat
            | _, true ->
                match n.Attribute("activations", AttributeProto.Types.AttributeType.Strings) with
                | Some a -> a.Strings |> Seq.map (fun b -> b.ToStringUtf8()) |> List.ofSeq
                | None -> []
        if names.Length <> defaults.Length * directions.Length then
            n.Fail(sprintf "activations lists %d functions, expected %d" names.Length (defaults.Length * directions.Length))
        if x.Expr.Rank <> 3 then
            n.Fail(sprintf "expects a sequence of rank 3, got shape %s" (Shape.show x.Expr.Shape))
        let sequence = if batchFirst then Expr.permute [| 1; 0; 2 |] x.Expr else x.Expr
        let steps, batch = sequence.Shape[0], sequence.Shape[1]
        // Unrolled: one step of expressions per time step.
        if steps > 65536 then
            n.Unsupported(sprintf "a sequence of %d steps is more than the 65536 unrolled" steps)
        match n.Optional 4 with
        | Some _ when n.KnownInts 4 |> Array.exists (fun l -> l <> steps) ->
            n.Unsupported "sequence_lens shorter than the sequence (padded batches) are not imported"
        | _ -> ()
        let perDirection (i: int) (input: int) =
            n.Optional input
            |> Option.map (fun v -> asDType n dtype v |> Expr.slice 0 i 1 |> Expr.reshape (Array.tail (v.Expr.Shape)))
        let initial (i: int) (input: int) =
            match n.Optional input with
            | Some v -> asDType n dtype v |> Expr.slice 0 i 1 |> Expr.reshape [| batch; hidden |]
            | None -> Expr.constant (Tensor.zeros dtype [| batch; hidden |])
        let inputs = Array.init steps (fun t -> sequence |> Expr.slice 0 t 1 |> Expr.reshape [| batch; -1 |])
        let runs =
            directions
            |> List.mapi (fun i reverse ->
                let w = perDirection i 1 |> Option.defaultWith (fun () -> n.Fail "W (input 1) is required")
                let r = perDirection i 2 |> Option.defaultWith (fun () -> n.Fail "R (input 2) is required")
                let f = names |> List.skip (i * defaults.Length) |> List.map (activation n)
                let bias = perDirection i 3
                let chunk (e: Expr) (g: int) = Expr.slice 1 (g * hidden) hidden e
                // Input products and input biases of every step at once: they do not depend on the state.
                let inputPart (xt: Expr) =
                    let product = Expr.matmul xt (Expr.transpose w)
                    match bias with
                    | Some b -> product + Expr.slice 0 0 (gates * hidden) b
                    | None -> product
                let recurrentBias = bias |> Option.map (Expr.slice 0 (gates * hidden) (gates * hidden))
                let stateProduct (h: Expr) (g: int) =
                    let product = Expr.matmul h (Expr.transpose (Expr.slice 0 (g * hidden) hidden r))
                    match recurrentBias with
                    | Some b -> product + Expr.slice 0 (g * hidden) hidden b
                    | None -> product
                let peephole = perDirection i 7
                let peep (g: int) (c: Expr) =
                    match peephole with
                    | Some p -> Expr.slice 0 (g * hidden) hidden p * c
                    | None -> scalar c 0.0
                let order = if reverse then Array.init steps (fun t -> steps - 1 - t) else Array.init steps id
                let outputs = Array.zeroCreate<Expr> steps
                let mutable h = initial i 5
                let mutable c = initial i 6
                for t in order do
                    let xs = inputPart inputs[t]
                    match kind with
                    | "RNN" -> h <- f[0](chunk xs 0 + stateProduct h 0)
                    | "GRU" ->
                        let z = f[0](chunk xs 0 + stateProduct h 0)
                        let reset = f[0](chunk xs 1 + stateProduct h 1)
                        let candidate =
                            if n.Int("linear_before_reset", 0L) <> 0L then
                                f[1](chunk xs 2 + reset * stateProduct h 2)
                            else
                                // The recurrent bias is added after the reset gate's product here.
                                let product = Expr.matmul (reset * h) (Expr.transpose (Expr.slice 0 (2 * hidden) hidden r))
                                f[1](chunk xs 2
                                     + (match recurrentBias with
                                        | Some b -> product + Expr.slice 0 (2 * hidden) hidden b
                                        | None -> product))
                        h <- (1.0 - z) * candidate + z * h
                    | _ ->
                        let inputGate = f[0](chunk xs 0 + stateProduct h 0 + peep 0 c)
                        let forget = f[0](chunk xs 2 + stateProduct h 2 + peep 2 c)
                        let cell = f[1](chunk xs 3 + stateProduct h 3)
                        c <- forget * c + inputGate * cell
                        let outputGate = f[0](chunk xs 1 + stateProduct h 1 + peep 1 c)
                        h <- outputGate * f[2] c
                    outputs[t] <- h
                outputs, h, c)
        let stack (states: Expr list) = states |> List.map (Expr.reshape [| 1; batch; hidden |]) |> Expr.concat 0
        let y =
            List.init steps (fun t ->
                runs
                |> List.map (fun (outputs, _, _) -> outputs[t])
                |> stack
                |> Expr.reshape [| 1; directions.Length; batch; hidden |])
            |> Expr.concat 0
        let lastH = runs |> List.map (fun (_, h, _) -> h) |> stack
        let lastC = runs |> List.map (fun (_, _, c) -> c) |> stack
        let y = if batchFirst then Expr.permute [| 2; 0; 1; 3 |] y else y
        let batchMajor (e: Expr) = if batchFirst then Expr.permute [| 1; 0; 2 |] e else e
        [ like x y; like x (batchMajor lastH); like x (batchMajor lastC) ]
        |> List.truncate (if kind = "LSTM" then 3 else 2)

    /// Resize (and the older Upsample) one axis at a time, from the last, as ONNX's reference does: each output
    /// position's source coordinate (coordinate_transformation_mode) picks taps of the input along the axis (1 for
    /// nearest, 2 for linear, 4 for cubic, indices clamped to the edge) that are gathered and weighted. The weights
    /// are known at import time, so the result is gathers and products, differentiable in the input.
    let private resize (n: OnnxNode) =
        let x = n.Input 0
        let shape = x.Expr.Shape
        let rank = shape.Length
        let upsample = n.OpType = "Upsample" || n.Opset < 11L
        let scalesInput, sizesInput = (if upsample then 1 else 2), 3
        let scales, sizes =
            match n.Optional sizesInput with
            | Some _ when not upsample ->
                let sizes = n.KnownInts sizesInput
                Array.map2 (fun o i -> float o / float i) sizes shape, sizes
            | _ ->
                let scales = n.KnownInput scalesInput |> Tensor.toArray
                scales, Array.map2 (fun (s: float) i -> int (Math.Floor(s * float i))) scales shape
        if scales.Length <> rank || sizes.Length <> rank then
            n.Fail(sprintf "scales or sizes need %d entries, one per axis of shape %s" rank (Shape.show shape))
        if
            Array.exists2 (fun (s: float) o -> not (s > 0.0 && Double.IsFinite s) || o < 1) scales sizes
            || Array.contains 0 shape
        then
            n.Fail(
                sprintf
                    "resizes shape %s by scales [%s] to sizes [%s]: expected positive finite scales, sizes of at least 1 and a non-empty input"
                    (Shape.show shape)
                    (String.Join(", ", scales))
                    (String.Join(", ", sizes))
            )
        let mode = n.String("mode", "nearest")
        let coordinates =
            if upsample then "asymmetric" else n.String("coordinate_transformation_mode", "half_pixel")
        let nearest = n.String("nearest_mode", if upsample then "floor" else "round_prefer_floor")
        let a = n.Float("cubic_coeff_a", -0.75)
        let excludeOutside = n.Int("exclude_outside", 0L) <> 0L
        let extrapolation = n.Float("extrapolation_value", 0.0)
        let roi = if coordinates = "tf_crop_and_resize" then Some(n.KnownInput 1 |> Tensor.toArray) else None
        if roi |> Option.exists (fun r -> r.Length <> 2 * rank) then
            n.Fail(sprintf "roi needs %d entries (start and end per axis)" (2 * rank))
        let source (axis: int) (o: int) =
            // ONNX's reference: the resized length is input x scale, not rounded (so with sizes, the size).
            let input, scale = float shape[axis], scales[axis]
            let output = input * scale
            let o = float o
            match coordinates with
            | "half_pixel" -> (o + 0.5) / scale - 0.5
            | "pytorch_half_pixel" -> if output > 1.0 then (o + 0.5) / scale - 0.5 else 0.0
            | "align_corners" -> if output = 1.0 then 0.0 else o * (input - 1.0) / (output - 1.0)
            | "asymmetric" -> o / scale
            | "tf_half_pixel_for_nn" -> (o + 0.5) / scale
            | "tf_crop_and_resize" ->
                let start, stop = roi.Value[axis], roi.Value[axis + rank]
                if output > 1.0 then
                    start * (input - 1.0) + o * (stop - start) * (input - 1.0) / (output - 1.0)
                else
                    0.5 * (start + stop) * (input - 1.0)
            | other -> n.Fail(sprintf "coordinate_transformation_mode '%s' is not one of ONNX's" other)
        // (index, weight) taps of one output position along an axis of length `length`.
        let taps (length: int) (position: float) : (int * float)[] =
            let floor = Math.Floor position
            let ratio = position - floor
            let i0 = int floor
            match mode with
            | "nearest" ->
                let up =
                    ratio > 0.0
                    && (match nearest with
                        | "round_prefer_floor" -> ratio > 0.5
                        | "round_prefer_ceil" -> ratio >= 0.5
                        | "floor" -> false
                        | "ceil" -> true
                        | other -> n.Fail(sprintf "nearest_mode '%s' is not one of ONNX's" other))
                [| (if up then i0 + 1 else i0), 1.0 |]
            | "linear" -> [| i0, 1.0 - ratio; i0 + 1, ratio |]
            | "cubic" ->
                let weight (d: float) =
                    let d = abs d
                    if d <= 1.0 then ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
                    elif d < 2.0 then ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
                    else 0.0
                let raw = [| for t in -1 .. 2 -> i0 + t, weight (ratio - float t) |]
                if excludeOutside then
                    let inside = raw |> Array.map (fun (i, w) -> i, (if i < 0 || i >= length then 0.0 else w))
                    let total = inside |> Array.sumBy snd
                    inside |> Array.map (fun (i, w) -> i, w / total)
                else
                    raw
            | other -> n.Fail(sprintf "mode '%s' is not one of nearest, linear, cubic" other)
            |> Array.map (fun (i, w) -> Math.Clamp(i, 0, length - 1), w)
        let resizeAxis (y: Expr) (axis: int) =
            if sizes[axis] = shape[axis] && scales[axis] = 1.0 && coordinates <> "tf_crop_and_resize" then
                y
            else
                bounded n "the resized axis' positions" [| sizes[axis] |]
                let positions = Array.init sizes[axis] (source axis)
                let perPosition = positions |> Array.map (taps shape[axis])
                let along (values: float[]) =
                    Tensor.create (Array.init rank (fun i -> if i = axis then values.Length else 1)) values
                    |> Tensor.cast y.DType
                let resized =
                    List.init perPosition[0].Length (fun t ->
                        let indices =
                            Expr.constant (
                                Tensor.create [| positions.Length |] (perPosition |> Array.map (fun p -> float (fst p[t])))
                                |> Tensor.cast y.DType
                            )
                        Expr.indexSelect axis indices y
                        * Expr.constant (along (perPosition |> Array.map (fun p -> snd p[t]))))
                    |> Expr.addN
                match roi with
                | Some _ ->
                    // Positions outside the input take the extrapolation value.
                    let inside =
                        positions |> Array.map (fun p -> if p < 0.0 || p > float (shape[axis] - 1) then 0.0 else 1.0)
                    resized * Expr.constant (along inside)
                    + Expr.constant (along (inside |> Array.map (fun i -> (1.0 - i) * extrapolation)))
                | None -> resized
        one (like x (Array.fold resizeAxis x.Expr [| rank - 1 .. -1 .. 0 |]))

    /// Einsum as broadcasting: each operand's repeated letters become diagonals, its axes are permuted into one
    /// shared letter order (output letters first) with length-1 axes for the letters it lacks, the operands are
    /// multiplied, and the letters not in the output are summed away.
    let private einsum (n: OnnxNode) =
        let operands = n.All
        let first = List.head operands
        let dtype = first.Expr.DType
        let equation = n.String("equation", "").Replace(" ", "")
        let terms, explicitOutput =
            match equation.Split "->" with
            | [| lhs; rhs |] -> lhs.Split ',', Some rhs
            | [| lhs |] -> lhs.Split ',', None
            | _ -> n.Fail(sprintf "equation '%s' has more than one ->" equation)
        if terms.Length <> operands.Length then
            n.Fail(sprintf "equation '%s' has %d operands, the node %d" equation terms.Length operands.Length)
        // "..." becomes digits, one per broadcast axis, aligned from the right across operands.
        let ellipsis (term: string) (rank: int) =
            if term.Contains "..." then
                let count = rank - (term.Length - 3)
                if count < 0 || count > 10 then
                    n.Fail(sprintf "term '%s' does not fit an operand of rank %d (at most 10 axes under '...')" term rank)
                term.Replace("...", String(Array.init count (fun i -> char (int '0' + 9 - count + 1 + i))))
            else
                term
        let terms =
            Array.map2 (fun (t: string) (v: OnnxValue) -> ellipsis t v.Expr.Rank) terms (Array.ofList operands)
        for t, v in Array.zip terms (Array.ofList operands) do
            if t.Length <> v.Expr.Rank || not (t |> Seq.forall Char.IsLetterOrDigit) then
                n.Fail(
                    sprintf
                        "equation '%s': term '%s' does not name the %d axes of shape %s"
                        equation
                        t
                        v.Expr.Rank
                        (Shape.show v.Expr.Shape)
                )
        let broadcastLetters =
            terms
            |> Array.collect (fun t -> t.ToCharArray())
            |> Array.filter Char.IsDigit
            |> Array.distinct
            |> Array.sort
        let output =
            match explicitOutput with
            | Some rhs when rhs.Contains "..." -> rhs.Replace("...", String(broadcastLetters))
            | Some rhs -> rhs
            | None ->
                let all = terms |> Array.collect (fun t -> t.ToCharArray())
                String(broadcastLetters)
                + String(
                    all
                    |> Array.filter (fun c -> Char.IsLetter c && (all |> Array.filter ((=) c)).Length = 1)
                    |> Array.sort
                )
        // An operand with its repeated letters reduced to diagonals: (letters, expression).
        let rec distinct (letters: string) (e: Expr) =
            match letters |> Seq.tryFind (fun c -> letters.IndexOf c <> letters.LastIndexOf c) with
            | None -> letters, e
            | Some c ->
                let i, j = letters.IndexOf c, letters.LastIndexOf c
                let rest = [| 0 .. letters.Length - 1 |] |> Array.filter (fun a -> a <> i && a <> j)
                let d = e.Shape[i]
                bounded n "a diagonal's positions" [| d |]
                let moved =
                    e
                    |> Expr.permute (Array.append rest [| i; j |])
                    |> Expr.reshape (Array.append (rest |> Array.map (fun a -> e.Shape[a])) [| d * d |])
                let diagonal =
                    Expr.indexSelect
                        rest.Length
                        (Expr.constant (Tensor.create [| d |] (Array.init d (fun k -> float (k * d + k))) |> Tensor.cast dtype))
                        moved
                distinct (String(rest |> Array.map (fun a -> letters[a])) + string c) diagonal
        let reduced =
            Array.map2 (fun (t: string) (v: OnnxValue) -> distinct t (asDType n dtype v)) terms (Array.ofList operands)
        let shared = Seq.append output (reduced |> Seq.collect fst) |> Seq.distinct |> Array.ofSeq
        for c in output do
            if not (reduced |> Array.exists (fun (letters, _) -> letters.Contains c)) then
                n.Fail(sprintf "equation '%s': output letter '%c' is in no operand" equation c)
        let aligned =
            reduced
            |> Array.map (fun (letters, e) ->
                let order =
                    shared |> Array.filter (fun c -> letters.Contains c) |> Array.map (fun c -> letters.IndexOf c)
                let permuted = Expr.permute order e
                permuted
                |> Expr.reshape (shared |> Array.map (fun c -> if letters.Contains c then e.Shape[letters.IndexOf c] else 1)))
        let product = aligned |> Array.reduce Expr.mul
        let summed = [ output.Length .. shared.Length - 1 ]
        one (like first (if summed.IsEmpty then product else Expr.sumAxes summed false product))

    let private gemm (n: OnnxNode) =
        let a, b = n.Input 0, n.Input 1
        let dtype = a.Expr.DType
        let operand (v: Expr) (flag: string) =
            if v.Rank <> 2 then n.Fail(sprintf "operands must be matrices, got shape %s" (Shape.show v.Shape))
            if n.Int(flag, 0L) <> 0L then Expr.transpose v else v
        let alpha, beta = n.Float("alpha", 1.0), n.Float("beta", 1.0)
        let product = Expr.matmul (operand a.Expr "transA") (operand (asDType n dtype b) "transB")
        let y = if alpha = 1.0 then product else product * alpha
        let y =
            match n.Optional 2 with
            | Some c ->
                let c = asDType n dtype c
                y + (if beta = 1.0 then c else c * beta)
            | None -> y
        one (like a y)

    // Softmax, LogSoftmax and Hardmax: one axis from opset 13; before it, the input flattened to 2-D at the axis.
    let private alongAxis (f: int -> Expr -> Expr) (n: OnnxNode) =
        let x = n.Input 0
        let e = x.Expr
        if n.Opset >= 13L then
            one (like x (f (axis n e.Rank (n.Small("axis", -1))) e))
        else
            let a = axis n e.Rank (n.Small("axis", 1))
            let rows = Shape.size e.Shape[.. a - 1]
            one (like x (e |> Expr.reshape [| rows; -1 |] |> f 1 |> Expr.reshape e.Shape))

    // 1 at the first maximum along the axis, else 0: the ties' running count is 1 only up to the first.
    let private hardmax (a: int) (x: Expr) =
        let ties = Expr.equal x (Expr.maxAxisKeep a x)
        ties * Expr.equal (Expr.cumsum a ties) (scalar x 1.0)

    let private cumSum (n: OnnxNode) =
        let x = n.Input 0
        let known = n.KnownInts 1
        if known.Length <> 1 then n.Fail(sprintf "the axis must be one integer, got %d" known.Length)
        let a = axis n x.Expr.Rank known[0]
        let sums = if n.Int("reverse", 0L) <> 0L then Expr.reverseCumsum a x.Expr else Expr.cumsum a x.Expr
        one (like x (if n.Int("exclusive", 0L) <> 0L then sums - x.Expr else sums))

    // Local response normalisation across channels: x / (bias + alpha / size * sum of squares in the window)^beta.
    let private lrn (n: OnnxNode) =
        let x = n.Input 0
        let size = n.Small("size", 0)
        if size < 1 || size > 65536 then n.Fail(sprintf "size must be in 1..65536, got %d" size)
        atLeast n 2 x.Expr
        let squares = x.Expr * x.Expr
        let channels = x.Expr.Shape[1]
        let padded = Expr.pad 1 ((size - 1) / 2) (size - 1 - (size - 1) / 2) squares
        let sums = List.init size (fun t -> Expr.slice 1 t channels padded) |> Expr.addN
        let scale = sums * (n.Float("alpha", 1e-4) / float size) + n.Float("bias", 1.0)
        one (like x (x.Expr / Expr.powScalar (n.Float("beta", 0.75)) scale))

    let private oneHot (n: OnnxNode) =
        let values = n.Input 2
        let dtype = values.Expr.DType
        let depth = n.KnownInput 1 |> Tensor.item |> int
        let indices = asDType n dtype (n.Input 0)
        // Negative indices count from the end.
        let indices = indices + Expr.step (-indices) * float depth
        let hot = Expr.oneHot depth indices
        let rank = hot.Rank
        let a = axis n rank (n.Small("axis", -1))
        let hot =
            hot
            |> Expr.permute (
                Array.init rank (fun i ->
                    if i < a then i
                    elif i = a then rank - 1
                    else i - 1)
            )
        let off = values.Expr |> Expr.slice 0 0 1 |> Expr.reshape [||]
        let on = values.Expr |> Expr.slice 0 1 1 |> Expr.reshape [||]
        one (like values (off + (on - off) * hot))

    /// The negative log-likelihood of log-probabilities [N; C; d...] at targets known at import time: the
    /// targets (and their weights) are a constant mask, so the loss is a product and a sum over classes.
    let private logLikelihoodLoss (n: OnnxNode) (logProbs: Expr) =
        let targets = n.KnownInput 1
        let shape = logProbs.Shape
        if shape.Length < 2 || targets.Shape <> Array.append [| shape[0] |] shape[2..] then
            n.Fail(
                sprintf
                    "targets of shape %s do not fit scores of shape %s ([N; C; d...] and [N; d...])"
                    (Shape.show targets.Shape)
                    (Shape.show shape)
            )
        let classes = shape[1]
        let inner = Shape.size shape[2..]
        let ignored = if n.HasAttribute "ignore_index" then Some(float (n.Int("ignore_index", 0L))) else None
        bounded n "the targets' mask" shape
        let mask = Array.zeroCreate<float>(Shape.size shape)
        targets
        |> Tensor.toArray
        |> Array.iteri (fun i t ->
            if Some t <> ignored then
                if t < 0.0 || t >= float classes then
                    n.Fail(sprintf "target %g at position %d is outside the %d classes" t i classes)
                mask[((i / inner) * classes + int t) * inner + i % inner] <- 1.0)
        let mask = Expr.constant (Tensor.create shape mask |> Tensor.cast logProbs.DType)
        let weighted =
            match n.Optional 2 with
            | Some w ->
                mask
                * Expr.reshape (Array.append [| 1; classes |] (Array.create (shape.Length - 2) 1)) (asDType n logProbs.DType w)
            | None -> mask
        let losses = -(Expr.sumAxis 1 (logProbs * weighted))
        match n.String("reduction", "mean") with
        | "none" -> losses
        | "sum" -> Expr.sum losses
        | "mean" -> Expr.sum losses / Expr.sum weighted
        | other -> n.Fail(sprintf "reduction '%s' is not one of none, sum, mean" other)

    let private negativeLogLikelihoodLoss (n: OnnxNode) =
        let x = n.Input 0
        one (like x (logLikelihoodLoss n x.Expr))

    let private softmaxCrossEntropyLoss (n: OnnxNode) =
        let x = n.Input 0
        let logProbs = Expr.logSoftmax 1 x.Expr
        [ like x (logLikelihoodLoss n logProbs); like x logProbs ]

    // Comparisons and logic give booleans: 0/1 values of the operands' dtype, with ONNX's BOOL type.
    let private predicate (f: Expr -> Expr -> Expr) (n: OnnxNode) = binary f n |> List.map (fun v -> { v with ElemType = ElemType.bool })

    let private less (a: Expr) (b: Expr) = Expr.step (b - a)

    /// Known indices along an axis of length d, negative ones counted from the end, checked.
    let private knownIndices (n: OnnxNode) (input: int) (d: int) =
        n.KnownInts input
        |> Array.map (fun i ->
            if i < -d || i >= d then n.Fail(sprintf "index %d is outside an axis of length %d" i d)
            if i < 0 then i + d else i)

    /// For known element indices along an axis (GatherElements, ScatterElements), each one's position in the
    /// flattened data.
    let private elementPositions (n: OnnxNode) (data: int[]) (a: int) =
        let indices = n.KnownInput 1
        let shape = indices.Shape
        if shape.Length <> data.Length || Array.exists2 (fun i d -> i > d) shape data then
            n.Fail(sprintf "indices of shape %s do not fit data of shape %s" (Shape.show shape) (Shape.show data))
        let values = knownIndices n 1 data[a]
        let strides, dataStrides = Shape.strides shape, Shape.strides data
        let positions =
            values
            |> Array.mapi (fun flat index ->
                Array.init shape.Length (fun k -> if k = a then index else flat / strides[k] % shape[k])
                |> Array.fold2 (fun acc c s -> acc + c * s) 0
                <| dataStrides)
        shape, positions

    /// For known index tuples over the leading axes after batch_dims (GatherND, ScatterND), each one's row in the
    /// data reshaped to [rows; rest...], and that reshape's shape.
    let private tuplePositions (n: OnnxNode) (data: int[]) (batchDims: int) =
        let indices = n.KnownInput 1
        let shape = indices.Shape
        let k = if shape.Length = 0 then 0 else shape[shape.Length - 1]
        if shape.Length < 1 || batchDims + k > data.Length || shape[.. batchDims - 1] <> data[.. batchDims - 1] then
            n.Fail(
                sprintf "indices of shape %s do not fit data of shape %s with batch_dims %d" (Shape.show shape) (Shape.show data) batchDims
            )
        let indexed = data[batchDims .. batchDims + k - 1]
        let tuples = n.KnownInts 1
        let perBatch = Shape.size shape[batchDims .. shape.Length - 2]
        let rows = Shape.size indexed
        let positions =
            Array.init (tuples.Length / max 1 k) (fun t ->
                let batch = t / max 1 perBatch
                let row =
                    Array.init k (fun j ->
                        let i = tuples[t * k + j]
                        if i < -indexed[j] || i >= indexed[j] then
                            n.Fail(sprintf "index %d is outside axis %d of length %d" i (batchDims + j) indexed[j])
                        if i < 0 then i + indexed[j] else i)
                    |> Array.fold2 (fun acc i s -> acc + i * s) 0
                    <| Shape.strides indexed
                batch * rows + row)
        let flatShape = Array.append [| Shape.size data[.. batchDims - 1] * rows |] data[batchDims + k ..]
        shape[.. shape.Length - 2], positions, flatShape

    let private positionsExpr (dtype: DType) (shape: int[]) (positions: int[]) =
        Expr.constant (Tensor.create shape (Array.map float positions) |> Tensor.cast dtype)

    let private gatherElements (n: OnnxNode) =
        let x = n.Input 0
        let shape, positions = elementPositions n x.Expr.Shape (axis n x.Expr.Rank (n.Small("axis", 0)))
        one (like x (Expr.indexSelect 0 (positionsExpr x.Expr.DType shape positions) (Expr.reshape [| -1 |] x.Expr)))

    let private gatherND (n: OnnxNode) =
        let x = n.Input 0
        let shape, positions, flatShape = tuplePositions n x.Expr.Shape (n.Small("batch_dims", 0))
        let picked =
            Expr.indexSelect 0 (positionsExpr x.Expr.DType [| positions.Length |] positions) (Expr.reshape flatShape x.Expr)
        one (like x (Expr.reshape (Array.append shape flatShape[1..]) picked))

    /// Updates written into the data's flattened rows at known positions: replacing them (no position twice),
    /// added to them, or multiplying them.
    let private scatterRows (n: OnnxNode) (data: Expr) (flatShape: int[]) (positions: int[]) (updates: Expr) =
        let rows = flatShape[0]
        let flat = Expr.reshape flatShape data
        let updates = Expr.reshape (Array.append [| positions.Length |] flatShape[1..]) updates
        // 1 in the rows no position names, fill in the others: a row-broadcast constant.
        let uncovered (chosen: int[]) (fill: float) =
            bounded n "the scatter's mask" [| rows |]
            let values = Array.create rows 1.0
            for p in chosen do
                values[p] <- fill
            Expr.constant (
                Tensor.create (Array.append [| rows |] (Array.create (flatShape.Length - 1) 1)) values
                |> Tensor.cast data.DType
            )
        let into (chosen: int[]) (values: Expr) = Expr.indexAdd 0 rows (positionsExpr data.DType [| chosen.Length |] chosen) values
        let result =
            match n.String("reduction", "none") with
            | "add" -> flat + into positions updates
            | "none" ->
                if (Array.distinct positions).Length <> positions.Length then
                    n.Fail "indices repeat a position, which reduction 'none' leaves undefined"
                flat * uncovered positions 0.0 + into positions updates
            | "mul" ->
                // A position named k times gets k factors: one layer of distinct positions per occurrence.
                let seen = Dictionary<int, int>()
                let occurrence =
                    positions
                    |> Array.map (fun p ->
                        let k =
                            match seen.TryGetValue p with
                            | true, k -> k
                            | _ -> 0
                        seen[p] <- k + 1
                        k)
                [ 0 .. Array.max (Array.append [| -1 |] occurrence) ]
                |> List.fold
                    (fun acc layer ->
                        let members = occurrence |> Array.indexed |> Array.filter (fun (_, k) -> k = layer) |> Array.map fst
                        let chosen = members |> Array.map (fun i -> positions[i])
                        let picked = Expr.indexSelect 0 (positionsExpr data.DType [| members.Length |] members) updates
                        acc * (into chosen picked + uncovered chosen 0.0))
                    flat
            | other -> n.Unsupported(sprintf "reduction '%s' is not imported (none, add and mul are)" other)
        Expr.reshape data.Shape result

    let private scatterElements (n: OnnxNode) =
        let x = n.Input 0
        let _, positions = elementPositions n x.Expr.Shape (axis n x.Expr.Rank (n.Small("axis", 0)))
        let updates = asDType n x.Expr.DType (n.Input 2)
        one (like x (scatterRows n x.Expr [| Shape.size x.Expr.Shape |] positions updates))

    let private scatterND (n: OnnxNode) =
        let x = n.Input 0
        let _, positions, flatShape = tuplePositions n x.Expr.Shape 0
        one (like x (scatterRows n x.Expr flatShape positions (asDType n x.Expr.DType (n.Input 2))))

    let private batchNormalization (n: OnnxNode) =
        if n.Int("training_mode", 0L) <> 0L || n.OutputCount > 1 then
            n.Unsupported
                "training mode (batch statistics and running-statistics outputs) is not imported; export the model in inference mode"
        let x = n.Input 0
        atLeast n 2 x.Expr
        let dtype = x.Expr.DType
        let channel (i: int) =
            asDType n dtype (n.Input i)
            |> Expr.reshape (Array.append [| 1; -1 |] (Array.create (x.Expr.Rank - 2) 1))
        let eps = n.Float("epsilon", 1e-5)
        let normalised = (x.Expr - channel 3) / Expr.sqrt (channel 4 + eps)
        one (like x (normalised * channel 1 + channel 2))

    // (x - mean) / sqrt(variance + eps) over the given axes (population variance).
    let private standardise (axes: int list) (eps: float) (x: Expr) =
        let mean = Expr.meanAxes axes true x
        let centred = x - mean
        mean, centred, Expr.meanAxes axes true (centred * centred) + eps

    let private instanceNormalization (n: OnnxNode) =
        let x = n.Input 0
        atLeast n 2 x.Expr
        let _, centred, variance = standardise [ 2 .. x.Expr.Rank - 1 ] (n.Float("epsilon", 1e-5)) x.Expr
        let channel (i: int) =
            asDType n x.Expr.DType (n.Input i)
            |> Expr.reshape (Array.append [| 1; -1 |] (Array.create (x.Expr.Rank - 2) 1))
        one (like x (centred / Expr.sqrt variance * channel 1 + channel 2))

    let private layerNormalization (n: OnnxNode) =
        let x = n.Input 0
        let e = x.Expr
        let a = axis n e.Rank (n.Small("axis", -1))
        let mean, centred, variance = standardise [ a .. e.Rank - 1 ] (n.Float("epsilon", 1e-5)) e
        let inverseStd = Expr.rsqrt variance
        let y = centred * inverseStd * asDType n e.DType (n.Input 1)
        let y =
            match n.Optional 2 with
            | Some b -> y + asDType n e.DType b
            | None -> y
        [ like x y; like x mean; like x inverseStd ]

    let private meanVarianceNormalization (n: OnnxNode) =
        let x = n.Input 0
        let axes = n.Ints "axes" |> Option.defaultValue [| 0; 2; 3 |]
        let _, centred, variance = standardise (axesOf n x.Expr.Rank axes |> List.ofArray) 1e-9 x.Expr
        one (like x (centred / Expr.sqrt variance))

    /// A target shape as ONNX's Reshape reads it: 0 copies the input's dimension (unless allowzero), -1 is inferred.
    let private reshape (n: OnnxNode) =
        let x = n.Input 0
        let shape = n.KnownInts 1
        let allowZero = n.Int("allowzero", 0L) <> 0L
        let resolved =
            shape
            |> Array.mapi (fun i d ->
                if d = 0 && not allowZero then
                    (if i < x.Expr.Rank then
                         x.Expr.Shape[i]
                     else
                         n.Fail(
                             sprintf
                                 "shape [%s] copies axis %d, which the input %s lacks"
                                 (String.Join(", ", shape))
                                 i
                                 (Shape.show x.Expr.Shape)
                         ))
                else
                    d)
        one (like x (Expr.reshape resolved x.Expr))

    let private flatten (n: OnnxNode) =
        let x = n.Input 0
        let e = x.Expr
        let a = n.Small("axis", 1)
        let a = if a < 0 then a + e.Rank else a
        if a < 0 || a > e.Rank then
            n.Fail(sprintf "axis %d is out of range for rank %d" (n.Small("axis", 1)) e.Rank)
        one (like x (Expr.reshape [| Shape.size e.Shape[.. a - 1]; Shape.size e.Shape[a..] |] e))

    let private transpose (n: OnnxNode) =
        let x = n.Input 0
        let perm =
            n.Ints "perm"

            |> Option.defaultValue (Array.init x.Expr.Rank (fun i -> x.Expr.Rank - 1 - i))
        one (like x (Expr.permute perm x.Expr))

    let private concat (n: OnnxNode) =
        let values = n.All
        let first = List.head values
        let a = axis n first.Expr.Rank (n.Small("axis", 0))
        one (like first (values |> List.map (asDType n first.Expr.DType) |> Expr.concat a))

    let private squeeze (n: OnnxNode) =
        let x = n.Input 0
        let shape = x.Expr.Shape
        let axes =
            match n.IntsFrom("axes", 1, 13L) with
            | Some axes -> axesOf n shape.Length axes
            | None -> shape |> Array.indexed |> Array.filter (fun (_, d) -> d = 1) |> Array.map fst
        for a in axes do
            if shape[a] <> 1 then
                n.Fail(sprintf "cannot squeeze axis %d of shape %s: its length is not 1" a (Shape.show shape))
        one (
            like
                x
                (Expr.reshape (shape |> Array.indexed |> Array.filter (fun (i, _) -> not (Array.contains i axes)) |> Array.map snd) x.Expr)
        )

    let private unsqueeze (n: OnnxNode) =
        let x = n.Input 0
        let shape = x.Expr.Shape
        let given = n.IntsFrom("axes", 1, 13L) |> Option.defaultWith (fun () -> n.Fail "axes are required")
        let rank = shape.Length + given.Length
        let axes = axesOf n rank given
        let mutable rest = List.ofArray shape
        let result =
            Array.init rank (fun i ->
                if Array.contains i axes then
                    1
                else
                    let d = List.head rest
                    rest <- List.tail rest
                    d)
        one (like x (Expr.reshape result x.Expr))

    /// One axis of ONNX's Slice (NumPy's clamping of start and end) as a FuncFlow slice.
    let private sliceAxis (a: int) (start: int) (stop: int) (step: int) (n: OnnxNode) (x: Expr) =
        if step = 0 then n.Fail "a step of 0"
        let d = x.Shape[a]
        let position (v: int) = if v < 0 then v + d else v
        let first, last =
            if step > 0 then
                Math.Clamp(position start, 0, d), Math.Clamp(position stop, 0, d)
            else
                Math.Clamp(position start, 0, d - 1), Math.Clamp(position stop, -1, d - 1)
        let length = max 0 ((last - first + step - (if step > 0 then 1 else -1)) / step)
        if length = 0 then
            Expr.slice a 0 0 x
        else
            let stop = first + (length - 1) * step + (if step > 0 then 1 else -1)
            Expr.stridedSlice a (Some first) (if stop < 0 then None else Some stop) step x

    let private slice (n: OnnxNode) =
        let x = n.Input 0
        let rank = x.Expr.Rank
        let starts, ends, axes, steps =
            if n.Opset >= 10L then
                let optional i = n.Optional i |> Option.map (fun _ -> n.KnownInts i)
                n.KnownInts 1, n.KnownInts 2, optional 3, optional 4
            else
                let ints (name: string) = n.Ints name
                let required name = ints name |> Option.defaultWith (fun () -> n.Fail(sprintf "the attribute %s is required" name))
                required "starts", required "ends", ints "axes", None
        let axes = axes |> Option.defaultValue (Array.init starts.Length id) |> Array.map (axis n rank)
        let steps = steps |> Option.defaultValue (Array.create starts.Length 1)
        if ends.Length <> starts.Length || axes.Length <> starts.Length || steps.Length <> starts.Length then
            n.Fail "starts, ends, axes and steps must have one entry each per sliced axis"
        one (like x (Array.fold (fun y i -> sliceAxis axes[i] starts[i] ends[i] steps[i] n y) x.Expr [| 0 .. starts.Length - 1 |]))

    let private gather (n: OnnxNode) =
        let x = n.Input 0
        let a = axis n x.Expr.Rank (n.Small("axis", 0))
        let d = x.Expr.Shape[a]
        let indices = n.KnownInput 1
        let normalised =
            indices
            |> Tensor.toArray
            |> Array.map (fun i ->
                if i < float -d || i >= float d then
                    n.Fail(sprintf "index %g is outside axis %d of length %d" i a d)
                if i < 0.0 then i + float d else i)
        let indices = Expr.constant (Tensor.cast x.Expr.DType (Tensor.create indices.Shape normalised))
        one (like x (Expr.indexSelect a indices x.Expr))

    let private split (n: OnnxNode) =
        let x = n.Input 0
        let a = axis n x.Expr.Rank (n.Small("axis", 0))
        let d = x.Expr.Shape[a]
        let parts =
            match n.IntsFrom("split", 1, 13L) with
            | Some sizes -> sizes
            | None ->
                let count = n.OutputCount
                if count < 1 then n.Fail "names no outputs"
                if d % count <> 0 then
                    n.Fail(sprintf "axis %d of length %d does not split into %d equal parts" a d count)
                Array.create count (d / count)
        if Array.sum parts <> d || parts |> Array.exists (fun p -> p < 0) then
            n.Fail(sprintf "split sizes [%s] do not add up to axis %d's length %d" (String.Join(", ", parts)) a d)
        let starts = Array.scan (+) 0 parts
        parts |> Array.mapi (fun i p -> like x (Expr.slice a starts[i] p x.Expr)) |> List.ofArray

    let private pad (n: OnnxNode) =
        let x = n.Input 0
        let rank = x.Expr.Rank
        let mode = n.String("mode", "constant")
        // The constant is a number, or a computed scalar added where the padding is (a mask known now).
        let pads, value, computedValue =
            if n.Opset >= 11L then
                match n.Optional 2 with
                | Some { Known = Some t } -> n.KnownInts 1, Tensor.item t, None
                | Some v -> n.KnownInts 1, 0.0, Some(asDType n x.Expr.DType v)
                | None -> n.KnownInts 1, 0.0, None
            else
                n.Ints "pads" |> Option.defaultWith (fun () -> n.Fail "the attribute pads is required"), n.Float("value", 0.0), None
        let axes =
            match n.Optional 3 with
            | Some _ -> n.KnownInts 3 |> Array.map (axis n rank)
            | None -> Array.init rank id
        if pads.Length <> 2 * axes.Length then
            n.Fail(sprintf "pads has %d entries, expected %d (begin and end per axis)" pads.Length (2 * axes.Length))
        let padAxis (y: Expr) (i: int) =
            let a = axes[i]
            let before, after = pads[i], pads[i + axes.Length]
            // Negative pads remove elements.
            let y = Expr.slice a (max 0 -before) (y.Shape[a] - max 0 -before - max 0 -after) y
            let before, after = max 0 before, max 0 after
            let d = y.Shape[a]
            match mode with
            | "constant" -> Expr.padWith value a before after y
            | "edge" ->
                let edge start count =
                    Expr.slice a start 1 y
                    |> Expr.broadcastTo (y.Shape |> Array.mapi (fun j s -> if j = a then count else s))
                Expr.concat
                    a
                    [
                        if before > 0 then
                            edge 0 before
                            y
                            if after > 0 then edge (d - 1) after
                    ]
            | "reflect" ->
                if before >= d || after >= d then
                    n.Fail(sprintf "reflect pads of %d and %d need an axis longer than both, axis %d has %d" before after a d)
                let mirrored = Expr.flip [ a ] y
                Expr.concat
                    a
                    [
                        if before > 0 then
                            Expr.slice a (d - 1 - before) before mirrored
                            y
                            if after > 0 then Expr.slice a 1 after mirrored
                    ]
            | other -> n.Fail(sprintf "mode '%s' is not one of constant, reflect, edge" other)
        let padded = Array.fold padAxis x.Expr [| 0 .. axes.Length - 1 |]
        match computedValue with
        | Some v when mode = "constant" ->
            let inside = Array.fold padAxis (Expr.onesLike x.Expr) [| 0 .. axes.Length - 1 |]
            bounded n "the padding's mask" inside.Shape
            let holes = Expr.constant (Eval.evaluate (Eval.bindings []) (scalar inside 1.0 - inside))
            one (like x (padded + v * holes))
        | _ -> one (like x padded)

    let private clip (n: OnnxNode) =
        let x = n.Input 0
        let bound (i: int) (attribute: string) =
            if n.Opset >= 11L then n.Optional i |> Option.map (asDType n x.Expr.DType)
            elif n.HasAttribute attribute then Some(scalar x.Expr (n.Float(attribute, 0.0)))
            else None
        let y =
            match bound 1 "min" with
            | Some lo -> Expr.maximum x.Expr lo
            | None -> x.Expr
        let y =
            match bound 2 "max" with
            | Some hi -> Expr.minimum y hi
            | None -> y
        one (like x y)

    let private where (n: OnnxNode) =
        let a, b = n.Input 1, n.Input 2
        let dtype = a.Expr.DType
        one (like a (Expr.where (asDType n dtype (n.Input 0)) a.Expr (asDType n dtype b)))

    let private expand (n: OnnxNode) =
        let x = n.Input 0
        let target = Shape.broadcast "Expand" x.Expr.Shape (n.KnownInts 1)
        one (like x (Expr.broadcastTo target x.Expr))

    let private tile (n: OnnxNode) =
        let x = n.Input 0
        let repeats = n.KnownInts 1
        if repeats.Length <> x.Expr.Rank || repeats |> Array.exists (fun r -> r < 0) then
            n.Fail(
                sprintf
                    "repeats [%s] must hold one non-negative count per axis of shape %s"
                    (String.Join(", ", repeats))
                    (Shape.show x.Expr.Shape)
            )
        // x viewed as [1; d0; 1; d1; ...] and broadcast to [r0; d0; r1; d1; ...]: output[i] = x[i mod d] on each axis.
        let dims = x.Expr.Shape
        let spread = Array.collect (fun d -> [| 1; d |]) dims
        let target = Array.collect id (Array.map2 (fun r d -> [| r; d |]) repeats dims)
        let tiled =
            x.Expr
            |> Expr.reshape spread
            |> Expr.broadcastTo target
            |> Expr.reshape (Array.map2 (*) repeats dims)
        one (like x tiled)

    let private dropout (n: OnnxNode) =
        let training =
            n.Opset >= 12L
            && (match n.Optional 2 with
                | Some _ -> Tensor.item (n.KnownInput 2) <> 0.0
                | None -> false)
        if training || n.Wants 1 then
            n.Unsupported "training mode (random masks) is not imported; dropout imports as the identity of inference"
        one (n.Input 0)

    let private constantOf (t: Tensor) (elemType: int) = { Expr = Expr.constant t; ElemType = elemType; Known = Some t }

    let private constant (n: OnnxNode) =
        // value_float and value_int are scalars, value_floats and value_ints 1-D.
        let number (name: string) (values: float[]) (elemType: int) =
            let shape = if name.EndsWith "s" then [| values.Length |] else [||]
            constantOf
                (Tensor.create shape values
                 |> Tensor.cast (if elemType = OnnxTensor.floatCode then Float32 else Float64))
                elemType
        match n.Tensor "value" with
        | Some(t, code) -> one (constantOf t code)
        | None ->
            if n.HasAttribute "value_float" then
                one (number "value_float" [| n.Float("value_float", 0.0) |] OnnxTensor.floatCode)
            elif n.HasAttribute "value_floats" then
                one (number "value_floats" (n.Floats "value_floats" |> Option.get) OnnxTensor.floatCode)
            elif n.HasAttribute "value_int" then
                one (number "value_int" [| float (n.Int("value_int", 0L)) |] ElemType.int64)
            elif n.HasAttribute "value_ints" then
                one (number "value_ints" (n.Int64s "value_ints" |> Option.get |> Array.map float) ElemType.int64)
            else
                n.Unsupported "only value, value_float(s) and value_int(s) constants are imported (not sparse or string ones)"

    let private constantOfShape (n: OnnxNode) =
        let shape = n.KnownInts 0
        let value, elemType =
            match n.Tensor "value" with
            | Some valueAndCode -> valueAndCode
            | None -> Tensor.scalarOf Float32 0.0, OnnxTensor.floatCode
        if value.Size <> 1 then n.Fail(sprintf "value must hold one element, holds %d" value.Size)
        if Shape.size shape <= knownLimit && Array.forall (fun d -> d >= 0) shape then
            one (constantOf (Tensor.full value.DType shape (Tensor.item value)) elemType)
        else
            // Too big to hold while importing: a broadcast scalar, filled when evaluated.
            one { Expr = Expr.broadcastTo shape (Expr.constant value); ElemType = elemType; Known = None }

    let private eyeLike (n: OnnxNode) =
        let x = n.Input 0
        let shape = x.Expr.Shape
        if shape.Length <> 2 then n.Fail(sprintf "expects a 2-D input, got shape %s" (Shape.show shape))
        let code = n.Small("dtype", x.ElemType)
        let k = n.Small("k", 0)
        bounded n "the identity" shape
        let values =
            Array.init (Shape.size shape) (fun i -> if i % shape[1] - i / shape[1] = k then 1.0 else 0.0)
        let t = Tensor.create shape values
        one (constantOf (OnnxTensor.dtypeOf code |> Option.map (fun d -> Tensor.cast d t) |> Option.defaultValue t) code)

    // start, start + delta, ... before limit; the bounds size the output, so they must be known.
    let private range (n: OnnxNode) =
        let start, limit, delta =
            Tensor.item (n.KnownInput 0), Tensor.item (n.KnownInput 1), Tensor.item (n.KnownInput 2)
        if delta = 0.0 then n.Fail "delta must not be 0"
        let steps = Math.Ceiling((limit - start) / delta)
        if not (steps <= float knownLimit) then
            n.Unsupported(sprintf "a range of %g elements (from %g to %g by %g) is more than %d" steps start limit delta knownLimit)
        let count = max 0 (int steps)
        let first = n.Input 0
        let t = Tensor.create [| count |] (Array.init count (fun i -> start + float i * delta))
        one (constantOf (if ElemType.isExact first.ElemType then t else Tensor.cast first.Expr.DType t) first.ElemType)

    let private shape (n: OnnxNode) =
        let dims = (n.Input 0).Expr.Shape
        let rank = dims.Length
        let clampAxis (v: int) = Math.Clamp((if v < 0 then v + rank else v), 0, rank)
        let start = clampAxis (n.Small("start", 0))
        let stop = clampAxis (n.Small("end", rank))
        let values = dims[start .. stop - 1] |> Array.map float
        one (constantOf (Tensor.create [| values.Length |] values) ElemType.int64)

    let private size (n: OnnxNode) =
        one (constantOf (Tensor.scalarOf Float64 (float (Shape.size (n.Input 0).Expr.Shape))) ElemType.int64)

    let private castTo (target: int) (n: OnnxNode) =
        let x = n.Input 0
        match OnnxTensor.dtypeOf target, x.Known with
        | _, Some t when ElemType.isExact target ->
            // Truncation towards zero, as a float-to-integer cast.
            one (constantOf (t |> Tensor.toArray |> Array.map Math.Truncate |> Tensor.create t.Shape) target)
        | Some dtype, Some t -> one (constantOf (Tensor.cast dtype t) target)
        | Some dtype, None when dtype = x.Expr.DType -> one (like x x.Expr)
        | _ ->
            n.Unsupported(
                sprintf
                    "a cast of a computed %s value to %s: FuncFlow computes a graph in one float dtype"
                    (OnnxTensor.codeName x.ElemType)
                    (OnnxTensor.codeName target)
            )

    let private cast (n: OnnxNode) = castTo (n.Small("to", 0)) n

    let private castLike (n: OnnxNode) = castTo (n.Input 1).ElemType n

    // Hann, Hamming and Blackman windows: sums of cosines of 2 pi k n / N (N the size, or size - 1 if symmetric).
    let private window (cosines: float list) (n: OnnxNode) =
        let size = n.KnownInts 0 |> Array.exactlyOne
        bounded n "the window" [| size |]
        let period = float (if n.Int("periodic", 1L) <> 0L then size else size - 1)
        let values =
            Array.init size (fun i -> cosines |> List.mapi (fun k c -> c * cos (2.0 * Math.PI * float k * float i / period)) |> List.sum)
        let code = n.Small("output_datatype", OnnxTensor.floatCode)
        let t = Tensor.create [| size |] values
        one (constantOf (OnnxTensor.dtypeOf code |> Option.map (fun d -> Tensor.cast d t) |> Option.defaultValue t) code)

    let private compress (n: OnnxNode) =
        let x = n.Input 0
        let condition = n.KnownInput 1 |> Tensor.toArray
        let input, a =
            if n.HasAttribute "axis" then
                x.Expr, axis n x.Expr.Rank (n.Small("axis", 0))
            else
                Expr.reshape [| -1 |] x.Expr, 0
        if condition.Length > input.Shape[a] then
            n.Fail(sprintf "the condition has %d entries, axis %d only %d" condition.Length a input.Shape[a])
        let kept =
            condition |> Array.indexed |> Array.filter (fun (_, c) -> c <> 0.0) |> Array.map (fst >> float)
        one (like x (Expr.indexSelect a (Expr.constant (Tensor.create [| kept.Length |] kept |> Tensor.cast x.Expr.DType)) input))

    let private reverseSequence (n: OnnxNode) =
        let x = n.Input 0
        let shape = x.Expr.Shape
        let batchAxis, timeAxis =
            axis n shape.Length (n.Small("batch_axis", 1)), axis n shape.Length (n.Small("time_axis", 0))
        let lengths = n.KnownInts 1
        if
            lengths.Length <> shape[batchAxis]
            || lengths |> Array.exists (fun l -> l < 0 || l > shape[timeAxis])
        then
            n.Fail(sprintf "sequence_lens [%s] must hold one length in 0..%d per batch entry" (String.Join(", ", lengths)) shape[timeAxis])
        bounded n "the reversal's positions" shape
        let strides = Shape.strides shape
        // Each element's source: time t < length reads length - 1 - t of its batch entry.
        let positions =
            Array.init (Shape.size shape) (fun flat ->
                let t, b = flat / strides[timeAxis] % shape[timeAxis], flat / strides[batchAxis] % shape[batchAxis]
                if t < lengths[b] then flat + (lengths[b] - 1 - 2 * t) * strides[timeAxis] else flat)
        one (
            like
                x
                (Expr.indexSelect
                    0
                    (Expr.constant (Tensor.create shape (Array.map float positions) |> Tensor.cast x.Expr.DType))
                    (Expr.reshape [| -1 |] x.Expr))
        )

    let private maxUnpool (n: OnnxNode) =
        let x = n.Input 0
        let shape = x.Expr.Shape
        atLeast n 3 x.Expr
        let k = shape.Length - 2
        let kernel, strides, _ = windowOf n k None
        let pads = spatialPads n shape[2..] kernel strides (Array.create k 1)
        // The indices are positions in the unpooled shape; a larger output_shape adds zeros at the end.
        let unpooled =
            Array.append shape[..1] (Array.init k (fun i -> (shape[2 + i] - 1) * strides[i] - fst pads[i] - snd pads[i] + kernel[i]))
        let output =
            match n.Optional 2 with
            | Some _ -> n.KnownInts 2
            | None -> unpooled
        if output.Length <> unpooled.Length || Array.exists2 (fun o u -> o < u) output unpooled then
            n.Fail(sprintf "output_shape %s is smaller than the unpooled shape %s" (Shape.show output) (Shape.show unpooled))
        let total = Shape.size unpooled
        let positions = n.KnownInts 1
        if positions.Length <> Shape.size shape || positions |> Array.exists (fun p -> p < 0 || p >= total) then
            n.Fail(sprintf "indices must give one position in 0..%d per input element" (total - 1))
        let index =
            Expr.constant (Tensor.create [| positions.Length |] (Array.map float positions) |> Tensor.cast x.Expr.DType)
        let scattered = Expr.indexAdd 0 total index (Expr.reshape [| -1 |] x.Expr) |> Expr.reshape unpooled
        one (like x (Array.fold (fun y i -> Expr.pad i 0 (output[i] - unpooled[i]) y) scattered [| 2 .. output.Length - 1 |]))

    let private depthToSpace (n: OnnxNode) =
        let x = n.Input 0
        let s = x.Expr.Shape
        let b = n.Small("blocksize", 0)
        if s.Length <> 4 || b < 1 || s[1] % (b * b) <> 0 then
            n.Fail(sprintf "expects [N; C; H; W] with C a multiple of blocksize^2 (blocksize %d), got %s" b (Shape.show s))
        let c = s[1] / (b * b)
        let y =
            if n.String("mode", "DCR") = "CRD" then
                x.Expr |> Expr.reshape [| s[0]; c; b; b; s[2]; s[3] |] |> Expr.permute [| 0; 1; 4; 2; 5; 3 |]
            else
                x.Expr |> Expr.reshape [| s[0]; b; b; c; s[2]; s[3] |] |> Expr.permute [| 0; 3; 4; 1; 5; 2 |]
        one (like x (Expr.reshape [| s[0]; c; s[2] * b; s[3] * b |] y))

    let private spaceToDepth (n: OnnxNode) =
        let x = n.Input 0
        let s = x.Expr.Shape
        let b = n.Small("blocksize", 0)
        if s.Length <> 4 || b < 1 || s[2] % b <> 0 || s[3] % b <> 0 then
            n.Fail(sprintf "expects [N; C; H; W] with H and W multiples of blocksize %d, got %s" b (Shape.show s))
        x.Expr
        |> Expr.reshape [| s[0]; s[1]; s[2] / b; b; s[3] / b; b |]
        |> Expr.permute [| 0; 3; 5; 1; 2; 4 |]
        |> Expr.reshape [| s[0]; s[1] * b * b; s[2] / b; s[3] / b |]
        |> like x
        |> one

    let private floatAttr (name: string) (fallback: float) (f: float -> Expr -> Expr) (n: OnnxNode) = unary (f (n.Float(name, fallback))) n

    // C's fmod (the result has the dividend's sign): a - b trunc(a / b).
    let private fmod (n: OnnxNode) =
        if n.Int("fmod", 0L) = 0L then
            n.Unsupported "Mod with fmod = 0 (integer semantics) is not imported; floats need fmod = 1"
        binary (fun a b -> let q = a / b in a - b * (Expr.sign q * Expr.floor (Expr.abs q))) n

    let private mixedCasts =
        "casts of computed values between float32 and float64 (a graph computes in one dtype); casts of values known at import time and casts to the same dtype import"

    /// Operators imported in part, and what of them is not: tests of that part are not counted against them.
    let partial =
        [
            "Cast", mixedCasts
            "CastLike", mixedCasts
            "ConvTranspose", "3 spatial axes (FuncFlow's fold has 1 or 2)"
            "RNN", "sequence_lens shorter than the sequence, the cell clip, activations with parameters"
            "GRU", "sequence_lens shorter than the sequence, the cell clip, activations with parameters"
            "LSTM", "sequence_lens shorter than the sequence, the cell clip, coupled gates, activations with parameters"
            "Resize",
            "scales, sizes or a region computed at run time (they size the output, and FuncFlow builds fixed-shape graphs); known ones import"
            "Upsample", "scales computed at run time (they size the output); known ones import"
            "Range", "bounds computed at run time (they size the output, and FuncFlow builds fixed-shape graphs); known bounds import"
            "OneHot",
            "a depth computed at run time (it sizes the output, and FuncFlow builds fixed-shape graphs); a depth known at import time imports"
        ]

    /// The operators the importer claims, by ONNX op_type (default domain).
    let table: IReadOnlyDictionary<string, OnnxNode -> OnnxValue list> =
        readOnlyDict
            [
                // Elementwise functions of one tensor.
                "Identity", (fun n -> one (n.Input 0))
                "Neg", unary Expr.neg
                "Abs", unary Expr.abs
                "Exp", unary Expr.exp
                "Log", unary Expr.log
                "Sqrt", unary Expr.sqrt
                "Reciprocal", unary reciprocal
                "Sigmoid", unary Expr.sigmoid
                "Tanh", unary Expr.tanh
                "Relu", unary Expr.relu
                "Softplus", unary Expr.softplus
                "Softsign", unary (fun x -> x / (Expr.abs x + 1.0))
                "Sign", unary Expr.sign
                "Sin", unary Expr.sin
                "Cos", unary Expr.cos
                "Tan", unary (fun x -> Expr.sin x / Expr.cos x)
                "Sinh", unary (fun x -> (Expr.exp x - Expr.exp (-x)) * 0.5)
                "Cosh", unary (fun x -> (Expr.exp x + Expr.exp (-x)) * 0.5)
                "Asinh", unary (fun x -> Expr.log (x + Expr.sqrt (x * x + 1.0)))
                "Acosh", unary (fun x -> Expr.log (x + Expr.sqrt (x * x - 1.0)))
                "Atanh", unary (fun x -> Expr.log ((1.0 + x) / (1.0 - x)) * 0.5)
                "Erf", unary Expr.erf
                "Gelu",
                (fun n ->
                    match n.String("approximate", "none") with
                    | "none" -> unary Expr.gelu n
                    | "tanh" -> unary (fun x -> x * 0.5 * (1.0 + Expr.tanh ((x + x * x * x * 0.044715) * sqrt (2.0 / Math.PI)))) n
                    | other -> n.Fail(sprintf "approximate '%s' is not one of none, tanh" other))
                "Floor", unary Expr.floor
                "Ceil", unary Expr.ceil
                "Round", unary Expr.round
                "LeakyRelu", floatAttr "alpha" 0.01 Expr.leakyRelu
                "Elu", floatAttr "alpha" 1.0 Expr.elu
                "Celu", floatAttr "alpha" 1.0 (fun alpha x -> Expr.elu 1.0 (x / alpha) * alpha)
                "Selu",
                (fun n ->
                    let gamma = n.Float("gamma", 1.05070102214813232421875)
                    floatAttr "alpha" 1.67326319217681884765625 (fun alpha x -> Expr.elu alpha x * gamma) n)
                "ThresholdedRelu", floatAttr "alpha" 1.0 (fun alpha x -> x * above alpha x)
                "HardSigmoid",
                (fun n ->
                    let beta = n.Float("beta", 0.5)
                    floatAttr "alpha" 0.2 (fun alpha x -> Expr.clamp (Some 0.0) (Some 1.0) (x * alpha + beta)) n)
                "HardSwish", unary (fun x -> x * Expr.clamp (Some 0.0) (Some 1.0) (x * (1.0 / 6.0) + 0.5))
                "Shrink",
                (fun n ->
                    let bias = n.Float("bias", 0.0)
                    floatAttr "lambd" 0.5 (fun lambd x -> above lambd (-x) * (x + bias) + above lambd x * (x - bias)) n)
                // Elementwise functions of several tensors (NumPy broadcasting).
                "Add", binary Expr.add
                "Sub", binary Expr.sub
                "Mul", binary Expr.mul
                "Div", binary Expr.div
                "Pow", binary Expr.pow
                "Mod", fmod
                "PRelu", binary (fun x slope -> Expr.relu x - slope * Expr.relu (-x))
                "Max", variadic Expr.maximum
                "Min", variadic Expr.minimum
                "Sum", variadic Expr.add
                "Mean", (fun n -> variadic Expr.add n |> List.map (fun v -> like v (v.Expr / float n.InputCount)))
                "Clip", clip
                "Equal", predicate Expr.equal
                "Less", predicate less
                "LessOrEqual", predicate (fun a b -> 1.0 - less b a)
                "Greater", predicate (fun a b -> less b a)
                "GreaterOrEqual", predicate (fun a b -> 1.0 - less a b)
                "And", predicate Expr.mul
                "Or", predicate Expr.maximum
                "Xor", predicate (fun a b -> Expr.abs (a - b))
                "Not", (fun n -> unary (fun x -> 1.0 - x) n |> List.map (fun v -> { v with ElemType = ElemType.bool }))
                "Where", where
                // Linear algebra, convolution and pooling.
                "MatMul", binary Expr.matmul
                "Einsum", einsum
                "Gemm", gemm
                "Conv", conv
                "ConvTranspose", convTranspose
                "RNN", recurrent
                "GRU", recurrent
                "LSTM", recurrent
                "MaxPool", maxPool
                "AveragePool", averagePool
                "GlobalAveragePool", globalPool (fun a x -> Expr.meanAxisKeep a x)
                "GlobalMaxPool", globalPool maxStep
                // Normalisation and activations over an axis.
                "BatchNormalization", batchNormalization
                "InstanceNormalization", instanceNormalization
                "LayerNormalization", layerNormalization
                "MeanVarianceNormalization", meanVarianceNormalization
                "Softmax", alongAxis Expr.softmax
                "LogSoftmax", alongAxis Expr.logSoftmax
                "Hardmax", alongAxis hardmax
                "LRN", lrn
                "NegativeLogLikelihoodLoss", negativeLogLikelihoodLoss
                "SoftmaxCrossEntropyLoss", softmaxCrossEntropyLoss
                "CumSum", cumSum
                "OneHot", oneHot
                "Dropout", dropout
                // Reductions (axes an input from opset 13 for ReduceSum, from 18 for the others).
                "ReduceSum", reduction id sumStep id 13L
                "ReduceMean", reduction id (fun a x -> Expr.meanAxisKeep a x) id 18L
                "ReduceMax", reduction id maxStep id 18L
                "ReduceMin", reduction id (fun a x -> Expr.minAxisKeep a x) id 18L
                "ReduceProd", reduction id (fun a x -> Expr.prodAxisKeep a x) id 18L
                "ReduceLogSumExp", reduction id (fun a x -> Expr.logSumExpAxisKeep a x) id 18L
                "ReduceL1", reduction Expr.abs sumStep id 18L
                "ReduceL2", reduction (fun x -> x * x) sumStep Expr.sqrt 18L
                "ReduceLogSum", reduction id sumStep Expr.log 18L
                "ReduceSumSquare", reduction (fun x -> x * x) sumStep id 18L
                // Shapes and layouts.
                "Reshape", reshape
                "Flatten", flatten
                "Transpose", transpose
                "Concat", concat
                "Squeeze", squeeze
                "Unsqueeze", unsqueeze
                "Slice", slice
                "Gather", gather
                "GatherElements", gatherElements
                "GatherND", gatherND
                "ScatterElements", scatterElements
                "Scatter", scatterElements
                "ScatterND", scatterND
                "Split", split
                "Pad", pad
                "Expand", expand
                "Tile", tile
                "DepthToSpace", depthToSpace
                "Resize", resize
                "Upsample", resize
                "SpaceToDepth", spaceToDepth
                // Values known at import time.
                "Constant", constant
                "ConstantOfShape", constantOfShape
                "Shape", shape
                "Size", size
                "EyeLike", eyeLike
                "Range", range
                "Cast", cast
                "CastLike", castLike
                "HannWindow", window [ 0.5; -0.5 ]
                "HammingWindow", window [ 25.0 / 46.0; -21.0 / 46.0 ]
                "BlackmanWindow", window [ 0.42; -0.5; 0.08 ]
                "Compress", compress
                "ReverseSequence", reverseSequence
                "MaxUnpool", maxUnpool
            ]
