using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using FuncFlow.Interop;
using Microsoft.FSharp.Collections;
using CoreTensor = FuncFlow.Tensor;
using Dense = FuncFlow.CSharp.Tensor;

namespace FuncFlow.Autograd
{
    /// <summary>
    /// An eager tensor with autograd, as in Grokking Deep Learning ch. 13 (seed 002). Every operation computes
    /// its value at once through the FuncFlow core and, when an operand has <see cref="Autograd"/>, remembers
    /// its creators and the core expression it is, so <see cref="Backward"/> can ask the core for gradients.
    /// </summary>
    public sealed class Tensor
    {
        private static long counter;

        private readonly long id = Interlocked.Increment(ref counter);
        private readonly Tensor[]? creators;
        private readonly CoreTensor[]? creatorValues;
        private readonly Func<IReadOnlyList<Expr>, Expr>? build;
        private CoreTensor data;
        private Tensor? grad;

        /// <summary>A 1-D tensor from values (copied).</summary>
        /// <param name="data">The values.</param>
        /// <param name="autograd">Whether gradients are tracked through this tensor.</param>
        public Tensor(double[] data, bool autograd = false)
            : this(TensorModule.ofArray(data ?? throw new ArgumentNullException(nameof(data))), autograd)
        {
        }

        /// <summary>A 2-D tensor from a rectangular array (copied).</summary>
        /// <param name="data">The values.</param>
        /// <param name="autograd">Whether gradients are tracked through this tensor.</param>
        public Tensor(double[,] data, bool autograd = false)
            : this(TensorModule.ofArray2D(data ?? throw new ArgumentNullException(nameof(data))), autograd)
        {
        }

        /// <summary>A tensor holding a value of any shape (converted to float64 if it is float32).</summary>
        /// <param name="data">The value.</param>
        /// <param name="autograd">Whether gradients are tracked through this tensor.</param>
        public Tensor(Dense data, bool autograd = false)
            : this((data ?? throw new ArgumentNullException(nameof(data))).Core, autograd)
        {
        }

        internal Tensor(CoreTensor data, bool autograd = false)
        {
            ArgumentNullException.ThrowIfNull(data);
            this.data = Core.ToFloat64(data);
            Autograd = autograd;
        }

        private Tensor(CoreTensor value, Tensor[] creators, Func<IReadOnlyList<Expr>, Expr> build, string creationOp)
        {
            data = value;
            Autograd = true;
            this.creators = creators;
            creatorValues = creators.Select(c => c.data).ToArray();
            this.build = build;
            CreationOp = creationOp;
        }

        /// <summary>
        /// The current value. It can be replaced by a value of the same shape (as an optimizer does); tensors
        /// already computed from this one keep the value they were computed from.
        /// </summary>
        /// <exception cref="ArgumentException">The new value has another shape.</exception>
        public Dense Data
        {
            get => new(data);
            set => Value = (value ?? throw new ArgumentNullException(nameof(value))).Core;
        }

        /// <summary>The current value as a core tensor (what <see cref="Data"/> wraps).</summary>
        internal CoreTensor Value
        {
            get => data;
            set
            {
                ArgumentNullException.ThrowIfNull(value);
                if (!Core.SameShape(value.Shape, data.Shape))
                    throw new ArgumentException(
                        $"Data has shape {Core.ShowShape(data.Shape)} but the new value has shape {Core.ShowShape(value.Shape)}; set a value of the same shape (create a new Tensor for another shape).",
                        nameof(value));
                data = Core.ToFloat64(value);
            }
        }

        /// <summary>
        /// The gradient accumulated by <see cref="Backward"/> (summed across uses and calls), or null until a
        /// backward pass reaches this tensor. Set it to null to clear it.
        /// </summary>
        /// <exception cref="ArgumentException">The new gradient's shape differs from the tensor's.</exception>
        public Tensor? Grad
        {
            get => grad;
            set
            {
                if (value is not null && !Core.SameShape(value.Shape, data.Shape))
                    throw new ArgumentException(
                        $"The tensor has shape {Core.ShowShape(data.Shape)} but the gradient has shape {Core.ShowShape(value.Shape)}; a gradient has its tensor's shape.",
                        nameof(value));
                grad = value;
            }
        }

