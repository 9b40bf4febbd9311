namespace FuncFlow.Onnx

open System
open System.Collections.Generic
open FuncFlow
open FuncFlow.Data
open global.Onnx
open FuncFlow.Onnx.OperatorSupport
open FuncFlow.Onnx.LayerOperators

/// The operator table: one function per ONNX operator type from the node (its attributes and inputs) to its
/// outputs' values. Shapes come from the inputs' expressions, so no ONNX shape inference is needed. This file holds
/// the shape, indexing and constant operators and the table; LayerOperators.fs the network layers.
module internal Operators =
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

    let private cumSum (n: OnnxNode) =
        let x = n.Input 0
        let known = n.KnownInts 1
        if known.Length <> 1 then n.Fail(sprintf "the axis must be one integer, got %d" known.Length)
        let a = axis n x.Expr.Rank known[0]
        let sums = if n.Int("reverse", 0L) <> 0L then Expr.reverseCumsum a x.Expr else Expr.cumsum a x.Expr
        one (like x (if n.Int("exclusive", 0L) <> 0L then sums - x.Expr else sums))

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
