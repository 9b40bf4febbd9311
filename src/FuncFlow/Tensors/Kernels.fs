namespace FuncFlow

open System
open System.Buffers
open System.Numerics
open System.Numerics.Tensors
open System.Runtime.CompilerServices
open System.Runtime.InteropServices

/// Elementwise functions of one tensor.
[<RequireQualifiedAccess>]
type UnaryOp =
    | Neg
    | Exp
    | Log
    | Sqrt
    | Abs
    | Sigmoid
    | Tanh
    | Relu
    | Softplus
    /// -1, 0 or 1 (NaN stays NaN); its derivative is zero.
    | Sign
    /// 1 where x > 0, else 0; the derivative of relu.
    | Step
    // ops group: elementwise functions added for convolutional networks.
    | Sin
    | Cos
    /// log(1 + x), accurate near 0.
    | Log1p
    /// e ** x - 1, accurate near 0.
    | Expm1
    /// The error function.
    | Erf
    /// 1 - erf x, accurate where erf x is near 1.
    | Erfc
    /// x * Phi(x) with the exact normal CDF (erf), as torch's gelu with approximate="none".
    | Gelu
    /// x * sigmoid(x).
    | Silu
    /// log(sigmoid(x)), computed stably.
    | LogSigmoid
    /// Rounding down; its derivative is zero.
    | Floor
    /// Rounding up; its derivative is zero.
    | Ceil
    /// Rounding to the nearest whole number, halves to even (as torch.round); its derivative is zero.
    | Round
    /// x where x > 0, else slope * x.
    | LeakyRelu of slope: float
    /// x where x > 0, else alpha * (e ** x - 1).
    | Elu of alpha: float
    /// min(max(x, min), max); an absent bound is an infinity. NaN stays NaN.
    | Clamp of min: float * max: float

    /// The lower-case name used in formulas and messages.
    member op.Name =
        match op with
        | Neg -> "neg"
        | Exp -> "exp"
        | Log -> "log"
        | Sqrt -> "sqrt"
        | Abs -> "abs"
        | Sigmoid -> "sigmoid"
        | Tanh -> "tanh"
        | Relu -> "relu"
        | Softplus -> "softplus"
        | Sign -> "sign"
        | Step -> "step"
        | Sin -> "sin"
        | Cos -> "cos"
        | Log1p -> "log1p"
        | Expm1 -> "expm1"
        | Erf -> "erf"
        | Erfc -> "erfc"
        | Gelu -> "gelu"
        | Silu -> "silu"
        | LogSigmoid -> "logSigmoid"
        | Floor -> "floor"
        | Ceil -> "ceil"
        | Round -> "round"
        | LeakyRelu _ -> "leakyRelu"
        | Elu _ -> "elu"
        | Clamp _ -> "clamp"

    /// The parameters, as formulas and messages show them, e.g. ["slope=0.2"].
    member op.Parameters: string list =
        let number (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
        match op with
        | LeakyRelu slope -> [ "slope=" + number slope ]
        | Elu alpha -> [ "alpha=" + number alpha ]
        | Clamp(lo, hi) ->
            [
                if not (Double.IsNegativeInfinity lo) then yield "min=" + number lo
                if not (Double.IsPositiveInfinity hi) then yield "max=" + number hi
            ]
        | _ -> []

/// Elementwise functions of two tensors, with NumPy broadcasting.
[<RequireQualifiedAccess>]
type BinaryOp =
    | Add
    | Sub
    | Mul
    | Div
    | Pow
    /// 1 where a = b, else 0; its derivative is zero.
    | Equal
    // ops group: elementwise maximum and minimum (NaN propagates).
    | Maximum
    | Minimum

    /// The symbol or name used in formulas and messages.
    member op.Name =
        match op with
        | Add -> "+"
        | Sub -> "-"
        | Mul -> "*"
        | Div -> "/"
        | Pow -> "**"
        | Equal -> "=="
        | Maximum -> "maximum"
        | Minimum -> "minimum"

/// Reductions over an axis (or over everything).
[<RequireQualifiedAccess>]
type ReduceOp =
    | Sum
    | Mean
    | Max
    // ops group.
    | Prod
    /// log(sum(e ** x)), computed stably (the maximum subtracted first).
    | LogSumExp

    /// The lower-case name used in messages.
    member kind.Name =
        match kind with
        | Sum -> "sum"
        | Mean -> "mean"
        | Max -> "max"
        | Prod -> "prod"
        | LogSumExp -> "logSumExp"

// Convolution and pooling (the conv group).

/// A sliding window over the spatial axes of an [N; C; spatial...] tensor (1 or 2 spatial axes): one entry
/// per spatial axis in each list. Convolution's im2col (Expr.unfold) and pooling read their input through it.
type Window =
    {
        Kernel: int list
        Stride: int list
        /// Zeros (or, for max pooling, -infinity) added on both sides of each spatial axis.
        Padding: int list
        /// The spacing of the kernel's taps: 1 reads adjacent elements.
        Dilation: int list
    }

    /// The output's spatial size for an input of the given spatial size (PyTorch's rule, rounding down):
    /// (size + 2 padding - dilation (kernel - 1) - 1) / stride + 1 along each axis.
    member w.OutputSize(size: int[]) : int[] =
        Array.init size.Length (fun i ->
            let effective = w.Dilation[i] * (w.Kernel[i] - 1) + 1
            (size[i] + 2 * w.Padding[i] - effective) / w.Stride[i] + 1)

    /// The parameters as Op.Describe lists them.
    member w.Parameters: string list =
        let show (name: string) (values: int list) = sprintf "%s=[%s]" name (String.Join(", ", values))
        [
            show "kernel" w.Kernel
            show "stride" w.Stride
            show "padding" w.Padding
            show "dilation" w.Dilation
        ]

/// A window's geometry on the last two axes of an image batch viewed as [Planes; H; W]; a 1-D input is one
/// row (H = 1, a 1-tall kernel). Read from the Window's lists on each kernel call, allocating nothing.
[<Struct>]
type internal Window2d =
    {
        Planes: int
        H: int
        W: int
        KH: int
        KW: int
        SH: int
        SW: int
        PH: int
        PW: int
        DH: int
        DW: int
        OH: int
        OW: int
    }

    // The value along the height (first = true) or width axis; a 1-D window has `whenOne` along the height.
    static member private Along(values: int list, first: bool, whenOne: int) : int =
        if values.Length = 2 then (if first then values[0] else values[1])
        elif first then whenOne
        else values[0]

    // No closures or tuples: plans call this on every run, which must allocate nothing.
    static member Of(image: int[], w: Window) : Window2d =
        let two = w.Kernel.Length = 2
        let r = image.Length
        let mutable planes = 1
        for i in 0 .. r - (if two then 3 else 2) do
            planes <- planes * image[i]
        let h = if two then image[r - 2] else 1
        let width = image[r - 1]
        let kh, kw = Window2d.Along(w.Kernel, true, 1), Window2d.Along(w.Kernel, false, 1)
        let sh, sw = Window2d.Along(w.Stride, true, 1), Window2d.Along(w.Stride, false, 1)
        let ph, pw = Window2d.Along(w.Padding, true, 0), Window2d.Along(w.Padding, false, 0)
        let dh, dw = Window2d.Along(w.Dilation, true, 1), Window2d.Along(w.Dilation, false, 1)
        {
            Planes = planes
            H = h
            W = width
            KH = kh
            KW = kw
            SH = sh
            SW = sw
            PH = ph
            PW = pw
            DH = dh
            DW = dw
            OH = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1
            OW = (width + 2 * pw - dw * (kw - 1) - 1) / sw + 1
        }

/// Scalar helpers for the kernels, generic over float and float32.
module internal Scalar =
    let inline gt<'T when 'T :> IFloatingPointIeee754<'T>> (a: 'T) (b: 'T) = 'T.op_GreaterThan (a, b)
    let inline eq<'T when 'T :> IFloatingPointIeee754<'T>> (a: 'T) (b: 'T) = 'T.op_Equality (a, b)
    let inline lt<'T when 'T :> IFloatingPointIeee754<'T>> (a: 'T) (b: 'T) = 'T.op_LessThan (a, b)
    let inline ofFloat<'T when 'T :> IFloatingPointIeee754<'T>> (x: float) : 'T = 'T.CreateTruncating x
    let inline toFloat<'T when 'T :> IFloatingPointIeee754<'T>> (x: 'T) : float = Double.CreateTruncating x

    // Stable in both tails: softplus x = max(x, 0) + log1p(exp(-|x|)).
    let softplus<'T when 'T :> IFloatingPointIeee754<'T>> (x: 'T) : 'T = 'T.Max(x, 'T.Zero) + 'T.LogP1('T.Exp(-('T.Abs x)))

    let sign<'T when 'T :> IFloatingPointIeee754<'T>> (x: 'T) : 'T =
        if gt x 'T.Zero then 'T.One
        elif lt x 'T.Zero then -'T.One
        else x

    /// Below this magnitude tanh is computed by tanhNearZero.
    let tanhSmall = 0.625

    // Cephes' tanh on |x| < 0.625: x + x^3 P(x^2) / Q(x^2), within 2 ulp of tanh in float64 and 1 in float32.
    let tanhP = [| -9.64399179425052238628E-1; -9.92877231001918586564E1; -1.61468768441708447952E3 |]
    let tanhQ = [| 1.12811678491632931402E2; 2.23548839060100448583E3; 4.84406305325125486048E3 |]

    /// tanh for |x| < tanhSmall, on scalars or on vectors (any type with the arithmetic operators).
    let inline tanhNearZero (constant: float -> ^V) (x: ^V) : ^V =
        let s = x * x
        let p = (constant tanhP[0] * s + constant tanhP[1]) * s + constant tanhP[2]
        let q = ((s + constant tanhQ[0]) * s + constant tanhQ[1]) * s + constant tanhQ[2]
        x + x * s * (p / q)