        /// <summary>Whether gradients are tracked through this tensor.</summary>
        public bool Autograd { get; }

        /// <summary>The dimensions, outermost first (a copy).</summary>
        public int[] Shape => data.Shape;

        /// <summary>The tensors this one was computed from (empty for a tensor made by the user or without autograd).</summary>
        public IReadOnlyList<Tensor> Creators => creators ?? Array.Empty<Tensor>();

        /// <summary>The operation that made this tensor, as the seed names it ("add", "mm", "sum_0", ...), or null.</summary>
        public string? CreationOp { get; }

        /// <summary>The values, row-major (a copy).</summary>
        /// <returns>The values.</returns>
        public double[] ToArray() => data.ToArray();

        /// <summary>The values as NumPy prints them.</summary>
        /// <returns>The text.</returns>
        public override string ToString() => Core.Format(data);

        /// <summary>
        /// This tensor as one core expression: every tensor it was computed from is replaced by the expression that
        /// computed it, down to tensors without creators, each given by <paramref name="leaf"/> (the tensor and the
        /// value its consumer cached) or, where that returns null, as a constant of the cached value.
        /// </summary>
        /// <param name="leaf">The expression of a tensor without creators, or null for a constant.</param>
        /// <param name="built">Receives each tensor with creators and its node, when given.</param>
        internal Expr Trace(Func<Tensor, CoreTensor, Expr?> leaf, Dictionary<Tensor, Expr>? built = null)
        {
            if (creators is null || build is null) return leaf(this, data) ?? Core.Constant(data);
            var exprs = built ?? new Dictionary<Tensor, Expr>(ReferenceEqualityComparer.Instance);
            var stack = new Stack<(Tensor Node, int Next)>();
            stack.Push((this, 0));
            while (stack.Count > 0)
            {
                var (node, next) = stack.Pop();
                var cs = node.creators!;
                if (next < cs.Length)
                {
                    stack.Push((node, next + 1));
                    var c = cs[next];
                    if (c.creators is not null && c.build is not null && !exprs.ContainsKey(c)) stack.Push((c, 0));
                }
                else if (!exprs.ContainsKey(node))
                {
                    var operands = new Expr[cs.Length];
                    for (int i = 0; i < cs.Length; i++)
                        operands[i] = cs[i].creators is not null && cs[i].build is not null
                            ? exprs[cs[i]]
                            : leaf(cs[i], node.creatorValues![i]) ?? Core.Constant(node.creatorValues![i]);
                    exprs[node] = node.build!(operands);
                }
            }
            return exprs[this];
        }

        /// <summary>Evaluates a core expression over the operands' values; records the graph when any operand has autograd.</summary>
        internal static Tensor Apply(string op, Func<IReadOnlyList<Expr>, Expr> build, params Tensor[] operands)
        {
            for (int i = 0; i < operands.Length; i++)
                if (operands[i] is null) throw new ArgumentNullException(nameof(operands), $"{op}: operand {i} is null.");
            var env = new Dictionary<string, CoreTensor>();
            var vars = new Expr[operands.Length];
            for (int i = 0; i < operands.Length; i++)
            {
                var name = "x" + i.ToString(CultureInfo.InvariantCulture);
                env[name] = operands[i].data;
                vars[i] = Core.Var(name, operands[i].data.Shape);
            }
            Expr e;
            try
            {
                e = build(vars);
            }
            catch (ArgumentException ex)
            {
                var shapes = string.Join(" and ", operands.Select(o => Core.ShowShape(o.data.Shape)));
                throw new ArgumentException($"Tensor {op} of shapes {shapes}: {ex.Message}", ex);
            }
            var value = Core.Evaluate(env, e);
            return operands.Any(o => o.Autograd) ? new Tensor(value, operands, build, op) : new Tensor(value);
        }

        /// <summary>Elementwise sum (NumPy broadcasting).</summary>
        /// <param name="a">One operand.</param>
        /// <param name="b">The other operand.</param>
        /// <returns>a + b.</returns>
        public static Tensor operator +(Tensor a, Tensor b) => Apply("add", v => ExprModule.add(v[0], v[1]), a, b);

