using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;

namespace FuncFlow.Autograd
{
    /// <summary>A piece of a model with a forward pass and, perhaps, parameters (the seed's <c>Layer</c>).</summary>
    public abstract class Layer
    {
        /// <summary>The layer's own parameters, returned by <see cref="GetParameters"/>.</summary>
        protected List<Tensor> Parameters { get; } = new();

        /// <summary>The tensors an optimizer should update.</summary>
        /// <returns>The parameters.</returns>
        public virtual IReadOnlyList<Tensor> GetParameters() => Parameters.AsReadOnly();

        /// <summary>The layer's output for <paramref name="input"/>.</summary>
        /// <param name="input">The input.</param>
        /// <returns>The output.</returns>
        public abstract Tensor Forward(Tensor input);
    }

    /// <summary>A dense layer <c>input · Weight + Bias</c> with He initialisation (the seed's <c>Linear</c>).</summary>
    public sealed class Linear : Layer
    {
        /// <summary>
        /// Creates the layer: weights drawn from N(0, 1) times sqrt(2 / nInputs), as the seed does, and a zero bias.
        /// </summary>
        /// <param name="nInputs">The number of input features.</param>
        /// <param name="nOutputs">The number of outputs.</param>
        /// <param name="random">The generator the weights come from (seed it for reproducible weights); a shared one when null.</param>
        public Linear(int nInputs, int nOutputs, Random? random = null)
        {
            if (nInputs <= 0) throw new ArgumentOutOfRangeException(nameof(nInputs), nInputs, "A linear layer needs at least one input.");
            if (nOutputs <= 0) throw new ArgumentOutOfRangeException(nameof(nOutputs), nOutputs, "A linear layer needs at least one output.");
            var seed = (random ?? Random.Shared).Next();
            Weight = new Tensor(TensorModule.randNormal(DType.Float64, seed, new[] { nInputs, nOutputs }, 0.0, Math.Sqrt(2.0 / nInputs)), autograd: true);
            Bias = new Tensor(Core.Zeros(new[] { nOutputs }), autograd: true);
            Parameters.Add(Weight);
            Parameters.Add(Bias);
        }

        /// <summary>The weights (nInputs x nOutputs).</summary>
        public Tensor Weight { get; }

        /// <summary>The bias (nOutputs).</summary>
        public Tensor Bias { get; }

        /// <summary><c>input.MM(Weight) + Bias.Expand(0, rows)</c>.</summary>
        /// <param name="input">One row per example.</param>
        /// <returns>One row of outputs per example.</returns>
        public override Tensor Forward(Tensor input)
        {
            ArgumentNullException.ThrowIfNull(input);
            if (input.Shape.Length != 2)
                throw new ArgumentException($"Linear: the input has shape {Core.ShowShape(input.Shape)}; give a matrix with one row per example.", nameof(input));
            return input.MM(Weight) + Bias.Expand(0, input.Shape[0]);
        }
    }

    /// <summary>Layers applied one after the other (the seed's <c>Sequential</c>).</summary>
    public sealed class Sequential : Layer
    {
        private readonly List<Layer> layers;

        /// <summary>Creates the stack.</summary>
        /// <param name="layers">The layers, first to last.</param>
        public Sequential(params Layer[] layers)
        {
            ArgumentNullException.ThrowIfNull(layers);
            this.layers = new List<Layer>();
            foreach (var l in layers) Add(l);
        }

        /// <summary>The layers, first to last.</summary>
        public IReadOnlyList<Layer> Layers => layers.AsReadOnly();

        /// <summary>Appends a layer.</summary>
        /// <param name="layer">The layer.</param>
        public void Add(Layer layer)
        {
            ArgumentNullException.ThrowIfNull(layer);
            layers.Add(layer);
        }

        /// <summary>Feeds <paramref name="input"/> through every layer in turn.</summary>
        /// <param name="input">The input.</param>
        /// <returns>The last layer's output.</returns>
        public override Tensor Forward(Tensor input)
        {
            foreach (var l in layers) input = l.Forward(input);
            return input;
        }

        /// <summary>The parameters of every layer, in order.</summary>
        /// <returns>The parameters.</returns>
        public override IReadOnlyList<Tensor> GetParameters() => layers.SelectMany(l => l.GetParameters()).ToList().AsReadOnly();
    }

    /// <summary>The logistic function as a layer.</summary>
    public sealed class Sigmoid : Layer
    {
        /// <summary>Applies <see cref="Tensor.Sigmoid"/>.</summary>
        /// <param name="input">The input.</param>
        /// <returns>The output.</returns>
        public override Tensor Forward(Tensor input) => (input ?? throw new ArgumentNullException(nameof(input))).Sigmoid();
    }

    /// <summary>The hyperbolic tangent as a layer.</summary>
    public sealed class Tanh : Layer
    {
        /// <summary>Applies <see cref="Tensor.Tanh"/>.</summary>
        /// <param name="input">The input.</param>
        /// <returns>The output.</returns>
        public override Tensor Forward(Tensor input) => (input ?? throw new ArgumentNullException(nameof(input))).Tanh();
    }

    /// <summary>The rectifier as a layer.</summary>
    public sealed class Relu : Layer
    {
        /// <summary>Applies <see cref="Tensor.Relu"/>.</summary>
        /// <param name="input">The input.</param>
        /// <returns>The output.</returns>
        public override Tensor Forward(Tensor input) => (input ?? throw new ArgumentNullException(nameof(input))).Relu();
    }

    /// <summary>
    /// A loss: a layer without parameters whose forward pass compares a prediction with a target. It is not a
    /// <see cref="Layer"/> because its forward pass takes two tensors.
    /// </summary>
    public abstract class Loss
    {
        /// <summary>A loss has no parameters.</summary>
        /// <returns>An empty list.</returns>
        public IReadOnlyList<Tensor> GetParameters() => Array.Empty<Tensor>();

        /// <summary>The loss of <paramref name="prediction"/> against <paramref name="target"/>.</summary>
        /// <param name="prediction">The model's output.</param>
        /// <param name="target">The expected output.</param>
        /// <returns>The loss.</returns>
        public abstract Tensor Forward(Tensor prediction, Tensor target);
    }

    /// <summary>The seed's squared error summed over axis 0: <c>((pred - target) * (pred - target)).Sum(0)</c>.</summary>
    public sealed class MSELoss : Loss
    {
        /// <inheritdoc />
        public override Tensor Forward(Tensor prediction, Tensor target)
        {
            ArgumentNullException.ThrowIfNull(prediction);
            ArgumentNullException.ThrowIfNull(target);
            if (!Core.SameShape(prediction.Shape, target.Shape))
                throw new ArgumentException(
                    $"MSELoss: the prediction has shape {Core.ShowShape(prediction.Shape)} but the target has shape {Core.ShowShape(target.Shape)}; they must match.",
                    nameof(target));
            var diff = prediction - target;
            return (diff * diff).Sum(0);
        }
    }

    /// <summary>
    /// The mean cross-entropy of the softmax of the prediction (last axis) against class indices (one per row,
    /// optionally with a trailing axis of 1) or one-hot rows.
    /// </summary>
    public sealed class CrossEntropyLoss : Loss
    {
        /// <inheritdoc />
        public override Tensor Forward(Tensor prediction, Tensor target)
        {
            ArgumentNullException.ThrowIfNull(prediction);
            ArgumentNullException.ThrowIfNull(target);
            return prediction.CrossEntropy(target);
        }
    }
}
