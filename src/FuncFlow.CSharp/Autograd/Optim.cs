using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using Microsoft.FSharp.Collections;
using CoreTensor = FuncFlow.Tensor;
using NN = FuncFlow.NN;

namespace FuncFlow.Autograd
{
    /// <summary>
    /// An optimizer over a fixed list of parameters, stepping each by its <see cref="Tensor.Grad"/>. The update is
    /// the F# optimiser's own (<c>FuncFlow.NN</c>), which also checks the hyper-parameters: each parameter's update
    /// expressions are compiled once into a plan that keeps its state (momentum, moments, the step count).
    /// </summary>
    public abstract class Optimizer
    {
        private readonly Tensor[] parameters;
        private readonly Dictionary<Tensor, Plan> plans = new(ReferenceEqualityComparer.Instance);
        private NN.Optimizer rule;
        private FuncFlow.CSharp.Schedule? schedule;

        private protected Optimizer(IEnumerable<Tensor> parameters, NN.Optimizer rule)
        {
            ArgumentNullException.ThrowIfNull(parameters);
            this.parameters = parameters.ToArray();
            for (int i = 0; i < this.parameters.Length; i++)
                if (this.parameters[i] is null) throw new ArgumentNullException(nameof(parameters), $"Parameter {i} is null.");
            this.rule = rule;
        }

        /// <summary>The parameters updated by <see cref="Step"/>.</summary>
        public IReadOnlyList<Tensor> Parameters => parameters;

        /// <summary>
        /// A schedule for the learning rate (a factor of the steps each parameter has taken), or null for a constant
        /// rate. Setting it keeps the optimizer's state.
        /// </summary>
        public FuncFlow.CSharp.Schedule? Schedule
        {
            get => schedule;
            set
            {
                schedule = value;
                Replace(rule);
            }
        }

        /// <summary>The rule the plans are compiled from: the optimiser, scheduled when a schedule is set.</summary>
        private NN.Optimizer Scheduled => schedule is null ? rule : new NN.Scheduled(rule, schedule.Core);

        /// <summary>Uses another rule from the next step on, carrying each parameter's state over by name.</summary>
        private protected void Replace(NN.Optimizer newRule)
        {
            rule = newRule;
            foreach (var (p, old) in plans.ToList())
            {
                var plan = Compile(p);
                foreach (var name in old.VariableNames.Intersect(plan.VariableNames)) plan.Set(name, old.Get(name));
                plans[p] = plan;
            }
        }

        private Plan Compile(Tensor p)
        {
            var step = Core.Var(StepName, Array.Empty<int>());
            var parameter = Core.Var(ParameterName, p.Shape);
            var gradient = Core.Var(GradientName, p.Shape);
            var update = Scheduled.Update(step, parameter, gradient);
            var updates = update.Updates.Append(Tuple.Create(step, ExprModule.add(step, ExprModule.scalar(1.0))));
            var plan = PlanModule.compileWithUpdates(FSharpList<Expr>.Empty, ListModule.OfSeq(updates));
            plan.Set(StepName, TensorModule.scalar(0.0));
            foreach (var (v, initial) in update.State) plan.Set(ExprModule.tryName(v).Value, initial);
            return plan;
        }

        private const string StepName = "step";
        private const string ParameterName = "parameter";
        private const string GradientName = "gradient";

        /// <summary>
        /// Moves each parameter that has a gradient by the optimizer's rule (plain SGD: <c>Data -= lr * Grad.Data</c>).
        /// Parameters without a gradient are left alone; gradients are kept (call <see cref="ZeroGrad"/> before the
        /// next backward pass).
        /// </summary>
        public void Step()
        {
            foreach (var p in parameters)
            {
                if (p.Grad is null) continue;
                if (!plans.TryGetValue(p, out var plan)) plans[p] = plan = Compile(p);
                plan.Set(ParameterName, p.Value);
                plan.Set(GradientName, p.Grad.Value);
                plan.Execute();
                p.Value = plan.Get(ParameterName);
            }
        }

        /// <summary>Sets every parameter's gradient to zeros (the seed's <c>p.grad.data *= 0</c>).</summary>
        public void ZeroGrad()
        {
            foreach (var p in parameters)
                if (p.Grad is not null)
                    p.Grad.Value = Core.Zeros(p.Shape);
        }
    }

    /// <summary>Stochastic gradient descent (the seed's <c>SGD</c>), with PyTorch's momentum, Nesterov and weight decay.</summary>
    public sealed class SGD : Optimizer
    {
        private double alpha;

        /// <summary>Creates the optimizer.</summary>
        /// <param name="parameters">The tensors to update (usually a model's <see cref="Layer.GetParameters"/>).</param>
        /// <param name="alpha">The learning rate (finite, positive).</param>
        /// <param name="momentum">The momentum coefficient (0 for plain SGD).</param>
        /// <param name="nesterov">Nesterov's momentum (needs a positive momentum).</param>
        /// <param name="weightDecay">L2 weight decay added to the gradient.</param>
        public SGD(IEnumerable<Tensor> parameters, double alpha = 0.1, double momentum = 0.0, bool nesterov = false, double weightDecay = 0.0)
            : base(parameters, new NN.SGD(alpha, momentum, nesterov, weightDecay))
        {
            this.alpha = alpha;
            Momentum = momentum;
            Nesterov = nesterov;
            WeightDecay = weightDecay;
        }

        /// <summary>The learning rate; setting it keeps the momentum.</summary>
        public double Alpha
        {
            get => alpha;
            set
            {
                Replace(new NN.SGD(value, Momentum, Nesterov, WeightDecay));
                alpha = value;
            }
        }

        /// <summary>The momentum coefficient.</summary>
        public double Momentum { get; }

        /// <summary>Whether the momentum is Nesterov's.</summary>
        public bool Nesterov { get; }

        /// <summary>The L2 weight decay.</summary>
        public double WeightDecay { get; }
    }

    /// <summary>Adam with bias correction; weight decay is added to the gradient (PyTorch's Adam).</summary>
    public sealed class Adam : Optimizer
    {
        /// <summary>Creates the optimizer.</summary>
        /// <param name="parameters">The tensors to update.</param>
        /// <param name="learningRate">The learning rate (finite, positive).</param>
        /// <param name="beta1">The first moment's decay, in [0, 1).</param>
        /// <param name="beta2">The second moment's decay, in [0, 1).</param>
        /// <param name="epsilon">Added to the denominator.</param>
        /// <param name="weightDecay">L2 weight decay added to the gradient.</param>
        public Adam(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.0)
            : base(parameters, new NN.Adam(learningRate, beta1, beta2, epsilon, weightDecay, false)) { }
    }

    /// <summary>AdamW: Adam with decoupled weight decay.</summary>
    public sealed class AdamW : Optimizer
    {
        /// <summary>Creates the optimizer.</summary>
        /// <param name="parameters">The tensors to update.</param>
        /// <param name="learningRate">The learning rate (finite, positive).</param>
        /// <param name="weightDecay">The decoupled weight decay (PyTorch's default 0.01).</param>
        /// <param name="beta1">The first moment's decay, in [0, 1).</param>
        /// <param name="beta2">The second moment's decay, in [0, 1).</param>
        /// <param name="epsilon">Added to the denominator.</param>
        public AdamW(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double weightDecay = 0.01, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
            : base(parameters, new NN.AdamW(learningRate, weightDecay, beta1, beta2, epsilon)) { }
    }
}