/// Float64 functions that TensorPrimitives lacks or computes inaccurately (its ExpM1 and LogP1 are
/// exp x - 1 and log (1 + x), which lose every digit near 0); float32 kernels call them and round once.
module internal Special =
    let private sqrtHalf = 0.70710678118654752440

    /// log(1 + x) to a few ulp: the rounding of u = 1 + x cancels in log u * (x / (u - 1)) (Goldberg, 1991).
    let log1p (x: float) =
        let u = 1.0 + x
        if u = 1.0 then x
        elif Double.IsPositiveInfinity u then u
        else Math.Log u * (x / (u - 1.0))

    /// e ** x - 1 to a few ulp, by the same cancellation (Kahan's trick).
    let expm1 (x: float) =
        let u = Math.Exp x
        if u = 1.0 then x
        elif u - 1.0 = -1.0 then -1.0
        elif Double.IsPositiveInfinity u then u
        else (u - 1.0) * (x / Math.Log u)

    // W. J. Cody's rational approximations (Math. Comp. 23, 1969; netlib specfun CALERF), minimax to beyond
    // float64 precision on each range: a fixed handful of operations per value, where a series or continued
    // fraction needs dozens to hundreds near 0.5 (GELU's whole working range).
    let private erfA =
        [|
            3.16112374387056560e00
            1.13864154151050156e02
            3.77485237685302021e02
            3.20937758913846947e03
            1.85777706184603153e-1
        |]
    let private erfB =
        [| 2.36012909523441209e01; 2.44024637934444173e02; 1.28261652607737228e03; 2.84423683343917062e03 |]
    let private erfcC =
        [|
            5.64188496988670089e-1
            8.88314979438837594e00
            6.61191906371416295e01
            2.98635138197400131e02
            8.81952221241769090e02
            1.71204761263407058e03
            2.05107837782607147e03
            1.23033935479799725e03
            2.15311535474403846e-8
        |]
    let private erfcD =
        [|
            1.57449261107098347e01
            1.17693950891312499e02
            5.37181101862009858e02
            1.62138957456669019e03
            3.29079923573345963e03
            4.36261909014324716e03
            3.43936767414372164e03
            1.23033935480374942e03
        |]
    let private erfcP =
        [|
            3.05326634961232344e-1
            3.60344899949804439e-1
            1.25781726111229246e-1
            1.60837851487422766e-2
            6.58749161529837803e-4
            1.63153871373020978e-2
        |]
    let private erfcQ =
        [|
            2.56852019228982242e00
            1.87295284992346725e00
            5.27905102951428412e-1
            6.05183413124413191e-2
            2.33520497626869185e-3
        |]
    let private oneOverSqrtPi = 5.6418958354775628695e-1

    // erf x for |x| <= 0.46875.
    let private erfBelow (x: float) =
        let z = x * x
        let mutable num = erfA[4] * z
        let mutable den = z
        for i in 0..2 do
            num <- (num + erfA[i]) * z
            den <- (den + erfB[i]) * z
        x * (num + erfA[3]) / (den + erfB[3])

    // erfc y for y > 0.46875 (0 beyond 26.6, where it underflows): e^-y^2 times a rational function, with
    // y^2 split as a 1/16-multiple plus a remainder so that large y loses nothing to the rounding of y^2.
    let private erfcAbove (y: float) =
        if y >= 26.6 then
            0.0
        else
            let r =
                if y <= 4.0 then
                    let mutable num = erfcC[8] * y
                    let mutable den = y
                    for i in 0..6 do
                        num <- (num + erfcC[i]) * y
                        den <- (den + erfcD[i]) * y
                    (num + erfcC[7]) / (den + erfcD[7])
                else
                    let z = 1.0 / (y * y)
                    let mutable num = erfcP[5] * z
                    let mutable den = z
                    for i in 0..3 do
                        num <- (num + erfcP[i]) * z
                        den <- (den + erfcQ[i]) * z
                    (oneOverSqrtPi - z * (num + erfcP[4]) / (den + erfcQ[4])) / y
            let hi = Math.Truncate(y * 16.0) / 16.0
            let rest = (y - hi) * (y + hi)
            Math.Exp(-hi * hi) * Math.Exp(-rest) * r

    /// The error function, within a few ulp of the correctly rounded value.
    let erf (x: float) =
        let a = abs x
        if a <= 0.46875 then erfBelow x
        elif Double.IsNaN x then x
        elif x > 0.0 then 1.0 - erfcAbove a
        else erfcAbove a - 1.0

    /// 1 - erf x, with full relative precision in the upper tail.
    let erfc (x: float) =
        if x < 0.46875 then 1.0 - erf x
        elif Double.IsNaN x then x
        else erfcAbove x

    /// x Phi(x) = x erfc(-x / sqrt 2) / 2: erfc keeps the lower tail's digits that 1 + erf loses.
    let gelu (x: float) = 0.5 * x * erfc (-x * sqrtHalf)

    /// x / (1 + e ** -x), as torch.silu computes it.
    let silu (x: float) = x / (1.0 + Math.Exp(-x))

    /// log sigmoid x = min(x, 0) - log(1 + e ** -|x|): stable in both tails.
    let logSigmoid (x: float) = Math.Min(x, 0.0) - log1p (Math.Exp(-(abs x)))

    /// x where x > 0, else alpha (e ** x - 1).
    let elu (alpha: float) (x: float) = if x > 0.0 then x else alpha * expm1 x

    /// x where x > 0, else slope x.
    let leakyRelu (slope: float) (x: float) = if x > 0.0 then x else x * slope

/// A batched matmul's operands (Kernels.MatMul's arguments), for a job that runs some of its batch.
[<Struct>]
type internal MatMulArgs<'T> =
    {
        A: 'T[]
        AShape: int[]
        B: 'T[]
        BShape: int[]
        Dst: 'T[]
        OutShape: int[]
        Batch: int
        BatchA: int
        BatchB: int
        M: int
        K: int
        N: int
        TransA: bool
        TransB: bool
        /// C += op(A) op(B) (GEMM's beta = 1) instead of C = op(A) op(B).
        Accumulate: bool
    }

/// im2col's or col2im's operands, for a job that runs some of the planes.
[<Struct>]
type internal Im2ColArgs<'T> = { Fold: bool; Image: 'T[]; Cols: 'T[]; Window: Window2d }

/// Max pooling's operands, for a job that runs some of the planes.
[<Struct>]
type internal PoolArgs<'T> = { Scatter: bool; Keys: 'T[]; Values: 'T[]; Dst: 'T[]; Window: Window2d }

/// Which kernel a KernelJob runs.
type internal KernelJobKind =
    | MatMulJob
    | MatMulSliceJob
    | Im2ColJob
    | PoolJob

