namespace FuncFlow

open System
open System.Text

/// The element type of a tensor. A graph computes in one dtype; mixing them is an error.
type DType =
    | Float64
    | Float32

    /// The name used in messages and files ("float64", "float32").
    member d.Name =
        match d with
        | Float64 -> "float64"
        | Float32 -> "float32"

/// Shapes are int arrays, row-major, outermost axis first; a scalar has shape [||].
module Shape =
    /// The number of elements in a tensor of this shape.
    let size (shape: int[]) =
        let mutable n = 1
        for d in shape do
            n <- n * d
        n

    /// A shape as users read it, e.g. "(2, 3)" or "()" for a scalar.
    let show (shape: int[]) = if shape.Length = 1 then sprintf "(%d,)" shape[0] else "(" + String.Join(", ", shape) + ")"

    /// Row-major strides (in elements) of a contiguous tensor of this shape.
    let strides (shape: int[]) =
        let s = Array.zeroCreate shape.Length
        let mutable acc = 1
        for i in shape.Length - 1 .. -1 .. 0 do
            s[i] <- acc
            acc <- acc * shape[i]
        s

    /// Resolves a possibly negative axis against a shape, or fails naming the operation and the shape.
    let axis (op: string) (shape: int[]) (axis: int) =
        let rank = shape.Length
        let a = if axis < 0 then axis + rank else axis
        if a < 0 || a >= rank then
            let expected = if rank = 0 then "a scalar has no axes" else sprintf "expected -%d..%d" rank (rank - 1)
            invalidArg "axis" (sprintf "%s: axis %d is out of range for shape %s (%s)" op axis (show shape) expected)
        a

    /// True when both shapes have the same dimensions. A plain loop: F#'s structural `=` on arrays
    /// goes through generic equality, which costs more than building a scalar node.
    let equal (a: int[]) (b: int[]) = obj.ReferenceEquals(a, b) || (a.Length = b.Length && Array.forall2 (fun (x: int) y -> x = y) a b)

    /// NumPy broadcasting of two shapes, or an error naming the operation and both shapes.
    let broadcast (op: string) (a: int[]) (b: int[]) =
        if equal a b then
            a
        else
            let n = max a.Length b.Length
            Array.init n (fun i ->
                let da = if i - (n - a.Length) >= 0 then a[i - (n - a.Length)] else 1
                let db = if i - (n - b.Length) >= 0 then b[i - (n - b.Length)] else 1
                if da = db || db = 1 then
                    da
                elif da = 1 then
                    db
                else
                    invalidArg
                        "shape"
                        (sprintf
                            "%s: shapes %s and %s cannot be broadcast together (axis %d has %d and %d; each pair must be equal or one of them 1)"
                            op
                            (show a)
                            (show b)
                            i
                            da
                            db))

    /// Checks that every dimension is non-negative and that the element count fits in one .NET array.
    let validate (op: string) (shape: int[]) =
        if shape |> Array.exists (fun d -> d < 0) then
            invalidArg "shape" (sprintf "%s: shape %s has a negative dimension" op (show shape))
        let count = shape |> Array.fold (fun n d -> n * int64 d) 1L
        if count > int64 Array.MaxLength then
            invalidArg
                "shape"
                (sprintf "%s: shape %s has %d elements, more than the %d one tensor can hold" op (show shape) count Array.MaxLength)

    /// The shape a reshape from shape `from` to `target` gives (one dimension may be -1, inferred), or an
    /// error naming the operation and both shapes; shared by Tensor.reshape and Expr.reshape.
    let resolveReshape (op: string) (from: int[]) (target: int[]) =
        let count = size from
        let inferred = target |> Array.filter ((=) -1) |> Array.length
        let known = target |> Array.filter (fun d -> d <> -1) |> size
        let cannot why =
            invalidArg "shape" (sprintf "%s: cannot reshape %s (%d elements) into %s: %s" op (show from) count (show target) why)
        if target |> Array.exists (fun d -> d < -1) then
            cannot "dimensions must be non-negative, or -1 once to infer one"
        if inferred > 1 then cannot "only one dimension can be -1"
        let resolved =
            if inferred = 0 then
                Array.copy target
            elif known > 0 && count % known = 0 then
                target |> Array.map (fun d -> if d = -1 then count / known else d)
            else
                cannot (sprintf "no dimension in place of -1 makes %d elements" count)
        if size resolved <> count then cannot (sprintf "%s has %d elements" (show resolved) (size resolved))
        resolved

