using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using CoreExpr = global::FuncFlow.Expr;
using E = global::FuncFlow.ExprModule;

namespace FuncFlow.CSharp
{
    /// <summary>
    /// A node of an immutable expression graph: a variable, a constant, or an operation on other expressions,
    /// with its shape and dtype inferred (and checked) when it is built. Gradients of an expression are
    /// expressions too (<see cref="Grad"/>), so they can be evaluated, compiled, printed or differentiated again.
    /// Two wrappers of the same node are equal.
    /// </summary>
    public sealed class Expr : IEquatable<Expr>
    {
        internal Expr(CoreExpr core) => Core = core ?? throw new ArgumentNullException(nameof(core));

        internal CoreExpr Core { get; }

        private static Expr W(CoreExpr e) => new(e);

        private static CoreExpr C(Expr e, string name) => (e ?? throw new ArgumentNullException(name)).Core;

        /// <summary>The dimensions, outermost first (a copy).</summary>
        public int[] Shape => Core.Shape;

        /// <summary>The element type.</summary>
        public DType DType => Conversions.ToDType(Core.DType);

        /// <summary>The number of axes.</summary>
        public int Rank => Core.Rank;

        /// <summary>The variable's name, or null when this node is not a variable.</summary>
        public string? Name => Conversions.OrNull(E.tryName(Core));

        /// <summary>The expressions this node is computed from.</summary>
        public IReadOnlyList<Expr> Operands => Core.Operands.Select(W).ToList().AsReadOnly();

        // Building.

        /// <summary>A named float64 variable: an input or parameter, bound by name when evaluated.</summary>
        /// <param name="name">The name.</param>
        /// <param name="shape">The shape (none for a scalar).</param>
        /// <returns>The variable.</returns>
        public static Expr Variable(string name, params int[] shape) => W(E.varOf(global::FuncFlow.DType.Float64, name, shape ?? Array.Empty<int>()));

        /// <summary>A named variable of the given dtype.</summary>
        /// <param name="name">The name.</param>
        /// <param name="dtype">The element type.</param>
        /// <param name="shape">The shape (none for a scalar).</param>
        /// <returns>The variable.</returns>
        public static Expr Variable(string name, DType dtype, params int[] shape) => W(E.varOf(Conversions.ToCore(dtype), name, shape ?? Array.Empty<int>()));

        /// <summary>A constant tensor.</summary>
        /// <param name="value">The value.</param>
        /// <returns>The constant.</returns>
        public static Expr Constant(Tensor value) => W(E.constant((value ?? throw new ArgumentNullException(nameof(value))).Core));

        /// <summary>A scalar constant.</summary>
        /// <param name="value">The value.</param>
        /// <param name="dtype">The element type.</param>
        /// <returns>The constant.</returns>
        public static Expr Scalar(double value, DType dtype = DType.Float64) => W(E.scalarOf(Conversions.ToCore(dtype), value));

        /// <summary>Zeros of this expression's shape and dtype.</summary>
        /// <returns>The constant.</returns>
        public Expr ZerosLike() => W(E.zerosLike(Core));

        /// <summary>Ones of this expression's shape and dtype.</summary>
        /// <returns>The constant.</returns>
        public Expr OnesLike() => W(E.onesLike(Core));

        // Arithmetic (NumPy broadcasting).

        /// <summary>Elementwise sum.</summary>
        /// <param name="a">One operand.</param>
        /// <param name="b">The other operand.</param>
        /// <returns>a + b.</returns>
        public static Expr operator +(Expr a, Expr b) => W(E.add(C(a, nameof(a)), C(b, nameof(b))));

        /// <summary>Elementwise sum with a constant.</summary>
        /// <param name="a">The expression.</param>
        /// <param name="b">The constant.</param>
        /// <returns>a + b.</returns>
        public static Expr operator +(Expr a, double b) => W(E.add(C(a, nameof(a)), E.scalarLike(a.Core, b)));

        /// <summary>Elementwise sum with a constant.</summary>
        /// <param name="a">The constant.</param>
        /// <param name="b">The expression.</param>
        /// <returns>a + b.</returns>
        public static Expr operator +(double a, Expr b) => W(E.add(E.scalarLike(C(b, nameof(b)), a), b.Core));

