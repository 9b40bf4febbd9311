using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;

namespace FuncFlow.Autograd
{
    /// <summary>Stochastic gradient descent over a fixed list of parameters (the seed's <c>SGD</c>).</summary>
    public sealed class SGD
    {
        private readonly Tensor[] parameters;

        /// <summary>Creates the optimizer.</summary>
        /// <param name="parameters">The tensors to update (usually a model's <see cref="Layer.GetParameters"/>).</param>
        /// <param name="alpha">The learning rate.</param>
        public SGD(IEnumerable<Tensor> parameters, double alpha = 0.1)
        {
            ArgumentNullException.ThrowIfNull(parameters);
            this.parameters = parameters.ToArray();
            for (int i = 0; i < this.parameters.Length; i++)
                if (this.parameters[i] is null) throw new ArgumentNullException(nameof(parameters), $"Parameter {i} is null.");
            Alpha = alpha;
        }

        /// <summary>The learning rate.</summary>
        public double Alpha { get; set; }

        /// <summary>The parameters updated by <see cref="Step"/>.</summary>
        public IReadOnlyList<Tensor> Parameters => parameters;

        /// <summary>
        /// Moves each parameter against its gradient: <c>Data -= Alpha * Grad.Data</c>. Parameters without a
        /// gradient are left alone; gradients are kept (call <see cref="ZeroGrad"/> before the next backward pass).
        /// </summary>
        public void Step()
        {
            foreach (var p in parameters)
                if (p.Grad is not null)
                    p.Data = Core.AddScaled(p.Data, -Alpha, p.Grad.Data);
        }

        /// <summary>Sets every parameter's gradient to zeros (the seed's <c>p.grad.data *= 0</c>).</summary>
        public void ZeroGrad()
        {
            foreach (var p in parameters)
                if (p.Grad is not null)
                    p.Grad.Data = Core.Zeros(p.Shape);
        }
    }
}
