using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using CoreExpr = global::FuncFlow.Expr;
using CoreGrad = global::FuncFlow.Grad;

namespace FuncFlow.CSharp
{
    /// <summary>Forward mode and whole derivatives: Jacobian-vector products, Jacobians and Hessians, as expressions.</summary>
    public static partial class Grad
    {
        /// <summary>The derivative of <paramref name="f"/> along <paramref name="v"/> at <paramref name="x"/> (forward mode, JAX's jvp).</summary>
        /// <param name="f">The expression.</param>
        /// <param name="x">The variable.</param>
        /// <param name="v">The direction, of <paramref name="x"/>'s shape.</param>
        /// <returns>An expression of <paramref name="f"/>'s shape.</returns>
        public static Expr Jvp(Expr f, Expr x, Expr v) =>
            new(CoreGrad.jvp((x ?? throw new ArgumentNullException(nameof(x))).Core, (v ?? throw new ArgumentNullException(nameof(v))).Core,
                (f ?? throw new ArgumentNullException(nameof(f))).Core));

        /// <summary>The derivative of <paramref name="f"/> along several variables' tangents at once (forward mode); variables not given have zero tangents.</summary>
        /// <param name="f">The expression.</param>
        /// <param name="tangents">Each variable's tangent, of its shape.</param>
        /// <returns>An expression of <paramref name="f"/>'s shape.</returns>
        public static Expr Jvp(Expr f, IReadOnlyDictionary<Expr, Expr> tangents) =>
            new(CoreGrad.jvpMany(
                Conversions.List((tangents ?? throw new ArgumentNullException(nameof(tangents))).Select(kv =>
                    Tuple.Create((kv.Key ?? throw new ArgumentNullException(nameof(tangents))).Core,
                        (kv.Value ?? throw new ArgumentNullException(nameof(tangents), "a tangent is null")).Core))),
                (f ?? throw new ArgumentNullException(nameof(f))).Core));

        /// <summary>The Jacobian of <paramref name="f"/> with respect to <paramref name="x"/>: forward mode when x has fewer elements than f, else reverse mode.</summary>
        /// <param name="f">The expression.</param>
        /// <param name="x">The variable.</param>
        /// <returns>An expression of shape f's shape followed by x's shape.</returns>
        public static Expr Jacobian(Expr f, Expr x) =>
            new(CoreGrad.jacobian((x ?? throw new ArgumentNullException(nameof(x))).Core, (f ?? throw new ArgumentNullException(nameof(f))).Core));

        /// <summary>The Hessian of a one-element <paramref name="f"/> with respect to <paramref name="x"/> (forward over reverse mode).</summary>
        /// <param name="f">A one-element expression.</param>
        /// <param name="x">The variable.</param>
        /// <returns>An expression of shape x's shape followed by x's shape.</returns>
        public static Expr Hessian(Expr f, Expr x) =>
            new(CoreGrad.hessian((x ?? throw new ArgumentNullException(nameof(x))).Core, (f ?? throw new ArgumentNullException(nameof(f))).Core));
    }

    /// <summary>
    /// Vectorising maps (JAX's vmap): a function of one example applied to every slice of a batch, built as one batched
    /// expression whose size does not grow with the batch.
    /// </summary>
    public static class Vmap
    {
        /// <summary><paramref name="f"/> applied to every slice of <paramref name="xs"/> along <paramref name="axis"/>, the results stacked along a new leading axis.</summary>
        /// <param name="f">The function of one example.</param>
        /// <param name="xs">The batch.</param>
        /// <param name="axis">The axis the examples lie along.</param>
        /// <returns>The stacked results.</returns>
        public static Expr Map(Func<Expr, Expr> f, Expr xs, int axis = 0)
        {
            ArgumentNullException.ThrowIfNull(f);
            return new(global::FuncFlow.Vmap.vmapAxis(axis, FuncConvert.FromFunc<CoreExpr, CoreExpr>(e => Unwrap(f(new Expr(e)))),
                (xs ?? throw new ArgumentNullException(nameof(xs))).Core));
        }