        /// <summary>Elementwise difference.</summary>
        /// <param name="a">One operand.</param>
        /// <param name="b">The other operand.</param>
        /// <returns>a - b.</returns>
        public static Expr operator -(Expr a, Expr b) => W(E.sub(C(a, nameof(a)), C(b, nameof(b))));

        /// <summary>Elementwise difference with a constant.</summary>
        /// <param name="a">The expression.</param>
        /// <param name="b">The constant.</param>
        /// <returns>a - b.</returns>
        public static Expr operator -(Expr a, double b) => W(E.sub(C(a, nameof(a)), E.scalarLike(a.Core, b)));

        /// <summary>Elementwise difference from a constant.</summary>
        /// <param name="a">The constant.</param>
        /// <param name="b">The expression.</param>
        /// <returns>a - b.</returns>
        public static Expr operator -(double a, Expr b) => W(E.sub(E.scalarLike(C(b, nameof(b)), a), b.Core));

        /// <summary>Elementwise product.</summary>
        /// <param name="a">One operand.</param>
        /// <param name="b">The other operand.</param>
        /// <returns>a * b.</returns>
        public static Expr operator *(Expr a, Expr b) => W(E.mul(C(a, nameof(a)), C(b, nameof(b))));

        /// <summary>Elementwise product with a constant.</summary>
        /// <param name="a">The expression.</param>
        /// <param name="b">The constant.</param>
        /// <returns>a * b.</returns>
        public static Expr operator *(Expr a, double b) => W(E.mul(C(a, nameof(a)), E.scalarLike(a.Core, b)));

        /// <summary>Elementwise product with a constant.</summary>
        /// <param name="a">The constant.</param>
        /// <param name="b">The expression.</param>
        /// <returns>a * b.</returns>
        public static Expr operator *(double a, Expr b) => W(E.mul(E.scalarLike(C(b, nameof(b)), a), b.Core));

        /// <summary>Elementwise quotient.</summary>
        /// <param name="a">One operand.</param>
        /// <param name="b">The other operand.</param>
        /// <returns>a / b.</returns>
        public static Expr operator /(Expr a, Expr b) => W(E.div(C(a, nameof(a)), C(b, nameof(b))));

        /// <summary>Elementwise quotient by a constant.</summary>
        /// <param name="a">The expression.</param>
        /// <param name="b">The constant.</param>
        /// <returns>a / b.</returns>
        public static Expr operator /(Expr a, double b) => W(E.div(C(a, nameof(a)), E.scalarLike(a.Core, b)));

        /// <summary>A constant divided elementwise.</summary>
        /// <param name="a">The constant.</param>
        /// <param name="b">The expression.</param>
        /// <returns>a / b.</returns>
        public static Expr operator /(double a, Expr b) => W(E.div(E.scalarLike(C(b, nameof(b)), a), b.Core));

        /// <summary>Negation.</summary>
        /// <param name="a">The operand.</param>
        /// <returns>-a.</returns>
        public static Expr operator -(Expr a) => W(E.neg(C(a, nameof(a))));

        /// <summary>This expression to a constant power, elementwise.</summary>
        /// <param name="exponent">The exponent.</param>
        /// <returns>x^exponent.</returns>
        public Expr Pow(double exponent) => W(E.powScalar(exponent, Core));

        /// <summary>This expression to a power, elementwise (broadcasting).</summary>
        /// <param name="exponent">The exponent.</param>
        /// <returns>x^exponent.</returns>
        public Expr Pow(Expr exponent) => W(E.pow(Core, C(exponent, nameof(exponent))));

        /// <summary>1 where the operands are equal, else 0 (no gradient).</summary>
        /// <param name="other">The other operand.</param>
        /// <returns>The mask.</returns>
        public Expr EqualTo(Expr other) => W(E.equal(Core, C(other, nameof(other))));

        /// <summary>The elementwise maximum.</summary>
        /// <param name="other">The other operand.</param>
        /// <returns>max(x, other).</returns>
        public Expr Maximum(Expr other) => W(E.maximum(Core, C(other, nameof(other))));

        /// <summary>The elementwise minimum.</summary>
        /// <param name="other">The other operand.</param>
        /// <returns>min(x, other).</returns>
        public Expr Minimum(Expr other) => W(E.minimum(Core, C(other, nameof(other))));

