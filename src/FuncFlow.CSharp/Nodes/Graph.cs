using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using CoreTensor = FuncFlow.Tensor;

namespace FuncFlow.Nodes
{
    /// <summary>The seed's graph functions: sorting, forward and backward passes, and the SGD update.</summary>
    public static class Graph
    {
        /// <summary>
        /// Sorts the nodes reachable from the fed inputs so that every node comes after the nodes it reads from
        /// (Kahn's algorithm), and sets each input's value from <paramref name="feed"/>.
        /// </summary>
        /// <param name="feed">A value for every input the graph reads.</param>
        /// <returns>The sorted nodes; the last one is the graph's output (the cost).</returns>
        /// <exception cref="ArgumentException">A node reachable from the feed reads an input the feed has no value for.</exception>
        public static IReadOnlyList<Node> TopologicalSort(IDictionary<Input, FeedValue> feed)
        {
            ArgumentNullException.ThrowIfNull(feed);
            NodeTrace.Write(() => "-----> topological_sort");
            var inputs = feed.Keys.ToList();
            var values = new Dictionary<Input, CoreTensor>();
            foreach (var input in inputs)
            {
                try
                {
                    values[input] = feed[input].Value;
                }
                catch (InvalidOperationException ex)
                {
                    throw new ArgumentException($"The feed's value for input '{input.Name}' is empty: {ex.Message}", nameof(feed), ex);
                }
            }

            // Every node reachable from the inputs.
            var reached = new HashSet<Node>();
            var discovered = new List<Node>();
            var queue = new Queue<Node>(inputs);
            while (queue.Count > 0)
            {
                var n = queue.Dequeue();
                if (!reached.Add(n)) continue;
                discovered.Add(n);
                foreach (var m in n.OutboundNodes) queue.Enqueue(m);
            }

            // A reached node reading something unreached reads an unfed input.
            foreach (var n in discovered)
            {
                foreach (var m in n.InboundNodes)
                {
                    if (reached.Contains(m)) continue;
                    var missing = UnfedInputs(m, reached).Select(i => "'" + i.Name + "'").Distinct().ToList();
                    var what = missing.Count == 0 ? $"'{m.Name}'" : string.Join(", ", missing);
                    throw new ArgumentException(
                        $"The feed has no value for input {what}, which '{n.Name}' needs; add {(missing.Count > 1 ? "them" : "it")} to the feed dictionary.",
                        nameof(feed));
                }
            }

            // Kahn's algorithm, counting each use of a node as one edge.
            var pending = discovered.ToDictionary(n => n, n => n.InboundNodes.Count);
            var ready = new Queue<Node>(inputs);
            var sorted = new List<Node>(discovered.Count);
            while (ready.Count > 0)
            {
                var n = ready.Dequeue();
                if (n is Input input && values.TryGetValue(input, out var value))
                {
                    input.CoreValue = value;
                    NodeTrace.Write(() => $"Feeding value: {Core.Format(value)} =====> {input.Name}");
                }
                sorted.Add(n);
                foreach (var m in n.OutboundNodes)
                    if (--pending[m] == 0) ready.Enqueue(m);
            }
            NodeTrace.Write(() => "Sorted Nodes: " + string.Join(", ", sorted.Select(n => n.Name)));
            return sorted;
        }

        private static IEnumerable<Input> UnfedInputs(Node node, HashSet<Node> reached)
        {
            var seen = new HashSet<Node>();
            var stack = new Stack<Node>();
            stack.Push(node);
            while (stack.Count > 0)
            {
                var n = stack.Pop();
                if (!seen.Add(n) || reached.Contains(n)) continue;
                if (n is Input i) yield return i;
                foreach (var m in n.InboundNodes) stack.Push(m);
            }
        }

        /// <summary>Runs <see cref="Node.Forward"/> on every node in order.</summary>
        /// <param name="output">The node whose value to return.</param>
        /// <param name="sorted">Nodes in topological order (from <see cref="TopologicalSort"/>).</param>
        /// <returns>The output node's value.</returns>
        public static FuncFlow.CSharp.Tensor ForwardPass(Node output, IReadOnlyList<Node> sorted)
        {
            ArgumentNullException.ThrowIfNull(output);
            ArgumentNullException.ThrowIfNull(sorted);
            foreach (var n in sorted) n.Forward();
            return output.Value ?? throw new ArgumentException($"'{output.Name}' is not in the sorted nodes, so the forward pass did not compute it.", nameof(output));
        }

        /// <summary>
        /// Runs the forward pass over <paramref name="graph"/>, then the backward pass in reverse order. The last
        /// node is the cost: its gradient is seeded with ones; other nodes that feed nothing pass back zeros.
        /// </summary>
        /// <param name="graph">Nodes in topological order (from <see cref="TopologicalSort"/>).</param>
        public static void ForwardAndBackward(IReadOnlyList<Node> graph)
        {
            ArgumentNullException.ThrowIfNull(graph);
            if (graph.Count == 0) throw new ArgumentException("The graph is empty; pass the result of Graph.TopologicalSort.", nameof(graph));
            foreach (var n in graph) n.Forward();
            var last = graph[^1];
            for (int i = graph.Count - 1; i >= 0; i--)
            {
                var n = graph[i];
                if (n is Operation op)
                {
                    var mode = ReferenceEquals(n, last) ? Operation.BackwardSeed.Cost
                        : n.OutboundNodes.Count == 0 ? Operation.BackwardSeed.Zero
                        : Operation.BackwardSeed.FromOutbound;
                    op.Backward(mode);
                }
                else n.Backward();
            }
        }

        /// <summary>Moves each trainable against its gradient: <c>value -= learningRate * Gradients[t]</c>.</summary>
        /// <param name="trainables">The weights and biases to update.</param>
        /// <param name="learningRate">The step size.</param>
        /// <exception cref="InvalidOperationException">A trainable has no value or no gradient yet.</exception>
        public static void SgdUpdate(IEnumerable<Input> trainables, double learningRate = 1e-2)
        {
            ArgumentNullException.ThrowIfNull(trainables);
            foreach (var t in trainables)
            {
                if (t.CoreValue is null)
                    throw new InvalidOperationException($"Trainable '{t.Name}' has no value; feed it through Graph.TopologicalSort.");
                if (!t.CoreGradients.TryGetValue(t, out var g))
                    throw new InvalidOperationException($"Trainable '{t.Name}' has no gradient yet; run Graph.ForwardAndBackward before Graph.SgdUpdate.");
                t.CoreValue = Core.AddScaled(t.CoreValue, -learningRate, g);
            }
        }
    }
}
