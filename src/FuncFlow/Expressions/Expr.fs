namespace FuncFlow

open System
open System.Collections.Generic
open System.Diagnostics
open System.Runtime.CompilerServices
open System.Threading
open Microsoft.FSharp.Reflection

/// What a node computes. The operands are the node's Inputs; an Op holds only the parameters.
[<RequireQualifiedAccess>]
type Op =
    /// A named variable, bound to a value at evaluation: an input or a parameter.
    | Var of name: string
    /// A constant value.
    | Const of value: Tensor
    /// An elementwise function of one operand.
    | Unary of UnaryOp
    /// An elementwise function of two operands, with NumPy broadcasting.
    | Binary of BinaryOp
    /// x ** p for a constant exponent.
    | PowScalar of exponent: float
    /// Matrix product of the last two axes, batched over leading axes that broadcast (NumPy rules).
    | MatMul
    /// Output axis i is input axis perm[i].
    | Permute of perm: int[]
    | Reshape of shape: int[]
    | BroadcastTo of shape: int[]
    /// A reduction over one axis (None: over all axes).
    | Reduce of ReduceOp * axis: int option * keepDim: bool
    | Concat of axis: int
    /// `length` elements along an axis, the first at `start`, each `step` after the previous (negative: backwards).
    | Slice of axis: int * start: int * length: int * step: int
    /// `before` and `after` elements of `value` added along an axis, and `interior` between adjacent elements
    /// (XLA's pad): the adjoint of a strided slice.
    | Pad of axis: int * before: int * after: int * interior: int * value: float
    /// Entries of the first input along an axis picked by the integer-valued second input (any shape, which
    /// replaces the axis): NumPy's take, torch's index_select for 1-D indices.
    | Gather of axis: int
    /// The adjoint of Gather: the first input's entries added into `rows` zero entries along an axis at the
    /// second input's indices.
    | ScatterAdd of axis: int * rows: int
    /// One-hot encoding of integer-valued labels; not differentiable in the labels.
    | OneHot of classes: int
    | Softmax of axis: int
    | LogSoftmax of axis: int
    /// The sum of any number of same-shape inputs (gradient accumulation).
    | AddN
    // Convolution and pooling (the conv group).
    /// im2col: [N; C; spatial...] to columns [N; C * prod kernel; prod output spatial] (PyTorch's F.unfold).
    | Unfold of window: Window
    /// col2im, the adjoint of Unfold: columns summed back into [N; C; spatial...] where their taps overlap.
    | Fold of window: Window
    /// Max pooling's selection: the second input (values) at the first arg-max of the first (keys) in each
    /// window; max pooling is keys = values. Not differentiable in the keys.
    | MaxPoolPick of window: Window
    /// The adjoint of MaxPoolPick: the second input (pooled) added at each window's first arg-max of the
    /// first (keys), into zeros of the keys' shape.
    | MaxPoolScatter of window: Window
    // ops group.
    /// The second input where the first (a 0/1 condition) is nonzero, else the third; all three broadcast.
    | Where
    // shapeops group.
    /// Running sums along an axis: from the first element, or from the last when reversed.
    | Cumsum of axis: int * reverse: bool
    /// A user-defined operation: its own forward kernel and gradient rule (CustomOp.create).
    | Custom of CustomOp

    /// The permutation of `rank` axes that swaps the last two (a matrix transpose's).
    static member internal SwapLastTwo(rank: int) =
        Array.init rank (fun i ->
            if i = rank - 2 then rank - 1
            elif i = rank - 1 then rank - 2
            else i)

    /// True for the permutation a matrix transpose makes (the last two axes swapped).
    static member internal IsTransposePermutation(perm: int[]) = perm.Length >= 2 && Shape.equal perm (Op.SwapLastTwo perm.Length)

    /// The operation's name and parameters: the one table that messages (Name) and printing (formulas and
    /// DOT labels) are written from, e.g. ("sum", ["axis=1"; "keepDim"]). A variable is described by its
    /// name, a binary operation by its symbol.
    member op.Describe: string * string list =
        let number (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
        match op with
        | Var name -> name, []
        | Const t -> "const", (if t.Size = 1 then [ number (t.At 0) ] else [])
        | Unary u -> u.Name, u.Parameters
        | Binary b -> b.Name, []
        | PowScalar p -> "powScalar", [ number p ]
        | MatMul -> "matmul", []
        | Permute perm when Op.IsTransposePermutation perm -> "transpose", []
        | Permute perm -> "permute", [ "[" + String.Join(", ", perm) + "]" ]
        | Reshape shape -> "reshape", [ Shape.show shape ]
        | BroadcastTo shape -> "broadcastTo", [ Shape.show shape ]
        | Reduce(kind, axis, keepDim) ->
            kind.Name,
            [
                match axis with
                | Some a -> yield sprintf "axis=%d" a
                | None -> ()
                if keepDim then yield "keepDim"
            ]
        | Concat axis -> "concat", [ sprintf "axis=%d" axis ]
        | Slice(axis, start, length, step) ->
            "slice",
            [
                sprintf "axis=%d" axis
                sprintf "start=%d" start
                sprintf "length=%d" length
                if step <> 1 then sprintf "step=%d" step
            ]
        | Pad(axis, before, after, interior, value) ->
            "pad",
            [
                sprintf "axis=%d" axis
                sprintf "before=%d" before
                sprintf "after=%d" after
                if interior <> 0 then sprintf "interior=%d" interior
                if value <> 0.0 then "value=" + number value
            ]
        | Gather axis -> "gather", (if axis = 0 then [] else [ sprintf "axis=%d" axis ])
        | ScatterAdd(axis, rows) ->
            "scatterAdd",
            [
                if axis <> 0 then sprintf "axis=%d" axis
                sprintf "rows=%d" rows
            ]
        | OneHot classes -> "oneHot", [ sprintf "classes=%d" classes ]
        | Softmax axis -> "softmax", [ sprintf "axis=%d" axis ]
        | LogSoftmax axis -> "logSoftmax", [ sprintf "axis=%d" axis ]
        | AddN -> "addN", []
        | Unfold w -> "unfold", w.Parameters
        | Fold w -> "fold", w.Parameters
        | MaxPoolPick w -> "maxPoolPick", w.Parameters
        | MaxPoolScatter w -> "maxPoolScatter", w.Parameters
        | Where -> "where", []
        // shapeops group.
        | Cumsum(axis, reverse) -> "cumsum", [ sprintf "axis=%d" axis; if reverse then "reverse" ]
        | Custom c -> c.Name, []

    /// True for the operations computed element by element, with one-element operands broadcast
    /// (Execute.Elementwise runs them): Eval's scalar path and the plan's fused groups take these.
    member op.IsElementwise =
        match op with
        | Unary _
        | Binary _
        | PowScalar _ -> true
        | _ -> false

    /// The operation's name as messages show it, e.g. "log", "binary /", "sum axis=1", "var x".
    member op.Name =
        let name, parameters = op.Describe
        match op with
        | Var _ -> "var " + name
        | Binary _ -> "binary " + name
        | _ -> String.Join(" ", name :: parameters)

/// A node of an immutable computation graph. Identity is the node itself (a unique Id), never its
/// structure: two nodes that compute the same thing are different nodes; one node used twice is shared.
/// Shape and dtype are inferred when the node is built, so shape errors surface there.
and [<Sealed>] Expr internal (op: Op, inputs: Expr[], shape: int[], dtype: DType) =
    static let mutable counter = 0L
    static let mutable captureSites = Environment.GetEnvironmentVariable "FUNCFLOW_TRACE" = "1"
    // Where nodes were built, for the nodes built while capture was on: a side table rather than a field,
    // which every node would pay for (a scalar graph builds thousands of nodes a step).
    static let sites = ConditionalWeakTable<Expr, string>()
    let id = Interlocked.Increment(&counter)

    // The first few frames outside FuncFlow and FSharp.Core: the user's code that built the node.
    static member private CaptureSite() : string =
        let own = typeof<Expr>.Assembly
        let core = typeof<list<int>>.Assembly
        StackTrace(1, true).GetFrames()
        |> Seq.filter (fun f ->
            let m = f.GetMethod()
            not (isNull m || isNull m.DeclaringType)
            && m.DeclaringType.Assembly <> own
            && m.DeclaringType.Assembly <> core)
        |> Seq.truncate 3
        |> Seq.map (fun f ->
            let m = f.GetMethod()
            let at =
                if isNull (f.GetFileName()) then
                    ""
                else
                    sprintf " (%s:%d)" (IO.Path.GetFileName(f.GetFileName())) (f.GetFileLineNumber())
            sprintf "%s.%s%s" m.DeclaringType.Name m.Name at)
        |> String.concat " <- "

    /// When true, every node built from now on records where it was built (a few stack frames), and anomaly
    /// messages show it. Off by default (costly); FUNCFLOW_TRACE=1 in the environment turns it on at start.
    static member CaptureCreationSites
        with get () = captureSites
        and set (value: bool) = captureSites <- value

    /// The operation.
    member _.Op = op
    /// The operands, in order: the node's own array, for the core's hot paths; users see Operands.
    member internal _.Inputs: Expr[] = inputs
    /// The operands, in order, as a read-only view: a node's operands never change.
    member _.Operands: IReadOnlyList<Expr> = Array.AsReadOnly inputs
    member internal _.ShapeRef = shape
    /// The inferred shape (a copy).
    member _.Shape = Array.copy shape
    /// The inferred dtype.
    member _.DType = dtype
    /// The number of axes.
    member _.Rank = shape.Length
    /// A number unique to this node, increasing in creation order.
    member _.Id = id
    /// Where the node was built (innermost user frame first), if Expr.CaptureCreationSites was on then.
    member this.CreationSite: string option =
        match sites.TryGetValue this with
        | true, site -> Some site
        | _ -> None

    /// Records where this node is being built (Expr.make calls it while capture is on).
    member internal this.RecordCreationSite() = sites.AddOrUpdate(this, Expr.CaptureSite())

    override _.Equals(other: obj) =
        obj.ReferenceEquals(other, null) |> not
        && (match other with
            | :? Expr as e -> e.Id = id
            | _ -> false)
    override _.GetHashCode() = id.GetHashCode()

    interface IComparable with
        member _.CompareTo(other: obj) =
            match other with
            | :? Expr as e -> compare id e.Id
            | _ -> invalidArg "other" "Expr can only be compared with Expr"

    override _.ToString() =
        let name =
            match op with
            | Op.Var n -> n
            | _ -> op.Name
        sprintf "Expr(%s, shape=%s, dtype=%s)" name (Shape.show shape) dtype.Name

/// What a user-defined operation's forward kernel is given: its operands' values and shapes, and the
/// destination to write its value into. All belong to the evaluator or plan and are valid only during the
/// call; the destination may hold an earlier run's values, so the kernel writes every element of it.
and [<Struct; NoEquality; NoComparison>] CustomArgs<'T>(node: Expr, inputs: 'T[][], output: 'T[]) =
    member private _.Check(i: int) =
        if i < 0 || i >= inputs.Length then
            raise (
                ArgumentOutOfRangeException(
                    "i",
                    sprintf "%s: operand %d does not exist; the operation has %d operands" node.Op.Name i inputs.Length
                )
            )

    /// The number of operands.
    member _.Count = inputs.Length
    /// Operand i's values, row-major.
    member a.Input(i: int) : ReadOnlySpan<'T> =
        a.Check i
        ReadOnlySpan inputs[i]
    /// Operand i's shape.
    member a.InputShape(i: int) : ReadOnlySpan<int> =
        a.Check i
        ReadOnlySpan node.Inputs[i].ShapeRef
    /// The destination: the operation's value, row-major, of OutputShape.
    member _.Output: Span<'T> = Span output
    /// The shape the operation's shape rule gave.
    member _.OutputShape: ReadOnlySpan<int> = ReadOnlySpan node.ShapeRef

/// A user-defined operation (JAX's custom_vjp, PyTorch's autograd.Function): a name, a shape rule, a forward
/// kernel that writes into a destination (so plans run it without allocating), and a gradient rule written
/// as expressions (so it differentiates again where its expressions do). Forward-mode and batching rules are
/// optional; a transform that needs a missing one fails naming the operation (Unsupported). Identity is the
/// object: build one with CustomOp.create and apply it with CustomOp.apply.
and [<Sealed>] CustomOp
    internal
    (
        name: string,
        shape: int[] list -> int[],
        forward64: CustomArgs<float> -> unit,
        forward32: (CustomArgs<float32> -> unit) option,
        vjp: Expr list -> Expr -> Expr -> Expr option list,
        jvp: (Expr list -> Expr -> Expr option list -> Expr) option,
        batching: (Expr list -> int option list -> Expr * int) option
    ) =
    /// The name shown in messages, formulas and DOT.
    member _.Name = name
    /// The output's shape from the operands' shapes; throws an ArgumentException for operands it rejects.
    member _.Shape = shape
    /// The float64 forward kernel.
    member _.Forward = forward64
    /// The float32 forward kernel, if given (CustomOp.withFloat32); float32 nodes need one.
    member _.Forward32 = forward32
    /// The gradient rule: from the operands, the node and the gradient flowing into it, each operand's
    /// gradient (None: not differentiable in that operand), as expressions of the operands' shapes.
    member _.Vjp = vjp
    /// The forward-mode rule: from the operands, the node and the operands' tangents (None: zero), the
    /// node's tangent.
    member _.Jvp = jvp
    /// The batching rule: from the operands and each one's batch axis (None: not batched), the result and
    /// its batch axis.
    member _.Batching = batching

    member internal _.With(?f32, ?jvpRule, ?batchRule) =
        CustomOp(
            name,
            shape,
            forward64,
            (match f32 with
             | Some f -> Some f
             | None -> forward32),
            vjp,
            (match jvpRule with
             | Some r -> Some r
             | None -> jvp),
            (match batchRule with
             | Some r -> Some r
             | None -> batching)
        )

    /// The error a transform raises when it meets this operation without the rule it needs, e.g.
    /// op.Unsupported("forward-mode (jvp)", "CustomOp.withJvp").
    member _.Unsupported(rule: string, howToAdd: string) : exn =
        NotSupportedException(sprintf "%s is a user-defined operation without a %s rule; give one with %s" name rule howToAdd) :> exn

    member private _.Failed(node: Expr, e: exn) : exn =
        InvalidOperationException(
            sprintf "%s (user-defined operation, output shape %s): the forward kernel failed: %s" name (Shape.show node.ShapeRef) e.Message,
            e
        )

    /// Runs the forward kernel for the node's dtype into dst; a kernel's exception is rethrown naming the
    /// operation. Allocates nothing: the arrays are the caller's, only tested for their element type.
    member internal c.Run<'T>(node: Expr, args: 'T[][], dst: 'T[]) : unit =
        match box args, box dst with
        | :? (float[][]) as a, (:? (float[]) as d) ->
            try
                forward64 (CustomArgs(node, a, d))
            with e ->
                raise (c.Failed(node, e))
        | :? (float32[][]) as a, (:? (float32[]) as d) ->
            match forward32 with
            | Some f ->
                try
                    f (CustomArgs(node, a, d))
                with e ->
                    raise (c.Failed(node, e))
            | None -> invalidOp (sprintf "%s has no float32 forward kernel; give one with CustomOp.withFloat32" name)
        | _ -> invalidOp (sprintf "%s: storage of type %s is not supported" name typeof<'T>.Name)

    override _.ToString() = sprintf "CustomOp(%s)" name

// Convolution and pooling (the conv group).

/// Convolution hyper-parameters: one entry per spatial axis in each list (1 for conv1d, 2 for conv2d).
type ConvSpec =
    {
        Stride: int list
        /// Zeros added on both sides of each spatial axis.
        Padding: int list
        /// The spacing of the kernel's taps: 1 reads adjacent elements.
        Dilation: int list
        /// Channel groups: input and output channels are split into this many independent convolutions.
        Groups: int
    }

    /// Stride 1, no padding, dilation 1, one group, for conv1d.
    static member Default1d = { Stride = [ 1 ]; Padding = [ 0 ]; Dilation = [ 1 ]; Groups = 1 }

    /// Stride 1, no padding, dilation 1, one group, for conv2d.
    static member Default2d = { Stride = [ 1; 1 ]; Padding = [ 0; 0 ]; Dilation = [ 1; 1 ]; Groups = 1 }

/// Pooling hyper-parameters over the two spatial axes of [N; C; H; W]: one entry per axis in each list.
type PoolSpec =
    {
        Kernel: int list
        Stride: int list
        /// Added on both sides of each spatial axis (-infinity for max pooling, zeros counted in the average
        /// for average pooling); at most half the kernel, as in PyTorch.
        Padding: int list
    }

    /// A kernel with a stride equal to it and no padding (PyTorch's defaults), e.g. PoolSpec.Create [ 2; 2 ].
    static member Create(kernel: int list) : PoolSpec = { Kernel = kernel; Stride = kernel; Padding = List.map (fun _ -> 0) kernel }

// Literals that operators and gradient rules turn into constants (x + 0.5, 1 - y * y) are mostly the
// same few values: a small direct-mapped cache per dtype shares their nodes instead of building a node, a
// tensor and its storage each time. Bounded, so varying literals (a learning-rate schedule) cannot grow it.
// One per thread, so the nodes a graph gets never depend on what other threads are building.
[<AbstractClass; Sealed>]
type internal LiteralCache =
    [<ThreadStatic; DefaultValue>]
    static val mutable private slots: (int64 * Expr)[]

    static member SlotsPerDType = 64

    /// This thread's slots: 64 for float64 literals, then 64 for float32 ones.
    static member Slots =
        if isNull LiteralCache.slots then
            LiteralCache.slots <- Array.zeroCreate (2 * LiteralCache.SlotsPerDType)
        LiteralCache.slots

/// Building expressions. Every builder infers the result's shape and dtype and fails, naming the
/// operation and the shapes, when the operands do not fit.
[<RequireQualifiedAccess>]
module Expr =
    let internal make op (inputs: Expr[]) shape dtype =
        let e = Expr(op, inputs, shape, dtype)
        if Expr.CaptureCreationSites then e.RecordCreationSite()
        e

    let private fail (op: string) (message: string) : 'a = invalidArg "operand" (sprintf "%s: %s" op message)

    // C# callers can pass null; say so by name rather than fail inside with a NullReferenceException.
    let private operand (op: string) (e: Expr) =
        if isNull (box e) then
            raise (ArgumentNullException("operand", sprintf "%s: an operand is null; pass an expression" op))

    let private sameDType (op: string) (a: Expr) (b: Expr) =
        if a.DType <> b.DType then
            fail op (sprintf "operands have dtypes %s and %s; cast one so both have the same dtype" a.DType.Name b.DType.Name)

    // One shared Op per unary and binary operation: a union case with a field is otherwise a fresh object
    // for every node built. The operations' cases are singletons, so they are looked up by reference.
    let private cases<'Op when 'Op: not struct> (wrap: 'Op -> Op) =
        let table = Collections.Generic.Dictionary<'Op, Op>(HashIdentity.Reference)
        // Cases with parameters (leakyRelu's slope) are built per node.
        for c in FSharpType.GetUnionCases typeof<'Op> |> Array.filter (fun c -> c.GetFields().Length = 0) do
            let op = FSharpValue.MakeUnion(c, [||]) :?> 'Op
            table[op] <- wrap op
        table

    let private unaryOps = cases Op.Unary
    let private binaryOps = cases Op.Binary

    /// A named variable of the given dtype and shape: an input or a parameter, bound at evaluation.
    let varOf (dtype: DType) (name: string) (shape: int[]) =
        if String.IsNullOrWhiteSpace name then
            invalidArg "name" "Expr.var: a variable needs a non-empty name"
        Shape.validate (sprintf "Expr.var %s" name) shape
        make (Op.Var name) [||] (Array.copy shape) dtype

    /// A named float64 variable.
    let var name shape = varOf Float64 name shape

    /// A named float32 variable.
    let var32 name shape = varOf Float32 name shape

    /// A constant tensor.
    let constant (t: Tensor) = make (Op.Const t) [||] t.ShapeRef t.DType

    /// A float64 scalar constant.
    let scalar (x: float) = constant (Tensor.scalar x)

    /// A scalar constant of the given dtype.
    let scalarOf (dtype: DType) (x: float) = constant (Tensor.scalarOf dtype x)

    /// A constant of x's dtype, broadcastable against x. Nodes for the same value may be shared: unlike
    /// Expr.scalar, the result is meant as an operand, not as a node to take gradients with respect to.
    let scalarLike (x: Expr) (value: float) =
        // Shared also while creation sites are captured (a shared literal keeps its first builder's site), so
        // that one thread switching capture on cannot change the graphs other threads build.
        let bits = BitConverter.DoubleToInt64Bits value
        let table = LiteralCache.Slots
        let hash = int ((uint64 bits * 0x9E3779B97F4A7C15UL) >>> 58)
        let slot =
            match x.DType with
            | Float64 -> hash
            | Float32 -> LiteralCache.SlotsPerDType + hash
        let cached = table[slot]
        if not (isNull (box cached)) && fst cached = bits then
            snd cached
        else
            let node = scalarOf x.DType value
            table[slot] <- (bits, node)
            node

    /// The variable's name, if the node is a variable.
    let tryName (e: Expr) =
        match e.Op with
        | Op.Var n -> Some n
        | _ -> None

    let private isScalarConst (value: float) (e: Expr) =
        match e.Op with
        | Op.Const t -> t.Size = 1 && t.At 0 = value
        | _ -> false

    /// An elementwise function of one operand.
    let unary (op: UnaryOp) (x: Expr) =
        operand op.Name x
        let shared =
            match unaryOps.TryGetValue op with
            | true, shared -> shared
            | _ -> Op.Unary op
        make shared [| x |] x.ShapeRef x.DType

    /// An elementwise function of two operands, with NumPy broadcasting.
    let binary (op: BinaryOp) (a: Expr) (b: Expr) =
        if isNull (box a) then operand ("binary " + op.Name) a
        if isNull (box b) then operand ("binary " + op.Name) b
        // The name is built only for a message: this runs for every node built.
        if a.DType <> b.DType then sameDType ("binary " + op.Name) a b
        let shape =
            if Shape.equal a.ShapeRef b.ShapeRef then
                a.ShapeRef
            else
                Shape.broadcast ("binary " + op.Name) a.ShapeRef b.ShapeRef
        // Multiplying by a constant one (as gradient seeds do) is the identity; skip the node.
        if op = BinaryOp.Mul && isScalarConst 1.0 a && Shape.equal shape b.ShapeRef then
            b
        elif (op = BinaryOp.Mul || op = BinaryOp.Div) && isScalarConst 1.0 b && Shape.equal shape a.ShapeRef then
            a
        else
            make binaryOps[op] [| a; b |] shape a.DType

    /// a + b.
    let add a b = binary BinaryOp.Add a b
    /// a - b.
    let sub a b = binary BinaryOp.Sub a b
    /// a * b, elementwise.
    let mul a b = binary BinaryOp.Mul a b
    /// a / b, elementwise.
    let div a b = binary BinaryOp.Div a b
    /// a ** b, elementwise.
    let pow a b = binary BinaryOp.Pow a b
    /// 1 where a = b, else 0 (no gradient).
    let equal a b = binary BinaryOp.Equal a b
    /// The larger of a and b, elementwise (NaN propagates); a tie gives each half the gradient.
    let maximum a b = binary BinaryOp.Maximum a b
    /// The smaller of a and b, elementwise (NaN propagates); a tie gives each half the gradient.
    let minimum a b = binary BinaryOp.Minimum a b

    /// x ** p for a constant exponent.
    let powScalar (p: float) (x: Expr) =
        operand "powScalar" x
        // A NaN or infinite exponent is a bug upstream (a diverged schedule), not a power anyone means.
        if not (Double.IsFinite p) then
            fail "powScalar" (sprintf "the exponent must be finite, got %g (input shape %s)" p (Shape.show x.ShapeRef))
        if p = 1.0 then x else make (Op.PowScalar p) [| x |] x.ShapeRef x.DType

    /// -x.
    let neg x = unary UnaryOp.Neg x
    /// e ** x.
    let exp x = unary UnaryOp.Exp x
    /// The natural logarithm.
    let log x = unary UnaryOp.Log x
    /// The square root.
    let sqrt x = unary UnaryOp.Sqrt x
    /// |x|.
    let abs x = unary UnaryOp.Abs x
    /// 1 / (1 + e ** -x).
    let sigmoid x = unary UnaryOp.Sigmoid x
    /// The hyperbolic tangent.
    let tanh x = unary UnaryOp.Tanh x
    /// max(x, 0).
    let relu x = unary UnaryOp.Relu x
    /// log(1 + e ** x), computed stably.
    let softplus x = unary UnaryOp.Softplus x
    /// -1, 0 or 1 (no gradient).
    let sign x = unary UnaryOp.Sign x
    /// 1 where x > 0, else 0 (no gradient).
    let step x = unary UnaryOp.Step x

    // ops group: elementwise functions.
    /// The sine.
    let sin x = unary UnaryOp.Sin x
    /// The cosine.
    let cos x = unary UnaryOp.Cos x
    /// log(1 + x), accurate near 0.
    let log1p x = unary UnaryOp.Log1p x
    /// e ** x - 1, accurate near 0.
    let expm1 x = unary UnaryOp.Expm1 x
    /// The error function.
    let erf x = unary UnaryOp.Erf x
    /// 1 - erf x, accurate where erf x is near 1.
    let erfc x = unary UnaryOp.Erfc x
    /// x * Phi(x), Phi the standard normal CDF (exact, through erf; torch's gelu with approximate="none").
    let gelu x = unary UnaryOp.Gelu x
    /// x * sigmoid(x) (swish).
    let silu x = unary UnaryOp.Silu x
    /// log(sigmoid(x)), computed stably.
    let logSigmoid x = unary UnaryOp.LogSigmoid x
    /// Rounds down (no gradient).
    let floor x = unary UnaryOp.Floor x
    /// Rounds up (no gradient).
    let ceil x = unary UnaryOp.Ceil x
    /// Rounds to the nearest whole number, halves to even as torch.round (no gradient).
    let round x = unary UnaryOp.Round x
    /// 1 / sqrt x.
    let rsqrt x =
        operand "rsqrt" x
        powScalar -0.5 x

    let private finiteParameter (op: string) (name: string) (value: float) (x: Expr) =
        operand op x
        if not (Double.IsFinite value) then
            fail op (sprintf "%s must be finite, got %g (input shape %s)" name value (Shape.show x.ShapeRef))

    /// x where x > 0, else slope * x.
    let leakyRelu (slope: float) (x: Expr) =
        finiteParameter "leakyRelu" "the slope" slope x
        unary (UnaryOp.LeakyRelu slope) x

    /// x where x > 0, else alpha * (e ** x - 1).
    let elu (alpha: float) (x: Expr) =
        finiteParameter "elu" "alpha" alpha x
        unary (UnaryOp.Elu alpha) x

    /// min(max(x, min), max), either bound optional. The gradient is 1 where min <= x <= max, else 0.
    let clamp (min: float option) (max: float option) (x: Expr) =
        operand "clamp" x
        let lo, hi = defaultArg min -infinity, defaultArg max infinity
        let show (b: float option) = b |> Option.map string |> Option.defaultValue "none"
        if min.IsNone && max.IsNone then
            fail "clamp" (sprintf "give at least one bound (input shape %s)" (Shape.show x.ShapeRef))
        if Double.IsNaN lo || Double.IsNaN hi || lo > hi then
            fail
                "clamp"
                (sprintf
                    "bounds min=%s, max=%s are not an interval: expected min <= max, neither NaN (input shape %s)"
                    (show min)
                    (show max)
                    (Shape.show x.ShapeRef))
        unary (UnaryOp.Clamp(lo, hi)) x

    /// Reads x with another shape of the same size; one dimension may be -1 (inferred).
    let reshape (shape: int[]) (x: Expr) =
        operand "reshape" x
        let resolved = Shape.resolveReshape "reshape" x.ShapeRef shape
        if Shape.equal resolved x.ShapeRef then x else make (Op.Reshape resolved) [| x |] resolved x.DType

    /// Permutes axes: output axis i is input axis perm[i].
    let permute (perm: int[]) (x: Expr) =
        operand "permute" x
        let rank = x.Rank
        if perm.Length <> rank || (Array.sort perm) <> Array.init rank id then
            fail
                "permute"
                (sprintf "[%s] is not a permutation of the %d axes of shape %s" (String.Join(", ", perm)) rank (Shape.show x.ShapeRef))
        if perm = Array.init rank id then
            x
        else
            make (Op.Permute(Array.copy perm)) [| x |] (perm |> Array.map (fun p -> x.ShapeRef[p])) x.DType

    /// Swaps the last two axes (a matrix transpose); a 1-D or scalar value is returned as is.
    let transpose (x: Expr) =
        operand "transpose" x
        if x.Rank < 2 then x else permute (Op.SwapLastTwo x.Rank) x

    /// Broadcasts x to a shape (NumPy rules).
    let broadcastTo (shape: int[]) (x: Expr) =
        operand "broadcastTo" x
        Shape.validate "broadcastTo" shape
        let target = Shape.broadcast "broadcastTo" x.ShapeRef shape
        if not (Shape.equal target shape) then
            fail "broadcastTo" (sprintf "cannot broadcast %s to %s" (Shape.show x.ShapeRef) (Shape.show shape))
        if Shape.equal shape x.ShapeRef then
            x
        else
            make (Op.BroadcastTo(Array.copy shape)) [| x |] (Array.copy shape) x.DType

    let internal reduce (kind: ReduceOp) (axis: int option) (keepDim: bool) (x: Expr) =
        operand kind.Name x
        let name = kind.Name
        match axis with
        | None ->
            if kind = ReduceOp.Max && Shape.size x.ShapeRef = 0 then
                fail name (sprintf "the maximum of an empty tensor (shape %s) is undefined" (Shape.show x.ShapeRef))
            let shape = if keepDim then Array.create x.Rank 1 else [||]
            make (Op.Reduce(kind, None, keepDim)) [| x |] shape x.DType
        | Some a ->
            let a = Shape.axis name x.ShapeRef a
            if kind = ReduceOp.Max && x.ShapeRef[a] = 0 then
                fail name (sprintf "axis %d of shape %s is empty" a (Shape.show x.ShapeRef))
            let shape =
                if keepDim then
                    x.ShapeRef |> Array.mapi (fun i d -> if i = a then 1 else d)
                else
                    x.ShapeRef |> Array.removeAt a
            make (Op.Reduce(kind, Some a, keepDim)) [| x |] shape x.DType

    /// The sum of all elements (a scalar).
    let sum x = reduce ReduceOp.Sum None false x
    /// The sum over one axis, which is dropped.
    let sumAxis axis x = reduce ReduceOp.Sum (Some axis) false x
    /// The sum over one axis, kept with length 1.
    let sumAxisKeep axis x = reduce ReduceOp.Sum (Some axis) true x
    /// The mean of all elements (a scalar).
    let mean x = reduce ReduceOp.Mean None false x
    /// The mean over one axis, which is dropped.
    let meanAxis axis x = reduce ReduceOp.Mean (Some axis) false x
    /// The mean over one axis, kept with length 1.
    let meanAxisKeep axis x = reduce ReduceOp.Mean (Some axis) true x
    /// The largest element (a scalar).
    let max x = reduce ReduceOp.Max None false x
    /// The maximum over one axis, which is dropped.
    let maxAxis axis x = reduce ReduceOp.Max (Some axis) false x
    /// The maximum over one axis, kept with length 1.
    let maxAxisKeep axis x = reduce ReduceOp.Max (Some axis) true x

    /// The seeds' expand: a new axis at `dim` along which x is repeated `copies` times.
    let expand (dim: int) (copies: int) (x: Expr) =
        operand "expand" x
        if dim < 0 || dim > x.Rank then
            fail "expand" (sprintf "dim %d is out of range for shape %s (expected 0..%d)" dim (Shape.show x.ShapeRef) x.Rank)
        if copies < 0 then fail "expand" (sprintf "copies must be non-negative, got %d" copies)
        let withAxis = x.ShapeRef |> Array.insertAt dim 1
        reshape withAxis x |> broadcastTo (x.ShapeRef |> Array.insertAt dim copies)

    /// Sums x down to a shape it was broadcast from: the adjoint of broadcasting.
    let sumTo (shape: int[]) (x: Expr) =
        operand "sumTo" x
        if Shape.equal x.ShapeRef shape then
            x
        else
            let lead = x.Rank - shape.Length
            if lead < 0 then
                fail "sumTo" (sprintf "cannot sum %s down to the larger rank of %s" (Shape.show x.ShapeRef) (Shape.show shape))
            let mutable y = x
            for _ in 1..lead do
                y <- reduce ReduceOp.Sum (Some 0) false y
            for i in 0 .. shape.Length - 1 do
                if shape[i] = 1 && y.ShapeRef[i] <> 1 then y <- reduce ReduceOp.Sum (Some i) true y
            if not (Shape.equal y.ShapeRef shape) then
                fail "sumTo" (sprintf "%s was not broadcast from %s" (Shape.show x.ShapeRef) (Shape.show shape))
            y

    /// Matrix product with NumPy's rules (np.matmul, torch.matmul): (.., m, k) x (.., k, n) -> (.., m, n), the
    /// leading (batch) axes broadcast: equal, 1 against n on either side, or missing at the front of one
    /// operand (a matrix, or a convolution's [G; m; k] weight against [N; G; k; n], is used with every matrix
    /// of the other). A 1-D left operand is a row [1; k] and a 1-D right operand a column [k; 1], the added
    /// axis removed from the result: vector . vector is a scalar.
    let rec matmul (a: Expr) (b: Expr) =
        operand "matmul" a
        operand "matmul" b
        sameDType "matmul" a b
        let sa, sb = a.ShapeRef, b.ShapeRef
        let mismatch () =
            fail
                "matmul"
                (sprintf
                    "shapes %s and %s do not fit: the left operand's last axis must equal the right operand's second-to-last (its only axis if 1-D), and the leading axes must broadcast (equal, 1, or missing at the front of one operand)"
                    (Shape.show sa)
                    (Shape.show sb))
        if a.Rank = 0 || b.Rank = 0 then
            fail
                "matmul"
                (sprintf "operands must have at least 1 axis, got %s and %s (multiply by a scalar with *)" (Shape.show sa) (Shape.show sb))
        if sa[a.Rank - 1] <> sb[Operators.max 0 (b.Rank - 2)] then mismatch ()
        if a.Rank = 1 || b.Rank = 1 then
            // A vector is promoted to a matrix, and the axis it gained is removed from the product.
            let product: Expr =
                matmul (if a.Rank = 1 then reshape [| 1; sa[0] |] a else a) (if b.Rank = 1 then reshape [| sb[0]; 1 |] b else b)
            let p = product.ShapeRef
            let r = p.Length
            let kept =
                p
                |> Array.indexed
                |> Array.filter (fun (i, _) -> not (a.Rank = 1 && i = r - 2 || b.Rank = 1 && i = r - 1))
                |> Array.map snd
            reshape kept product
        elif a.Rank > 2 && b.Rank = 2 then
            // Every matrix of a times one b: one GEMM over a's rows.
            let k = sa[a.Rank - 1]
            let flat = matmul (reshape [| -1; k |] a) b
            reshape (Array.append sa[.. a.Rank - 2] [| sb[1] |]) flat
        else
            let batchA, batchB = sa[.. a.Rank - 3], sb[.. b.Rank - 3]
            let rank = Operators.max batchA.Length batchB.Length
            let dim (s: int[]) i = if i - (rank - s.Length) >= 0 then s[i - (rank - s.Length)] else 1
            let batch =
                Array.init rank (fun i ->
                    let da, db = dim batchA i, dim batchB i
                    if da = db || db = 1 then da
                    elif da = 1 then db
                    else mismatch ())
            make Op.MatMul [| a; b |] (Array.append batch [| sa[a.Rank - 2]; sb[b.Rank - 1] |]) a.DType

    /// Joins tensors along an axis; the other axes must agree.
    let concat (axis: int) (xs: Expr list) =
        for x in xs do
            operand "concat" x
        match xs with
        | [] -> fail "concat" "needs at least one operand"
        | [ x ] -> x
        | first :: _ ->
            let a = Shape.axis "concat" first.ShapeRef axis
            for x in xs do
                sameDType "concat" first x
                let ok =
                    x.Rank = first.Rank
                    && Seq.forall (fun i -> i = a || x.ShapeRef[i] = first.ShapeRef[i]) (seq { 0 .. x.Rank - 1 })
                if not ok then
                    fail "concat" (sprintf "shapes %s and %s differ outside axis %d" (Shape.show first.ShapeRef) (Shape.show x.ShapeRef) a)
            let shape =
                first.ShapeRef
                |> Array.mapi (fun i d -> if i = a then xs |> List.sumBy (fun x -> x.ShapeRef[a]) else d)
            make (Op.Concat a) (Array.ofList xs) shape first.DType

    // The Slice node: `length` elements along axis a from `start`, `step` apart, which the caller has checked.
    let internal sliceNode (a: int) (start: int) (length: int) (step: int) (x: Expr) =
        let n = x.ShapeRef[a]
        if length = n && (step = 1 || n <= 1) then
            x
        else
            make (Op.Slice(a, start, length, step)) [| x |] (x.ShapeRef |> Array.mapi (fun i d -> if i = a then length else d)) x.DType

    /// Elements start .. start+length-1 along an axis.
    let slice (axis: int) (start: int) (length: int) (x: Expr) =
        operand "slice" x
        let a = Shape.axis "slice" x.ShapeRef axis
        if start < 0 || length < 0 || start + length > x.ShapeRef[a] then
            fail "slice" (sprintf "range [%d, %d) is outside axis %d of shape %s" start (start + length) a (Shape.show x.ShapeRef))
        sliceNode a start length 1 x

    // The Pad node along axis a, widths checked here: a gradient rule builds it with interior padding.
    let internal padNode (a: int) (before: int) (after: int) (interior: int) (value: float) (x: Expr) =
        if before < 0 || after < 0 || interior < 0 then
            fail
                "pad"
                (sprintf
                    "padding must be non-negative, got before %d, after %d, interior %d (shape %s)"
                    before
                    after
                    interior
                    (Shape.show x.ShapeRef))
        let n = x.ShapeRef[a]
        if before = 0 && after = 0 && (interior = 0 || n <= 1) then
            x
        else
            let length = before + n + interior * Operators.max 0 (n - 1) + after
            make
                (Op.Pad(a, before, after, interior, value))
                [| x |]
                (x.ShapeRef |> Array.mapi (fun i d -> if i = a then length else d))
                x.DType

    /// `before` and `after` elements of a constant value added along an axis (torch's F.pad in "constant"
    /// mode); the gradient is the slice of x's elements.
    let padWith (value: float) (axis: int) (before: int) (after: int) (x: Expr) =
        operand "pad" x
        padNode (Shape.axis "pad" x.ShapeRef axis) before after 0 value x

    /// Zeros added before and after along an axis.
    let pad (axis: int) (before: int) (after: int) (x: Expr) = padWith 0.0 axis before after x

    // The Gather node: entries along an axis picked by indices, which replace the axis.
    let private take (op: string) (axis: int) (indices: Expr) (x: Expr) =
        operand op indices
        operand op x
        sameDType op x indices
        if x.Rank < 1 then
            fail op (sprintf "cannot pick entries of a scalar (shape %s)" (Shape.show x.ShapeRef))
        let a = Shape.axis op x.ShapeRef axis
        make (Op.Gather a) [| x; indices |] (Array.concat [ x.ShapeRef[.. a - 1]; indices.ShapeRef; x.ShapeRef[a + 1 ..] ]) x.DType

    // The ScatterAdd node: x's entries at the indices' axes (from axis on) added into `rows` zero entries.
    let private scatterInto (op: string) (axis: int) (rows: int) (indices: Expr) (x: Expr) =
        operand op indices
        operand op x
        sameDType op x indices
        if rows < 0 then fail op (sprintf "the number of rows must be non-negative, got %d" rows)
        let rank = x.Rank - indices.Rank + 1
        let a = if axis < 0 then axis + rank else axis
        if rank < 1 || a < 0 || a >= rank || x.ShapeRef[a .. a + indices.Rank - 1] <> indices.ShapeRef then
            fail
                op
                (sprintf
                    "values of shape %s do not hold the indices' shape %s at axis %d"
                    (Shape.show x.ShapeRef)
                    (Shape.show indices.ShapeRef)
                    axis)
        let shape = Array.concat [ x.ShapeRef[.. a - 1]; [| rows |]; x.ShapeRef[a + indices.Rank ..] ]
        make (Op.ScatterAdd(a, rows)) [| x; indices |] shape x.DType

    /// Rows of x (along axis 0) picked by integer-valued indices of any shape: the result has shape
    /// indices.shape @ x.shape[1..]. Embeddings and minibatches.
    let gather (indices: Expr) (x: Expr) = take "gather" 0 indices x

    /// Adds the rows of x into `rows` zero rows at integer-valued indices: the adjoint of gather.
    let scatterAdd (rows: int) (indices: Expr) (x: Expr) = scatterInto "scatterAdd" 0 rows indices x

    /// One-hot rows for integer-valued labels: shape labels.shape @ [classes].
    let oneHot (classes: int) (labels: Expr) =
        operand "oneHot" labels
        if classes <= 0 then
            fail "oneHot" (sprintf "the number of classes must be positive, got %d" classes)
        make (Op.OneHot classes) [| labels |] (Array.append labels.ShapeRef [| classes |]) labels.DType

    /// Softmax along an axis, computed stably.
    let softmax (axis: int) (x: Expr) =
        operand "softmax" x
        make (Op.Softmax(Shape.axis "softmax" x.ShapeRef axis)) [| x |] x.ShapeRef x.DType

    /// Log-softmax along an axis, computed stably (log-sum-exp).
    let logSoftmax (axis: int) (x: Expr) =
        operand "logSoftmax" x
        make (Op.LogSoftmax(Shape.axis "logSoftmax" x.ShapeRef axis)) [| x |] x.ShapeRef x.DType

    // addN on an array the caller gives up (the gradient fold's contributions): no list built and copied.
    let internal addNOf (xs: Expr[]) =
        for x in xs do
            operand "addN" x
        match xs with
        | [||] -> fail "addN" "needs at least one operand"
        | [| x |] -> x
        | [| a; b |] when Shape.equal a.ShapeRef b.ShapeRef -> add a b
        | _ ->
            let first = xs[0]
            for x in xs do
                sameDType "addN" first x
                if not (Shape.equal x.ShapeRef first.ShapeRef) then
                    fail "addN" (sprintf "shapes %s and %s differ" (Shape.show first.ShapeRef) (Shape.show x.ShapeRef))
            make Op.AddN xs first.ShapeRef first.DType

    /// The sum of same-shape expressions.
    let addN (xs: Expr list) = addNOf (Array.ofList xs)

    /// a where the condition (a 0/1 tensor) is nonzero, else b; the three broadcast together (NumPy rules).
    /// The condition gets no gradient.
    let where (condition: Expr) (a: Expr) (b: Expr) =
        operand "where" condition
        operand "where" a
        operand "where" b
        sameDType "where" a b
        sameDType "where" a condition
        let shape = Shape.broadcast "where" condition.ShapeRef (Shape.broadcast "where" a.ShapeRef b.ShapeRef)
        make Op.Where [| condition; a; b |] shape a.DType

    // ops group: reductions.
    /// The product of all elements (a scalar); 1 for an empty tensor.
    let prod x = reduce ReduceOp.Prod None false x
    /// The product over one axis, which is dropped.
    let prodAxis axis x = reduce ReduceOp.Prod (Some axis) false x
    /// The product over one axis, kept with length 1.
    let prodAxisKeep axis x = reduce ReduceOp.Prod (Some axis) true x
    /// log(sum(e ** x)) over all elements (a scalar), computed stably.
    let logSumExp x = reduce ReduceOp.LogSumExp None false x
    /// log(sum(e ** x)) over one axis, which is dropped.
    let logSumExpAxis axis x = reduce ReduceOp.LogSumExp (Some axis) false x
    /// log(sum(e ** x)) over one axis, kept with length 1.
    let logSumExpAxisKeep axis x = reduce ReduceOp.LogSumExp (Some axis) true x
    /// The smallest element (a scalar): -max(-x), whose gradient shares ties equally, as max's.
    let min x = neg (max (neg x))
    /// The minimum over one axis, which is dropped.
    let minAxis axis x = neg (maxAxis axis (neg x))
    /// The minimum over one axis, kept with length 1.
    let minAxisKeep axis x = neg (maxAxisKeep axis (neg x))

    // Several distinct axes of x, normalised and sorted, or an error naming the operation.
    let private axesOf (op: string) (axes: int list) (x: Expr) =
        operand op x
        if axes.IsEmpty then
            fail op (sprintf "give at least one axis of shape %s (the whole-tensor reductions take none)" (Shape.show x.ShapeRef))
        let normalised = axes |> List.map (Shape.axis op x.ShapeRef) |> List.sort
        if List.distinct normalised <> normalised then
            fail op (sprintf "axes [%s] of shape %s repeat an axis" (String.Join(", ", axes)) (Shape.show x.ShapeRef))
        normalised

    // Reduces over several axes, one at a time from the last (each kept, so the others keep their numbers).
    let private reduceAxes (kind: ReduceOp) (axes: int list) (keepDim: bool) (x: Expr) =
        let axes = axesOf kind.Name axes x
        let kept = List.foldBack (fun a y -> reduce kind (Some a) true y) axes x
        if keepDim then
            kept
        else
            reshape
                (x.ShapeRef
                 |> Array.indexed
                 |> Array.filter (fun (i, _) -> not (List.contains i axes))
                 |> Array.map snd)
                kept

    /// The sum over several axes at once (NumPy's sum with a tuple of axes).
    let sumAxes (axes: int list) (keepDim: bool) (x: Expr) = reduceAxes ReduceOp.Sum axes keepDim x

    /// The mean over several axes at once.
    let meanAxes (axes: int list) (keepDim: bool) (x: Expr) = reduceAxes ReduceOp.Mean axes keepDim x

    // The variance over the given axes (None: all, a scalar): the mean square deviation, divided by n - 1
    // when unbiased.
    let private varianceOver (op: string) (unbiased: bool) (axes: int list option) (keepDim: bool) (x: Expr) =
        operand op x
        let axisList =
            match axes with
            | Some list -> axesOf op list x
            | None -> List.init x.Rank id
        let n = axisList |> List.fold (fun acc a -> acc * x.ShapeRef[a]) 1
        if unbiased && n < 2 then
            fail op (sprintf "an unbiased estimate needs at least 2 elements; the axes of shape %s hold %d" (Shape.show x.ShapeRef) n)
        let centred =
            match axes with
            | None -> sub x (mean x)
            | Some _ -> sub x (reduceAxes ReduceOp.Mean axisList true x)
        let squares = mul centred centred
        let total =
            match axes with
            | None -> sum squares
            | Some _ -> reduceAxes ReduceOp.Sum axisList keepDim squares
        div total (scalarLike x (float (if unbiased then n - 1 else n)))

    /// The variance of all elements (a scalar); unbiased divides by n - 1 (Bessel), else by n.
    let variance (unbiased: bool) (x: Expr) = varianceOver "variance" unbiased None false x

    /// The variance over several axes (dropped unless keepDim).
    let varianceAxes (unbiased: bool) (axes: int list) (keepDim: bool) (x: Expr) = varianceOver "variance" unbiased (Some axes) keepDim x

    /// The standard deviation of all elements (a scalar); unbiased as in variance.
    let std (unbiased: bool) (x: Expr) = sqrt (varianceOver "std" unbiased None false x)

    /// The standard deviation over several axes (dropped unless keepDim).
    let stdAxes (unbiased: bool) (axes: int list) (keepDim: bool) (x: Expr) = sqrt (varianceOver "std" unbiased (Some axes) keepDim x)

    /// Zeros shaped like x.
    let zerosLike (x: Expr) = constant (Tensor.zeros x.DType x.ShapeRef)

    /// Ones shaped like x.
    let onesLike (x: Expr) = constant (Tensor.ones x.DType x.ShapeRef)

    // Convolution and pooling (the conv group).

    let private showList (values: int list) = "[" + String.Join(", ", values) + "]"

    /// Checks a window's own parameters: one entry per spatial axis (1 or 2) in each list, positive kernel,
    /// stride and dilation, non-negative padding.
    let private checkWindow (op: string) (w: Window) =
        let spatial = w.Kernel.Length
        if spatial < 1 || spatial > 2 then
            fail op (sprintf "the kernel %s has %d axes; 1 or 2 spatial axes are supported" (showList w.Kernel) spatial)
        for name, values in [ "stride", w.Stride; "padding", w.Padding; "dilation", w.Dilation ] do
            if values.Length <> spatial then
                fail op (sprintf "%s %s has %d entries, expected %d (one per spatial axis)" name (showList values) values.Length spatial)
        for name, values, least in
            [
                "kernel size", w.Kernel, 1
                "stride", w.Stride, 1
                "dilation", w.Dilation, 1
                "padding", w.Padding, 0
            ] do
            if values |> List.exists (fun v -> v < least) then
                let what = if least = 1 then "positive" else "non-negative"
                fail op (sprintf "%s must be %s, got %s" name what (showList values))

    /// The output's spatial size of a window over an image [N; C; spatial...], failing when the kernel's
    /// extent is larger than a padded spatial axis (the output would be empty).
    let private windowOver (op: string) (w: Window) (image: int[]) : int[] =
        checkWindow op w
        let spatial = w.Kernel.Length
        if image.Length <> spatial + 2 then
            fail op (sprintf "expects an input [N; C; %d spatial axes] of rank %d, got shape %s" spatial (spatial + 2) (Shape.show image))
        let size = image[2..]
        for i in 0 .. spatial - 1 do
            let extent = w.Dilation[i] * (w.Kernel[i] - 1) + 1
            let padded = size[i] + 2 * w.Padding[i]
            if extent > padded then
                fail
                    op
                    (sprintf
                        "along spatial axis %d of input shape %s, the kernel's extent %d (kernel %d, dilation %d) is larger than the padded input %d (%d + 2 x padding %d): the output size would be below 1"
                        i
                        (Shape.show image)
                        extent
                        w.Kernel[i]
                        w.Dilation[i]
                        padded
                        size[i]
                        w.Padding[i])
        w.OutputSize size

    /// im2col, PyTorch's F.unfold: x [N; C; spatial...] (1 or 2 spatial axes) to columns
    /// [N; C * prod kernel; prod output size], each column one window's taps, channel-major, zeros where a
    /// tap falls in the padding. Its adjoint is fold.
    let unfold (window: Window) (x: Expr) =
        operand "unfold" x
        let size = windowOver "unfold" window x.ShapeRef
        let taps = List.fold (*) 1 window.Kernel
        make (Op.Unfold window) [| x |] [| x.ShapeRef[0]; x.ShapeRef[1] * taps; Shape.size size |] x.DType

    /// col2im, PyTorch's F.fold: columns [N; C * prod kernel; windows] summed into [N; C; size...] where
    /// windows overlap; the adjoint of unfold.
    let fold (size: int list) (window: Window) (columns: Expr) =
        operand "fold" columns
        checkWindow "fold" window
        let shape = columns.ShapeRef
        let taps = List.fold (*) 1 window.Kernel
        if columns.Rank <> 3 || shape[1] % taps <> 0 then
            fail
                "fold"
                (sprintf
                    "expects columns [N; C * %d; windows] (rank 3, axis 1 a multiple of the kernel %s's %d taps), got shape %s"
                    taps
                    (showList window.Kernel)
                    taps
                    (Shape.show shape))
        if size.Length <> window.Kernel.Length then
            fail
                "fold"
                (sprintf
                    "the output size %s has %d axes but the kernel %s has %d"
                    (showList size)
                    size.Length
                    (showList window.Kernel)
                    window.Kernel.Length)
        let image = Array.append [| shape[0]; shape[1] / taps |] (Array.ofList size)
        Shape.validate "fold" image
        let windows = Shape.size (windowOver "fold" window image)
        if windows <> shape[2] then
            fail
                "fold"
                (sprintf
                    "columns of shape %s hold %d windows, but the window %s over output size %s makes %d"
                    (Shape.show shape)
                    shape[2]
                    (String.Join(", ", window.Parameters))
                    (showList size)
                    windows)
        make (Op.Fold window) [| columns |] image columns.DType

    /// Convolution of x [N; C; spatial...] with weight [O; C / groups; kernel...] as one GEMM per sample and
    /// group: the unfolded input [N; G; C/G K; L] times the weight as [G; O/G; C/G K], which is already
    /// [N; O; L] in memory. Gradients follow from unfold's (fold) and matmul's rules, so they are expressions
    /// and differentiate again.
    let private conv (op: string) (spatial: int) (spec: ConvSpec) (x: Expr) (weight: Expr) =
        operand op x
        operand op weight
        sameDType op x weight
        let axes = if spatial = 1 then "L" else "H; W"
        if x.Rank <> spatial + 2 then
            fail op (sprintf "expects an input [N; C; %s] of rank %d, got shape %s" axes (spatial + 2) (Shape.show x.ShapeRef))
        if weight.Rank <> spatial + 2 then
            fail
                op
                (sprintf
                    "expects a weight [O; C / groups; %s] of rank %d, got shape %s"
                    (axes.ToLowerInvariant())
                    (spatial + 2)
                    (Shape.show weight.ShapeRef))
        let groups = spec.Groups
        let c, o = x.ShapeRef[1], weight.ShapeRef[0]
        if groups <= 0 then fail op (sprintf "groups must be positive, got %d" groups)
        if c % groups <> 0 || o % groups <> 0 then
            fail
                op
                (sprintf
                    "groups %d must divide both the input's %d channels and the weight's %d output channels (input %s, weight %s)"
                    groups
                    c
                    o
                    (Shape.show x.ShapeRef)
                    (Shape.show weight.ShapeRef))
        if weight.ShapeRef[1] <> c / groups then
            fail
                op
                (sprintf
                    "the weight %s has %d input channels per group, expected %d (input %s: %d channels in %d groups)"
                    (Shape.show weight.ShapeRef)
                    weight.ShapeRef[1]
                    (c / groups)
                    (Shape.show x.ShapeRef)
                    c
                    groups)
        let window =
            {
                Window.Kernel = List.ofArray weight.ShapeRef[2..]
                Stride = spec.Stride
                Padding = spec.Padding
                Dilation = spec.Dilation
            }
        let size = windowOver op window x.ShapeRef
        let n = x.ShapeRef[0]
        let perGroup = c / groups * Shape.size weight.ShapeRef[2..]
        let columns = unfold window x |> reshape [| n; groups; perGroup; Shape.size size |]
        matmul (reshape [| groups; o / groups; perGroup |] weight) columns
        |> reshape (Array.append [| n; o |] size)

    /// 1-D convolution (PyTorch's conv1d without bias): x [N; C; L], weight [O; C / groups; k] -> [N; O; L'].
    let conv1d (spec: ConvSpec) (x: Expr) (weight: Expr) = conv "conv1d" 1 spec x weight

    /// 2-D convolution (PyTorch's conv2d without bias): x [N; C; H; W], weight [O; C / groups; kh; kw]
    /// -> [N; O; H'; W'], H' = (H + 2 padding - dilation (kh - 1) - 1) / stride + 1, and likewise W'.
    let conv2d (spec: ConvSpec) (x: Expr) (weight: Expr) = conv "conv2d" 2 spec x weight

    /// Checks a pooling window over x [N; C; H; W]; gives the window and the output's shape.
    let private pooling (op: string) (spec: PoolSpec) (x: Expr) =
        operand op x
        if x.Rank <> 4 then
            fail op (sprintf "expects an input [N; C; H; W] of rank 4, got shape %s" (Shape.show x.ShapeRef))
        if spec.Kernel.Length <> 2 then
            fail op (sprintf "the kernel %s has %d entries, expected 2 (one per spatial axis)" (showList spec.Kernel) spec.Kernel.Length)
        let window =
            { Window.Kernel = spec.Kernel; Stride = spec.Stride; Padding = spec.Padding; Dilation = [ 1; 1 ] }
        let size = windowOver op window x.ShapeRef
        // PyTorch's rule: then every window overlaps the input, so a maximum always has a tap to pick.
        if List.exists2 (fun p k -> 2 * p > k) spec.Padding spec.Kernel then
            fail op (sprintf "padding %s must be at most half the kernel %s" (showList spec.Padding) (showList spec.Kernel))
        window, Array.append x.ShapeRef[..1] size

    /// The values at each window's first arg-max of keys (same shape): max pooling's selection.
    let internal maxPoolPick (window: Window) (keys: Expr) (values: Expr) =
        make (Op.MaxPoolPick window) [| keys; values |] (Array.append keys.ShapeRef[..1] (window.OutputSize keys.ShapeRef[2..])) keys.DType

    /// The pooled values added at each window's first arg-max of keys, into zeros of keys' shape.
    let internal maxPoolScatter (window: Window) (keys: Expr) (pooled: Expr) =
        make (Op.MaxPoolScatter window) [| keys; pooled |] keys.ShapeRef keys.DType

    /// Max pooling of x [N; C; H; W] (PyTorch's max_pool2d, padding with -infinity, output size rounded
    /// down). The gradient goes to the first maximum of each window in row-major window order, as in
    /// PyTorch's CPU kernel (ties are not shared); a NaN in a window is its maximum.
    let maxPool2d (spec: PoolSpec) (x: Expr) =
        let window, shape = pooling "maxPool2d" spec x
        make (Op.MaxPoolPick window) [| x; x |] shape x.DType

    /// Average pooling of x [N; C; H; W] (PyTorch's avg_pool2d with count_include_pad = true: padded zeros
    /// count in every window's mean): the mean of each window's unfolded taps.
    let avgPool2d (spec: PoolSpec) (x: Expr) =
        let window, shape = pooling "avgPool2d" spec x
        let s = x.ShapeRef
        reshape [| s[0] * s[1]; 1; s[2]; s[3] |] x |> unfold window |> meanAxis 1 |> reshape shape

    /// The mean over each channel's H x W plane: [N; C; H; W] -> [N; C; 1; 1] (adaptive_avg_pool2d to 1).
    let globalAvgPool2d (x: Expr) =
        operand "globalAvgPool2d" x
        if x.Rank <> 4 then
            fail "globalAvgPool2d" (sprintf "expects an input [N; C; H; W] of rank 4, got shape %s" (Shape.show x.ShapeRef))
        let s = x.ShapeRef
        reshape [| s[0]; s[1]; s[2] * s[3] |] x |> meanAxisKeep 2 |> reshape [| s[0]; s[1]; 1; 1 |]

    // shapeops group.

    /// Python's slice start:stop:step along an axis (start and stop None for the ends in the step's direction,
    /// negative for positions from the end, as x[start:stop:step]); a negative step reads backwards. Positions
    /// outside the axis are errors rather than clipped. The gradient is a strided scatter (an interior pad).
    let stridedSlice (axis: int) (start: int option) (stop: int option) (step: int) (x: Expr) =
        operand "stridedSlice" x
        let a = Shape.axis "stridedSlice" x.ShapeRef axis
        let n = x.ShapeRef[a]
        let show (v: int option) = v |> Option.map string |> Option.defaultValue "None"
        let range () =
            sprintf "[%s:%s:%d] along axis %d of shape %s" (show start) (show stop) step a (Shape.show x.ShapeRef)
        if step = 0 then fail "stridedSlice" (sprintf "the step must not be 0, got %s" (range ()))
        let position (v: int) = if v < 0 then v + n else v
        // Start and stop as positions; a backward slice to the front stops at -1.
        let first, last =
            if step > 0 then
                defaultArg (Option.map position start) 0, defaultArg (Option.map position stop) n
            else
                defaultArg (Option.map position start) (n - 1), defaultArg (Option.map position stop) -1
        let inRange =
            if step > 0 then
                0 <= first && first <= last && last <= n
            else
                // An empty axis has no position to start from: only [::-k] fits it.
                (n = 0 && first = -1 && last = -1) || (-1 <= last && last <= first && first < n)
        if not inRange then
            fail
                "stridedSlice"
                (sprintf
                    "%s: expected %s within the axis's %d elements, not clipped"
                    (range ())
                    (if step > 0 then "0 <= start <= stop <= length" else "-1 <= stop <= start < length")
                    n)
        let length = (Operators.abs (last - first) + Operators.abs step - 1) / Operators.abs step
        sliceNode a (if length = 0 then 0 else first) length step x

    /// x with the order of its elements reversed along each of the given axes (torch.flip): a backward slice
    /// per axis, its own gradient.
    let flip (axes: int list) (x: Expr) =
        operand "flip" x
        let normalised = axes |> List.map (Shape.axis "flip" x.ShapeRef)
        if List.distinct normalised <> normalised then
            fail "flip" (sprintf "axes [%s] of shape %s repeat an axis" (String.Join(", ", axes)) (Shape.show x.ShapeRef))
        normalised |> List.fold (fun y a -> sliceNode a (y.ShapeRef[a] - 1) y.ShapeRef[a] -1 y) x

    /// Entries of x along an axis picked by integer-valued indices: torch.index_select(x, axis, indices) for 1-D
    /// indices; indices of any shape replace the axis (NumPy's take). The gradient adds into the picked
    /// entries (indexAdd), a repeated index accumulating.
    let indexSelect (axis: int) (indices: Expr) (x: Expr) = take "indexSelect" axis indices x

    /// The adjoint of indexSelect: x's entries added into `rows` zero entries along an axis at integer-valued
    /// indices (torch's zeros(...).index_add(axis, indices, x)); x holds the indices' shape from the axis on,
    /// and the result has one axis of length rows in its place.
    let indexAdd (axis: int) (rows: int) (indices: Expr) (x: Expr) = scatterInto "indexAdd" axis rows indices x

    let private cumulative (op: string) (reverse: bool) (axis: int) (x: Expr) =
        operand op x
        make (Op.Cumsum(Shape.axis op x.ShapeRef axis, reverse)) [| x |] x.ShapeRef x.DType

    /// Running sums along an axis (torch.cumsum): element i is the sum of elements 0..i. Its gradient is the
    /// reversed running sum of the incoming gradient.
    let cumsum (axis: int) (x: Expr) = cumulative "cumsum" false axis x

    /// Running sums along an axis from its end: element i is the sum of elements i..n-1 (cumsum of the
    /// flipped axis, flipped back, in one pass).
    let reverseCumsum (axis: int) (x: Expr) = cumulative "reverseCumsum" true axis x


/// Operators, so that models read like mathematics. A float operand becomes a constant of the other
/// operand's dtype. F#'s exp, log, sqrt, abs and tanh work on expressions through the members below.
type Expr with
    static member (+)(a: Expr, b: Expr) = Expr.add a b
    static member (+)(a: Expr, b: float) = Expr.add a (Expr.scalarLike a b)
    static member (+)(a: float, b: Expr) = Expr.add (Expr.scalarLike b a) b
    static member (-)(a: Expr, b: Expr) = Expr.sub a b
    static member (-)(a: Expr, b: float) = Expr.sub a (Expr.scalarLike a b)
    static member (-)(a: float, b: Expr) = Expr.sub (Expr.scalarLike b a) b
    static member (*)(a: Expr, b: Expr) = Expr.mul a b
    static member (*)(a: Expr, b: float) = Expr.mul a (Expr.scalarLike a b)
    static member (*)(a: float, b: Expr) = Expr.mul (Expr.scalarLike b a) b
    static member (/)(a: Expr, b: Expr) = Expr.div a b
    static member (/)(a: Expr, b: float) = Expr.div a (Expr.scalarLike a b)
    static member (/)(a: float, b: Expr) = Expr.div (Expr.scalarLike b a) b
    static member (~-)(a: Expr) = Expr.neg a
    /// x ** p for a constant p (F#'s ** operator).
    static member Pow(a: Expr, p: float) = Expr.powScalar p a
    /// a ** b elementwise (F#'s ** operator).
    static member Pow(a: Expr, b: Expr) = Expr.pow a b
    /// Lets F#'s exp work on expressions.
    static member Exp(a: Expr) = Expr.exp a
    /// Lets F#'s log work on expressions.
    static member Log(a: Expr) = Expr.log a
    /// Lets F#'s sqrt work on expressions.
    static member Sqrt(a: Expr) = Expr.sqrt a
    /// Lets F#'s abs work on expressions.
    static member Abs(a: Expr) = Expr.abs a
    /// Lets F#'s tanh work on expressions.
    static member Tanh(a: Expr) = Expr.tanh a