        /// <summary>Elementwise difference (NumPy broadcasting).</summary>
        /// <param name="a">One operand.</param>
        /// <param name="b">The other operand.</param>
        /// <returns>a - b.</returns>
        public static Tensor operator -(Tensor a, Tensor b) => Apply("sub", v => ExprModule.sub(v[0], v[1]), a, b);

        /// <summary>Elementwise product (NumPy broadcasting).</summary>
        /// <param name="a">One operand.</param>
        /// <param name="b">The other operand.</param>
        /// <returns>a * b.</returns>
        public static Tensor operator *(Tensor a, Tensor b) => Apply("mul", v => ExprModule.mul(v[0], v[1]), a, b);

        /// <summary>Negation.</summary>
        /// <param name="a">The operand.</param>
        /// <returns>-a.</returns>
        public static Tensor operator -(Tensor a) => Apply("neg", v => ExprModule.neg(v[0]), a);

        /// <summary>The sum over one axis, which is dropped (the seed's <c>sum(dim)</c>).</summary>
        /// <param name="dim">The axis.</param>
        /// <returns>The sums.</returns>
        public Tensor Sum(int dim) => Apply("sum_" + dim.ToString(CultureInfo.InvariantCulture), v => ExprModule.sumAxis(dim, v[0]), this);

        /// <summary>A new axis at <paramref name="dim"/> along which the values are repeated (the seed's <c>expand</c>).</summary>
        /// <param name="dim">Where the new axis goes (0 to the rank).</param>
        /// <param name="copies">How many copies.</param>
        /// <returns>The expanded tensor.</returns>
        public Tensor Expand(int dim, int copies) =>
            Apply("expand_" + dim.ToString(CultureInfo.InvariantCulture), v => ExprModule.expand(dim, copies, v[0]), this);

        /// <summary>The matrix transpose (a 1-D tensor is returned unchanged, as in NumPy).</summary>
        /// <returns>The transpose.</returns>
        public Tensor Transpose() => Apply("transpose", v => ExprModule.transpose(v[0]), this);

        /// <summary>The matrix product with <paramref name="other"/>.</summary>
        /// <param name="other">The right operand.</param>
        /// <returns>this · other.</returns>
        public Tensor MM(Tensor other) => Apply("mm", v => ExprModule.matmul(v[0], v[1]), this, other);

        /// <summary>The logistic function, elementwise.</summary>
        /// <returns>1 / (1 + e^-x).</returns>
        public Tensor Sigmoid() => Apply("sigmoid", v => ExprModule.sigmoid(v[0]), this);

        /// <summary>The hyperbolic tangent, elementwise.</summary>
        /// <returns>tanh(x).</returns>
        public Tensor Tanh() => Apply("tanh", v => ExprModule.tanh(v[0]), this);

        /// <summary>max(x, 0), elementwise.</summary>
        /// <returns>The rectified values.</returns>
        public Tensor Relu() => Apply("relu", v => ExprModule.relu(v[0]), this);

        /// <summary>The softmax along the last axis.</summary>
        /// <returns>The probabilities.</returns>
        public Tensor Softmax() => Apply("softmax", v => ExprModule.softmax(-1, v[0]), this);

        /// <summary>
        /// Any operation of the library's expressions (<see cref="FuncFlow.CSharp.Expr"/>) on eager tensors: the value is
        /// computed now, and <see cref="Backward"/> differentiates through it like through the built-in operations.
        /// </summary>
        /// <param name="name">The operation's name, shown as <see cref="CreationOp"/>.</param>
        /// <param name="function">The result as an expression of one variable per operand.</param>
        /// <param name="operands">The operands.</param>
        /// <returns>The result.</returns>
        public static Tensor Compute(string name, Func<FuncFlow.CSharp.Expr[], FuncFlow.CSharp.Expr> function, params Tensor[] operands)
        {
            ArgumentNullException.ThrowIfNull(name);
            ArgumentNullException.ThrowIfNull(function);
            ArgumentNullException.ThrowIfNull(operands);
            return Apply(name, v => (function(v.Select(e => new FuncFlow.CSharp.Expr(e)).ToArray())
                ?? throw new InvalidOperationException($"{name}: the function returned null.")).Core, operands);
        }