        /// <summary><paramref name="a"/> where <paramref name="condition"/> is non-zero, else <paramref name="b"/>.</summary>
        /// <param name="condition">The mask.</param>
        /// <param name="a">Values where the mask is non-zero.</param>
        /// <param name="b">Values elsewhere.</param>
        /// <returns>The selection.</returns>
        public static Expr Where(Expr condition, Expr a, Expr b) => W(E.where(C(condition, nameof(condition)), C(a, nameof(a)), C(b, nameof(b))));

        /// <summary>The sum of same-shape expressions, as one node.</summary>
        /// <param name="terms">The terms.</param>
        /// <returns>Their sum.</returns>
        public static Expr AddN(params Expr[] terms) => W(E.addN(Conversions.Exprs(terms)));

        // Elementwise functions.

        /// <summary>e^x.</summary><returns>The result.</returns>
        public Expr Exp() => W(E.exp(Core));

        /// <summary>The natural logarithm.</summary><returns>The result.</returns>
        public Expr Log() => W(E.log(Core));

        /// <summary>The square root.</summary><returns>The result.</returns>
        public Expr Sqrt() => W(E.sqrt(Core));

        /// <summary>1 / sqrt(x).</summary><returns>The result.</returns>
        public Expr Rsqrt() => W(E.rsqrt(Core));

        /// <summary>|x|.</summary><returns>The result.</returns>
        public Expr Abs() => W(E.abs(Core));

        /// <summary>The sign: -1, 0 or 1.</summary><returns>The result.</returns>
        public Expr Sign() => W(E.sign(Core));

        /// <summary>1 where x &gt; 0, else 0 (the Heaviside step).</summary><returns>The result.</returns>
        public Expr Step() => W(E.step(Core));

        /// <summary>The logistic function 1 / (1 + e^-x).</summary><returns>The result.</returns>
        public Expr Sigmoid() => W(E.sigmoid(Core));

        /// <summary>The hyperbolic tangent.</summary><returns>The result.</returns>
        public Expr Tanh() => W(E.tanh(Core));

        /// <summary>max(x, 0).</summary><returns>The result.</returns>
        public Expr Relu() => W(E.relu(Core));

        /// <summary>log(1 + e^x), computed stably.</summary><returns>The result.</returns>
        public Expr Softplus() => W(E.softplus(Core));

        /// <summary>The sine.</summary><returns>The result.</returns>
        public Expr Sin() => W(E.sin(Core));

        /// <summary>The cosine.</summary><returns>The result.</returns>
        public Expr Cos() => W(E.cos(Core));

        /// <summary>log(1 + x), accurate near 0.</summary><returns>The result.</returns>
        public Expr Log1p() => W(E.log1p(Core));

        /// <summary>e^x - 1, accurate near 0.</summary><returns>The result.</returns>
        public Expr Expm1() => W(E.expm1(Core));

        /// <summary>The error function.</summary><returns>The result.</returns>
        public Expr Erf() => W(E.erf(Core));

        /// <summary>The complementary error function.</summary><returns>The result.</returns>
        public Expr Erfc() => W(E.erfc(Core));

        /// <summary>The Gaussian error linear unit x Φ(x).</summary><returns>The result.</returns>
        public Expr Gelu() => W(E.gelu(Core));

        /// <summary>x sigmoid(x).</summary><returns>The result.</returns>
        public Expr Silu() => W(E.silu(Core));

        /// <summary>log sigmoid(x), computed stably.</summary><returns>The result.</returns>
        public Expr LogSigmoid() => W(E.logSigmoid(Core));

        /// <summary>Rounds down.</summary><returns>The result.</returns>
        public Expr Floor() => W(E.floor(Core));

        /// <summary>Rounds up.</summary><returns>The result.</returns>
        public Expr Ceil() => W(E.ceil(Core));

        /// <summary>Rounds to the nearest integer, halves to even.</summary><returns>The result.</returns>
        public Expr Round() => W(E.round(Core));

        /// <summary>x where x &gt; 0, else slope x.</summary>
        /// <param name="slope">The negative side's slope.</param>
        /// <returns>The result.</returns>
        public Expr LeakyRelu(double slope = 0.01) => W(E.leakyRelu(slope, Core));

