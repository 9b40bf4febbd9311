using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using CoreExpr = global::FuncFlow.Expr;

namespace FuncFlow.CSharp
{
    /// <summary>What a <see cref="CustomOperation"/>'s forward kernel reads and writes: the operands' values and the destination.</summary>
    /// <typeparam name="T">The element type (double or float).</typeparam>
    public readonly struct KernelArgs<T>
    {
        private readonly global::FuncFlow.CustomArgs<T> core;

        internal KernelArgs(global::FuncFlow.CustomArgs<T> core) => this.core = core;

        /// <summary>The number of operands.</summary>
        public int Count => core.Count;

        /// <summary>Operand <paramref name="i"/>'s values, row-major.</summary>
        /// <param name="i">The operand's position.</param>
        /// <returns>The values.</returns>
        /// <exception cref="ArgumentOutOfRangeException">There is no such operand.</exception>
        public ReadOnlySpan<T> Input(int i) => core.Input(i);

        /// <summary>Operand <paramref name="i"/>'s shape.</summary>
        /// <param name="i">The operand's position.</param>
        /// <returns>The shape.</returns>
        /// <exception cref="ArgumentOutOfRangeException">There is no such operand.</exception>
        public ReadOnlySpan<int> InputShape(int i) => core.InputShape(i);

        /// <summary>The destination: the operation's value, row-major, of <see cref="OutputShape"/>; write every element.</summary>
        public Span<T> Output => core.Output;

        /// <summary>The shape the operation's shape rule gave.</summary>
        public ReadOnlySpan<int> OutputShape => core.OutputShape;
    }

    /// <summary>A batching rule's result: the batched value and the axis its examples lie along.</summary>
    /// <param name="Value">The batched result.</param>
    /// <param name="Axis">The axis of <paramref name="Value"/> that runs over the examples.</param>
    public readonly record struct Batched(Expr Value, int Axis);

    /// <summary>
    /// A user-defined operation with its own forward kernel and gradient rule (PyTorch's autograd.Function, JAX's
    /// custom_vjp). The kernel writes into the destination it is given, so compiled plans run it without allocating;
    /// the gradient rule returns expressions, so second derivatives work where they are differentiable, and
    /// <see cref="GradCheck"/>, printing and DOT treat it like a built-in operation.
    /// </summary>
    public sealed class CustomOperation
    {
        private CustomOperation(global::FuncFlow.CustomOp core) => Core = core;

        /// <summary>Defines an operation.</summary>
        /// <param name="name">The name shown in messages, formulas and gradient-check reports.</param>
        /// <param name="shape">The output's shape from the operands' shapes; throw an <see cref="ArgumentException"/> to reject operands.</param>
        /// <param name="forward">Writes the float64 value into <c>args.Output</c> (every element) from <c>args.Input(i)</c>.</param>
        /// <param name="gradient">
        /// From the operands, the operation's node and the gradient flowing into it, one entry per operand: its gradient
        /// as an expression of the operand's shape, or null where the operation is not differentiable.
        /// </param>
        /// <param name="forward32">The float32 kernel, for float32 graphs; optional.</param>
        /// <exception cref="ArgumentException">The name is empty.</exception>
        public CustomOperation(
            string name,
            Func<int[][], int[]> shape,
            Action<KernelArgs<double>> forward,
            Func<IReadOnlyList<Expr>, Expr, Expr, Expr?[]> gradient,
            Action<KernelArgs<float>>? forward32 = null)
        {
            ArgumentNullException.ThrowIfNull(shape);
            ArgumentNullException.ThrowIfNull(forward);
            ArgumentNullException.ThrowIfNull(gradient);
            var vjp = FuncConvert.FromFunc<FSharpList<CoreExpr>, CoreExpr, CoreExpr, FSharpList<FSharpOption<CoreExpr>>>((inputs, y, g) =>
                Conversions.List((gradient(Wrap(inputs), new Expr(y), new Expr(g)) ?? Array.Empty<Expr?>())
                    .Select(e => e is null ? FSharpOption<CoreExpr>.None : FSharpOption<CoreExpr>.Some(e.Core))));
            var op = global::FuncFlow.CustomOpModule.create(
                name,
                FuncConvert.FromFunc<FSharpList<int[]>, int[]>(shapes => shape(shapes.ToArray())),
                FuncConvert.FromAction<global::FuncFlow.CustomArgs<double>>(a => forward(new KernelArgs<double>(a))),
                vjp);
            Core = forward32 is null
                ? op
                : global::FuncFlow.CustomOpModule.withFloat32(FuncConvert.FromAction<global::FuncFlow.CustomArgs<float>>(a => forward32(new KernelArgs<float>(a))), op);
        }