        /// <summary>A tensor of zeros.</summary>
        /// <param name="shape">The shape.</param>
        /// <returns>The tensor, without autograd.</returns>
        public static Tensor Zeros(params int[] shape) => new(Core.Zeros(shape));

        /// <summary>A tensor of ones.</summary>
        /// <param name="shape">The shape.</param>
        /// <returns>The tensor, without autograd.</returns>
        public static Tensor Ones(params int[] shape) => new(Core.Ones(shape));

        /// <summary>Values drawn from a normal distribution; the same seed gives the same values.</summary>
        /// <param name="seed">The generator's seed.</param>
        /// <param name="shape">The shape.</param>
        /// <param name="mean">The distribution's mean.</param>
        /// <param name="std">The distribution's standard deviation.</param>
        /// <param name="autograd">Whether gradients are tracked through the tensor.</param>
        /// <returns>The tensor.</returns>
        public static Tensor RandNormal(int seed, int[] shape, double mean = 0.0, double std = 1.0, bool autograd = false) =>
            new(TensorModule.randNormal(DType.Float64, seed, shape, mean, std), autograd);

        /// <summary>A constant added elementwise.</summary>
        /// <param name="a">The tensor.</param>
        /// <param name="b">The constant.</param>
        /// <returns>a + b.</returns>
        public static Tensor operator +(Tensor a, double b) => Apply("add", v => ExprModule.add(v[0], ExprModule.scalarLike(v[0], b)), a);

        /// <summary>A constant subtracted elementwise.</summary>
        /// <param name="a">The tensor.</param>
        /// <param name="b">The constant.</param>
        /// <returns>a - b.</returns>
        public static Tensor operator -(Tensor a, double b) => Apply("sub", v => ExprModule.sub(v[0], ExprModule.scalarLike(v[0], b)), a);

        /// <summary>Elementwise product with a constant.</summary>
        /// <param name="a">The tensor.</param>
        /// <param name="b">The constant.</param>
        /// <returns>a * b.</returns>
        public static Tensor operator *(Tensor a, double b) => Apply("mul", v => ExprModule.mul(v[0], ExprModule.scalarLike(v[0], b)), a);

        /// <summary>Elementwise product with a constant.</summary>
        /// <param name="a">The constant.</param>
        /// <param name="b">The tensor.</param>
        /// <returns>a * b.</returns>
        public static Tensor operator *(double a, Tensor b) => b * a;

        /// <summary>Elementwise quotient by a constant.</summary>
        /// <param name="a">The tensor.</param>
        /// <param name="b">The constant.</param>
        /// <returns>a / b.</returns>
        public static Tensor operator /(Tensor a, double b) => Apply("div", v => ExprModule.div(v[0], ExprModule.scalarLike(v[0], b)), a);

        /// <summary>Elementwise quotient (NumPy broadcasting).</summary>
        /// <param name="a">The dividend.</param>
        /// <param name="b">The divisor.</param>
        /// <returns>a / b.</returns>
        public static Tensor operator /(Tensor a, Tensor b) => Apply("div", v => ExprModule.div(v[0], v[1]), a, b);

        /// <summary>Each element to a constant power.</summary>
        /// <param name="exponent">The exponent.</param>
        /// <returns>x^exponent.</returns>
        public Tensor Pow(double exponent) => Apply("pow", v => ExprModule.powScalar(exponent, v[0]), this);

        /// <summary>e^x, elementwise.</summary>
        /// <returns>The result.</returns>
        public Tensor Exp() => Apply("exp", v => ExprModule.exp(v[0]), this);

        /// <summary>The natural logarithm, elementwise.</summary>
        /// <returns>The result.</returns>
        public Tensor Log() => Apply("log", v => ExprModule.log(v[0]), this);

        /// <summary>The square root, elementwise.</summary>
        /// <returns>The result.</returns>
        public Tensor Sqrt() => Apply("sqrt", v => ExprModule.sqrt(v[0]), this);

        /// <summary>|x|, elementwise.</summary>
        /// <returns>The result.</returns>
        public Tensor Abs() => Apply("abs", v => ExprModule.abs(v[0]), this);

        /// <summary>The Gaussian error linear unit, elementwise.</summary>
        /// <returns>The result.</returns>
        public Tensor Gelu() => Apply("gelu", v => ExprModule.gelu(v[0]), this);