        /// <summary>x where x &gt; 0, else alpha (e^x - 1).</summary>
        /// <param name="alpha">The negative side's scale.</param>
        /// <returns>The result.</returns>
        public Expr Elu(double alpha = 1.0) => W(E.elu(alpha, Core));

        /// <summary>The values limited to [min, max]; a null bound is no bound.</summary>
        /// <param name="min">The lower bound, or null.</param>
        /// <param name="max">The upper bound, or null.</param>
        /// <returns>The result.</returns>
        public Expr Clamp(double? min, double? max) => W(E.clamp(Conversions.Option(min), Conversions.Option(max), Core));

        // Shapes.

        /// <summary>The same values in another shape (one axis may be -1).</summary>
        /// <param name="shape">The new shape.</param>
        /// <returns>The result.</returns>
        public Expr Reshape(params int[] shape) => W(E.reshape(shape, Core));

        /// <summary>The axes in another order.</summary>
        /// <param name="permutation">For each output axis, the input axis it takes.</param>
        /// <returns>The result.</returns>
        public Expr Permute(params int[] permutation) => W(E.permute(permutation, Core));

        /// <summary>The last two axes swapped (a vector is unchanged).</summary>
        /// <returns>The result.</returns>
        public Expr Transpose() => W(E.transpose(Core));

        /// <summary>The values broadcast to a larger shape.</summary>
        /// <param name="shape">The target shape.</param>
        /// <returns>The result.</returns>
        public Expr BroadcastTo(params int[] shape) => W(E.broadcastTo(shape, Core));

        /// <summary>A new axis at <paramref name="axis"/> along which the values repeat.</summary>
        /// <param name="axis">Where the new axis goes.</param>
        /// <param name="copies">Its length.</param>
        /// <returns>The result.</returns>
        public Expr Expand(int axis, int copies) => W(E.expand(axis, copies, Core));

        /// <summary>Sums broadcast axes away to reach <paramref name="shape"/> (broadcasting's adjoint).</summary>
        /// <param name="shape">The target shape.</param>
        /// <returns>The result.</returns>
        public Expr SumTo(params int[] shape) => W(E.sumTo(shape, Core));

        /// <summary>The matrix product, NumPy's matmul (batch axes broadcast; a vector is a row or column).</summary>
        /// <param name="other">The right operand.</param>
        /// <returns>this · other.</returns>
        public Expr MatMul(Expr other) => W(E.matmul(Core, C(other, nameof(other))));

        /// <summary>Expressions joined along an axis.</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="parts">The expressions, of equal shapes but for that axis.</param>
        /// <returns>The result.</returns>
        public static Expr Concat(int axis, params Expr[] parts) => W(E.concat(axis, Conversions.Exprs(parts)));

        /// <summary><paramref name="length"/> elements along an axis from <paramref name="start"/>.</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="start">The first position.</param>
        /// <param name="length">How many.</param>
        /// <returns>The result.</returns>
        public Expr Slice(int axis, int start, int length) => W(E.slice(axis, start, length, Core));

        /// <summary>Python's x[start:stop:step] along an axis (null for the ends; negative from the end).</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="start">The first position, or null.</param>
        /// <param name="stop">The position after the last, or null.</param>
        /// <param name="step">The step; negative reads backwards.</param>
        /// <returns>The result.</returns>
        public Expr StridedSlice(int axis, int? start, int? stop, int step = 1) => W(E.stridedSlice(axis, Conversions.Option(start), Conversions.Option(stop), step, Core));

        /// <summary>Values added before and after an axis.</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="before">How many before.</param>
        /// <param name="after">How many after.</param>
        /// <param name="value">The value added.</param>
        /// <returns>The result.</returns>
        public Expr Pad(int axis, int before, int after, double value = 0.0) => W(E.padWith(value, axis, before, after, Core));

        /// <summary>The axes read backwards.</summary>
        /// <param name="axes">The axes.</param>
        /// <returns>The result.</returns>
        public Expr Flip(params int[] axes) => W(E.flip(Conversions.List(axes), Core));

