using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;

namespace FuncFlow.Nodes
{
    /// <summary>The sum of its inbound nodes' values (NumPy broadcasting), as the seed's <c>Add</c>.</summary>
    public sealed class Add : Operation
    {
        /// <summary>Adds the values of <paramref name="inputs"/>.</summary>
        /// <param name="inputs">The terms, at least one.</param>
        public Add(params Node[] inputs) : base("Add_Op", inputs)
        {
        }

        /// <inheritdoc />
        protected override FuncFlow.CSharp.Expr BuildExpression(IReadOnlyList<FuncFlow.CSharp.Expr> inputs) => inputs.Aggregate((a, b) => a + b);
    }

    /// <summary>The elementwise product of its inbound nodes' values (NumPy broadcasting), as the seed's <c>Mul</c>.</summary>
    public sealed class Mul : Operation
    {
        /// <summary>Multiplies the values of <paramref name="inputs"/>.</summary>
        /// <param name="inputs">The factors, at least one.</param>
        public Mul(params Node[] inputs) : base("Mul_Op", inputs)
        {
        }

        /// <inheritdoc />
        protected override FuncFlow.CSharp.Expr BuildExpression(IReadOnlyList<FuncFlow.CSharp.Expr> inputs) => inputs.Aggregate((a, b) => a * b);
    }

    /// <summary>The linear transform <c>X · W + b</c>, as the seed's <c>Linear</c>.</summary>
    public sealed class Linear : Operation
    {
        /// <summary>Creates the transform of <paramref name="x"/> by weights <paramref name="w"/> and bias <paramref name="b"/>.</summary>
        /// <param name="x">The inputs, one row per example (rows x features).</param>
        /// <param name="w">The weights (features x outputs).</param>
        /// <param name="b">The bias (outputs), broadcast over the rows.</param>
        public Linear(Node x, Node w, Node b) : base("Linear_OP", x, w, b)
        {
        }

        /// <inheritdoc />
        protected override FuncFlow.CSharp.Expr BuildExpression(IReadOnlyList<FuncFlow.CSharp.Expr> inputs) =>
            inputs[0].MatMul(inputs[1]) + inputs[2];
    }

    /// <summary>The logistic function <c>1 / (1 + e^-x)</c>, elementwise, as the seed's <c>Sigmoid</c>.</summary>
    public sealed class Sigmoid : Operation
    {
        /// <summary>Applies the sigmoid to <paramref name="x"/>.</summary>
        /// <param name="x">The operand.</param>
        public Sigmoid(Node x) : base("Sigmoid_Op", x)
        {
        }

        /// <inheritdoc />
        protected override FuncFlow.CSharp.Expr BuildExpression(IReadOnlyList<FuncFlow.CSharp.Expr> inputs) => inputs[0].Sigmoid();
    }

    /// <summary><c>max(x, 0)</c>, elementwise.</summary>
    public sealed class Relu : Operation
    {
        /// <summary>Applies the rectifier to <paramref name="x"/>.</summary>
        /// <param name="x">The operand.</param>
        public Relu(Node x) : base("Relu_Op", x)
        {
        }

        /// <inheritdoc />
        protected override FuncFlow.CSharp.Expr BuildExpression(IReadOnlyList<FuncFlow.CSharp.Expr> inputs) => inputs[0].Relu();
    }

    /// <summary>The hyperbolic tangent, elementwise.</summary>
    public sealed class Tanh : Operation
    {
        /// <summary>Applies tanh to <paramref name="x"/>.</summary>
        /// <param name="x">The operand.</param>
        public Tanh(Node x) : base("Tanh_Op", x)
        {
        }

        /// <inheritdoc />
        protected override FuncFlow.CSharp.Expr BuildExpression(IReadOnlyList<FuncFlow.CSharp.Expr> inputs) => inputs[0].Tanh();
    }

    /// <summary>The softmax along the last axis (each row of a matrix sums to one), computed stably.</summary>
    public sealed class Softmax : Operation
    {
        /// <summary>Applies the softmax to <paramref name="x"/>.</summary>
        /// <param name="x">The scores: a vector, or one row per example.</param>
        public Softmax(Node x) : base("Softmax_Op", x)
        {
        }