        /// <summary>x sigmoid(x), elementwise.</summary>
        /// <returns>The result.</returns>
        public Tensor Silu() => Apply("silu", v => ExprModule.silu(v[0]), this);

        /// <summary>log(1 + e^x), elementwise.</summary>
        /// <returns>The result.</returns>
        public Tensor Softplus() => Apply("softplus", v => ExprModule.softplus(v[0]), this);

        /// <summary>x where x &gt; 0, else slope x.</summary>
        /// <param name="slope">The negative side's slope.</param>
        /// <returns>The result.</returns>
        public Tensor LeakyRelu(double slope = 0.01) => Apply("leaky_relu", v => ExprModule.leakyRelu(slope, v[0]), this);

        /// <summary>The elementwise maximum (NumPy broadcasting).</summary>
        /// <param name="other">The other operand.</param>
        /// <returns>max(x, other).</returns>
        public Tensor Maximum(Tensor other) => Apply("maximum", v => ExprModule.maximum(v[0], v[1]), this, other);

        /// <summary>The sum of all elements.</summary>
        /// <returns>A scalar tensor.</returns>
        public Tensor Sum() => Apply("sum", v => ExprModule.sum(v[0]), this);

        /// <summary>The mean of all elements.</summary>
        /// <returns>A scalar tensor.</returns>
        public Tensor Mean() => Apply("mean", v => ExprModule.mean(v[0]), this);

        /// <summary>The mean over one axis.</summary>
        /// <param name="dim">The axis (negative from the end).</param>
        /// <param name="keepDim">Keep the axis with length 1.</param>
        /// <returns>The means.</returns>
        public Tensor Mean(int dim, bool keepDim = false) =>
            Apply("mean_" + dim.ToString(CultureInfo.InvariantCulture), v => keepDim ? ExprModule.meanAxisKeep(dim, v[0]) : ExprModule.meanAxis(dim, v[0]), this);

        /// <summary>The largest element along an axis.</summary>
        /// <param name="dim">The axis (negative from the end).</param>
        /// <param name="keepDim">Keep the axis with length 1.</param>
        /// <returns>The maxima.</returns>
        public Tensor Max(int dim, bool keepDim = false) =>
            Apply("max_" + dim.ToString(CultureInfo.InvariantCulture), v => keepDim ? ExprModule.maxAxisKeep(dim, v[0]) : ExprModule.maxAxis(dim, v[0]), this);

        /// <summary>The variance over one axis.</summary>
        /// <param name="dim">The axis (negative from the end).</param>
        /// <param name="unbiased">Divide by n - 1 instead of n.</param>
        /// <param name="keepDim">Keep the axis with length 1.</param>
        /// <returns>The variances.</returns>
        public Tensor Var(int dim, bool unbiased = false, bool keepDim = false) =>
            Apply("var_" + dim.ToString(CultureInfo.InvariantCulture), v => ExprModule.varianceAxes(unbiased, ListModule.Singleton(dim), keepDim, v[0]), this);

        /// <summary>The same values in another shape (one axis may be -1).</summary>
        /// <param name="shape">The new shape.</param>
        /// <returns>The reshaped tensor.</returns>
        public Tensor Reshape(params int[] shape) => Apply("reshape", v => ExprModule.reshape(shape, v[0]), this);

        /// <summary>The axes in another order.</summary>
        /// <param name="permutation">For each output axis, the input axis it takes.</param>
        /// <returns>The permuted tensor.</returns>
        public Tensor Permute(params int[] permutation) => Apply("permute", v => ExprModule.permute(permutation, v[0]), this);

        /// <summary>The log of the softmax along the last axis, computed stably.</summary>
        /// <returns>The log-probabilities.</returns>
        public Tensor LogSoftmax() => Apply("log_softmax", v => ExprModule.logSoftmax(-1, v[0]), this);

