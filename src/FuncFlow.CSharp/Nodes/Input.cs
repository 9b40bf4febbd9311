using System;
using System.Collections.Generic;
using FuncFlow.Interop;
using CoreTensor = FuncFlow.Tensor;

namespace FuncFlow.Nodes
{
    /// <summary>
    /// An input of the network: data, targets, weights or biases. Its value is fed by
    /// <see cref="Graph.TopologicalSort"/> (or set through <see cref="Node.Value"/>); its total gradient is read as
    /// <c>x.Gradients[x]</c>.
    /// </summary>
    public sealed class Input : Node
    {
        /// <summary>Creates an input.</summary>
        /// <param name="name">The input's name, used in traces and messages.</param>
        public Input(string name = "Input") : base(name, Array.Empty<Node>())
        {
        }

        /// <summary>Reports the input's value when tracing; its value is already set.</summary>
        /// <exception cref="InvalidOperationException">The input has no value.</exception>
        public override void Forward()
        {
            NodeTrace.Write(() => $"\n----->Forward pass @ {Name}");
            if (CoreValue is null)
                throw new InvalidOperationException($"Input '{Name}' has no value; feed one through Graph.TopologicalSort or set its Value.");
        }

        /// <summary>Sets the input's value (the seed's <c>forward(value)</c>).</summary>
        /// <param name="value">The new value.</param>
        public void Forward(FeedValue value)
        {
            CoreValue = value.Value;
            NodeTrace.Write(() => $"w.r.t {Name} node of value: {Core.Format(CoreValue)}");
            Forward();
        }

        /// <summary>Sums the gradients the outbound nodes hold for this input into <c>Gradients[this]</c>.</summary>
        /// <exception cref="InvalidOperationException">The input has no value.</exception>
        public override void Backward()
        {
            if (CoreValue is null)
                throw new InvalidOperationException($"Input '{Name}' has no value; run a forward pass before the backward pass.");
            NodeTrace.Write(() => $"\n=============================\n\tBP @ {Name}\n=============================");
            var total = GradientFromOutbound((n, g) => NodeTrace.Write(() => $"Getting {n.Name} gradient:\n<-----------------------------\n{Core.Format(g)}"))
                        ?? Core.Zeros(CoreValue.Shape);
            SetCoreGradients(new Dictionary<Node, CoreTensor> { [this] = total });
            NodeTrace.Write(() => $"W.r.t {Name}:\n-------------\n{Core.Format(total)}");
        }
    }
}
