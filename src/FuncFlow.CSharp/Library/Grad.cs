using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using FuncFlow.Interop;
using CoreExpr = global::FuncFlow.Expr;
using CoreGrad = global::FuncFlow.Grad;
using CoreGradCheck = global::FuncFlow.GradCheck;
using CoreGradCheckOptions = global::FuncFlow.GradCheckOptions;
using CoreGradCheckReport = global::FuncFlow.GradCheckReport;
using CoreTensor = global::FuncFlow.Tensor;

namespace FuncFlow.CSharp
{
    /// <summary>
    /// Reverse-mode differentiation: one fold over the expression, giving each requested node's gradient as an
    /// expression (evaluate it, compile it, print it, or differentiate it again).
    /// </summary>
    public static partial class Grad
    {
        private static IReadOnlyDictionary<Expr, Expr> Wrap(Microsoft.FSharp.Collections.FSharpMap<CoreExpr, CoreExpr> map)
        {
            var result = new Dictionary<Expr, Expr>();
            foreach (var kv in map) result[new Expr(kv.Key)] = new Expr(kv.Value);
            return result;
        }

        /// <summary>The gradients of a scalar expression with respect to the given variables (or any of its nodes).</summary>
        /// <param name="f">A one-element expression.</param>
        /// <param name="wrt">The variables.</param>
        /// <returns>Each variable's gradient (zeros where <paramref name="f"/> does not depend on it).</returns>
        public static IReadOnlyDictionary<Expr, Expr> Wrt(Expr f, params Expr[] wrt) =>
            Wrap(CoreGrad.wrt(Conversions.Exprs(wrt), (f ?? throw new ArgumentNullException(nameof(f))).Core));

        /// <summary>The gradients of a scalar expression with respect to every variable in it.</summary>
        /// <param name="f">A one-element expression.</param>
        /// <returns>Each variable's gradient.</returns>
        public static IReadOnlyDictionary<Expr, Expr> All(Expr f) => Wrap(CoreGrad.ofExpr((f ?? throw new ArgumentNullException(nameof(f))).Core));

        /// <summary>The gradient of a scalar expression with respect to one variable (JAX's grad).</summary>
        /// <param name="f">A one-element expression.</param>
        /// <param name="x">The variable.</param>
        /// <returns>The gradient, of <paramref name="x"/>'s shape.</returns>
        public static Expr Of(Expr f, Expr x) =>
            new(CoreGrad.grad((x ?? throw new ArgumentNullException(nameof(x))).Core, (f ?? throw new ArgumentNullException(nameof(f))).Core));

        /// <summary>The vector-Jacobian product: the gradients of sum(seed * f) with respect to the given nodes.</summary>
        /// <param name="f">The expression.</param>
        /// <param name="seed">The vector, of <paramref name="f"/>'s shape and dtype.</param>
        /// <param name="wrt">The variables.</param>
        /// <returns>Each variable's gradient.</returns>
        public static IReadOnlyDictionary<Expr, Expr> Vjp(Expr f, Expr seed, params Expr[] wrt) =>
            Wrap(CoreGrad.vjp((seed ?? throw new ArgumentNullException(nameof(seed))).Core, Conversions.Exprs(wrt), (f ?? throw new ArgumentNullException(nameof(f))).Core));

        /// <summary>The Hessian-vector product: the gradient of (grad f · v) with respect to x.</summary>
        /// <param name="f">A one-element expression.</param>
        /// <param name="x">The variable.</param>
        /// <param name="v">The vector, of <paramref name="x"/>'s shape.</param>
        /// <returns>H v, of <paramref name="x"/>'s shape.</returns>
        public static Expr Hvp(Expr f, Expr x, Expr v) =>
            new(CoreGrad.hvp((x ?? throw new ArgumentNullException(nameof(x))).Core, (v ?? throw new ArgumentNullException(nameof(v))).Core,
                (f ?? throw new ArgumentNullException(nameof(f))).Core));
    }

    /// <summary>One-shot evaluation of expressions on variable values given by name.</summary>
    public static class Eval
    {
        /// <summary>The value of an expression.</summary>
        /// <param name="e">The expression.</param>
        /// <param name="bindings">Each variable's value, by name.</param>
        /// <returns>The value.</returns>
        public static Tensor Evaluate(Expr e, IReadOnlyDictionary<string, Tensor> bindings) => Evaluate(new[] { e }, bindings)[0];

