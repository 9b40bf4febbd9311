using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using FuncFlow.Interop;
using CoreTensor = FuncFlow.Tensor;

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

        /// <summary>A tensor holding a core tensor (converted to float64 if it is float32).</summary>
        /// <param name="data">The value.</param>
        /// <param name="autograd">Whether gradients are tracked through this tensor.</param>
        public Tensor(CoreTensor data, bool autograd = false)
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
        public CoreTensor Data
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

        private static string Name(long id, int i) =>
            "t" + id.ToString(CultureInfo.InvariantCulture) + "." + i.ToString(CultureInfo.InvariantCulture);

        /// <summary>
        /// This tensor as one core expression over the given leaves: every tensor it was computed from is replaced by
        /// the expression that computed it, down to the leaves (as variables) and other tensors (as constants).
        /// </summary>
        internal Expr Trace(Tensor[] leaves, Expr[] vars)
        {
            var exprs = new Dictionary<Tensor, Expr>(ReferenceEqualityComparer.Instance);
            for (int i = 0; i < leaves.Length; i++) exprs[leaves[i]] = vars[i];
            var stack = new Stack<(Tensor Node, int Next)>();
            stack.Push((this, 0));
            while (stack.Count > 0)
            {
                var (node, next) = stack.Pop();
                if (exprs.ContainsKey(node)) continue;
                var cs = node.creators;
                if (cs is null || node.build is null)
                {
                    exprs[node] = Core.Constant(node.data);
                }
                else if (next < cs.Length)
                {
                    stack.Push((node, next + 1));
                    if (!exprs.ContainsKey(cs[next])) stack.Push((cs[next], 0));
                }
                else
                {
                    exprs[node] = node.build(cs.Select(c => exprs[c]).ToArray());
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
        /// The gradients come from the core's gradient map, seeded with <paramref name="grad"/>, on the values
        /// cached when the tensors were computed: nothing is recomputed from current <see cref="Data"/>.
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

            // Autograd tensors reachable through creators, each after the tensors it was computed from.
            var order = new List<Tensor>();
            var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
            var stack = new Stack<(Tensor Node, int Next)>();
            visited.Add(this);
            stack.Push((this, 0));
            while (stack.Count > 0)
            {
                var (node, next) = stack.Pop();
                var cs = node.creators;
                if (cs is not null && next < cs.Length)
                {
                    stack.Push((node, next + 1));
                    var c = cs[next];
                    if (c.Autograd && visited.Add(c)) stack.Push((c, 0));
                }
                else order.Add(node);
            }

            // The gradient expressions, node by node from the output: each node's own expression over variables
            // bound to its creators' cached values, differentiated by the core with the incoming gradient as seed.
            var env = new Dictionary<string, CoreTensor> { ["seed"] = seedValue };
            var contributions = new Dictionary<Tensor, List<Expr>>(ReferenceEqualityComparer.Instance)
            {
                [this] = new List<Expr> { Core.Var("seed", seedValue.Shape) },
            };
            var outputs = new List<(Tensor Target, Expr Total)>();
            for (int k = order.Count - 1; k >= 0; k--)
            {
                var t = order[k];
                if (!contributions.TryGetValue(t, out var parts)) continue;
                var g = Core.AddN(parts);
                var total = g;
                if (t.grad is not null)
                {
                    var name = "g" + t.id.ToString(CultureInfo.InvariantCulture);
                    env[name] = t.grad.data;
                    total = ExprModule.add(Core.Var(name, t.grad.data.Shape), g);
                }
                outputs.Add((t, total));
                if (t.creators is null || t.build is null || t.creatorValues is null) continue;
                var vars = new Expr[t.creators.Length];
                for (int i = 0; i < vars.Length; i++)
                {
                    var name = Name(t.id, i);
                    env[name] = t.creatorValues[i];
                    vars[i] = Core.Var(name, t.creatorValues[i].Shape);
                }
                var local = t.build(vars);
                var wrt = Enumerable.Range(0, vars.Length).Where(i => t.creators[i].Autograd).Select(i => vars[i]).ToList();
                var map = Core.Vjp(g, wrt, local);
                for (int i = 0; i < vars.Length; i++)
                {
                    var c = t.creators[i];
                    if (!c.Autograd) continue;
                    if (!contributions.TryGetValue(c, out var list)) contributions[c] = list = new List<Expr>();
                    list.Add(map[vars[i]]);
                }
            }

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
