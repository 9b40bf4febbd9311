using System;
using System.Collections.Generic;
using System.Linq;
using Library = FuncFlow.CSharp;

namespace FuncFlow.Autograd
{
    /// <summary>
    /// A user-defined operation on eager tensors, with its own forward kernel and gradient rule (PyTorch's
    /// <c>torch.autograd.Function</c>): <see cref="Apply"/> computes the value now and, when an operand has autograd,
    /// records it so that <see cref="Tensor.Backward"/> goes through the rule, and <see cref="GradCheck"/> checks it like
    /// any other operation. The same operation on library expressions is <see cref="Operation"/>.
    /// </summary>
    /// <example>
    /// A stable log-sum-exp over each row of a matrix:
    /// <code>
    /// var logSumExp = new CustomOperation(
    ///     "logSumExp",
    ///     shapes => new[] { shapes[0][0] },
    ///     args => { /* write each row's m + log(sum(exp(x - m))) into args.Output */ },
    ///     (inputs, y, g) => new[] { g.Reshape(-1, 1) * (inputs[0] - y.Reshape(-1, 1)).Exp() });
    /// Tensor z = logSumExp.Apply(x);
    /// </code>
    /// </example>
    public sealed class CustomOperation
    {
        /// <summary>Defines an operation.</summary>
        /// <param name="name">The name shown in messages, formulas and gradient-check reports.</param>
        /// <param name="shape">The output's shape from the operands' shapes; throw an <see cref="ArgumentException"/> to reject operands.</param>
        /// <param name="forward">Writes the value into <c>args.Output</c> (every element) from <c>args.Input(i)</c>.</param>
        /// <param name="gradient">
        /// From the operands, the operation's node and the gradient flowing into it, one entry per operand: its
        /// gradient as an expression of the operand's shape, or null where the operation is not differentiable.
        /// </param>
        /// <param name="forward32">The float32 kernel, for <see cref="Operation"/> in float32 graphs; optional.</param>
        /// <exception cref="ArgumentException">The name is empty.</exception>
        public CustomOperation(
            string name,
            Func<int[][], int[]> shape,
            Action<Library.KernelArgs<double>> forward,
            Func<IReadOnlyList<Library.Expr>, Library.Expr, Library.Expr, Library.Expr?[]> gradient,
            Action<Library.KernelArgs<float>>? forward32 = null)
        {
            Operation = new Library.CustomOperation(name, shape, forward, gradient, forward32);
        }

        /// <summary>The operation on library expressions (for a <see cref="Nodes.Operation"/>'s expression or a compiled plan).</summary>
        public Library.CustomOperation Operation { get; }

        /// <summary>The operation's name.</summary>
        public string Name => Operation.Name;

        /// <summary>Applies the operation to eager tensors.</summary>
        /// <param name="operands">The operands.</param>
        /// <returns>The result.</returns>
        /// <exception cref="ArgumentException">The shape rule rejects the operands' shapes (the message names the operation).</exception>
        /// <exception cref="InvalidOperationException">The forward kernel failed (the message names the operation).</exception>
        public Tensor Apply(params Tensor[] operands)
        {
            ArgumentNullException.ThrowIfNull(operands);
            return Tensor.Compute(Operation.Name, Operation.Apply, operands);
        }

        /// <inheritdoc />
        public override string ToString() => "CustomOperation(" + Operation.Name + ")";
    }
}