        /// <summary>Rows (axis 0) picked by integer-valued indices of any shape.</summary>
        /// <param name="indices">Row numbers.</param>
        /// <returns>The result, of shape indices.Shape followed by a row's shape.</returns>
        public Expr Gather(Expr indices) => W(E.gather(C(indices, nameof(indices)), Core));

        /// <summary>Rows added into <paramref name="rows"/> zero rows at the given indices (Gather's adjoint).</summary>
        /// <param name="rows">The number of rows of the result.</param>
        /// <param name="indices">Where each row goes.</param>
        /// <returns>The result.</returns>
        public Expr ScatterAdd(int rows, Expr indices) => W(E.scatterAdd(rows, C(indices, nameof(indices)), Core));

        /// <summary>Slices along an axis picked by an integer-valued vector of indices.</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="indices">The positions.</param>
        /// <returns>The result.</returns>
        public Expr IndexSelect(int axis, Expr indices) => W(E.indexSelect(axis, C(indices, nameof(indices)), Core));

        /// <summary>Slices added along an axis of <paramref name="length"/> zeros at the given positions (IndexSelect's adjoint).</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="length">The axis's length in the result.</param>
        /// <param name="indices">The positions.</param>
        /// <returns>The result.</returns>
        public Expr IndexAdd(int axis, int length, Expr indices) => W(E.indexAdd(axis, length, C(indices, nameof(indices)), Core));

        /// <summary>Integer labels as one-hot rows.</summary>
        /// <param name="classes">The number of classes.</param>
        /// <returns>The result, with a new last axis of <paramref name="classes"/>.</returns>
        public Expr OneHot(int classes) => W(E.oneHot(classes, Core));

        /// <summary>The running sum along an axis.</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="reverse">Sum from the end instead.</param>
        /// <returns>The result.</returns>
        public Expr Cumsum(int axis, bool reverse = false) => reverse ? W(E.reverseCumsum(axis, Core)) : W(E.cumsum(axis, Core));

        // Reductions.

        /// <summary>The sum of all elements.</summary><returns>A scalar.</returns>
        public Expr Sum() => W(E.sum(Core));

        /// <summary>The sum over one axis.</summary>
        /// <param name="axis">The axis (negative from the end).</param>
        /// <param name="keepDim">Keep the axis with length 1.</param>
        /// <returns>The result.</returns>
        public Expr Sum(int axis, bool keepDim = false) => W(keepDim ? E.sumAxisKeep(axis, Core) : E.sumAxis(axis, Core));

        /// <summary>The sum over several axes.</summary>
        /// <param name="axes">The axes.</param>
        /// <param name="keepDim">Keep them with length 1.</param>
        /// <returns>The result.</returns>
        public Expr Sum(int[] axes, bool keepDim = false) => W(E.sumAxes(Conversions.List(axes), keepDim, Core));

        /// <summary>The mean of all elements.</summary><returns>A scalar.</returns>
        public Expr Mean() => W(E.mean(Core));

        /// <summary>The mean over one axis.</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="keepDim">Keep the axis with length 1.</param>
        /// <returns>The result.</returns>
        public Expr Mean(int axis, bool keepDim = false) => W(keepDim ? E.meanAxisKeep(axis, Core) : E.meanAxis(axis, Core));

        /// <summary>The mean over several axes.</summary>
        /// <param name="axes">The axes.</param>
        /// <param name="keepDim">Keep them with length 1.</param>
        /// <returns>The result.</returns>
        public Expr Mean(int[] axes, bool keepDim = false) => W(E.meanAxes(Conversions.List(axes), keepDim, Core));

        /// <summary>The largest element.</summary><returns>A scalar.</returns>
        public Expr Max() => W(E.max(Core));

        /// <summary>The largest element along an axis.</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="keepDim">Keep the axis with length 1.</param>
        /// <returns>The result.</returns>
        public Expr Max(int axis, bool keepDim = false) => W(keepDim ? E.maxAxisKeep(axis, Core) : E.maxAxis(axis, Core));

        /// <summary>The smallest element.</summary><returns>A scalar.</returns>
        public Expr Min() => W(E.min(Core));

        /// <summary>The smallest element along an axis.</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="keepDim">Keep the axis with length 1.</param>
        /// <returns>The result.</returns>
        public Expr Min(int axis, bool keepDim = false) => W(keepDim ? E.minAxisKeep(axis, Core) : E.minAxis(axis, Core));