/// A tensor's storage. The case is the dtype, so storage and dtype cannot disagree.
[<RequireQualifiedAccess>]
type internal TensorData =
    | F64 of float[]
    | F32 of float32[]

    member d.DType =
        match d with
        | F64 _ -> Float64
        | F32 _ -> Float32

    member d.Length =
        match d with
        | F64 a -> a.Length
        | F32 a -> a.Length

    /// The array itself, untyped, for generic kernels that know their 'T.
    member d.Array: Array =
        match d with
        | F64 a -> a
        | F32 a -> a

/// An immutable N-dimensional array of float64 or float32 values, row-major.
[<Sealed>]
type Tensor internal (shape: int[], data: TensorData) =
    do
        if data.Length <> Shape.size shape then
            invalidArg
                "data"
                (sprintf "Tensor: %d values do not fill shape %s (%d expected)" data.Length (Shape.show shape) (Shape.size shape))

    /// The storage; never handed out to users, who see copies.
    member internal _.Storage = data
    /// The storage as float[] or float32[], for generic kernels that cast it to their 'T[].
    member internal _.Data = data.Array
    member internal _.ShapeRef = shape

    /// The dimensions, outermost first (a copy).
    member _.Shape = Array.copy shape
    /// The element type.
    member _.DType = data.DType
    /// The number of axes.
    member _.Rank = shape.Length
    /// The number of elements.
    member _.Size = data.Length

    /// The values as float64, row-major (a copy).
    member _.ToArray() : float[] =
        match data with
        | TensorData.F64 a -> Array.copy a
        | TensorData.F32 a -> Array.map float a

    /// The values as float32, row-major (a copy).
    member _.ToArray32() : float32[] =
        match data with
        | TensorData.F64 a -> Array.map float32 a
        | TensorData.F32 a -> Array.copy a

    /// The element at a flat, row-major position, as float64.
    member internal _.At(i: int) : float =
        match data with
        | TensorData.F64 a -> a[i]
        | TensorData.F32 a -> float a[i]

    /// Prints shape, dtype and values; large tensors are elided with "..." as NumPy does.
    override t.ToString() =
        let sb = StringBuilder()
        let strides = Shape.strides shape
        let edge = 3
        let elide = data.Length > 1000
        let fmt (v: float) = v.ToString("G6", Globalization.CultureInfo.InvariantCulture)
        let rec write (axis: int) (offset: int) =
            if axis = shape.Length then
                sb.Append(fmt (t.At offset)) |> ignore
            else
                let n = shape[axis]
                sb.Append('[') |> ignore
                let indices =
                    if elide && n > 2 * edge then
                        [ yield! [ 0 .. edge - 1 ]; yield -1; yield! [ n - edge .. n - 1 ] ]
                    else
                        [ 0 .. n - 1 ]
                indices
                |> List.iteri (fun k i ->
                    if k > 0 then sb.Append(", ") |> ignore
                    if i < 0 then sb.Append("...") |> ignore else write (axis + 1) (offset + i * strides[axis]))
                sb.Append(']') |> ignore
        sb.Append("tensor(") |> ignore
        write 0 0
        sb.AppendFormat(", shape={0}, dtype={1})", Shape.show shape, data.DType.Name) |> ignore
        sb.ToString()