        internal global::FuncFlow.CustomOp Core { get; }

        /// <summary>The operation's name.</summary>
        public string Name => Core.Name;

        /// <summary>
        /// A copy with a forward-mode rule (for <see cref="Grad.Jvp(Expr, Expr, Expr)"/>, <see cref="Grad.Jacobian"/>, <see cref="Grad.Hessian"/>):
        /// from the operands, the node and the operands' tangents (null: zero), the node's tangent.
        /// </summary>
        /// <param name="rule">The rule.</param>
        /// <returns>The operation with the rule.</returns>
        public CustomOperation WithJvp(Func<IReadOnlyList<Expr>, Expr, IReadOnlyList<Expr?>, Expr> rule)
        {
            ArgumentNullException.ThrowIfNull(rule);
            return new(global::FuncFlow.CustomOpModule.withJvp(
                FuncConvert.FromFunc<FSharpList<CoreExpr>, CoreExpr, FSharpList<FSharpOption<CoreExpr>>, CoreExpr>((inputs, y, tangents) =>
                    (rule(Wrap(inputs), new Expr(y), tangents.Select(t => Conversions.OrNull(t) is { } e ? new Expr(e) : null).ToList().AsReadOnly())
                        ?? throw new InvalidOperationException($"{Name}: the forward-mode rule returned null; return the node's tangent.")).Core),
                Core));
        }

        /// <summary>
        /// A copy with a batching rule (for <see cref="Vmap"/>): from the operands and each one's batch axis (null: not
        /// batched), the batched result and its batch axis.
        /// </summary>
        /// <param name="rule">The rule.</param>
        /// <returns>The operation with the rule.</returns>
        public CustomOperation WithBatching(Func<IReadOnlyList<Expr>, IReadOnlyList<int?>, Batched> rule)
        {
            ArgumentNullException.ThrowIfNull(rule);
            return new(global::FuncFlow.CustomOpModule.withBatching(
                FuncConvert.FromFunc<FSharpList<CoreExpr>, FSharpList<FSharpOption<int>>, Tuple<CoreExpr, int>>((inputs, axes) =>
                {
                    var result = rule(Wrap(inputs), axes.Select(a => Conversions.Nullable(a)).ToList().AsReadOnly());
                    return Tuple.Create((result.Value ?? throw new InvalidOperationException($"{Name}: the batching rule returned no value.")).Core, result.Axis);
                }),
                Core));
        }

        /// <summary>The operation applied to expressions of one dtype.</summary>
        /// <param name="operands">The operands (at least one).</param>
        /// <returns>The operation's node, of the shape the shape rule gives.</returns>
        /// <exception cref="ArgumentException">The shape rule rejects the operands' shapes, or their dtypes differ (the message names the operation).</exception>
        public Expr Apply(params Expr[] operands) => new(global::FuncFlow.CustomOpModule.apply(Core, Conversions.Exprs(operands)));

        /// <inheritdoc />
        public override string ToString() => "CustomOperation(" + Name + ")";

        private static IReadOnlyList<Expr> Wrap(FSharpList<CoreExpr> inputs) => inputs.Select(e => new Expr(e)).ToList().AsReadOnly();
    }
}
