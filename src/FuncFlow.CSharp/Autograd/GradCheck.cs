using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using CoreTensor = FuncFlow.Tensor;

namespace FuncFlow.Autograd
{
    /// <summary>The outcome of a gradient check: whether it passed and, for the worst element, where and by how much.</summary>
    public sealed class GradCheckResult
    {
        internal GradCheckResult(GradCheckReport report, IReadOnlyList<string> names)
        {
            Passed = report.Passed;
            // The core names variables; the caller knows its inputs by position.
            InputIndex = Math.Max(0, names.ToList().IndexOf(report.Variable));
            ElementIndex = report.Index;
            Analytic = report.Analytic;
            Numeric = report.Numeric;
            Error = report.Error;
            Message = report.Message.Replace(report.Variable, $"input {InputIndex}", StringComparison.Ordinal);
        }

        /// <summary>True when every analytic derivative is within tolerance of its finite difference.</summary>
        public bool Passed { get; }

        /// <summary>Which input (by position) holds the worst element.</summary>
        public int InputIndex { get; }

        /// <summary>The worst element's index in that input (empty in fast mode).</summary>
        public int[] ElementIndex { get; }

        /// <summary>The analytic value (from backpropagation) at the worst element.</summary>
        public double Analytic { get; }

        /// <summary>The finite-difference value at the worst element.</summary>
        public double Numeric { get; }

        /// <summary>|Analytic - Numeric| at the worst element.</summary>
        public double Error { get; }

        /// <summary>A sentence naming the input, the element, both values and the error.</summary>
        public string Message { get; }

        /// <inheritdoc />
        public override string ToString() => Message;
    }

    /// <summary>
    /// Gradient checking, as PyTorch's torch.autograd.gradcheck and gradgradcheck: the function is traced once on
    /// the inputs, and the core compares its analytic Jacobian with central finite differences in float64
    /// (eps 1e-6, |analytic - numeric| &lt;= atol + rtol |numeric| with atol 1e-5 and rtol 1e-3 by default).
    /// </summary>
    public static class GradCheck
    {
        /// <summary>Checks first derivatives of <paramref name="function"/> at <paramref name="inputs"/>.</summary>
        /// <param name="function">Builds the output from the inputs with tensor operations.</param>
        /// <param name="inputs">The point to check at; their values are used, their autograd flags are not.</param>
        /// <param name="fast">Compare u^T J v for random u and v instead of the whole Jacobian (PyTorch's fast mode).</param>
        /// <param name="atol">Absolute tolerance.</param>
        /// <param name="rtol">Relative tolerance.</param>
        /// <returns>The result for the worst element.</returns>
        public static GradCheckResult Check(Func<Tensor[], Tensor> function, Tensor[] inputs, bool fast = false, double atol = 1e-5, double rtol = 1e-3) =>
            Run(function, inputs, fast, atol, rtol, secondOrder: false);

        /// <summary>Checks second derivatives of <paramref name="function"/> at <paramref name="inputs"/> (gradgradcheck).</summary>
        /// <param name="function">Builds the output from the inputs with tensor operations.</param>
        /// <param name="inputs">The point to check at.</param>
        /// <param name="fast">Compare u^T J v for random u and v instead of the whole Jacobian.</param>
        /// <param name="atol">Absolute tolerance.</param>
        /// <param name="rtol">Relative tolerance.</param>
        /// <returns>The result for the worst element.</returns>
        public static GradCheckResult CheckGradGrad(Func<Tensor[], Tensor> function, Tensor[] inputs, bool fast = false, double atol = 1e-5, double rtol = 1e-3) =>
            Run(function, inputs, fast, atol, rtol, secondOrder: true);

        private static GradCheckResult Run(Func<Tensor[], Tensor> function, Tensor[] inputs, bool fast, double atol, double rtol, bool secondOrder)
        {
            ArgumentNullException.ThrowIfNull(function);
            ArgumentNullException.ThrowIfNull(inputs);
            if (inputs.Length == 0) throw new ArgumentException("GradCheck: give at least one input to differentiate with respect to.", nameof(inputs));
            var leaves = inputs.Select(t => new Tensor(t?.Value ?? throw new ArgumentNullException(nameof(inputs), "GradCheck: an input is null."), autograd: true)).ToArray();
            var output = function(leaves) ?? throw new InvalidOperationException("GradCheck: the function returned null; return the tensor to check.");
            var names = leaves.Select((_, i) => "input" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            var vars = leaves.Select((t, i) => Core.Var(names[i], t.Shape)).ToArray();
            var expr = output.Trace((t, _) => Array.IndexOf(leaves, t) is var i and >= 0 ? vars[i] : null);
            var env = new Dictionary<string, CoreTensor>();
            for (int i = 0; i < leaves.Length; i++) env[names[i]] = leaves[i].Value;
            var options = new GradCheckOptions(1e-6, atol, rtol, fast, 0);
            var report = secondOrder ? Core.CheckGradGrad(options, env, vars, expr) : Core.CheckGrad(options, env, vars, expr);
            return new GradCheckResult(report, names);
        }
    }
}