        /// <summary>The product of all elements.</summary><returns>A scalar.</returns>
        public Expr Prod() => W(E.prod(Core));

        /// <summary>The product along an axis.</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="keepDim">Keep the axis with length 1.</param>
        /// <returns>The result.</returns>
        public Expr Prod(int axis, bool keepDim = false) => W(keepDim ? E.prodAxisKeep(axis, Core) : E.prodAxis(axis, Core));

        /// <summary>log(sum(e^x)) of all elements, computed stably.</summary><returns>A scalar.</returns>
        public Expr LogSumExp() => W(E.logSumExp(Core));

        /// <summary>log(sum(e^x)) along an axis, computed stably.</summary>
        /// <param name="axis">The axis.</param>
        /// <param name="keepDim">Keep the axis with length 1.</param>
        /// <returns>The result.</returns>
        public Expr LogSumExp(int axis, bool keepDim = false) => W(keepDim ? E.logSumExpAxisKeep(axis, Core) : E.logSumExpAxis(axis, Core));

        /// <summary>The variance of all elements, or over the given axes.</summary>
        /// <param name="unbiased">Divide by n - 1 instead of n.</param>
        /// <param name="axes">The axes, or null for all.</param>
        /// <param name="keepDim">Keep reduced axes with length 1.</param>
        /// <returns>The result.</returns>
        public Expr Variance(bool unbiased = false, int[]? axes = null, bool keepDim = false) =>
            W(axes is null ? E.variance(unbiased, Core) : E.varianceAxes(unbiased, Conversions.List(axes), keepDim, Core));

        /// <summary>The standard deviation of all elements, or over the given axes.</summary>
        /// <param name="unbiased">Divide by n - 1 instead of n.</param>
        /// <param name="axes">The axes, or null for all.</param>
        /// <param name="keepDim">Keep reduced axes with length 1.</param>
        /// <returns>The result.</returns>
        public Expr Std(bool unbiased = false, int[]? axes = null, bool keepDim = false) =>
            W(axes is null ? E.std(unbiased, Core) : E.stdAxes(unbiased, Conversions.List(axes), keepDim, Core));

        /// <summary>The softmax along an axis.</summary>
        /// <param name="axis">The axis (the last by default).</param>
        /// <returns>The probabilities.</returns>
        public Expr Softmax(int axis = -1) => W(E.softmax(axis, Core));

        /// <summary>The log of the softmax along an axis, computed stably.</summary>
        /// <param name="axis">The axis (the last by default).</param>
        /// <returns>The result.</returns>
        public Expr LogSoftmax(int axis = -1) => W(E.logSoftmax(axis, Core));

        // Convolution and pooling.

        /// <summary>The 2-D convolution (cross-correlation, PyTorch's conv2d) of this [N, C, H, W] input.</summary>
        /// <param name="weight">The kernels, [out, C / groups, kH, kW].</param>
        /// <param name="stride">The step between windows, on both axes.</param>
        /// <param name="padding">Zeros added on both sides of both axes.</param>
        /// <param name="dilation">The spacing of the kernel's taps.</param>
        /// <param name="groups">Channel groups.</param>
        /// <returns>The result, [N, out, H', W'].</returns>
        public Expr Conv2d(Expr weight, int stride = 1, int padding = 0, int dilation = 1, int groups = 1) =>
            W(E.conv2d(Specs.Conv(2, stride, padding, dilation, groups), Core, C(weight, nameof(weight))));

        /// <summary>The 1-D convolution (PyTorch's conv1d) of this [N, C, L] input.</summary>
        /// <param name="weight">The kernels, [out, C / groups, k].</param>
        /// <param name="stride">The step between windows.</param>
        /// <param name="padding">Zeros added on both sides.</param>
        /// <param name="dilation">The spacing of the kernel's taps.</param>
        /// <param name="groups">Channel groups.</param>
        /// <returns>The result, [N, out, L'].</returns>
        public Expr Conv1d(Expr weight, int stride = 1, int padding = 0, int dilation = 1, int groups = 1) =>
            W(E.conv1d(Specs.Conv(1, stride, padding, dilation, groups), Core, C(weight, nameof(weight))));