        /// <summary>The values of several expressions, evaluated together (shared nodes are computed once).</summary>
        /// <param name="outputs">The expressions (of one dtype).</param>
        /// <param name="bindings">Each variable's value, by name.</param>
        /// <returns>The values, in order.</returns>
        public static Tensor[] Evaluate(IReadOnlyList<Expr> outputs, IReadOnlyDictionary<string, Tensor> bindings) =>
            global::FuncFlow.Eval.Many(Conversions.Env(bindings), Conversions.Exprs(outputs), global::FuncFlow.EvalOptions.Default).Select(t => new Tensor(t)).ToArray();

        /// <summary>The value of a scalar expression and its gradients with respect to the given variables, in one pass.</summary>
        /// <param name="f">A one-element expression.</param>
        /// <param name="bindings">Each variable's value, by name.</param>
        /// <param name="wrt">The variables.</param>
        /// <returns>The value and the gradients.</returns>
        public static ValueAndGradients ValueAndGrad(Expr f, IReadOnlyDictionary<string, Tensor> bindings, params Expr[] wrt)
        {
            var result = global::FuncFlow.EvalModule.valueAndGrad(Conversions.Env(bindings), Conversions.Exprs(wrt), (f ?? throw new ArgumentNullException(nameof(f))).Core);
            var gradients = new Dictionary<Expr, Tensor>();
            foreach (var kv in result.Item2) gradients[new Expr(kv.Key)] = new Tensor(kv.Value);
            return new(new Tensor(result.Item1), gradients);
        }

        /// <summary>
        /// The value of an expression in anomaly mode: the first node that produces a NaN or an infinity raises an
        /// <see cref="ArithmeticException"/> naming it, its shape, its operands and the flat index.
        /// </summary>
        /// <param name="e">The expression.</param>
        /// <param name="bindings">Each variable's value, by name.</param>
        /// <returns>The value.</returns>
        public static Tensor EvaluateChecked(Expr e, IReadOnlyDictionary<string, Tensor> bindings) =>
            new(global::FuncFlow.EvalModule.evaluateChecked(Conversions.Env(bindings), (e ?? throw new ArgumentNullException(nameof(e))).Core));
    }

    /// <summary>A scalar expression's value and its gradients, evaluated in one pass.</summary>
    public sealed class ValueAndGradients
    {
        internal ValueAndGradients(Tensor value, IReadOnlyDictionary<Expr, Tensor> gradients)
        {
            Value = value;
            Gradients = gradients;
        }

        /// <summary>The expression's value.</summary>
        public Tensor Value { get; }

        /// <summary>Each variable's gradient, by its expression.</summary>
        public IReadOnlyDictionary<Expr, Tensor> Gradients { get; }
    }

    /// <summary>Expressions as text: formulas, and Graphviz DOT graphs.</summary>
    public static class Print
    {
        /// <summary>The expression as a formula, shared sub-expressions named once.</summary>
        /// <param name="e">The expression.</param>
        /// <returns>The formula.</returns>
        public static string Formula(Expr e) => global::FuncFlow.Print.formula((e ?? throw new ArgumentNullException(nameof(e))).Core);

        /// <summary>The graph of the given outputs in Graphviz's DOT language (render with <c>dot -Tsvg</c>).</summary>
        /// <param name="outputs">The outputs.</param>
        /// <returns>The DOT text.</returns>
        public static string Dot(params Expr[] outputs) => global::FuncFlow.Print.dot(Conversions.Exprs(outputs));
    }

    /// <summary>Settings of a gradient check (PyTorch's gradcheck defaults).</summary>
    public sealed class GradCheckOptions
    {
        /// <summary>The finite-difference step: values move by ±Eps (1e-6).</summary>
        public double Eps { get; init; } = 1e-6;

        /// <summary>Absolute tolerance (1e-5).</summary>
        public double Atol { get; init; } = 1e-5;

        /// <summary>Relative tolerance against the numeric value (1e-3).</summary>
        public double Rtol { get; init; } = 1e-3;

        /// <summary>Compare one random projection u^T J v per variable instead of the whole Jacobian.</summary>
        public bool Fast { get; init; }

        /// <summary>Seeds the random projections.</summary>
        public int Seed { get; init; }

        internal CoreGradCheckOptions ToCore() => new(Eps, Atol, Rtol, Fast, Seed);
    }

    /// <summary>The outcome of a gradient check, described by its worst element.</summary>
    public sealed class GradCheckReport
    {
        internal GradCheckReport(CoreGradCheckReport report)
        {
            Passed = report.Passed;
            Variable = report.Variable;
            Index = report.Index;
            Analytic = report.Analytic;
            Numeric = report.Numeric;
            Error = report.Error;
            Message = report.Message;
        }

        /// <summary>True when every compared element is within tolerance.</summary>
        public bool Passed { get; }

