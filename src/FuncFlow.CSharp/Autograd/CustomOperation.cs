using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;

namespace FuncFlow.Autograd
{
    /// <summary>
    /// A user-defined operation with its own forward computation and gradient rule, as PyTorch's
    /// <c>torch.autograd.Function</c> or JAX's <c>custom_vjp</c>. The forward writes the value into the
    /// destination it is given (<see cref="CustomArgs{T}.Output"/>), so compiled plans run it without allocating;
    /// the gradient rule returns core expressions, so second derivatives work where its expressions are
    /// differentiable, and <see cref="GradCheck"/> checks it like any other operation.
    /// </summary>
    /// <example>
    /// A stable log-sum-exp over each row of a matrix:
    /// <code>
    /// var logSumExp = new CustomOperation(
    ///     "logSumExp",
    ///     shapes => new[] { shapes[0][0] },
    ///     args => { /* write each row's m + log(sum(exp(x - m))) into args.Output */ },
    ///     (inputs, y, g) => new Expr?[] { ExprModule.reshape(new[] { -1, 1 }, g) * ExprModule.exp(inputs[0] - ExprModule.reshape(new[] { -1, 1 }, y)) });
    /// Tensor z = logSumExp.Apply(x);
    /// </code>
    /// </example>
    public sealed class CustomOperation
    {
        private readonly CustomOp op;

        /// <summary>Defines an operation.</summary>
        /// <param name="name">The name shown in messages, formulas and gradient-check reports.</param>
        /// <param name="shape">The output's shape from the operands' shapes; throw an <see cref="ArgumentException"/> to reject operands.</param>
        /// <param name="forward">Writes the float64 value into <c>args.Output</c> (every element) from <c>args.Input(i)</c>.</param>
        /// <param name="gradient">
        /// From the operands, the operation's node and the gradient flowing into it, one entry per operand: its
        /// gradient as an expression of the operand's shape, or null where the operation is not differentiable.
        /// </param>
        /// <param name="forward32">The float32 forward, for core graphs in float32; optional.</param>
        /// <exception cref="ArgumentException">The name is empty.</exception>
        /// <exception cref="ArgumentNullException">A delegate other than <paramref name="forward32"/> is null.</exception>
        public CustomOperation(
            string name,
            Func<int[][], int[]> shape,
            Action<CustomArgs<double>> forward,
            Func<IReadOnlyList<Expr>, Expr, Expr, Expr?[]> gradient,
            Action<CustomArgs<float>>? forward32 = null)
        {
            op = Core.CustomOp(name, shape, forward, forward32, gradient);
        }

        /// <summary>The operation's name.</summary>
        public string Name => op.Name;

        /// <summary>Applies the operation to eager tensors: computes the value now and, when an operand has autograd, records it for <see cref="Tensor.Backward"/>.</summary>
        /// <param name="operands">The operands.</param>
        /// <returns>The result.</returns>
        /// <exception cref="ArgumentException">The shape rule rejects the operands' shapes.</exception>
        /// <exception cref="InvalidOperationException">The forward computation failed (the message names the operation).</exception>
        public Tensor Apply(params Tensor[] operands)
        {
            ArgumentNullException.ThrowIfNull(operands);
            return Tensor.Apply(op.Name, Expression, operands);
        }

        /// <summary>Applies the operation to core expressions (for a <see cref="Nodes.Operation"/>'s expression, or a core graph).</summary>
        /// <param name="operands">The operands, of one dtype.</param>
        /// <returns>The operation's node.</returns>
        /// <exception cref="ArgumentException">The shape rule rejects the operands' shapes, or their dtypes differ.</exception>
        public Expr Expression(IReadOnlyList<Expr> operands)
        {
            ArgumentNullException.ThrowIfNull(operands);
            return Core.ApplyCustom(op, operands);
        }

        /// <inheritdoc />
        public override string ToString() => "CustomOperation(" + op.Name + ")";
    }
}