        /// <inheritdoc />
        protected override FuncFlow.CSharp.Expr BuildExpression(IReadOnlyList<FuncFlow.CSharp.Expr> inputs) => inputs[0].Softmax();
    }

    /// <summary>
    /// The mean squared error <c>mean((y - a)^2)</c>, as the seed's <c>MSE</c>: the targets are read in the
    /// predictions' shape (the seed reshapes both to columns), so <c>y</c> of shape (m,) and <c>a</c> of shape (m, 1) match.
    /// </summary>
    public sealed class MSE : Operation
    {
        /// <summary>Creates the cost of predictions <paramref name="a"/> against targets <paramref name="y"/>.</summary>
        /// <param name="y">The targets.</param>
        /// <param name="a">The predictions, with as many elements as the targets.</param>
        public MSE(Node y, Node a) : base("MSE_Op", y, a)
        {
        }

        /// <inheritdoc />
        protected override FuncFlow.CSharp.Expr BuildExpression(IReadOnlyList<FuncFlow.CSharp.Expr> inputs) => FuncFlow.CSharp.Loss.MSE.Compute(inputs[1], inputs[0]);
    }

    /// <summary>
    /// The cross-entropy of the softmax of <c>logits</c> (last axis) against <c>labels</c>, averaged over the
    /// examples: the lecture's classification cost. The labels are either class indices (one per example: shape
    /// of the logits without the last axis, or with a trailing 1) or probabilities of the logits' shape
    /// (one-hot rows). No gradient flows into the labels.
    /// </summary>
    public sealed class SoftmaxCrossEntropy : Operation
    {
        /// <summary>Creates the cost of <paramref name="logits"/> against <paramref name="labels"/>.</summary>
        /// <param name="logits">The scores: a vector of classes, or one row of classes per example.</param>
        /// <param name="labels">Class indices or one-hot rows.</param>
        public SoftmaxCrossEntropy(Node logits, Node labels) : base("SoftmaxCrossEntropy_Op", logits, labels)
        {
        }

        /// <inheritdoc />
        protected override FuncFlow.CSharp.Expr BuildExpression(IReadOnlyList<FuncFlow.CSharp.Expr> inputs) => new(CrossEntropy.Build(inputs[0].Core, inputs[1].Core));
    }

    internal static class CrossEntropy
    {
        /// <summary>
        /// The core's softmax cross-entropy (<c>Losses.crossEntropy</c>) of logits with classes on the last axis,
        /// against class indices (optionally with a trailing axis of 1) or one-hot rows, read as the indices they mark.
        /// </summary>
        public static Expr Build(Expr logits, Expr labels)
        {
            var ls = logits.Shape;
            var lb = labels.Shape;
            if (ls.Length == 0)
                throw new ArgumentException("cross-entropy: the logits are a scalar; give at least one axis of classes.");
            var classes = ls[^1];
            var batch = ls[..^1];
            Expr indices;
            if (Core.SameShape(lb, ls))
                indices = ExprModule.sumAxis(-1, ExprModule.mul(labels, ExprModule.constant(TensorModule.arange(DType.Float64, classes))));
            else if (Core.SameShape(lb, batch) || (lb.Length == batch.Length + 1 && lb[^1] == 1 && Core.SameShape(lb[..^1], batch)))
                indices = labels;
            else
                throw new ArgumentException(
                    $"cross-entropy: labels of shape {Core.ShowShape(lb)} do not fit logits of shape {Core.ShowShape(ls)}; give class indices of shape {Core.ShowShape(batch)} or one-hot rows of shape {Core.ShowShape(ls)}.");
            var rows = batch.Aggregate(1, (a, b) => a * b);
            return FuncFlow.NN.Losses.crossEntropy(ExprModule.reshape(new[] { rows, classes }, logits), ExprModule.reshape(new[] { rows }, indices));
        }
    }
}
