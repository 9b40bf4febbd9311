using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Linq;
using FuncFlow.Interop;
using CoreTensor = FuncFlow.Tensor;

namespace FuncFlow.Nodes
{
    /// <summary>
    /// A node of a MiniFlow graph (seed 000): it holds its value, knows the nodes it reads from and the nodes
    /// it feeds, and after a backward pass holds the gradient of the cost with respect to each node it reads
    /// from. The values and gradients themselves are computed by the FuncFlow core.
    /// </summary>
    public abstract class Node
    {
        private static readonly IReadOnlyDictionary<Node, CoreTensor> NoGradients =
            new ReadOnlyDictionary<Node, CoreTensor>(new Dictionary<Node, CoreTensor>());

        private readonly Node[] inbound;
        private readonly List<Node> outbound = new();
        private IReadOnlyDictionary<Node, CoreTensor> gradients = NoGradients;

        /// <summary>Creates a node reading from <paramref name="inboundNodes"/> and registers it as their outbound node.</summary>
        /// <param name="name">The node's name, used in traces and messages.</param>
        /// <param name="inboundNodes">The nodes this node reads from, in order.</param>
        protected Node(string name, IEnumerable<Node> inboundNodes)
        {
            ArgumentNullException.ThrowIfNull(name);
            ArgumentNullException.ThrowIfNull(inboundNodes);
            inbound = inboundNodes.ToArray();
            for (int i = 0; i < inbound.Length; i++)
                if (inbound[i] is null)
                    throw new ArgumentNullException(nameof(inboundNodes), $"Inbound node {i} of '{name}' is null; pass a node for every operand.");
            Name = name;
            foreach (var n in inbound) n.outbound.Add(this);
        }

        /// <summary>The node's name (the seed's <c>name</c>), used in traces and error messages.</summary>
        public string Name { get; set; }

        /// <summary>
        /// The node's current value: fed for an <see cref="Input"/>, computed by <see cref="Forward"/> otherwise;
        /// null before that.
        /// </summary>
        public FuncFlow.CSharp.Tensor? Value
        {
            get => CoreValue is null ? null : new(CoreValue);
            set => CoreValue = value?.Core;
        }

        /// <summary>The value as a core tensor (what <see cref="Value"/> wraps).</summary>
        internal CoreTensor? CoreValue { get; set; }

        /// <summary>The nodes this node reads from, in order.</summary>
        public IReadOnlyList<Node> InboundNodes => inbound;

        /// <summary>The nodes that read from this node (one entry per use).</summary>
        public IReadOnlyList<Node> OutboundNodes => outbound.AsReadOnly();

        /// <summary>
        /// After <see cref="Backward"/>: for each inbound node, the gradient of the cost with respect to it along
        /// the paths through this node; for an <see cref="Input"/>, its total gradient under the key itself
        /// (<c>x.Gradients[x]</c>, as in the seed).
        /// </summary>
        public IReadOnlyDictionary<Node, FuncFlow.CSharp.Tensor> Gradients => gradients.ToDictionary(kv => kv.Key, kv => new FuncFlow.CSharp.Tensor(kv.Value));

        /// <summary>The gradients as core tensors (what <see cref="Gradients"/> wraps).</summary>
        internal IReadOnlyDictionary<Node, CoreTensor> CoreGradients => gradients;

        /// <summary>Computes <see cref="Value"/> from the inbound nodes' values.</summary>
        public abstract void Forward();

        /// <summary>Computes <see cref="Gradients"/> from the gradients the outbound nodes pass back.</summary>
        public abstract void Backward();

        /// <summary>Replaces the gradients (read-only from outside).</summary>
        /// <param name="values">The new gradients.</param>
        protected void SetGradients(IDictionary<Node, FuncFlow.CSharp.Tensor> values) =>
            SetCoreGradients((values ?? throw new ArgumentNullException(nameof(values))).ToDictionary(kv => kv.Key, kv => (kv.Value ?? throw new ArgumentNullException(nameof(values))).Core));

        private protected void SetCoreGradients(IDictionary<Node, CoreTensor> values) =>
            gradients = new ReadOnlyDictionary<Node, CoreTensor>(new Dictionary<Node, CoreTensor>(values));

        /// <summary>
        /// The gradient of the cost with respect to this node: the sum of what the outbound nodes hold for it,
        /// or null when none of them has one yet.
        /// </summary>
        private protected CoreTensor? GradientFromOutbound(Action<Node, CoreTensor>? report = null)
        {
            var parts = new List<CoreTensor>();
            foreach (var n in outbound.Distinct())
            {
                if (n.gradients.TryGetValue(this, out var g))
                {
                    report?.Invoke(n, g);
                    parts.Add(g);
                }
            }
            return parts.Count == 0 ? null : Core.Sum(parts);
        }

        /// <summary>The name and the value, as NumPy prints it.</summary>
        public override string ToString() => $"{Name}: {Core.Format(CoreValue)}";
    }
}