        /// <summary>The 2-D convolution (PyTorch's conv2d) of this [N, C, H, W] tensor with square kernels.</summary>
        /// <param name="weight">The kernels, [out, C / groups, k, k].</param>
        /// <param name="bias">A bias per output channel, or null.</param>
        /// <param name="stride">The step between windows.</param>
        /// <param name="padding">Zeros added on both sides of both axes.</param>
        /// <param name="dilation">The spacing of the kernel's taps.</param>
        /// <param name="groups">Channel groups.</param>
        /// <returns>The result, [N, out, H', W'].</returns>
        public Tensor Conv2d(Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
        {
            var spec = FuncFlow.CSharp.Specs.Conv(2, stride, padding, dilation, groups);
            return bias is null
                ? Apply("conv2d", v => ExprModule.conv2d(spec, v[0], v[1]), this, weight)
                : Apply("conv2d", v => ExprModule.add(ExprModule.conv2d(spec, v[0], v[1]), ExprModule.reshape(new[] { -1, 1, 1 }, v[2])), this, weight, bias);
        }

        /// <summary>Max pooling of this [N, C, H, W] tensor over square windows.</summary>
        /// <param name="kernelSize">The window's side.</param>
        /// <param name="stride">The step between windows (the kernel size when null).</param>
        /// <param name="padding">-infinity added on both sides.</param>
        /// <returns>The pooled tensor.</returns>
        public Tensor MaxPool2d(int kernelSize, int? stride = null, int padding = 0) =>
            Apply("max_pool2d", v => ExprModule.maxPool2d(FuncFlow.CSharp.Specs.Pool(kernelSize, stride ?? kernelSize, padding), v[0]), this);

        /// <summary>Average pooling of this [N, C, H, W] tensor over square windows.</summary>
        /// <param name="kernelSize">The window's side.</param>
        /// <param name="stride">The step between windows (the kernel size when null).</param>
        /// <param name="padding">Zeros added on both sides (counted in the mean).</param>
        /// <returns>The pooled tensor.</returns>
        public Tensor AvgPool2d(int kernelSize, int? stride = null, int padding = 0) =>
            Apply("avg_pool2d", v => ExprModule.avgPool2d(FuncFlow.CSharp.Specs.Pool(kernelSize, stride ?? kernelSize, padding), v[0]), this);

        /// <summary>Layer normalisation over the last axis: (x - mean) / sqrt(var + eps), then times weight plus bias when given.</summary>
        /// <param name="weight">A scale per feature, or null.</param>
        /// <param name="bias">A shift per feature, or null.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <returns>The normalised tensor.</returns>
        public Tensor LayerNorm(Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
        {
            Expr Normalise(Expr x)
            {
                var (_, centered, variance) = FuncFlow.NN.Normalization.moments(ListModule.Singleton(-1), x);
                return FuncFlow.NN.Normalization.normalize(eps, centered, variance);
            }
            return (weight, bias) switch
            {
                (null, null) => Apply("layer_norm", v => Normalise(v[0]), this),
                (not null, null) => Apply("layer_norm", v => ExprModule.mul(Normalise(v[0]), v[1]), this, weight),
                (null, not null) => Apply("layer_norm", v => ExprModule.add(Normalise(v[0]), v[1]), this, bias),
                _ => Apply("layer_norm", v => ExprModule.add(ExprModule.mul(Normalise(v[0]), v[1]), v[2]), this, weight, bias),
            };
        }

        /// <summary>
        /// Rows of this tensor picked by integer-valued <paramref name="indices"/> of any shape (the result has
        /// shape indices.Shape followed by this tensor's shape without its first axis): embeddings.
        /// </summary>
        /// <param name="indices">Row numbers, 0 to rows - 1.</param>
        /// <returns>The picked rows.</returns>
        /// <exception cref="ArgumentException">An index is not a whole number in range.</exception>
        public Tensor IndexSelect(Tensor indices)
        {
            ArgumentNullException.ThrowIfNull(indices);
            if (data.Shape.Length == 0)
                throw new ArgumentException("IndexSelect: a scalar has no rows to pick; use a tensor with at least one axis.", nameof(indices));
            var rows = data.Shape[0];
            foreach (var v in indices.ToArray())
                if (v != Math.Floor(v) || v < 0 || v >= rows)
                    throw new ArgumentException($"IndexSelect: index {v.ToString(CultureInfo.InvariantCulture)} is not a row of a tensor of shape {Core.ShowShape(data.Shape)} (expected whole numbers 0..{rows - 1}).", nameof(indices));
            return Apply("index_select", v => ExprModule.gather(v[1], v[0]), this, indices);
        }

        /// <summary>
        /// The mean cross-entropy of the softmax of this tensor (last axis) against <paramref name="target"/>:
        /// class indices (one per row) or one-hot rows.
        /// </summary>
        /// <param name="target">Class indices or one-hot rows.</param>
        /// <returns>A scalar tensor.</returns>
        public Tensor CrossEntropy(Tensor target) =>
            Apply("cross_entropy", v => FuncFlow.Nodes.CrossEntropy.Build(v[0], v[1]), this, target);

        /// <summary>
        /// Backpropagates from this tensor: every autograd tensor it was computed from gets the gradient of
        /// <c>sum(grad * this)</c> added to its <see cref="Grad"/> (a tensor used several times gets the sum).
        /// The tensors' operations make one core expression, whose leaves are bound to the values cached when they
        /// were used, and one call to the core's gradient fold (<c>Grad.vjp</c>) differentiates it: nothing is
        /// recomputed from current <see cref="Data"/>.
        /// </summary>
        /// <param name="grad">The gradient flowing in, of this tensor's shape; ones when null.</param>
        /// <exception cref="InvalidOperationException">This tensor was created without autograd.</exception>
        /// <exception cref="ArgumentException"><paramref name="grad"/> has another shape.</exception>
        public void Backward(Tensor? grad = null)
        {
            if (!Autograd)
                throw new InvalidOperationException(
                    "Backward was called on a tensor without autograd; create the tensors you want gradients for with autograd: true (an operation on them then tracks gradients).");
            var seedValue = grad?.data ?? Core.Ones(data.Shape);
            if (!Core.SameShape(seedValue.Shape, data.Shape))
                throw new ArgumentException(
                    $"Backward: the gradient has shape {Core.ShowShape(seedValue.Shape)} but the tensor has shape {Core.ShowShape(data.Shape)}; pass a gradient of the tensor's shape.",
                    nameof(grad));

            // Autograd leaves become variables, one per value their consumers cached (a leaf whose Data was
            // replaced between uses has two); every other autograd tensor is a node of the traced expression.
            var env = new Dictionary<string, CoreTensor> { ["seed"] = seedValue };
            var leafVars = new Dictionary<Tensor, List<(CoreTensor Value, Expr Var)>>(ReferenceEqualityComparer.Instance);
            Expr? Leaf(Tensor t, CoreTensor value)
            {
                if (!t.Autograd) return null;
                if (!leafVars.TryGetValue(t, out var vars)) leafVars[t] = vars = new();
                foreach (var (v, e) in vars)
                    if (ReferenceEquals(v, value)) return e;
                var name = "leaf" + t.id.ToString(CultureInfo.InvariantCulture) + "." + vars.Count.ToString(CultureInfo.InvariantCulture);
                env[name] = value;
                var variable = Core.Var(name, value.Shape);
                vars.Add((value, variable));
                return variable;
            }
            var nodes = new Dictionary<Tensor, Expr>(ReferenceEqualityComparer.Instance);
            var root = Trace(Leaf, nodes);
            var wrt = nodes.Values.Concat(leafVars.Values.SelectMany(vs => vs.Select(v => v.Var))).ToList();
            var map = Core.Vjp(Core.Var("seed", seedValue.Shape), wrt, root);

            var outputs = new List<(Tensor Target, Expr Total)>();
            void Accumulate(Tensor t, Expr g)
            {
                if (t.grad is not null)
                {
                    var name = "grad" + t.id.ToString(CultureInfo.InvariantCulture);
                    env[name] = t.grad.data;
                    g = ExprModule.add(Core.Var(name, t.grad.data.Shape), g);
                }
                outputs.Add((t, g));
            }
            foreach (var (t, node) in nodes) Accumulate(t, map[node]);
            foreach (var (t, vars) in leafVars) Accumulate(t, Core.AddN(vars.Select(v => map[v.Var])));

            var values = Core.Evaluate(env, outputs.Select(o => o.Total));
            for (int i = 0; i < outputs.Count; i++)
            {
                var t = outputs[i].Target;
                if (t.grad is null) t.grad = new Tensor(values[i]);
                else t.grad.data = values[i];
            }
        }
    }
}