        /// <summary>The variable of the worst element.</summary>
        public string Variable { get; }

        /// <summary>The worst element's index in that variable (empty in fast mode).</summary>
        public int[] Index { get; }

        /// <summary>The derivative computed by <see cref="Grad"/>.</summary>
        public double Analytic { get; }

        /// <summary>The derivative estimated by central finite differences.</summary>
        public double Numeric { get; }

        /// <summary>|Analytic - Numeric|.</summary>
        public double Error { get; }

        /// <summary>A sentence naming the variable, the element, both values and the error.</summary>
        public string Message { get; }

        /// <inheritdoc />
        public override string ToString() => Message;
    }

    /// <summary>
    /// Checks analytic gradients against central finite differences in float64, as torch.autograd.gradcheck and
    /// gradgradcheck do.
    /// </summary>
    public static class GradCheck
    {
        /// <summary>Checks the first derivatives of an expression with respect to the given variables.</summary>
        /// <param name="f">The expression (float64).</param>
        /// <param name="at">The variables' values, by name.</param>
        /// <param name="wrt">The variables to check.</param>
        /// <param name="options">The tolerances; PyTorch's defaults when null.</param>
        /// <returns>The report of the worst element.</returns>
        public static GradCheckReport Check(Expr f, IReadOnlyDictionary<string, Tensor> at, IReadOnlyList<Expr> wrt, GradCheckOptions? options = null) =>
            new(CoreGradCheck.check((options ?? new()).ToCore(), Conversions.Env(at), Conversions.Exprs(wrt), (f ?? throw new ArgumentNullException(nameof(f))).Core));

        /// <summary>Checks the second derivatives of an expression (gradgradcheck).</summary>
        /// <param name="f">The expression (float64).</param>
        /// <param name="at">The variables' values, by name.</param>
        /// <param name="wrt">The variables to check.</param>
        /// <param name="options">The tolerances; PyTorch's defaults when null.</param>
        /// <returns>The report of the worst element.</returns>
        public static GradCheckReport CheckGradGrad(Expr f, IReadOnlyDictionary<string, Tensor> at, IReadOnlyList<Expr> wrt, GradCheckOptions? options = null) =>
            new(CoreGradCheck.checkGradGrad((options ?? new()).ToCore(), Conversions.Env(at), Conversions.Exprs(wrt), (f ?? throw new ArgumentNullException(nameof(f))).Core));

        /// <summary>
        /// Checks the first derivatives of a C# function of expressions at the given point: the function is called
        /// once on variables named <c>x0</c>, <c>x1</c>, ... of the points' shapes.
        /// </summary>
        /// <param name="function">Builds the output from its inputs.</param>
        /// <param name="at">The point (float64 values), one tensor per input.</param>
        /// <returns>The report of the worst element.</returns>
        public static GradCheckReport Check(Func<Expr[], Expr> function, params Tensor[] at) => Check(new GradCheckOptions(), function, at);

        /// <summary>Checks the first derivatives of a C# function of expressions, with the given tolerances.</summary>
        /// <param name="options">The tolerances.</param>
        /// <param name="function">Builds the output from its inputs.</param>
        /// <param name="at">The point, one tensor per input.</param>
        /// <returns>The report of the worst element.</returns>
        public static GradCheckReport Check(GradCheckOptions options, Func<Expr[], Expr> function, params Tensor[] at)
        {
            var (f, env, vars) = Trace("GradCheck.Check", function, at);
            return Check(f, env, vars, options);
        }

        /// <summary>Checks the second derivatives of a C# function of expressions (gradgradcheck).</summary>
        /// <param name="function">Builds the output from its inputs.</param>
        /// <param name="at">The point, one tensor per input.</param>
        /// <returns>The report of the worst element.</returns>
        public static GradCheckReport CheckGradGrad(Func<Expr[], Expr> function, params Tensor[] at)
        {
            var (f, env, vars) = Trace("GradCheck.CheckGradGrad", function, at);
            return CheckGradGrad(f, env, vars);
        }

        private static (Expr, IReadOnlyDictionary<string, Tensor>, Expr[]) Trace(string op, Func<Expr[], Expr> function, Tensor[] at)
        {
            ArgumentNullException.ThrowIfNull(function);
            ArgumentNullException.ThrowIfNull(at);
            if (at.Length == 0) throw new ArgumentException($"{op}: give at least one input to differentiate with respect to.", nameof(at));
            var env = new Dictionary<string, Tensor>();
            var vars = new Expr[at.Length];
            for (int i = 0; i < at.Length; i++)
            {
                var name = "x" + i.ToString(CultureInfo.InvariantCulture);
                var value = at[i] ?? throw new ArgumentNullException(nameof(at), $"{op}: input {i} is null.");
                env[name] = value;
                vars[i] = Expr.Variable(name, value.DType, value.Shape);
            }
            var f = function(vars) ?? throw new InvalidOperationException($"{op}: the function returned null; return the expression to check.");
            return (f, env, vars);
        }
    }