/// Functions that make and read tensors.
[<RequireQualifiedAccess>]
module Tensor =
    let private checkShape op (shape: int[]) = Shape.validate op shape

    let private checkFill op (shape: int[]) (count: int) =
        checkShape op shape
        if count <> Shape.size shape then
            invalidArg "values" (sprintf "%s: %d values do not fill shape %s (%d expected)" op count (Shape.show shape) (Shape.size shape))

    /// Wraps storage without copying; internal because callers must not keep a reference to it.
    let internal ofStorage (shape: int[]) (data: TensorData) = Tensor(shape, data)

    /// Wraps a generic kernel's float[] or float32[] result without copying: the kernel knows only its 'T[],
    /// so the dtype is read from the array's element type here, once per result.
    let internal wrap (shape: int[]) (data: Array) =
        match data with
        | :? (float[]) as a -> Tensor(shape, TensorData.F64 a)
        | :? (float32[]) as a -> Tensor(shape, TensorData.F32 a)
        | _ ->
            invalidArg
                "data"
                (sprintf "Tensor.wrap: storage of type %s is not supported (float[] or float32[] expected)" (data.GetType().Name))

    /// A float64 tensor of the given shape from row-major values (copied).
    let create (shape: int[]) (values: float[]) =
        checkFill "Tensor.create" shape values.Length
        Tensor(Array.copy shape, TensorData.F64(Array.copy values))

    /// A float32 tensor of the given shape from row-major values (copied).
    let create32 (shape: int[]) (values: float32[]) =
        checkFill "Tensor.create32" shape values.Length
        Tensor(Array.copy shape, TensorData.F32(Array.copy values))

    /// A float64 scalar (rank 0).
    let scalar (x: float) = Tensor([||], TensorData.F64 [| x |])

    /// A scalar of the given dtype.
    let scalarOf (dtype: DType) (x: float) : Tensor =
        match dtype with
        | Float64 -> Tensor([||], TensorData.F64 [| x |])
        | Float32 -> Tensor([||], TensorData.F32 [| float32 x |])

    /// A 1-D float64 tensor.
    let ofArray (values: float[]) = create [| values.Length |] values

    /// A 1-D float32 tensor.
    let ofArray32 (values: float32[]) = create32 [| values.Length |] values

    /// A 2-D float64 tensor from a rectangular array.
    let ofArray2D (values: float[,]) =
        let r, c = Array2D.length1 values, Array2D.length2 values
        Tensor([| r; c |], TensorData.F64(Array.init (r * c) (fun i -> values[i / c, i % c])))

    /// A 2-D float64 tensor from rows, which must all have the same length.
    let ofRows (rows: float[][]) =
        let c = if rows.Length = 0 then 0 else rows[0].Length
        rows
        |> Array.iteri (fun i r ->
            if r.Length <> c then
                invalidArg
                    "rows"
                    (sprintf "Tensor.ofRows: row %d has %d values but row 0 has %d (rows must have equal lengths)" i r.Length c))
        Tensor([| rows.Length; c |], TensorData.F64(Array.concat rows))

    /// A tensor of the given dtype filled with one value.
    let full (dtype: DType) (shape: int[]) (value: float) : Tensor =
        checkShape "Tensor.full" shape
        let n = Shape.size shape
        match dtype with
        | Float64 -> Tensor(Array.copy shape, TensorData.F64(Array.create n value))
        | Float32 -> Tensor(Array.copy shape, TensorData.F32(Array.create n (float32 value)))

    /// Zeros of the given dtype and shape.
    let zeros dtype shape = full dtype shape 0.0

    /// Ones of the given dtype and shape.
    let ones dtype shape = full dtype shape 1.0

    /// Converts float64 values to the given dtype, keeping the shape.
    let internal ofFloats (dtype: DType) (shape: int[]) (values: float[]) : Tensor =
        match dtype with
        | Float64 -> Tensor(shape, TensorData.F64 values)
        | Float32 -> Tensor(shape, TensorData.F32(Array.map float32 values))

    /// 0, 1, ..., n-1 as a 1-D tensor.
    let arange (dtype: DType) (n: int) =
        if n < 0 then invalidArg "n" (sprintf "Tensor.arange: the length must be non-negative, got %d" n)
        ofFloats dtype [| n |] (Array.init n float)

    /// start, start+step, ... below stop (above it for a negative step).
    let range (dtype: DType) (start: float) (stop: float) (step: float) =
        if step = 0.0 || not (Double.IsFinite step) then
            invalidArg "step" (sprintf "Tensor.range: step must be finite and non-zero, got %g" step)
        if not (Double.IsFinite start && Double.IsFinite stop) then
            invalidArg "stop" (sprintf "Tensor.range: start and stop must be finite, got %g and %g" start stop)
        let count = max 0.0 (ceil ((stop - start) / step))
        if count > float Array.MaxLength then
            invalidArg "stop" (sprintf "Tensor.range: %g to %g by %g gives %g values, more than one tensor can hold" start stop step count)
        let n = int count
        ofFloats dtype [| n |] (Array.init n (fun i -> start + float i * step))

    /// Uniform values in [low, high) from a seeded generator: the same seed gives the same tensor.
    let randUniform (dtype: DType) (seed: int) (shape: int[]) (low: float) (high: float) =
        checkShape "Tensor.randUniform" shape
        if not (Double.IsFinite low && Double.IsFinite high && low <= high) then
            invalidArg "high" (sprintf "Tensor.randUniform: bounds must be finite with low <= high, got low=%g high=%g" low high)
        let rng = Random(seed)
        ofFloats dtype (Array.copy shape) (Array.init (Shape.size shape) (fun _ -> low + (high - low) * rng.NextDouble()))

    /// Normal values with the given mean and standard deviation from a seeded generator.
    let randNormal (dtype: DType) (seed: int) (shape: int[]) (mean: float) (std: float) =
        checkShape "Tensor.randNormal" shape
        if not (Double.IsFinite mean && Double.IsFinite std && std >= 0.0) then
            invalidArg "std" (sprintf "Tensor.randNormal: mean must be finite and std finite and non-negative, got mean=%g std=%g" mean std)
        let dist = MathNet.Numerics.Distributions.Normal(mean, std, Random(seed))
        ofFloats dtype (Array.copy shape) (Array.init (Shape.size shape) (fun _ -> dist.Sample()))

    /// The same values in another dtype.
    let cast (dtype: DType) (t: Tensor) : Tensor =
        if t.DType = dtype then
            t
        else
            match dtype with
            | Float64 -> Tensor(t.ShapeRef, TensorData.F64(t.ToArray()))
            | Float32 -> Tensor(t.ShapeRef, TensorData.F32(t.ToArray32()))

    /// The same values with another shape of the same size (-1 infers one dimension).
    let reshape (shape: int[]) (t: Tensor) = Tensor(Shape.resolveReshape "Tensor.reshape" t.ShapeRef shape, t.Storage)

    /// The values as float64, row-major.
    let toArray (t: Tensor) = t.ToArray()

    /// A 2-D tensor's values as a rectangular float64 array.
    let toArray2D (t: Tensor) =
        if t.Rank <> 2 then
            invalidArg "t" (sprintf "Tensor.toArray2D: expected a 2-D tensor, got shape %s" (Shape.show t.ShapeRef))
        let c = t.ShapeRef[1]
        Array2D.init t.ShapeRef[0] c (fun i j -> t.At(i * c + j))

    /// The only value of a one-element tensor.
    let item (t: Tensor) =
        if t.Size <> 1 then
            invalidArg "t" (sprintf "Tensor.item: expected a tensor with one element, got shape %s" (Shape.show t.ShapeRef))
        t.At 0

    /// True when both have the same shape and every pair of values satisfies |a - b| <= atol + rtol |b|.
    let allClose (rtol: float) (atol: float) (a: Tensor) (b: Tensor) =
        Shape.equal a.ShapeRef b.ShapeRef
        && Seq.forall (fun i -> abs (a.At i - b.At i) <= atol + rtol * abs (b.At i)) (seq { 0 .. a.Size - 1 })