        /// <summary>
        /// <paramref name="f"/> over several inputs, each mapped over its own axis or, where its axis is null, passed whole to
        /// every example (JAX's in_axes); the mapped axes must have one length.
        /// </summary>
        /// <param name="f">The function of one example's inputs.</param>
        /// <param name="xs">The inputs.</param>
        /// <param name="axes">One axis (or null) per input.</param>
        /// <returns>The stacked results.</returns>
        public static Expr Map(Func<Expr[], Expr> f, IReadOnlyList<Expr> xs, IReadOnlyList<int?> axes)
        {
            ArgumentNullException.ThrowIfNull(f);
            ArgumentNullException.ThrowIfNull(axes);
            return new(global::FuncFlow.Vmap.vmapAxes(
                ListModule.OfSeq(axes.Select(a => a.HasValue ? FSharpOption<int>.Some(a.Value) : FSharpOption<int>.None)),
                FuncConvert.FromFunc<FSharpList<CoreExpr>, CoreExpr>(es => Unwrap(f(es.Select(e => new Expr(e)).ToArray()))),
                Conversions.Exprs(xs)));
        }

        private static CoreExpr Unwrap(Expr? e) => (e ?? throw new InvalidOperationException("Vmap.Map: the function returned null; return an expression.")).Core;
    }

    /// <summary>
    /// Gradient checkpointing for <see cref="Plan.Compile(IReadOnlyList{Expr}, IReadOnlyList{Update}, Checkpointing)"/>: forward activations
    /// the gradients read are recomputed in the backward pass from the kept ones instead of being kept alive.
    /// </summary>
    public sealed class Checkpointing
    {
        /// <summary>Creates the setting.</summary>
        /// <param name="forward">The forward computation's result (a loss): the nodes it depends on are the activations.</param>
        /// <param name="keep">The activations read as computed (segment boundaries); every other one is recomputed.</param>
        public Checkpointing(Expr forward, params Expr[] keep)
        {
            Forward = forward ?? throw new ArgumentNullException(nameof(forward));
            Keep = (keep ?? Array.Empty<Expr>()).ToList().AsReadOnly();
        }

        /// <summary>The forward computation's result.</summary>
        public Expr Forward { get; }

        /// <summary>The activations read as computed.</summary>
        public IReadOnlyList<Expr> Keep { get; }

        internal global::FuncFlow.Checkpointing ToCore() => new(Forward.Core, Conversions.Exprs(Keep));
    }

    /// <summary>Where a plan's time goes: one kind of instruction, how many a run executes, and the time per run.</summary>
    /// <param name="Instruction">The kind of instruction (the operation and its operands' shapes).</param>
    /// <param name="Count">How many instructions of this kind a run executes.</param>
    /// <param name="Microseconds">Their time per run.</param>
    public readonly record struct ProfileEntry(string Instruction, int Count, double Microseconds);

    /// <summary>Compiling with gradient checkpointing, and a plan's cost.</summary>
    public sealed partial class Plan
    {
        /// <summary>Compiles outputs and updates with gradient checkpointing: the same values in less memory (<see cref="BufferBytes"/>), for more computation.</summary>
        /// <param name="outputs">The expressions to compute.</param>
        /// <param name="updates">The variables to write and their new values.</param>
        /// <param name="checkpointing">What the backward pass keeps and recomputes.</param>
        /// <returns>The plan.</returns>
        public static Plan Compile(IReadOnlyList<Expr> outputs, IReadOnlyList<Update> updates, Checkpointing checkpointing)
        {
            ArgumentNullException.ThrowIfNull(updates);
            ArgumentNullException.ThrowIfNull(checkpointing);
            var pairs = updates.Select(u => Tuple.Create(
                (u.Variable ?? throw new ArgumentNullException(nameof(updates), "an update's variable is null")).Core,
                (u.NewValue ?? throw new ArgumentNullException(nameof(updates), "an update's value is null")).Core));
            var options = new global::FuncFlow.PlanOptions(FSharpOption<global::FuncFlow.Checkpointing>.Some(checkpointing.ToCore()));
            return new(global::FuncFlow.PlanModule.compileWith(options, Conversions.Exprs(outputs), Conversions.List(pairs)));
        }

        /// <summary>The bytes held by the plan's own buffers (variables, intermediate values; not constants).</summary>
        public long BufferBytes => Core.BufferBytes;

        /// <summary>The floating-point operations of the matrix products a run executes (2 m n k each).</summary>
        public long MatMulFlops => Core.MatMulFlops;

        /// <summary>Runs the plan <paramref name="runs"/> times timing each instruction (updating variables as <see cref="Execute"/> does).</summary>
        /// <param name="runs">The number of runs; at least 1.</param>
        /// <returns>The time per kind of instruction, the slowest first.</returns>
        public IReadOnlyList<ProfileEntry> Profile(int runs = 10) =>
            Core.Profile(runs).Select(e => new ProfileEntry(e.Instruction, e.Count, e.Microseconds)).ToList().AsReadOnly();
    }
}