    /// <summary>A variable and the expression of its value after a plan run.</summary>
    /// <param name="Variable">The variable written.</param>
    /// <param name="NewValue">Its new value, computed from the values before the run.</param>
    public readonly record struct Update(Expr Variable, Expr NewValue);

    /// <summary>
    /// Expressions compiled once and run many times: every buffer is allocated at compile time and a run allocates
    /// nothing. A run with updates is one simultaneous assignment (every output and new value is computed from the
    /// values before the run). Runs are serialised, so a plan can be shared between threads.
    /// </summary>
    public sealed partial class Plan
    {
        private Plan(global::FuncFlow.Plan core) => Core = core;

        internal global::FuncFlow.Plan Core { get; }

        /// <summary>Compiles the outputs into a plan.</summary>
        /// <param name="outputs">The expressions to compute (of one dtype).</param>
        /// <returns>The plan.</returns>
        public static Plan Compile(params Expr[] outputs) => new(global::FuncFlow.PlanModule.compile(Conversions.Exprs(outputs)));

        /// <summary>Compiles outputs and updates: a run computes every output and new value, then writes the updates.</summary>
        /// <param name="outputs">The expressions to compute.</param>
        /// <param name="updates">The variables to write and their new values; each variable at most once.</param>
        /// <returns>The plan.</returns>
        public static Plan Compile(IReadOnlyList<Expr> outputs, IReadOnlyList<Update> updates)
        {
            ArgumentNullException.ThrowIfNull(updates);
            var pairs = updates.Select(u => Tuple.Create(
                (u.Variable ?? throw new ArgumentNullException(nameof(updates), "an update's variable is null")).Core,
                (u.NewValue ?? throw new ArgumentNullException(nameof(updates), "an update's value is null")).Core));
            return new(global::FuncFlow.PlanModule.compileWithUpdates(Conversions.Exprs(outputs), Conversions.List(pairs)));
        }

        /// <summary>The names of the plan's variables: those it reads, then those it only writes.</summary>
        public IReadOnlyList<string> VariableNames => Core.VariableNames;

        /// <summary>The number of instructions a run executes.</summary>
        public int InstructionCount => Core.InstructionCount;

        /// <summary>The number of elements held by the plan's buffers (after sharing).</summary>
        public long BufferElements => Core.BufferElements;

        /// <summary>Sets a variable's value (copied into the plan) for this and later runs.</summary>
        /// <param name="name">The variable.</param>
        /// <param name="value">Its value, of its shape and dtype.</param>
        public void Set(string name, Tensor value) => Core.Set(name, (value ?? throw new ArgumentNullException(nameof(value))).Core);

        /// <summary>Sets a float64 variable from row-major values, without allocating.</summary>
        /// <param name="name">The variable.</param>
        /// <param name="values">Its values.</param>
        public void Set(string name, double[] values) => Core.Set(name, values);

        /// <summary>Sets a float32 variable from row-major values, without allocating.</summary>
        /// <param name="name">The variable.</param>
        /// <param name="values">Its values.</param>
        public void Set(string name, float[] values) => Core.Set(name, values);

        /// <summary>A variable's current value (a copy): a trained parameter, an optimiser's state.</summary>
        /// <param name="name">The variable.</param>
        /// <returns>Its value.</returns>
        public Tensor Get(string name) => new(Core.Get(name));

        /// <summary>Runs the plan once on the variables' current values.</summary>
        public void Execute() => Core.Execute();

        /// <summary>An output of the last run (a copy).</summary>
        /// <param name="index">The output's position.</param>
        /// <returns>Its value.</returns>
        public Tensor Output(int index) => new(Core.Output(index));

        /// <summary>A one-element output of the last run, without allocating.</summary>
        /// <param name="index">The output's position.</param>
        /// <returns>Its value.</returns>
        public double OutputScalar(int index) => Core.OutputScalar(index);

        /// <summary>Sets the given variables, runs once and returns the outputs.</summary>
        /// <param name="bindings">Values of variables, by name.</param>
        /// <returns>The outputs, in order.</returns>
        public Tensor[] Run(IReadOnlyDictionary<string, Tensor> bindings) => Core.Run(Conversions.Env(bindings)).Select(t => new Tensor(t)).ToArray();
    }
}
