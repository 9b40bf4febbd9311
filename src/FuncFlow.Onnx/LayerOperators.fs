namespace FuncFlow.Onnx

open System
open System.Collections.Generic
open FuncFlow
open FuncFlow.Data
open global.Onnx
open FuncFlow.Onnx.OperatorSupport

/// The operators of neural networks: linear algebra, convolution, pooling, normalisation, recurrent layers,
/// resizing and losses, each a function of the node (its attributes and inputs) to its outputs' values.
module internal LayerOperators =
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

    let maxPool (n: OnnxNode) =
        if n.Wants 1 then n.Unsupported "the Indices output (int64 positions of the maxima) is not imported"
        if n.Int("storage_order", 0L) <> 0L then
            n.Unsupported "storage_order 1 (column-major indices) is not imported"
        let x = n.Input 0
        let w = poolWindow n x.Expr
        match plain2d w with
        | Some spec -> one (like x (Expr.maxPool2d spec x.Expr))
        | None -> one (like x (windowTaps n w -infinity -infinity x.Expr |> List.reduce Expr.maximum))

    let averagePool (n: OnnxNode) =
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

    let globalPool (step: int -> Expr -> Expr) (n: OnnxNode) =
        let x = n.Input 0
        one (like x (reduceOver step [| 2 .. x.Expr.Rank - 1 |] true x.Expr))

    let conv (n: OnnxNode) =
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
    let convTranspose (n: OnnxNode) =
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
    let recurrent (n: OnnxNode) =
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
    let resize (n: OnnxNode) =
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
    let einsum (n: OnnxNode) =
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

    let gemm (n: OnnxNode) =
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
    let alongAxis (f: int -> Expr -> Expr) (n: OnnxNode) =
        let x = n.Input 0
        let e = x.Expr
        if n.Opset >= 13L then
            one (like x (f (axis n e.Rank (n.Small("axis", -1))) e))
        else
            let a = axis n e.Rank (n.Small("axis", 1))
            let rows = Shape.size e.Shape[.. a - 1]
            one (like x (e |> Expr.reshape [| rows; -1 |] |> f 1 |> Expr.reshape e.Shape))

    // 1 at the first maximum along the axis, else 0: the ties' running count is 1 only up to the first.
    let hardmax (a: int) (x: Expr) =
        let ties = Expr.equal x (Expr.maxAxisKeep a x)
        ties * Expr.equal (Expr.cumsum a ties) (scalar x 1.0)

    // Local response normalisation across channels: x / (bias + alpha / size * sum of squares in the window)^beta.
    let lrn (n: OnnxNode) =
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

    let negativeLogLikelihoodLoss (n: OnnxNode) =
        let x = n.Input 0
        one (like x (logLikelihoodLoss n x.Expr))

    let softmaxCrossEntropyLoss (n: OnnxNode) =
        let x = n.Input 0
        let logProbs = Expr.logSoftmax 1 x.Expr
        [ like x (logLikelihoodLoss n logProbs); like x logProbs ]

    let batchNormalization (n: OnnxNode) =
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

    let instanceNormalization (n: OnnxNode) =
        let x = n.Input 0
        atLeast n 2 x.Expr
        let _, centred, variance = standardise [ 2 .. x.Expr.Rank - 1 ] (n.Float("epsilon", 1e-5)) x.Expr
        let channel (i: int) =
            asDType n x.Expr.DType (n.Input i)
            |> Expr.reshape (Array.append [| 1; -1 |] (Array.create (x.Expr.Rank - 2) 1))
        one (like x (centred / Expr.sqrt variance * channel 1 + channel 2))

    let layerNormalization (n: OnnxNode) =
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

    let meanVarianceNormalization (n: OnnxNode) =
        let x = n.Input 0
        let axes = n.Ints "axes" |> Option.defaultValue [| 0; 2; 3 |]
        let _, centred, variance = standardise (axesOf n x.Expr.Rank axes |> List.ofArray) 1e-9 x.Expr
        one (like x (centred / Expr.sqrt variance))