        /// <summary>Max pooling of this [N, C, H, W] input over square windows.</summary>
        /// <param name="kernelSize">The window's side.</param>
        /// <param name="stride">The step between windows (the kernel size when null).</param>
        /// <param name="padding">-infinity added on both sides (at most half the kernel).</param>
        /// <returns>The result.</returns>
        public Expr MaxPool2d(int kernelSize, int? stride = null, int padding = 0) =>
            W(E.maxPool2d(Specs.Pool(kernelSize, stride ?? kernelSize, padding), Core));

        /// <summary>Average pooling of this [N, C, H, W] input over square windows (padded zeros count).</summary>
        /// <param name="kernelSize">The window's side.</param>
        /// <param name="stride">The step between windows (the kernel size when null).</param>
        /// <param name="padding">Zeros added on both sides (at most half the kernel).</param>
        /// <returns>The result.</returns>
        public Expr AvgPool2d(int kernelSize, int? stride = null, int padding = 0) =>
            W(E.avgPool2d(Specs.Pool(kernelSize, stride ?? kernelSize, padding), Core));

        /// <summary>
        /// im2col (PyTorch's F.unfold): this [N, C, spatial...] input (1 or 2 spatial axes) as columns
        /// [N, C * prod(kernel), windows], each column one window's taps.
        /// </summary>
        /// <param name="kernelSize">The window's size on each spatial axis.</param>
        /// <param name="stride">The steps between windows (ones when null).</param>
        /// <param name="padding">Zeros added on both sides of each axis (none when null).</param>
        /// <param name="dilation">The spacing of the taps (ones when null).</param>
        /// <returns>The columns.</returns>
        public Expr Unfold(int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null) =>
            W(E.unfold(Window(kernelSize, stride, padding, dilation), Core));

        /// <summary>col2im (PyTorch's F.fold), Unfold's adjoint: columns summed into [N, C, outputSize...] where windows overlap.</summary>
        /// <param name="outputSize">The spatial size of the result.</param>
        /// <param name="kernelSize">The window's size on each spatial axis.</param>
        /// <param name="stride">The steps between windows (ones when null).</param>
        /// <param name="padding">The padding the columns were unfolded with (none when null).</param>
        /// <param name="dilation">The spacing of the taps (ones when null).</param>
        /// <returns>The folded tensor.</returns>
        public Expr Fold(int[] outputSize, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null) =>
            W(E.fold(Conversions.List(outputSize), Window(kernelSize, stride, padding, dilation), Core));

        private static global::FuncFlow.Window Window(int[] kernel, int[]? stride, int[]? padding, int[]? dilation)
        {
            ArgumentNullException.ThrowIfNull(kernel);
            int[] Fill(int[]? values, int value) => values ?? Enumerable.Repeat(value, kernel.Length).ToArray();
            return new(Conversions.List(kernel), Conversions.List(Fill(stride, 1)), Conversions.List(Fill(padding, 0)), Conversions.List(Fill(dilation, 1)));
        }

        /// <summary>
        /// When true, every node built from then on records where it was built, and anomaly errors
        /// (<see cref="Eval.EvaluateChecked"/>) show it. Off by default (it costs a stack trace per node).
        /// </summary>
        public static bool CaptureCreationSites
        {
            get => CoreExpr.CaptureCreationSites;
            set => CoreExpr.CaptureCreationSites = value;
        }

        /// <summary>The mean of each channel's plane: [N, C, H, W] to [N, C, 1, 1].</summary>
        /// <returns>The result.</returns>
        public Expr GlobalAvgPool2d() => W(E.globalAvgPool2d(Core));

        // Identity.

        /// <summary>True when both wrap the same node.</summary>
        /// <param name="other">The other expression.</param>
        /// <returns>Whether they are the same node.</returns>
        public bool Equals(Expr? other) => other is not null && Core.Id == other.Core.Id;

        /// <inheritdoc />
        public override bool Equals(object? obj) => obj is Expr e && Equals(e);

        /// <inheritdoc />
        public override int GetHashCode() => Core.Id.GetHashCode();

        /// <summary>The expression as a formula (<see cref="Print.Formula"/>).</summary>
        /// <returns>The formula.</returns>
        public override string ToString() => global::FuncFlow.Print.formula(Core);
    }
}
