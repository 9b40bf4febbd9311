using System;
using System.Collections.Generic;
using FuncFlow.Interop;
using CoreTensor = FuncFlow.Tensor;

namespace FuncFlow.Autograd
{
    /// <summary>
    /// Derivatives of a whole function at a point, as PyTorch's torch.autograd.functional: the function is traced
    /// once on the input, and the core builds the derivative as one expression (forward mode for a Jacobian-vector
    /// product; the Jacobian by forward mode when the input has fewer elements than the output, else reverse mode;
    /// the Hessian by forward over reverse mode) and evaluates it.
    /// </summary>
    public static class Functional
    {
        /// <summary>The derivative of <paramref name="function"/> at <paramref name="input"/> along <paramref name="tangent"/> (torch's jvp).</summary>
        /// <param name="function">Builds the output from the input with tensor operations.</param>
        /// <param name="input">The point; its value is used, its autograd flag is not.</param>
        /// <param name="tangent">The direction, of the input's shape.</param>
        /// <returns>A tensor of the output's shape.</returns>
        /// <exception cref="ArgumentException">The tangent's shape is not the input's.</exception>
        public static Tensor Jvp(Func<Tensor, Tensor> function, Tensor input, Tensor tangent)
        {
            ArgumentNullException.ThrowIfNull(tangent);
            return Run(nameof(Jvp), function, input, (x, f) => Core.Jvp(x, Core.Constant(tangent.Value), f));
        }

        /// <summary>The Jacobian of <paramref name="function"/> at <paramref name="input"/> (torch's jacobian).</summary>
        /// <param name="function">Builds the output from the input with tensor operations.</param>
        /// <param name="input">The point; its value is used, its autograd flag is not.</param>
        /// <returns>A tensor of shape output shape followed by input shape.</returns>
        public static Tensor Jacobian(Func<Tensor, Tensor> function, Tensor input) => Run(nameof(Jacobian), function, input, Core.Jacobian);

        /// <summary>The Hessian of a one-element <paramref name="function"/> at <paramref name="input"/> (torch's hessian).</summary>
        /// <param name="function">Builds a one-element output from the input with tensor operations.</param>
        /// <param name="input">The point; its value is used, its autograd flag is not.</param>
        /// <returns>A symmetric tensor of shape input shape followed by input shape.</returns>
        /// <exception cref="ArgumentException">The output has more than one element.</exception>
        public static Tensor Hessian(Func<Tensor, Tensor> function, Tensor input) => Run(nameof(Hessian), function, input, Core.Hessian);

        private static Tensor Run(string what, Func<Tensor, Tensor> function, Tensor input, Func<Expr, Expr, Expr> derivative)
        {
            ArgumentNullException.ThrowIfNull(function);
            ArgumentNullException.ThrowIfNull(input);
            var leaf = new Tensor(input.Value, autograd: true);
            var output = function(leaf) ?? throw new InvalidOperationException($"Functional.{what}: the function returned null; return its output tensor.");
            var name = Core.FreshName("input");
            var x = Core.Var(name, leaf.Shape);
            // The traced output reads the input as x, and every other tensor as the constant its consumer cached.
            var traced = output.Trace((t, _) => ReferenceEquals(t, leaf) ? x : null);
            var env = new Dictionary<string, CoreTensor> { [name] = leaf.Value };
            return new Tensor(Core.Evaluate(env, derivative(x, traced)));
        }
    }
}
