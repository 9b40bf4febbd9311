using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using CoreTensor = FuncFlow.Tensor;

namespace FuncFlow.Nodes
{
    /// <summary>
    /// A node that computes something from its inbound nodes. Subclasses only say which core expression they
    /// are (<see cref="BuildExpression"/>); the value comes from evaluating it on the inbound values, and the
    /// gradients from the core's gradient map of it, seeded with the gradient coming back from the outbound
    /// nodes.
    /// </summary>
    public abstract class Operation : Node
    {
        private int[][]? cachedShapes;
        private Expr[] vars = Array.Empty<Expr>();
        private string[] varNames = Array.Empty<string>();
        private string seedName = "";
        private Expr? expression;
        private Expr? seed;
        private Node[] distinctInbound = Array.Empty<Node>();
        private Expr[]? gradientExpressions;

        /// <summary>Creates an operation reading from <paramref name="inboundNodes"/>.</summary>
        /// <param name="name">The node's name.</param>
        /// <param name="inboundNodes">The operands, at least one.</param>
        protected Operation(string name, params Node[] inboundNodes) : base(name, inboundNodes ?? throw new ArgumentNullException(nameof(inboundNodes)))
        {
            if (inboundNodes.Length == 0)
                throw new ArgumentException($"'{name}' needs at least one inbound node.", nameof(inboundNodes));
        }

        /// <summary>
        /// The expression this node computes, over one variable per inbound node (in order), each shaped like that
        /// node's current value.
        /// </summary>
        /// <param name="inputs">The variables standing for the inbound nodes.</param>
        /// <returns>The expression.</returns>
        protected abstract FuncFlow.CSharp.Expr BuildExpression(IReadOnlyList<FuncFlow.CSharp.Expr> inputs);

        private CoreTensor[] InboundValues()
        {
            var values = new CoreTensor[InboundNodes.Count];
            for (int i = 0; i < values.Length; i++)
            {
                var n = InboundNodes[i];
                values[i] = n.CoreValue ?? throw new InvalidOperationException(
                    $"'{Name}' reads from '{n.Name}', which has no value yet; feed the inputs with Graph.TopologicalSort and run the nodes in its order.");
            }
            return values;
        }

        private void EnsureExpression(CoreTensor[] values)
        {
            var shapes = values.Select(v => v.Shape).ToArray();
            if (cachedShapes is not null && cachedShapes.Length == shapes.Length && cachedShapes.Zip(shapes).All(p => Core.SameShape(p.First, p.Second)))
                return;
            var newNames = InboundNodes.Select(n => Core.FreshName(n.Name)).ToArray();
            var newVars = new Expr[values.Length];
            for (int i = 0; i < values.Length; i++) newVars[i] = Core.Var(newNames[i], shapes[i]);
            Expr e;
            try
            {
                e = (BuildExpression(newVars.Select(v => new FuncFlow.CSharp.Expr(v)).ToList())
                     ?? throw new InvalidOperationException($"'{Name}': BuildExpression returned null.")).Core;
            }
            catch (ArgumentException ex)
            {
                var described = string.Join(", ", InboundNodes.Select((n, i) => $"{n.Name} {Core.ShowShape(shapes[i])}"));
                throw new ArgumentException($"'{Name}' cannot combine its inputs ({described}): {ex.Message}", ex);
            }
            vars = newVars;
            varNames = newNames;
            expression = e;
            cachedShapes = shapes;
            seed = null;
            gradientExpressions = null;
        }

        /// <summary>Evaluates the node's expression on the inbound values and stores it in <see cref="Node.Value"/>.</summary>
        /// <exception cref="InvalidOperationException">An inbound node has no value.</exception>
        /// <exception cref="ArgumentException">The inbound values' shapes do not fit this operation.</exception>
        public override void Forward()
        {
            var values = InboundValues();
            EnsureExpression(values);
            NodeTrace.Write(() => $"\n----->Forward pass @ {Name}");
            CoreValue = Core.Evaluate(BindingsByName(values), expression!);
            NodeTrace.Write(() =>
                string.Join("\n", InboundNodes.Select((n, i) => $"{n.Name}:\n{Core.Format(values[i])}"))
                + $"\n---> {Name}:\n{Core.Format(CoreValue)}");
        }

        private Dictionary<string, CoreTensor> BindingsByName(CoreTensor[] values)
        {
            var env = new Dictionary<string, CoreTensor>();
            for (int i = 0; i < values.Length; i++) env[varNames[i]] = values[i];
            return env;
        }

        /// <summary>
        /// Passes the gradient coming back from the outbound nodes (ones when this node feeds nothing: it is the
        /// cost) through this node, storing the gradient for each inbound node in <see cref="Node.Gradients"/>.
        /// </summary>
        /// <exception cref="InvalidOperationException">The node has no value, or it feeds nodes none of which has run its backward pass.</exception>
        public override void Backward() => Backward(BackwardSeed.FromOutbound);

        internal enum BackwardSeed
        {
            FromOutbound,
            Cost,
            Zero,
        }

        internal void Backward(BackwardSeed mode)
        {
            if (CoreValue is null)
                throw new InvalidOperationException($"'{Name}' has no value; run its Forward before its Backward.");
            var values = InboundValues();
            EnsureExpression(values);
            NodeTrace.Write(() => $"\n=============================\n\tBP @ {Name}\n=============================");
            CoreTensor upstream;
            switch (mode)
            {
                case BackwardSeed.Cost:
                    NodeTrace.Write(() => "Nothing coming back: this is the cost (the last node)");
                    upstream = Core.Ones(CoreValue.Shape);
                    break;
                case BackwardSeed.Zero:
                    NodeTrace.Write(() => "Nothing coming back: this node feeds nothing and is not the cost");
                    upstream = Core.Zeros(CoreValue.Shape);
                    break;
                default:
                    var fromOutbound = GradientFromOutbound((n, g) => NodeTrace.Write(() => $"Getting {n.Name} gradient:\n<-----------------------------\n{Core.Format(g)}"));
                    if (fromOutbound is null)
                    {
                        if (OutboundNodes.Count > 0)
                            throw new InvalidOperationException(
                                $"'{Name}' feeds {string.Join(", ", OutboundNodes.Distinct().Select(n => "'" + n.Name + "'"))}, none of which has run Backward; run the backward pass in reverse topological order (Graph.ForwardAndBackward does).");
                        NodeTrace.Write(() => "Nothing coming back: this is the cost (it feeds nothing)");
                        fromOutbound = Core.Ones(CoreValue.Shape);
                    }
                    upstream = fromOutbound;
                    break;
            }

            if (gradientExpressions is null)
            {
                seedName = Core.FreshName(Name + ".seed");
                seed = Core.Var(seedName, expression!.Shape);
                var map = Core.Vjp(seed, vars, expression);
                distinctInbound = InboundNodes.Distinct().ToArray();
                gradientExpressions = distinctInbound
                    .Select(node => Core.AddN(Enumerable.Range(0, vars.Length).Where(i => ReferenceEquals(InboundNodes[i], node)).Select(i => map[vars[i]])))
                    .ToArray();
            }
            var env = BindingsByName(values);
            env[seedName] = upstream;
            var grads = Core.Evaluate(env, gradientExpressions);
            var result = new Dictionary<Node, CoreTensor>();
            for (int i = 0; i < distinctInbound.Length; i++) result[distinctInbound[i]] = grads[i];
            SetCoreGradients(result);
            NodeTrace.Write(() => string.Join("\n", distinctInbound.Select((n, i) => $"W.r.t {n.Name}:\n-------------\n{Core.Format(grads[i])}")));
        }
    }
}