/// Destination-style kernels over row-major arrays: every output is written into a caller-owned buffer,
/// so one-shot evaluation (fresh buffers) and compiled plans (reused buffers) share one implementation.
type internal Kernels<'T when 'T :> IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType> =

    static member Unary(op: UnaryOp, src: ReadOnlySpan<'T>, dst: Span<'T>) : unit =
        // Some TensorPrimitives functions (Sigmoid) reject empty spans; an empty tensor has nothing to do.
        if not dst.IsEmpty then
            match op with
            | UnaryOp.Neg -> TensorPrimitives.Negate(src, dst)
            | UnaryOp.Exp -> TensorPrimitives.Exp(src, dst)
            | UnaryOp.Log -> TensorPrimitives.Log(src, dst)
            | UnaryOp.Sqrt -> TensorPrimitives.Sqrt(src, dst)
            | UnaryOp.Abs -> TensorPrimitives.Abs(src, dst)
            | UnaryOp.Sigmoid -> TensorPrimitives.Sigmoid(src, dst)
            | UnaryOp.Tanh -> Kernels<'T>.Tanh(src, dst)
            | UnaryOp.Relu ->
                // Max(x, 0) in TensorPrimitives propagates NaN, as torch.relu does.
                TensorPrimitives.Max(src, 'T.Zero, dst)
            | UnaryOp.Softplus ->
                for i in 0 .. src.Length - 1 do
                    dst[i] <- Scalar.softplus src[i]
            | UnaryOp.Sign ->
                for i in 0 .. src.Length - 1 do
                    dst[i] <- Scalar.sign src[i]
            | UnaryOp.Sin -> TensorPrimitives.Sin(src, dst)
            | UnaryOp.Cos -> TensorPrimitives.Cos(src, dst)
            | UnaryOp.Floor -> TensorPrimitives.Floor(src, dst)
            | UnaryOp.Ceil -> TensorPrimitives.Ceiling(src, dst)
            // Midpoints to even, as torch.round.
            | UnaryOp.Round -> TensorPrimitives.Round(src, dst)
            | UnaryOp.Clamp(lo, hi) ->
                // Max and Min in TensorPrimitives propagate NaN, as torch.clamp does.
                TensorPrimitives.Max(src, 'T.CreateTruncating lo, dst)
                TensorPrimitives.Min(Span<'T>.op_Implicit dst, 'T.CreateTruncating hi, dst)
            | UnaryOp.Log1p -> Kernels<'T>.Map(Special.log1p, src, dst)
            | UnaryOp.Expm1 -> Kernels<'T>.Map(Special.expm1, src, dst)
            | UnaryOp.Erf -> Kernels<'T>.Map(Special.erf, src, dst)
            | UnaryOp.Erfc -> Kernels<'T>.Map(Special.erfc, src, dst)
            | UnaryOp.Gelu -> Kernels<'T>.Map(Special.gelu, src, dst)
            | UnaryOp.Silu -> Kernels<'T>.Map(Special.silu, src, dst)
            | UnaryOp.LogSigmoid -> Kernels<'T>.Map(Special.logSigmoid, src, dst)
            | UnaryOp.LeakyRelu slope -> Kernels<'T>.Map(Special.leakyRelu slope, src, dst)
            | UnaryOp.Elu alpha -> Kernels<'T>.Map(Special.elu alpha, src, dst)
            | UnaryOp.Step ->
                // Vectorised: relu's gradient runs this over every hidden activation each step.
                let width = Vector<'T>.Count
                let mutable i = 0
                while i + width <= src.Length do
                    Kernels<'T>.StepOf(Vector<'T>(src.Slice i)).CopyTo(dst.Slice i)
                    i <- i + width
                for j in i .. src.Length - 1 do
                    dst[j] <- if Scalar.gt src[j] 'T.Zero then 'T.One else 'T.Zero

    // 1 in the lanes where v > 0, else 0 (NaN included).
    static member private StepOf(v: Vector<'T>) : Vector<'T> =
        Vector.ConditionalSelect(Vector.GreaterThan(v, Vector<'T>.Zero), Vector<'T>.One, Vector<'T>.Zero)

    /// dst = step(x) * g, relu's gradient, in one pass: the same products, bit for bit, as step into a buffer
    /// and then the multiplication (a step value is never NaN, so the operands' order cannot pick a NaN).
    static member StepTimes(x: ReadOnlySpan<'T>, g: ReadOnlySpan<'T>, dst: Span<'T>) : unit =
        let width = Vector<'T>.Count
        let mutable i = 0
        while i + width <= dst.Length do
            (Kernels<'T>.StepOf(Vector<'T>(x.Slice i)) * Vector<'T>(g.Slice i)).CopyTo(dst.Slice i)
            i <- i + width
        for j in i .. dst.Length - 1 do
            dst[j] <- (if Scalar.gt x[j] 'T.Zero then 'T.One else 'T.Zero) * g[j]

    /// dst[i] = f(src[i]) computed in float64: float32 values are rounded once, from the float64 result.
    static member Map(f: float -> float, src: ReadOnlySpan<'T>, dst: Span<'T>) : unit =
        for i in 0 .. src.Length - 1 do
            dst[i] <- 'T.CreateTruncating(f (Double.CreateTruncating src[i]))

    /// tanh. TensorPrimitives.Tanh cancels near 0 (its float32 tanh(0) is -6e-8, its float64 tanh(1e-300) is
    /// -0, and it is off by hundreds of ulp below 0.01); below Scalar.tanhSmall its values are replaced by a
    /// rational approximation, in vectors. Above, it is within a few ulp.
    static member Tanh(src: ReadOnlySpan<'T>, dst: Span<'T>) : unit =
        if src.Overlaps(Span<'T>.op_Implicit dst) then
            // In place the input would be gone once TensorPrimitives has run: the same vector path, a block at a
            // time from a copy, so that an update written over its variable gets the same bits.
            let blockSize = 1024
            let block = ArrayPool<'T>.Shared.Rent blockSize
            try
                let mutable i = 0
                while i < src.Length do
                    let n = min blockSize (src.Length - i)
                    src.Slice(i, n).CopyTo(Span(block, 0, n))
                    Kernels<'T>.TanhApart(ReadOnlySpan(block, 0, n), dst.Slice(i, n))
                    i <- i + n
            finally
                ArrayPool<'T>.Shared.Return block
        else
            Kernels<'T>.TanhApart(src, dst)

    // Tanh of a span that dst does not overlap.
    static member private TanhApart(src: ReadOnlySpan<'T>, dst: Span<'T>) : unit =
        let small = 'T.CreateTruncating Scalar.tanhSmall
        TensorPrimitives.Tanh(src, dst)
        let width = Vector<'T>.Count
        let limit = Vector<'T>(small)
        let mutable i = 0
        while i + width <= src.Length do
            let x = Vector<'T>(src.Slice i)
            let near = Scalar.tanhNearZero (fun c -> Vector<'T>('T.CreateTruncating c)) x
            Vector
                .ConditionalSelect(Vector.LessThan(Vector.Abs x, limit), near, Vector<'T>(Span<'T>.op_Implicit(dst.Slice i)))
                .CopyTo(dst.Slice i)
            i <- i + width
        for j in i .. src.Length - 1 do
            if Scalar.lt ('T.Abs src[j]) small then dst[j] <- Scalar.tanhNearZero 'T.CreateTruncating src[j]

    static member PowScalar(src: ReadOnlySpan<'T>, p: 'T, dst: Span<'T>) : unit =
        if Scalar.eq p ('T.CreateTruncating 2) then
            TensorPrimitives.Multiply(src, src, dst)
        elif Scalar.eq p 'T.One then
            src.CopyTo dst
        // x ** 0.5 is sqrt x, as in PyTorch: NaN for every negative x, -infinity included (C's pow gives
        // +infinity there), and x ** -0.5 is 1 / sqrt x (-infinity at -0, where pow gives +infinity).
        elif Scalar.eq p ('T.CreateTruncating 0.5) then
            TensorPrimitives.Sqrt(src, dst)
        elif Scalar.eq p ('T.CreateTruncating -0.5) then
            TensorPrimitives.Sqrt(src, dst)
            TensorPrimitives.Divide('T.One, Span<'T>.op_Implicit dst, dst)
        else
            TensorPrimitives.Pow(src, p, dst)

    /// dst = a op b over spans: the one binary dispatcher. Operands of dst's length are read elementwise and
    /// a one-element operand is broadcast as a value (same-length first, so one-element spans all take one
    /// path); any other length is a caller's bug, reported with the lengths.
    static member Binary(op: BinaryOp, a: ReadOnlySpan<'T>, b: ReadOnlySpan<'T>, dst: Span<'T>) : unit =
        let n = dst.Length
        if a.Length = n && b.Length = n then
            match op with
            | BinaryOp.Add -> TensorPrimitives.Add(a, b, dst)
            | BinaryOp.Sub -> TensorPrimitives.Subtract(a, b, dst)
            | BinaryOp.Mul -> TensorPrimitives.Multiply(a, b, dst)
            | BinaryOp.Div -> TensorPrimitives.Divide(a, b, dst)
            | BinaryOp.Pow -> TensorPrimitives.Pow(a, b, dst)
            | BinaryOp.Equal ->
                for i in 0 .. n - 1 do
                    dst[i] <- if Scalar.eq a[i] b[i] then 'T.One else 'T.Zero
            | BinaryOp.Maximum -> TensorPrimitives.Max(a, b, dst)
            | BinaryOp.Minimum -> TensorPrimitives.Min(a, b, dst)
        elif a.Length = n && b.Length = 1 then
            let b = b[0]
            match op with
            | BinaryOp.Add -> TensorPrimitives.Add(a, b, dst)
            | BinaryOp.Sub -> TensorPrimitives.Subtract(a, b, dst)
            | BinaryOp.Mul -> TensorPrimitives.Multiply(a, b, dst)
            | BinaryOp.Div -> TensorPrimitives.Divide(a, b, dst)
            | BinaryOp.Pow -> TensorPrimitives.Pow(a, b, dst)
            | BinaryOp.Equal ->
                for i in 0 .. n - 1 do
                    dst[i] <- if Scalar.eq a[i] b then 'T.One else 'T.Zero
            | BinaryOp.Maximum -> TensorPrimitives.Max(a, b, dst)
            | BinaryOp.Minimum -> TensorPrimitives.Min(a, b, dst)
        elif a.Length = 1 && b.Length = n then
            let a = a[0]
            match op with
            | BinaryOp.Add -> TensorPrimitives.Add(b, a, dst)
            | BinaryOp.Sub -> TensorPrimitives.Subtract(a, b, dst)
            | BinaryOp.Mul -> TensorPrimitives.Multiply(b, a, dst)
            | BinaryOp.Div -> TensorPrimitives.Divide(a, b, dst)
            | BinaryOp.Pow -> TensorPrimitives.Pow(a, b, dst)
            | BinaryOp.Equal ->
                for i in 0 .. n - 1 do
                    dst[i] <- if Scalar.eq a b[i] then 'T.One else 'T.Zero
            | BinaryOp.Maximum -> TensorPrimitives.Max(b, a, dst)
            | BinaryOp.Minimum -> TensorPrimitives.Min(b, a, dst)
        else
            invalidOp (
                sprintf
                    "binary %s: operands of %d and %d elements do not make %d elements; only one-element operands broadcast here"
                    op.Name
                    a.Length
                    b.Length
                    n
            )

    /// dst = a op b, broadcasting a and b to outShape. Operands that need no strides go to the span
    /// dispatcher whole; otherwise the innermost axis runs as one dispatcher call per row, which covers the
    /// common cases (bias rows, per-row scalars) at full speed.
    static member Binary(op: BinaryOp, a: 'T[], aShape: int[], b: 'T[], bShape: int[], dst: 'T[], outShape: int[]) : unit =
        if (a.Length = dst.Length || a.Length = 1) && (b.Length = dst.Length || b.Length = 1) then
            Kernels<'T>.Binary(op, ReadOnlySpan a, ReadOnlySpan b, Span dst)
        elif
            dst.Length > 0
            && outShape.Length >= 1
            && b.Length = outShape[outShape.Length - 1]
            && a.Length = dst.Length
            && Kernels<'T>.IsRow(bShape)
        then
            // A row (a bias) against every row of a: no strides to work out, nothing allocated.
            let inner = b.Length
            for row in 0 .. dst.Length / inner - 1 do
                Kernels<'T>.Binary(op, ReadOnlySpan(a, row * inner, inner), ReadOnlySpan b, Span(dst, row * inner, inner))
        elif
            dst.Length > 0
            && outShape.Length >= 1
            && a.Length = outShape[outShape.Length - 1]
            && b.Length = dst.Length
            && Kernels<'T>.IsRow(aShape)
        then
            let inner = a.Length
            for row in 0 .. dst.Length / inner - 1 do
                Kernels<'T>.Binary(op, ReadOnlySpan a, ReadOnlySpan(b, row * inner, inner), Span(dst, row * inner, inner))
        elif dst.Length > 0 && a.Length = dst.Length && Kernels<'T>.IsColumn(bShape, outShape) then
            // One value per row (a softmax's row sums) against a full operand: also allocation-free.
            let inner = outShape[outShape.Length - 1]
            for row in 0 .. b.Length - 1 do
                Kernels<'T>.Binary(op, ReadOnlySpan(a, row * inner, inner), ReadOnlySpan(b, row, 1), Span(dst, row * inner, inner))
        elif dst.Length > 0 && b.Length = dst.Length && Kernels<'T>.IsColumn(aShape, outShape) then
            let inner = outShape[outShape.Length - 1]
            for row in 0 .. a.Length - 1 do
                Kernels<'T>.Binary(op, ReadOnlySpan(a, row, 1), ReadOnlySpan(b, row * inner, inner), Span(dst, row * inner, inner))
        elif dst.Length > 0 && Kernels<'T>.ConstantBlock(aShape, bShape, outShape) > 0 then
            // One operand is one value per block of trailing axes (a convolution's [1; C; 1; 1] bias against
            // [N; C; H; W]): one dispatcher call per block instead of one per row.
            let trailing = Kernels<'T>.ConstantBlock(aShape, bShape, outShape)
            let inner = Kernels<'T>.TrailingSize(outShape, trailing)
            let aLen = if Kernels<'T>.OnesAtEnd(aShape, trailing) then 1 else inner
            let bLen = if Kernels<'T>.OnesAtEnd(bShape, trailing) then 1 else inner
            for block in 0 .. dst.Length / inner - 1 do
                let aOff = Kernels<'T>.BlockOffset(aShape, outShape, trailing, block)
                let bOff = Kernels<'T>.BlockOffset(bShape, outShape, trailing, block)
                Kernels<'T>.Binary(op, ReadOnlySpan(a, aOff, aLen), ReadOnlySpan(b, bOff, bLen), Span(dst, block * inner, inner))
        elif dst.Length > 0 then
            let rank = outShape.Length
            let inner = outShape[rank - 1]
            // An operand broadcast along the innermost axis is one value per row.
            let aLen = if aShape.Length > 0 && aShape[aShape.Length - 1] <> 1 then inner else 1
            let bLen = if bShape.Length > 0 && bShape[bShape.Length - 1] <> 1 then inner else 1
            for row in 0 .. dst.Length / inner - 1 do
                let aOff = Kernels<'T>.RowOffset(aShape, outShape, row)
                let bOff = Kernels<'T>.RowOffset(bShape, outShape, row)
                let d = Span(dst, row * inner, inner)
                if aLen = 1 && bLen = 1 then
                    d.Fill a[aOff]
                    Kernels<'T>.Binary(op, Span<'T>.op_Implicit d, ReadOnlySpan(b, bOff, 1), d)
                else
                    Kernels<'T>.Binary(op, ReadOnlySpan(a, aOff, aLen), ReadOnlySpan(b, bOff, bLen), d)

    /// Where output row `row` (of outShape's last axis) starts in a tensor of `shape` read as broadcast to
    /// outShape. Worked out per row, with no index or stride arrays: plans run this (a convolution's
    /// [1; C; 1; 1] bias, a pooled mean's gradient) and must allocate nothing.
    static member RowOffset(shape: int[], outShape: int[], row: int) : int = Kernels<'T>.BlockOffset(shape, outShape, 1, row)

    /// Where block `block` of outShape starts in a tensor of `shape` read as broadcast to outShape, a block
    /// being the last `trailing` axes (1: a row; 2: a batched matmul's matrix, which may differ in size from
    /// the output's) and `block` counting the blocks of outShape in row-major order.
    static member BlockOffset(shape: int[], outShape: int[], trailing: int, block: int) : int =
        let lead = outShape.Length - shape.Length
        let mutable rest = block
        let mutable offset = 0
        // The operand's own stride of the axis being read: the product of its axes after it.
        let mutable stride = 1
        for axis in max 0 (shape.Length - trailing) .. shape.Length - 1 do
            stride <- stride * shape[axis]
        for axis in outShape.Length - 1 - trailing .. -1 .. 0 do
            let i = rest % outShape[axis]
            rest <- rest / outShape[axis]
            let own = axis - lead
            if own >= 0 then
                if shape[own] <> 1 then offset <- offset + i * stride
                stride <- stride * shape[own]
        offset

    /// The most trailing axes over which one operand is one value (its axes there have length 1) and the
    /// other is whole (its axes there are outShape's), more than one; 0 if there are none such.
    static member ConstantBlock(aShape: int[], bShape: int[], outShape: int[]) : int =
        let mutable best = 0
        let mutable k = 1
        while k <= outShape.Length do
            let aOnes, bOnes = Kernels<'T>.OnesAtEnd(aShape, k), Kernels<'T>.OnesAtEnd(bShape, k)
            let aWhole, bWhole =
                Kernels<'T>.WholeAtEnd(aShape, outShape, k), Kernels<'T>.WholeAtEnd(bShape, outShape, k)
            if (aOnes && bWhole) || (aWhole && bOnes) then
                best <- k
                k <- k + 1
            else
                k <- outShape.Length + 1
        if best > 1 then best else 0

    // The last k axes of shape (aligned with the output's, missing ones counting as 1) all have length 1.
    static member private OnesAtEnd(shape: int[], k: int) : bool =
        let mutable ones = true
        for i in max 0 (shape.Length - k) .. shape.Length - 1 do
            ones <- ones && shape[i] = 1
        ones

    // The last k axes of shape are outShape's last k axes (all present).
    static member private WholeAtEnd(shape: int[], outShape: int[], k: int) : bool =
        let mutable whole = shape.Length >= k
        if whole then
            for i in 1..k do
                whole <- whole && shape[shape.Length - i] = outShape[outShape.Length - i]
        whole

    /// True when a shape is one row: every axis but the last has length 1 (or there is none).
    static member IsRow(shape: int[]) : bool =
        let mutable row = true
        for i in 0 .. shape.Length - 2 do
            row <- row && shape[i] = 1
        row

    /// True when a shape is outShape with its last axis reduced to length 1.
    static member IsColumn(shape: int[], outShape: int[]) : bool =
        let r = outShape.Length
        let mutable column = r >= 1 && shape.Length = r && shape[r - 1] = 1
        for i in 0 .. r - 2 do
            column <- column && shape[i] = outShape[i]
        column

    // The number of elements in the last `trailing` axes of shape (a loop: a slice would allocate on a plan's run).
    static member private TrailingSize(shape: int[], trailing: int) : int =
        let mutable size = 1
        for axis in shape.Length - trailing .. shape.Length - 1 do
            size <- size * shape[axis]
        size

    // How many of outShape's last axes a tensor of `shape` broadcast to it repeats (size 1 or missing there).
    static member private RepeatedTrailing(shape: int[], outShape: int[]) : int =
        let mutable k = 0
        while k < outShape.Length && Kernels<'T>.OnesAtEnd(shape, k + 1) do
            k <- k + 1
        k

    /// Copies src (of shape srcShape) broadcast to outShape.
    static member BroadcastTo(src: 'T[], srcShape: int[], dst: 'T[], outShape: int[]) : unit =
        // Fills for one value (a mean's gradient) and one value per row (a row sum's gradient), else x + 0 row
        // by row. Every path adds zero, so -0 reads as 0 on every path.
        if src.Length = 1 then
            Array.Fill(dst, src[0] + 'T.Zero)
        elif dst.Length > 0 && Kernels<'T>.IsColumn(srcShape, outShape) then
            let inner = outShape[outShape.Length - 1]
            for row in 0 .. src.Length - 1 do
                Span(dst, row * inner, inner).Fill(src[row] + 'T.Zero)
        elif dst.Length > 0 && Kernels<'T>.RepeatedTrailing(srcShape, outShape) > 0 then
            // The trailing axes src repeats are blocks of one value: a bias [1; C; 1; 1] over [N; C; H; W] is
            // N C fills of H W elements.
            let trailing = Kernels<'T>.RepeatedTrailing(srcShape, outShape)
            let block = Kernels<'T>.TrailingSize(outShape, trailing)
            for b in 0 .. dst.Length / block - 1 do
                Span(dst, b * block, block).Fill(src[Kernels<'T>.BlockOffset(srcShape, outShape, trailing, b)] + 'T.Zero)
        elif dst.Length > 0 then
            // Row by row, allocating nothing (an average pool's gradient spreads [N C; 1; L] over [N C; K; L]).
            let inner = outShape[outShape.Length - 1]
            let whole = srcShape.Length > 0 && srcShape[srcShape.Length - 1] <> 1
            for row in 0 .. dst.Length / inner - 1 do
                let offset = Kernels<'T>.RowOffset(srcShape, outShape, row)
                let d = Span(dst, row * inner, inner)
                if whole then
                    TensorPrimitives.Add(ReadOnlySpan(src, offset, inner), 'T.Zero, d)
                else
                    d.Fill(src[offset] + 'T.Zero)

    /// Sums, means, maxima, products or log-sum-exps over one axis of a tensor viewed as [outer; n; inner].
    static member Reduce(kind: ReduceOp, src: 'T[], outer: int, n: int, inner: int, dst: 'T[]) : unit =
        if kind = ReduceOp.LogSumExp then
            Kernels<'T>.LogSumExp(src, outer, n, inner, dst)
        elif inner = 1 then
            for o in 0 .. outer - 1 do
                let row = ReadOnlySpan(src, o * n, n)
                dst[o] <-
                    match kind with
                    | ReduceOp.Max -> if n = 0 then 'T.NegativeInfinity else TensorPrimitives.Max row
                    | ReduceOp.Prod -> if n = 0 then 'T.One else TensorPrimitives.Product row
                    | ReduceOp.Sum
                    | ReduceOp.Mean
                    | ReduceOp.LogSumExp -> TensorPrimitives.Sum row
        else
            for o in 0 .. outer - 1 do
                let d = Span(dst, o * inner, inner)
                if n = 0 then
                    d.Fill(
                        match kind with
                        | ReduceOp.Max -> 'T.NegativeInfinity
                        | ReduceOp.Prod -> 'T.One
                        | _ -> 'T.Zero
                    )
                else
                    ReadOnlySpan(src, o * n * inner, inner).CopyTo d
                    for k in 1 .. n - 1 do
                        let s = ReadOnlySpan(src, (o * n + k) * inner, inner)
                        if kind = ReduceOp.Max then TensorPrimitives.Max(Span<'T>.op_Implicit d, s, d)
                        elif kind = ReduceOp.Prod then TensorPrimitives.Multiply(Span<'T>.op_Implicit d, s, d)
                        else TensorPrimitives.Add(Span<'T>.op_Implicit d, s, d)
        if kind = ReduceOp.Mean then
            TensorPrimitives.Divide(ReadOnlySpan dst, 'T.CreateTruncating n, Span dst)

    /// log(sum(e ** x)) over the middle axis of [outer; n; inner]: m + log(sum(e ** (x - m))), m the maximum, so
    /// that large values do not overflow; an infinite maximum is the result (an empty axis gives -infinity).
    static member LogSumExp(src: 'T[], outer: int, n: int, inner: int, dst: 'T[]) : unit =
        for o in 0 .. outer - 1 do
            for j in 0 .. inner - 1 do
                let at k = src[(o * n + k) * inner + j]
                let mutable m = 'T.NegativeInfinity
                for k in 0 .. n - 1 do
                    m <- 'T.Max(m, at k)
                if 'T.IsInfinity m then
                    dst[o * inner + j] <- m
                else
                    let mutable s = 'T.Zero
                    for k in 0 .. n - 1 do
                        s <- s + 'T.Exp(at k - m)
                    dst[o * inner + j] <- m + 'T.Log s

    /// Softmax (or log-softmax) over the middle axis of a tensor viewed as [outer; n; inner],
    /// with the maximum subtracted first so that large logits do not overflow.
    static member Softmax(log: bool, src: 'T[], outer: int, n: int, inner: int, dst: 'T[]) : unit =
        // An empty tensor has nothing to normalise (and TensorPrimitives.Max rejects an empty span).
        if dst.Length > 0 then
            // Whole rows of `inner` elements at a time: along the last axis (inner = 1) a row is one softmax,
            // otherwise one row holds an element of `inner` softmaxes, which then run side by side.
            let scratch = ArrayPool<'T>.Shared.Rent(if inner = 1 then n else 3 * inner)
            try
                if inner = 1 then
                    let exps = Span(scratch, 0, n)
                    for o in 0 .. outer - 1 do
                        let x = ReadOnlySpan(src, o * n, n)
                        let y = Span(dst, o * n, n)
                        TensorPrimitives.Subtract(x, TensorPrimitives.Max x, y)
                        if log then
                            TensorPrimitives.Exp(Span<'T>.op_Implicit y, exps)
                            TensorPrimitives.Subtract(Span<'T>.op_Implicit y, 'T.Log(TensorPrimitives.Sum(Span<'T>.op_Implicit exps)), y)
                        else
                            TensorPrimitives.Exp(Span<'T>.op_Implicit y, y)
                            TensorPrimitives.Divide(Span<'T>.op_Implicit y, TensorPrimitives.Sum(Span<'T>.op_Implicit y), y)
                else
                    let m = Span(scratch, 0, inner)
                    let s = Span(scratch, inner, inner)
                    let exps = Span(scratch, 2 * inner, inner)
                    let row o k = (o * n + k) * inner
                    for o in 0 .. outer - 1 do
                        ReadOnlySpan(src, row o 0, inner).CopyTo m
                        for k in 1 .. n - 1 do
                            TensorPrimitives.Max(Span<'T>.op_Implicit m, ReadOnlySpan(src, row o k, inner), m)
                        s.Clear()
                        for k in 0 .. n - 1 do
                            let y = Span(dst, row o k, inner)
                            TensorPrimitives.Subtract(ReadOnlySpan(src, row o k, inner), Span<'T>.op_Implicit m, y)
                            if log then
                                TensorPrimitives.Exp(Span<'T>.op_Implicit y, exps)
                                TensorPrimitives.Add(Span<'T>.op_Implicit s, Span<'T>.op_Implicit exps, s)
                            else
                                TensorPrimitives.Exp(Span<'T>.op_Implicit y, y)
                                TensorPrimitives.Add(Span<'T>.op_Implicit s, Span<'T>.op_Implicit y, s)
                        if log then TensorPrimitives.Log(Span<'T>.op_Implicit s, s)
                        for k in 0 .. n - 1 do
                            let y = Span(dst, row o k, inner)
                            if log then
                                TensorPrimitives.Subtract(Span<'T>.op_Implicit y, Span<'T>.op_Implicit s, y)
                            else
                                TensorPrimitives.Divide(Span<'T>.op_Implicit y, Span<'T>.op_Implicit s, y)
            finally
                ArrayPool<'T>.Shared.Return scratch

    /// A permutation over fewer axes that moves the same elements: size-1 axes dropped, and output axes that are
    /// adjacent and in order in the source merged into one (as [1; 2] in [0; 1; 2] -> [1; 2; 0]).
    /// Returns the smaller source shape and the permutation of it.
    static member CollapsePermutation(srcShape: int[], perm: int[]) : int[] * int[] =
        // Each axis's position among the source axes longer than 1: axes with only size-1 axes between them are adjacent.
        let position = srcShape |> Array.scan (fun count d -> if d = 1 then count else count + 1) 0
        // Runs of source axes, in output order, each run ascending and adjacent in the source.
        let runs = ResizeArray<ResizeArray<int>>()
        let mutable previous = -1
        for p in perm do
            if srcShape[p] <> 1 then
                if runs.Count > 0 && position[p] = previous + 1 then
                    runs[runs.Count - 1].Add p
                else
                    runs.Add(ResizeArray [ p ])
                previous <- position[p]
        let bySource = runs |> Seq.sortBy (fun r -> r[0]) |> Seq.toArray
        let shape = bySource |> Array.map (Seq.fold (fun acc a -> acc * srcShape[a]) 1)
        let collapsed =
            runs
            |> Seq.map (fun r -> Array.findIndex (fun (s: ResizeArray<int>) -> s[0] = r[0]) bySource)
            |> Seq.toArray
        shape, collapsed

    /// A blocked transpose of the r x c matrix at src[srcOff..] into dst[dstOff..], keeping both sides in cache.
    static member private Transpose(src: 'T[], srcOff: int, r: int, c: int, dst: 'T[], dstOff: int) : unit =
        let block = 32
        for i0 in 0..block .. r - 1 do
            for j0 in 0..block .. c - 1 do
                for i in i0 .. min (i0 + block) r - 1 do
                    for j in j0 .. min (j0 + block) c - 1 do
                        dst[dstOff + j * r + i] <- src[srcOff + i * c + j]

    /// Writes src with its axes permuted: output axis i is input axis perm[i].
    static member Permute(src: 'T[], srcShape: int[], perm: int[], dst: 'T[]) : unit =
        if dst.Length > 0 then
            let shape, perm = Kernels<'T>.CollapsePermutation(srcShape, perm)
            let rank = shape.Length
            if rank <= 1 then
                // The identity once collapsed (as a permute that only moves size-1 axes).
                ReadOnlySpan(src, 0, dst.Length).CopyTo(Span dst)
            elif rank = 2 then
                Kernels<'T>.Transpose(src, 0, shape[0], shape[1], dst, 0)
            elif rank = 3 && perm[0] = 0 && perm[1] = 2 then
                // A batch of matrix transposes.
                let size = shape[1] * shape[2]
                for b in 0 .. shape[0] - 1 do
                    Kernels<'T>.Transpose(src, b * size, shape[1], shape[2], dst, b * size)
            else
                let srcStrides = Shape.strides shape
                let outShape = perm |> Array.map (fun p -> shape[p])
                let strides = perm |> Array.map (fun p -> srcStrides[p])
                // When the source's last axis stays last it is a contiguous run on both sides, copied as one span;
                // otherwise every element is a run of one.
                let run = if perm[rank - 1] = rank - 1 then shape[rank - 1] else 1
                let outerAxes = if run > 1 then rank - 1 else rank
                let index = Array.zeroCreate outerAxes
                let mutable off = 0
                for k in 0 .. dst.Length / run - 1 do
                    if run = 1 then dst[k] <- src[off] else ReadOnlySpan(src, off, run).CopyTo(Span(dst, k * run, run))
                    let mutable axis = outerAxes - 1
                    let mutable carry = true
                    while carry && axis >= 0 do
                        index[axis] <- index[axis] + 1
                        off <- off + strides[axis]
                        if index[axis] = outShape[axis] then
                            off <- off - strides[axis] * outShape[axis]
                            index[axis] <- 0
                            axis <- axis - 1
                        else
                            carry <- false

    /// Output matrices first .. stop - 1 of a batched C = op(A) op(B) over p.Batch output matrices (the
    /// output of shape p.OutShape). An operand with fewer matrices (its batch axes broadcast: missing at the
    /// front, as a convolution's weight against a batch of images, or of length 1) reads the matrix its batch
    /// axes map output matrix i to.
    static member MatMulBatches(p: MatMulArgs<'T>, first: int, stop: int) : unit = Kernels<'T>.MatMulPart(p, first, stop, 0, max p.M p.N)

    /// Rows (when M >= N) or else columns first .. stop - 1 of every output matrix of a batched
    /// C = op(A) op(B): the halves of one product too big for one core.
    static member MatMulSlices(p: MatMulArgs<'T>, first: int, stop: int) : unit = Kernels<'T>.MatMulPart(p, 0, p.Batch, first, stop)

    // Output matrices [first, stop), each restricted to rows (M >= N) or columns [from, until).
    static member private MatMulPart(p: MatMulArgs<'T>, first: int, stop: int, from: int, until: int) : unit =
        let m, n, k = p.M, p.N, p.K
        let lda = if p.TransA then m else k
        let ldb = if p.TransB then k else n
        let byRows = m >= n
        let rows, cols = (if byRows then until - from else m), (if byRows then n else until - from)
        // Where the slice starts in op(A) (rows) or op(B) (columns), and in C.
        let aSlice =
            if not byRows then 0
            elif p.TransA then from
            else from * lda
        let bSlice =
            if byRows then 0
            elif p.TransB then from * ldb
            else from
        let cSlice = if byRows then from * n else from
        let beta = if p.Accumulate then 1.0 else 0.0
        for i in first .. stop - 1 do
            let aOff = Kernels<'T>.MatrixOffset(p.AShape, p.BatchA, p.OutShape, p.Batch, i, m * k) + aSlice
            let bOff = Kernels<'T>.MatrixOffset(p.BShape, p.BatchB, p.OutShape, p.Batch, i, k * n) + bSlice
            let cOff = i * m * n + cSlice
            match box p.A, box p.B, box p.Dst with
            | (:? (float[]) as a), (:? (float[]) as b), (:? (float[]) as c) ->
                Blas.dgemm (p.TransA, p.TransB, rows, cols, k, 1.0, a, aOff, lda, b, bOff, ldb, beta, c, cOff, n)
            | (:? (float32[]) as a), (:? (float32[]) as b), (:? (float32[]) as c) ->
                Blas.sgemm (p.TransA, p.TransB, rows, cols, k, 1.0f, a, aOff, lda, b, bOff, ldb, float32 beta, c, cOff, n)
            | _ -> invalidOp "matmul: only float64 and float32 are supported"

    /// Where output matrix i of a batched matmul (of `batch` matrices) starts in an operand of `matrices`
    /// matrices of `size` elements: its own i-th, the one, or the one its broadcast batch axes map i to.
    static member MatrixOffset(shape: int[], matrices: int, outShape: int[], batch: int, i: int, size: int) : int =
        if matrices = batch then i * size
        elif matrices = 1 then 0
        else Kernels<'T>.BlockOffset(shape, outShape, 2, i)

    /// dst = where(c != 0, a, b), each operand broadcast to outShape (NumPy rules).
    static member Where(c: 'T[], cShape: int[], a: 'T[], aShape: int[], b: 'T[], bShape: int[], dst: 'T[], outShape: int[]) : unit =
        if c.Length = dst.Length && a.Length = dst.Length && b.Length = dst.Length then
            for i in 0 .. dst.Length - 1 do
                dst[i] <- if Scalar.eq c[i] 'T.Zero then b[i] else a[i]
        elif dst.Length > 0 then
            // Row by row, as Binary's general path: offsets worked out per row, nothing allocated.
            let inner = outShape[outShape.Length - 1]
            // An operand broadcast along the innermost axis repeats one value along the row.
            let step (shape: int[]) = if shape.Length > 0 && shape[shape.Length - 1] <> 1 then 1 else 0
            let cStep, aStep, bStep = step cShape, step aShape, step bShape
            for row in 0 .. dst.Length / inner - 1 do
                let cOff = Kernels<'T>.RowOffset(cShape, outShape, row)
                let aOff = Kernels<'T>.RowOffset(aShape, outShape, row)
                let bOff = Kernels<'T>.RowOffset(bShape, outShape, row)
                for j in 0 .. inner - 1 do
                    dst[row * inner + j] <- if Scalar.eq c[cOff + j * cStep] 'T.Zero then b[bOff + j * bStep] else a[aOff + j * aStep]

    /// Copies a block of `len` elements along the middle axis of [outer; n; inner] views:
    /// from src's axis position srcStart to dst's axis position dstStart.
    /// Copies `len` entries along the middle axis of [outer; n; inner] views, each `inner` elements: entry i from
    /// src's axis position srcStart + i srcStep to dst's dstStart + i dstStep (a concat, a strided or backward
    /// slice, an interior pad); with both steps 1, one block per outer index.
    static member CopyAxis
        (
            src: 'T[],
            srcN: int,
            srcStart: int,
            srcStep: int,
            dst: 'T[],
            dstN: int,
            dstStart: int,
            dstStep: int,
            outer: int,
            len: int,
            inner: int
        ) : unit =
        if srcStep = 1 && dstStep = 1 then
            for o in 0 .. outer - 1 do
                ReadOnlySpan(src, (o * srcN + srcStart) * inner, len * inner).CopyTo(Span(dst, (o * dstN + dstStart) * inner, len * inner))
        elif inner = 1 then
            for o in 0 .. outer - 1 do
                for i in 0 .. len - 1 do
                    dst[o * dstN + dstStart + i * dstStep] <- src[o * srcN + srcStart + i * srcStep]
        else
            for o in 0 .. outer - 1 do
                for i in 0 .. len - 1 do
                    ReadOnlySpan(src, (o * srcN + srcStart + i * srcStep) * inner, inner)
                        .CopyTo(Span(dst, (o * dstN + dstStart + i * dstStep) * inner, inner))

    /// Entries along the middle axis of src viewed as [outer; rows; inner] picked by integer-valued indices:
    /// dst[o, i] = src[o, indices[i]].
    static member Gather(src: 'T[], outer: int, rows: int, inner: int, indices: 'T[], dst: 'T[]) : unit =
        let picks = indices.Length
        for i in 0 .. picks - 1 do
            let r = Kernels<'T>.Index("gather", "index", indices[i], rows)
            for o in 0 .. outer - 1 do
                ReadOnlySpan(src, (o * rows + r) * inner, inner).CopyTo(Span(dst, (o * picks + i) * inner, inner))

    /// The adjoint of Gather: dst[o, indices[i]] += src[o, i] in dst viewed as [outer; rows; inner], zeroed first.
    static member ScatterAdd(src: 'T[], outer: int, rows: int, inner: int, indices: 'T[], dst: 'T[]) : unit =
        Array.Fill(dst, 'T.Zero)
        let picks = indices.Length
        for i in 0 .. picks - 1 do
            let r = Kernels<'T>.Index("scatterAdd", "index", indices[i], rows)
            for o in 0 .. outer - 1 do
                let d = Span(dst, (o * rows + r) * inner, inner)
                TensorPrimitives.Add(Span<'T>.op_Implicit d, ReadOnlySpan(src, (o * picks + i) * inner, inner), d)

    /// Running sums along the middle axis of [outer; n; inner], from the first entry, or from the last when
    /// reversed: each entry is the previous sum plus its own, in order (as torch's CPU kernel).
    static member Cumsum(reverse: bool, src: 'T[], outer: int, n: int, inner: int, dst: 'T[]) : unit =
        let back = if reverse then inner else -inner
        for o in 0 .. outer - 1 do
            for j in 0 .. n - 1 do
                let at = (o * n + (if reverse then n - 1 - j else j)) * inner
                if j = 0 then
                    ReadOnlySpan(src, at, inner).CopyTo(Span(dst, at, inner))
                elif inner = 1 then
                    dst[at] <- dst[at + back] + src[at]
                else
                    TensorPrimitives.Add(ReadOnlySpan(dst, at + back, inner), ReadOnlySpan(src, at, inner), Span(dst, at, inner))

    /// One-hot rows: dst[i, labels[i]] = 1.
    static member OneHot(labels: 'T[], classes: int, dst: 'T[]) : unit =
        Array.Fill(dst, 'T.Zero)
        for i in 0 .. labels.Length - 1 do
            dst[i * classes + Kernels<'T>.Index("oneHot", "label", labels[i], classes)] <- 'T.One

    /// An index held as a float, checked to be a whole number in [0, count).
    static member Index(op: string, noun: string, value: 'T, count: int) : int =
        let v = Scalar.toFloat value
        if not (v >= 0.0 && v < float count && v = Math.Floor v) then
            raise (ArgumentOutOfRangeException("indices", sprintf "%s: %s %g is not a whole number in [0, %d)" op noun v count))
        int v

    // Convolution and pooling (the conv group).

    /// im2col and its adjoint between an image batch [N; C; spatial...] and columns [N; C * KH * KW; OH * OW]
    /// (PyTorch's F.unfold layout: a convolution is then weight [O; C K] times each sample's columns, a GEMM
    /// with no transpose, its output already [N; O; OH OW]). fold = false writes the columns from the image,
    /// zeros where a tap falls in the padding; fold = true writes the image as the sum of the columns' taps
    /// that read each element (col2im), the exact adjoint.
    static member Im2ColPlanes(p: Im2ColArgs<'T>, first: int, stop: int) : unit = Kernels<'T>.Im2ColRows(p, first, stop, p.Window.SW = 1)

    /// Im2ColPlanes with each row's run of taps moved element by element (contiguous = false: any stride) or,
    /// with stride 1 along the width, in vectors (contiguous = true; tests compare the two).
    static member Im2ColRows(p: Im2ColArgs<'T>, first: int, stop: int, contiguous: bool) : unit =
        let fold, image, cols, g = p.Fold, p.Image, p.Cols, p.Window
        let l = g.OH * g.OW
        // The vector runs below read and write without bounds checks: every index stays inside planes
        // [first, stop) of both arrays, which this makes sure they hold.
        if
            first < 0
            || stop > g.Planes
            || image.Length < g.Planes * g.H * g.W
            || cols.Length < g.Planes * g.KH * g.KW * l
        then
            invalidArg
                "p"
                (sprintf
                    "im2col: planes [%d, %d) of %d do not fit an image of %d and columns of %d elements"
                    first
                    stop
                    g.Planes
                    image.Length
                    cols.Length)
        let imageStart = &MemoryMarshal.GetArrayDataReference image
        let colsStart = &MemoryMarshal.GetArrayDataReference cols
        if fold then Span(image, first * g.H * g.W, (stop - first) * g.H * g.W).Fill 'T.Zero
        for p in first .. stop - 1 do
            let plane = p * g.H * g.W
            for ki in 0 .. g.KH - 1 do
                for kj in 0 .. g.KW - 1 do
                    let row = ((p * g.KH + ki) * g.KW + kj) * l
                    // The output columns whose tap lands inside the row: iw = ow SW + off in [0, W).
                    let off = kj * g.DW - g.PW
                    let lo = if off >= 0 then 0 else min g.OW ((-off + g.SW - 1) / g.SW)
                    let hi = if g.W - 1 - off < 0 then -1 else min (g.OW - 1) ((g.W - 1 - off) / g.SW)
                    let count = hi - lo + 1
                    for oh in 0 .. g.OH - 1 do
                        let ih = oh * g.SH - g.PH + ki * g.DH
                        let c = row + oh * g.OW
                        if ih < 0 || ih >= g.H || count <= 0 then
                            if not fold then Span(cols, c, g.OW).Clear()
                        else
                            let src = plane + ih * g.W + lo * g.SW + off
                            if fold then
                                if contiguous then
                                    Kernels<'T>.AddRun(&colsStart, c + lo, &imageStart, src, count)
                                else
                                    for j in 0 .. count - 1 do
                                        image[src + j * g.SW] <- image[src + j * g.SW] + cols[c + lo + j]
                            else
                                // Padding at the ends of a row is a few elements: a loop, not a span call.
                                for j in 0 .. lo - 1 do
                                    cols[c + j] <- 'T.Zero
                                if contiguous then
                                    Kernels<'T>.CopyRun(&imageStart, src, &colsStart, c + lo, count)
                                else
                                    for j in 0 .. count - 1 do
                                        cols[c + lo + j] <- image[src + j * g.SW]
                                for j in hi + 1 .. g.OW - 1 do
                                    cols[c + j] <- 'T.Zero

    /// dst[d + j] = src[s + j] for j < count (the elements of two arrays from their starts; the caller keeps
    /// every index inside them), in the hardware's vectors, the last one overlapping the one before (writing
    /// the same values twice) instead of a scalar tail: im2col's rows (10-28 elements in a small network) are
    /// short enough for a block copy's set-up or a bounds check per vector to cost more than the copy.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    static member CopyRun(src: byref<'T>, s: int, dst: byref<'T>, d: int, count: int) : unit =
        let lanes = Vector<'T>.Count
        if Vector.IsHardwareAccelerated && count >= lanes then
            let mutable j = 0
            while j + lanes < count do
                Vector.LoadUnsafe(&src, unativeint (s + j)).StoreUnsafe(&dst, unativeint (d + j))
                j <- j + lanes
            Vector.LoadUnsafe(&src, unativeint (s + count - lanes)).StoreUnsafe(&dst, unativeint (d + count - lanes))
        else
            for j in 0 .. count - 1 do
                Unsafe.Add(&dst, d + j) <- Unsafe.Add(&src, s + j)

    /// dst[d + j] += src[s + j] for j < count (as CopyRun, the caller keeping every index inside the arrays),
    /// in the hardware's vectors and then scalars (a vector cannot overlap the one before here: it would add
    /// twice): col2im's rows are too short for TensorPrimitives' set-up to pay.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    static member AddRun(src: byref<'T>, s: int, dst: byref<'T>, d: int, count: int) : unit =
        let mutable j = 0
        if Vector.IsHardwareAccelerated then
            let lanes = Vector<'T>.Count
            while j + lanes <= count do
                (Vector.LoadUnsafe(&dst, unativeint (d + j)) + Vector.LoadUnsafe(&src, unativeint (s + j)))
                    .StoreUnsafe(&dst, unativeint (d + j))
                j <- j + lanes
        while j < count do
            Unsafe.Add(&dst, d + j) <- Unsafe.Add(&dst, d + j) + Unsafe.Add(&src, s + j)
            j <- j + 1

    /// Max pooling through each window's first arg-max of `keys` (an image batch), in row-major window order
    /// over the taps inside the image (padding never wins; builders keep padding within half the kernel, so
    /// every window has a tap inside), ties to the first maximum and a NaN taking the place, as in PyTorch's
    /// CPU kernel (`val > max || isnan(val)`). scatter = false: dst (pooled) gets `values` (image-shaped) at each
    /// arg-max; scatter = true: dst (image-shaped) gets the sum of `values` (pooled) of the windows whose
    /// arg-max each element is.
    static member MaxPoolPlanes(p: PoolArgs<'T>, first: int, stop: int) : unit =
        if Kernels<'T>.TilesInPairs p.Window then
            Kernels<'T>.MaxPoolPairs(p, first, stop)
        else
            Kernels<'T>.MaxPoolGeneral(p, first, stop)

    /// MaxPoolPlanes for any window: also the reference the tests hold MaxPoolPairs to.
    static member MaxPoolGeneral(p: PoolArgs<'T>, first: int, stop: int) : unit =
        let g = p.Window
        if p.Scatter then Span(p.Dst, first * g.H * g.W, (stop - first) * g.H * g.W).Fill 'T.Zero
        if g.PH = 0 && g.PW = 0 && Vector.IsHardwareAccelerated then
            Kernels<'T>.MaxPoolLanes(p.Scatter, p.Keys, p.Values, p.Dst, g, first, stop)
        else
            Kernels<'T>.MaxPoolWindows(p.Scatter, p.Keys, p.Values, p.Dst, g, first, stop)

    /// True for the common pooling window MaxPoolPairs handles: 2x2, stride 2, no padding or dilation, over an
    /// image of even height and width at least a vector wide, in float32 (it pairs 32-bit lanes as the low and
    /// high halves of 64-bit ones: little-endian).
    static member TilesInPairs(g: Window2d) : bool =
        obj.ReferenceEquals(typeof<'T>, typeof<float32>)
        && BitConverter.IsLittleEndian
        && Vector.IsHardwareAccelerated
        && g.KH = 2
        && g.KW = 2
        && g.SH = 2
        && g.SW = 2
        && g.PH = 0
        && g.PW = 0
        && g.DH = 1
        && g.DW = 1
        && g.H % 2 = 0
        && g.W % 2 = 0
        && g.W >= Vector<'T>.Count

    // The lanes where `v > best || isnan v`: PyTorch's rule for a later tap to take a window's place.
    static member private Takes(v: Vector<'T>, best: Vector<'T>) : Vector<'T> =
        Vector.BitwiseOr(Vector.GreaterThan(v, best), Vector.OnesComplement(Vector.Equals(v, v)))

    // 2x2 windows with stride 2 tile the image, so each image row pair is a row of windows and every element
    // belongs to exactly one window. A vector of a row and one loaded an element further on put each window's
    // left and right taps in the same lane (the even lanes; odd lanes straddle two windows and are dropped);
    // the pick is the top pair's, then the bottom pair's, then the better of the two: for PyTorch's rule
    // (the last NaN, else the first maximum, in row-major tap order) this is the same as taking the taps in
    // order. The scatter writes every element (the window's value at its pick, zero elsewhere), so no zero-fill.
    // The last vector of a row overlaps the one before (recomputing identical values); a vector whose loads
    // would pass the end of an array goes window by window.
    static member private MaxPoolPairs(p: PoolArgs<'T>, first: int, stop: int) : unit =
        let g = p.Window
        let keys, values, dst = p.Keys, p.Values, p.Dst
        let lanes = Vector<'T>.Count
        let half = lanes / 2
        let direct = not p.Scatter && obj.ReferenceEquals(keys, values)
        // The job's outputs end here: a whole-vector store of picks stops short of it (the next half's).
        let outputs = stop * g.OH * g.OW
        for k in first * g.H / 2 .. stop * g.H / 2 - 1 do
            let top = 2 * k * g.W
            let bottom = top + g.W
            let o = k * g.OW
            let mutable next = 0
            while next < g.W do
                let j = min next (g.W - lanes)
                let w = o + j / 2
                let fits =
                    bottom + j + 1 + lanes <= keys.Length
                    && (if p.Scatter then w + lanes <= values.Length else bottom + j + 1 + lanes <= values.Length)
                if fits then
                    let a, a1 = Vector<'T>(keys, top + j), Vector<'T>(keys, top + j + 1)
                    let b, b1 = Vector<'T>(keys, bottom + j), Vector<'T>(keys, bottom + j + 1)
                    let right = Kernels<'T>.Takes(a1, a)
                    let rightBelow = Kernels<'T>.Takes(b1, b)
                    let upper = Vector.ConditionalSelect(right, a1, a)
                    let lower = Vector.ConditionalSelect(rightBelow, b1, b)
                    let below = Kernels<'T>.Takes(lower, upper)
                    if p.Scatter then
                        // Each window's value in both its lanes: the 32-bit values widened to 64 and doubled.
                        let wide = Vector.WidenLower(Vector.As<'T, uint32>(Vector<'T>(values, w)))
                        let both = Vector.As<uint64, 'T>(Vector.BitwiseOr(wide, Vector.ShiftLeft(wide, 32)))
                        let topMask =
                            Kernels<'T>.Spread(Vector.OnesComplement(Vector.BitwiseOr(below, right)), Vector.AndNot(right, below))
                        let bottomMask =
                            Kernels<'T>.Spread(Vector.AndNot(below, rightBelow), Vector.BitwiseAnd(below, rightBelow))
                        Vector.BitwiseAnd(both, topMask).CopyTo(dst, top + j)
                        Vector.BitwiseAnd(both, bottomMask).CopyTo(dst, bottom + j)
                    else
                        let picked =
                            if direct then
                                Vector.ConditionalSelect(below, lower, upper)
                            else
                                Vector.ConditionalSelect(
                                    below,
                                    Vector.ConditionalSelect(rightBelow, Vector<'T>(values, bottom + j + 1), Vector<'T>(values, bottom + j)),
                                    Vector.ConditionalSelect(right, Vector<'T>(values, top + j + 1), Vector<'T>(values, top + j))
                                )
                        if w + lanes <= outputs then
                            // The even lanes narrowed into the vector's first half; its second half lands on
                            // outputs that the next vector (or window) of this job writes afterwards.
                            let narrowed = Vector.Narrow(Vector.As<'T, uint64> picked, Vector.As<'T, uint64> picked)
                            Vector.As<uint32, 'T>(narrowed).CopyTo(dst, w)
                        else
                            for m in 0 .. half - 1 do
                                dst[w + m] <- picked[2 * m]
                else
                    for m in 0 .. half - 1 do
                        let left = top + j + 2 * m
                        let tap = Kernels<'T>.PairPick(keys, left, left + g.W)
                        let at = left + (if tap >= 2 then g.W else 0) + (tap &&& 1)
                        if p.Scatter then
                            dst[left] <- 'T.Zero
                            dst[left + 1] <- 'T.Zero
                            dst[left + g.W] <- 'T.Zero
                            dst[left + g.W + 1] <- 'T.Zero
                            dst[at] <- values[w + m]
                        else
                            dst[w + m] <- values[at]
                next <- j + lanes

    // Per-lane masks of a row of 2x2 windows: each window's left-tap mask (from its even lane of `left`) in its
    // even lane, its right-tap mask (from its even lane of `right`) in the odd one; 32-bit lanes.
    static member private Spread(left: Vector<'T>, right: Vector<'T>) : Vector<'T> =
        let even = Vector.BitwiseAnd(Vector.As<'T, uint64> left, Vector<uint64>(0xFFFFFFFFUL))
        Vector.As<uint64, 'T>(Vector.BitwiseOr(even, Vector.ShiftLeft(Vector.As<'T, uint64> right, 32)))

    // The tap (0 to 3, row-major) a 2x2 window with top-left element `left` picks, by the rule taken in order.
    static member private PairPick(keys: 'T[], left: int, below: int) : int =
        let mutable best = keys[left]
        let mutable tap = 0
        for t in 1..3 do
            let v = keys[(if t >= 2 then below else left) + (t &&& 1)]
            if Scalar.gt v best || 'T.IsNaN v then
                best <- v
                tap <- t
        tap

    // Window by window, any padding.
    static member private MaxPoolWindows(scatter: bool, keys: 'T[], values: 'T[], dst: 'T[], g: Window2d, first: int, stop: int) : unit =
        for p in first .. stop - 1 do
            let plane = p * g.H * g.W
            for oh in 0 .. g.OH - 1 do
                let h0 = oh * g.SH - g.PH
                for ow in 0 .. g.OW - 1 do
                    let w0 = ow * g.SW - g.PW
                    let mutable best = 'T.NegativeInfinity
                    let mutable at = -1
                    for ki in 0 .. g.KH - 1 do
                        let ih = h0 + ki * g.DH
                        if ih >= 0 && ih < g.H then
                            for kj in 0 .. g.KW - 1 do
                                let iw = w0 + kj * g.DW
                                if iw >= 0 && iw < g.W then
                                    let i = plane + ih * g.W + iw
                                    let v = keys[i]
                                    // PyTorch starts at the first tap inside the image, with max = -infinity.
                                    if at < 0 then at <- i
                                    if Scalar.gt v best || 'T.IsNaN v then
                                        best <- v
                                        at <- i
                    let o = (p * g.OH + oh) * g.OW + ow
                    if scatter then dst[at] <- dst[at] + values[o] else dst[o] <- values[at]

    // Without padding, one plane at a time with the plane's windows in SIMD lanes: each window's running
    // maximum and the tap it came from are chosen by masks (`v > max || isnan v`, taps in row-major order, as
    // the window loop), so random data costs no branch mispredictions, which were most of the window loop's
    // time. Every tap is inside the image, so tap 0 is the one a window of -infinities picks. When keys are
    // the values (a forward max pool), the running maxima are the result: no arg-max to follow.
    static member private MaxPoolLanes(scatter: bool, keys: 'T[], values: 'T[], dst: 'T[], g: Window2d, first: int, stop: int) : unit =
        let lanes = Vector<'T>.Count
        let outputs = g.OH * g.OW
        let width = (outputs + lanes - 1) / lanes * lanes
        let taps = g.KH * g.KW
        let direct = not scatter && obj.ReferenceEquals(keys, values)
        let best = ArrayPool<'T>.Shared.Rent width
        let chosen = ArrayPool<'T>.Shared.Rent width
        let tapValues = ArrayPool<'T>.Shared.Rent width
        let offsets = ArrayPool<int>.Shared.Rent taps
        try
            for t in 0 .. taps - 1 do
                offsets[t] <- t / g.KW * g.DH * g.W + t % g.KW * g.DW
            for p in first .. stop - 1 do
                let plane = p * g.H * g.W
                Span(best, 0, width).Fill 'T.NegativeInfinity
                Span(chosen, 0, width).Clear()
                for t in 0 .. taps - 1 do
                    for oh in 0 .. g.OH - 1 do
                        let start = plane + oh * g.SH * g.W + offsets[t]
                        let o = oh * g.OW
                        for ow in 0 .. g.OW - 1 do
                            tapValues[o + ow] <- keys[start + ow * g.SW]
                    let tap = Vector<'T>('T.CreateTruncating t)
                    let mutable i = 0
                    while i < width do
                        let v = Vector<'T>(tapValues, i)
                        let b = Vector<'T>(best, i)
                        let take = Vector.BitwiseOr(Vector.GreaterThan(v, b), Vector.OnesComplement(Vector.Equals(v, v)))
                        Vector.ConditionalSelect(take, v, b).CopyTo(best, i)
                        if not direct then Vector.ConditionalSelect(take, tap, Vector<'T>(chosen, i)).CopyTo(chosen, i)
                        i <- i + lanes
                let o = p * outputs
                if direct then
                    Span(best, 0, outputs).CopyTo(Span(dst, o, outputs))
                else
                    for oh in 0 .. g.OH - 1 do
                        let top = plane + oh * g.SH * g.W
                        for ow in 0 .. g.OW - 1 do
                            let w = oh * g.OW + ow
                            let at = top + offsets[Int32.CreateTruncating chosen[w]] + ow * g.SW
                            if scatter then dst[at] <- dst[at] + values[o + w] else dst[o + w] <- values[at]
        finally
            ArrayPool<'T>.Shared.Return best
            ArrayPool<'T>.Shared.Return chosen
            ArrayPool<'T>.Shared.Return tapValues
            ArrayPool<int>.Shared.Return offsets

/// The kernels made of many independent pieces (a convolution's per-sample GEMMs, too small for OpenBLAS to
/// thread; im2col's and pooling's planes), shared between two cores in pieces (Halves) when they are big enough
/// to pay for the fork-join, and whole otherwise. Each thread reuses one job object, so nothing is allocated.
type internal Halved<'T when 'T :> IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType>() =
    [<ThreadStatic; DefaultValue>]
    static val mutable private current: Halved<'T>

    [<DefaultValue>]
    val mutable Kind: KernelJobKind

    [<DefaultValue>]
    val mutable MatMulArgs: MatMulArgs<'T>

    [<DefaultValue>]
    val mutable Im2ColArgs: Im2ColArgs<'T>

    [<DefaultValue>]
    val mutable PoolArgs: PoolArgs<'T>

    interface IRangeJob with
        member j.Run(first: int, stop: int, _thread: int) =
            match j.Kind with
            | MatMulJob -> Kernels<'T>.MatMulBatches(j.MatMulArgs, first, stop)
            | MatMulSliceJob -> Kernels<'T>.MatMulSlices(j.MatMulArgs, first, stop)
            | Im2ColJob -> Kernels<'T>.Im2ColPlanes(j.Im2ColArgs, first, stop)
            | PoolJob -> Kernels<'T>.MaxPoolPlanes(j.PoolArgs, first, stop)

    /// Below this many multiply-adds or elements a kernel runs on one core: a fork-join costs microseconds.
    static member private WorthHalving = 1L <<< 18

    static member private Job() : Halved<'T> =
        if isNull (box Halved<'T>.current) then Halved<'T>.current <- Halved<'T>()
        Halved<'T>.current

    // Runs the job over [0, count), shared between the cores in pieces when its size is worth it.
    static member private Run(job: Halved<'T>, count: int, size: int64) =
        if size >= Halved<'T>.WorthHalving then
            Halves.run job count Halved<'T>.Pieces
        else
            (job :> IRangeJob).Run(0, count, 0)

    /// The pieces a job of independent matrices or planes is cut into: enough that one core can take over
    /// the other's share when the other is late, few enough that claiming them costs nothing.
    static member Pieces = 8

    /// Batched C = op(A) op(B) (Kernels.MatMulBatches). OpenBLAS runs on one thread (Blas.threadsProducts):
    /// a batch of products is halved by matrices, and one product big enough to pay for the fork-join is
    /// halved by rows or columns.
    static member MatMul(args: MatMulArgs<'T>) : unit =
        let product = int64 args.M * int64 args.N * int64 args.K
        let job = Halved<'T>.Job()
        job.MatMulArgs <- args
        if not Blas.threadsProducts && product >= 262144L then
            // OpenBLAS threads these itself.
            Kernels<'T>.MatMulBatches(args, 0, args.Batch)
        elif args.Batch >= 2 || not Blas.threadsProducts then
            job.Kind <- MatMulJob
            Halved<'T>.Run(job, args.Batch, int64 args.Batch * product)
        else
            job.Kind <- MatMulSliceJob
            let slices = max args.M args.N
            if product >= Halved<'T>.WorthSlicing && slices >= 2 then
                // Two pieces: each slice of a product packs the other operand again.
                Halves.run job slices 2
            else
                (job :> IRangeJob).Run(0, slices, 0)
        job.MatMulArgs <- Unchecked.defaultof<_>

    /// From this many multiply-adds on, one product is split between the cores.
    static member private WorthSlicing = 1L <<< 20

    /// im2col (fold = false) or its adjoint col2im (fold = true), plane by plane (Kernels.Im2ColPlanes).
    static member Im2Col(fold: bool, image: 'T[], cols: 'T[], g: Window2d) : unit =
        let job = Halved<'T>.Job()
        job.Im2ColArgs <- { Fold = fold; Image = image; Cols = cols; Window = g }
        job.Kind <- Im2ColJob
        Halved<'T>.Run(job, g.Planes, int64 cols.Length)
        job.Im2ColArgs <- Unchecked.defaultof<_>

    /// Max pooling's pick (scatter = false) or scatter, plane by plane (Kernels.MaxPoolPlanes).
    static member MaxPool(scatter: bool, keys: 'T[], values: 'T[], dst: 'T[], g: Window2d) : unit =
        let job = Halved<'T>.Job()
        job.PoolArgs <- { Scatter = scatter; Keys = keys; Values = values; Dst = dst; Window = g }
        job.Kind <- PoolJob
        Halved<'T>.Run(job, g.Planes, int64 keys.Length)
        job.PoolArgs <- Unchecked.defaultof<_>
