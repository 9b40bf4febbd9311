using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using FuncFlow.Interop;
using Microsoft.FSharp.Collections;
using NN = FuncFlow.NN;
using Safetensors = FuncFlow.Data.Safetensors;

namespace FuncFlow.Autograd
{
    /// <summary>
    /// A piece of a model with a forward pass and, perhaps, parameters (the seed's <c>Layer</c>, PyTorch's
    /// <c>Module</c>): its parameters by name (a state dict), a training or evaluation mode, and save/load.
    /// </summary>
    public abstract class Layer
    {
        /// <summary>The layer's own parameters by name, returned by <see cref="NamedParameters"/> (add yours in the constructor).</summary>
        protected List<KeyValuePair<string, Tensor>> OwnParameters { get; } = new();

        /// <summary>Registers one of the layer's own parameters under a name.</summary>
        /// <param name="name">The name ("weight").</param>
        /// <param name="parameter">The tensor, created with autograd.</param>
        /// <returns>The tensor.</returns>
        protected Tensor Register(string name, Tensor parameter)
        {
            ArgumentNullException.ThrowIfNull(name);
            ArgumentNullException.ThrowIfNull(parameter);
            if (OwnParameters.Any(p => p.Key == name))
                throw new ArgumentException($"{GetType().Name}: a parameter named '{name}' is already registered.", nameof(name));
            OwnParameters.Add(new(name, parameter));
            return parameter;
        }

        /// <summary>The tensors an optimizer should update (the seed's name).</summary>
        /// <returns>The parameters.</returns>
        public IReadOnlyList<Tensor> GetParameters() => Parameters();

        /// <summary>The tensors an optimizer should update, in order.</summary>
        /// <returns>The parameters.</returns>
        public IReadOnlyList<Tensor> Parameters() => NamedParameters().Select(p => p.Value).ToList().AsReadOnly();

        /// <summary>Every parameter with its hierarchical name ("0.weight"), as in a PyTorch state dict.</summary>
        /// <returns>The names and parameters.</returns>
        public virtual IReadOnlyList<KeyValuePair<string, Tensor>> NamedParameters() => OwnParameters.AsReadOnly();

        /// <summary>The layer's own buffers by name: state that is saved but not trained (batch norm's running statistics).</summary>
        protected List<KeyValuePair<string, Tensor>> OwnBuffers { get; } = new();

        /// <summary>Every buffer with its hierarchical name ("1.running_mean").</summary>
        /// <returns>The names and buffers.</returns>
        public virtual IReadOnlyList<KeyValuePair<string, Tensor>> NamedBuffers() => OwnBuffers.AsReadOnly();

        /// <summary>The parameters and buffers by name: what <see cref="Save"/> writes.</summary>
        private List<KeyValuePair<string, Tensor>> State() => NamedParameters().Concat(NamedBuffers()).ToList();

        /// <summary>True in training mode (the default), false in evaluation mode.</summary>
        public bool Training { get; private set; } = true;

        /// <summary>Switches this layer (and its sub-layers) to training mode: dropout active.</summary>
        /// <returns>This layer.</returns>
        public Layer Train() => SetMode(true);

        /// <summary>Switches this layer (and its sub-layers) to evaluation mode: dropout off.</summary>
        /// <returns>This layer.</returns>
        public Layer Eval() => SetMode(false);

        internal void SetModeOf(bool training) => SetMode(training);

        /// <summary>Sets the mode of this layer and its sub-layers.</summary>
        /// <param name="training">The mode.</param>
        /// <returns>This layer.</returns>
        protected virtual Layer SetMode(bool training)
        {
            Training = training;
            return this;
        }

        /// <summary>
        /// The tensors kept in the seed's layout in memory but stored in PyTorch's in files: a linear layer's weight is
        /// [inputs, outputs] here (the seed's <c>input.MM(weight)</c>) and [outputs, inputs] in a state dict.
        /// </summary>
        /// <returns>The tensors stored transposed.</returns>
        private protected virtual IEnumerable<Tensor> TransposedInFiles() => Array.Empty<Tensor>();

        internal IEnumerable<Tensor> TransposedInFilesOf() => TransposedInFiles();

        /// <summary>
        /// Writes every parameter's and buffer's value to a safetensors file, under its name, in PyTorch's state-dict
        /// layout (a linear layer's weight as [outputs, inputs]), so a PyTorch model of the same architecture reads it.
        /// </summary>
        /// <param name="path">The file (written atomically).</param>
        public void Save(string path)
        {
            var transposed = TransposedInFiles().ToHashSet(ReferenceEqualityComparer.Instance);
            Safetensors.save(path, State().Select(p => Tuple.Create(p.Key, transposed.Contains(p.Value) ? Core.Transpose(p.Value.Value) : p.Value.Value)));
        }

        /// <summary>
        /// Reads every parameter's value from a file written by <see cref="Save"/>. Strict: a missing or extra name or
        /// a shape mismatch is an error naming it, and nothing is changed.
        /// </summary>
        /// <param name="path">The file.</param>
        /// <exception cref="FuncFlow.Data.DataFormatException">The file does not fit this layer.</exception>
        public void Load(string path)
        {
            var values = Safetensors.load(path);
            var named = State();
            var transposed = TransposedInFiles().ToHashSet(ReferenceEqualityComparer.Instance);
            var problems = new List<string>();
            foreach (var (name, p) in named)
            {
                var expected = transposed.Contains(p) ? p.Shape.Reverse().ToArray() : p.Shape;
                if (!values.TryGetValue(name, out var v)) problems.Add($"'{name}' is missing");
                else if (!Core.SameShape(v.Shape, expected)) problems.Add($"'{name}' has shape {Core.ShowShape(v.Shape)}, expected {Core.ShowShape(expected)}");
            }
            foreach (var name in values.Keys)
                if (!named.Any(p => p.Key == name)) problems.Add($"'{name}' is not a parameter of this layer");
            if (problems.Count > 0)
                throw new FuncFlow.Data.DataFormatException($"{path}: the parameters do not fit {GetType().Name}: {string.Join("; ", problems)}");
            foreach (var (name, p) in named) p.Value = transposed.Contains(p) ? Core.Transpose(values[name]) : values[name];
        }

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
            Register("weight", Weight);
            Register("bias", Bias);
        }

        /// <summary>The weight is [outputs, inputs] in files, as PyTorch's.</summary>
        /// <returns>The weight.</returns>
        private protected override IEnumerable<Tensor> TransposedInFiles() => new[] { Weight };

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

        /// <summary>The parameters of every layer, in order, named by position ("0.weight").</summary>
        /// <returns>The names and parameters.</returns>
        public override IReadOnlyList<KeyValuePair<string, Tensor>> NamedParameters() =>
            layers.SelectMany((l, i) => l.NamedParameters().Select(p => new KeyValuePair<string, Tensor>(i.ToString(CultureInfo.InvariantCulture) + "." + p.Key, p.Value)))
                .ToList().AsReadOnly();

        /// <summary>Every layer's tensors stored transposed.</summary>
        /// <returns>The tensors.</returns>
        private protected override IEnumerable<Tensor> TransposedInFiles() => layers.SelectMany(l => l.TransposedInFilesOf());

        /// <summary>The buffers of every layer, in order, named by position ("1.running_mean").</summary>
        /// <returns>The names and buffers.</returns>
        public override IReadOnlyList<KeyValuePair<string, Tensor>> NamedBuffers() =>
            layers.SelectMany((l, i) => l.NamedBuffers().Select(p => new KeyValuePair<string, Tensor>(i.ToString(CultureInfo.InvariantCulture) + "." + p.Key, p.Value)))
                .ToList().AsReadOnly();

        /// <summary>Sets the mode of the stack and every layer in it.</summary>
        /// <param name="training">The mode.</param>
        /// <returns>This layer.</returns>
        protected override Layer SetMode(bool training)
        {
            foreach (var l in layers) l.SetModeOf(training);
            return base.SetMode(training);
        }
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
            return Tensor.Apply("mse_loss", v => NN.Losses.sumSquaredError(v[0], v[1]), prediction, target);
        }
    }

    /// <summary>
    /// The core's softmax cross-entropy (<c>FuncFlow.NN.Losses.crossEntropy</c>), averaged over rows: the prediction's
    /// last axis holds the classes; the target is class indices (one per row, optionally with a trailing axis of 1)
    /// or one-hot rows.
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

    /// <summary>
    /// 2-D convolution (PyTorch's Conv2d) of [N, C, H, W] inputs with square kernels; the initial values are the core
    /// layer's (uniform in ±1/sqrt(fan-in)), drawn from the generator.
    /// </summary>
    public sealed class Conv2d : Layer
    {
        private readonly int stride;
        private readonly int padding;

        /// <summary>Creates the layer.</summary>
        /// <param name="inChannels">Input channels.</param>
        /// <param name="outChannels">Output channels.</param>
        /// <param name="kernelSize">The kernel's side.</param>
        /// <param name="stride">The step between windows.</param>
        /// <param name="padding">Zeros added on both sides of both axes.</param>
        /// <param name="random">The generator the initial values come from; a shared one when null.</param>
        public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, Random? random = null)
        {
            var initial = Initial(new NN.Conv2d(inChannels, outChannels, kernelSize, stride, padding), random);
            Weight = Register("weight", initial["weight"]);
            Bias = Register("bias", initial["bias"]);
            this.stride = stride;
            this.padding = padding;
        }

        /// <summary>The kernels, [out, in, k, k].</summary>
        public Tensor Weight { get; }

        /// <summary>The bias per output channel.</summary>
        public Tensor Bias { get; }

        /// <inheritdoc />
        public override Tensor Forward(Tensor input) => (input ?? throw new ArgumentNullException(nameof(input))).Conv2d(Weight, Bias, stride, padding);

        /// <summary>A core layer's initial parameters, as autograd tensors.</summary>
        internal static Dictionary<string, Tensor> Initial(NN.Layer layer, Random? random) =>
            layer.Parameters((random ?? Random.Shared).Next()).ToDictionary(p => p.Item1, p => new Tensor(p.Item2, autograd: true));
    }

    /// <summary>Max pooling over square windows (PyTorch's MaxPool2d).</summary>
    public sealed class MaxPool2d : Layer
    {
        private readonly int kernelSize;
        private readonly int? stride;

        /// <summary>Creates the layer.</summary>
        /// <param name="kernelSize">The window's side.</param>
        /// <param name="stride">The step between windows (the kernel size when null).</param>
        public MaxPool2d(int kernelSize, int? stride = null)
        {
            this.kernelSize = kernelSize;
            this.stride = stride;
        }

        /// <inheritdoc />
        public override Tensor Forward(Tensor input) => (input ?? throw new ArgumentNullException(nameof(input))).MaxPool2d(kernelSize, stride);
    }

    /// <summary>Every axis after the first merged into one: [N, ...] to [N, rest].</summary>
    public sealed class Flatten : Layer
    {
        /// <inheritdoc />
        public override Tensor Forward(Tensor input) =>
            (input ?? throw new ArgumentNullException(nameof(input))).Reshape(input.Shape.Length == 0 ? new[] { 1 } : new[] { input.Shape[0], -1 });
    }

    /// <summary>Layer normalisation over the last axis with a learned scale and shift (PyTorch's LayerNorm).</summary>
    public sealed class LayerNorm : Layer
    {
        private readonly double eps;

        /// <summary>Creates the layer: scale ones, shift zeros.</summary>
        /// <param name="features">The last axis's size.</param>
        /// <param name="eps">Added to the variance.</param>
        public LayerNorm(int features, double eps = 1e-5)
        {
            var initial = Conv2d.Initial(new NN.LayerNorm(new[] { features }, eps, true), null);
            Weight = Register("weight", initial["weight"]);
            Bias = Register("bias", initial["bias"]);
            this.eps = eps;
        }

        /// <summary>The scale per feature.</summary>
        public Tensor Weight { get; }

        /// <summary>The shift per feature.</summary>
        public Tensor Bias { get; }

        /// <inheritdoc />
        public override Tensor Forward(Tensor input) => (input ?? throw new ArgumentNullException(nameof(input))).LayerNorm(Weight, Bias, eps);
    }

    /// <summary>
    /// Inverted dropout: in training mode each element is zeroed with probability p and the rest scaled by 1 / (1 - p);
    /// in evaluation mode the identity.
    /// </summary>
    public sealed class Dropout : Layer
    {
        private readonly double p;
        private readonly Random random;

        /// <summary>Creates the layer.</summary>
        /// <param name="p">The probability of zeroing an element, in [0, 1).</param>
        /// <param name="random">The generator the masks come from; a shared one when null.</param>
        public Dropout(double p, Random? random = null)
        {
            _ = new NN.Dropout(p); // the core layer's check of p
            this.p = p;
            this.random = random ?? Random.Shared;
        }

        /// <inheritdoc />
        public override Tensor Forward(Tensor input)
        {
            ArgumentNullException.ThrowIfNull(input);
            if (!Training || p == 0.0) return input;
            var uniform = TensorModule.randUniform(DType.Float64, random.Next(), input.Shape, 0.0, 1.0);
            var mask = Tensor.Apply("dropout_mask", v => ExprModule.mul(ExprModule.step(ExprModule.sub(v[0], ExprModule.scalar(p))), ExprModule.scalar(1.0 / (1.0 - p))),
                new Tensor(uniform));
            return input * mask;
        }
    }

    /// <summary>A lookup table of rows, [count, dim], picked by integer indices (PyTorch's Embedding).</summary>
    public sealed class Embedding : Layer
    {
        /// <summary>Creates the layer with N(0, 1) rows, as the core's.</summary>
        /// <param name="count">The number of rows.</param>
        /// <param name="dim">The size of each row.</param>
        /// <param name="random">The generator the initial values come from; a shared one when null.</param>
        public Embedding(int count, int dim, Random? random = null) =>
            Weight = Register("weight", Conv2d.Initial(new NN.Embedding(count, dim), random)["weight"]);

        /// <summary>The rows.</summary>
        public Tensor Weight { get; }

        /// <inheritdoc />
        public override Tensor Forward(Tensor input) => Weight.IndexSelect(input ?? throw new ArgumentNullException(nameof(input)));
    }

    /// <summary>
    /// Batch normalisation per channel (PyTorch's BatchNorm1d and BatchNorm2d): in training mode each channel is
    /// normalised by the batch's mean and biased variance and the running statistics move towards them (the running
    /// variance is the unbiased one); in evaluation mode the running statistics are used. The statistics are the core
    /// layer's (<c>Normalization.moments</c>).
    /// </summary>
    internal sealed class BatchNormalizer
    {
        private readonly string name;
        private readonly int[] ranks;
        private readonly int features;
        private readonly double eps;
        private readonly double? momentum;

        /// <summary>The normaliser; a null momentum makes the running statistics the cumulative average of every batch's.</summary>
        public BatchNormalizer(Layer owner, NN.Layer core, string name, int[] ranks, int features, double eps, double? momentum,
            List<KeyValuePair<string, Tensor>> parameters, List<KeyValuePair<string, Tensor>> buffers)
        {
            (this.name, this.ranks, this.features, this.eps, this.momentum) = (name, ranks, features, eps, momentum);
            foreach (var (n, t) in core.Parameters(0)) parameters.Add(new(n, new Tensor(t, autograd: true)));
            foreach (var (n, t) in core.Buffers()) buffers.Add(new(n, new Tensor(t)));
            Owner = owner;
        }

        private Layer Owner { get; }

        public Tensor Forward(Tensor input, IReadOnlyList<KeyValuePair<string, Tensor>> parameters, IReadOnlyList<KeyValuePair<string, Tensor>> buffers)
        {
            ArgumentNullException.ThrowIfNull(input);
            var shape = input.Shape;
            if (!ranks.Contains(shape.Length) || shape[1] != features)
                throw new ArgumentException(
                    $"{name}({features}): expected an input of rank {string.Join(" or ", ranks)} with {features} channels on axis 1, got shape {Core.ShowShape(shape)}.",
                    nameof(input));
            var perChannel = new[] { 1, features, 1 };
            var grouped = new[] { shape[0], features, -1 };
            Tensor Buffer(string n) => buffers.First(b => b.Key == n).Value;
            var affine = parameters.Select(p => p.Value).ToArray();
            Expr Affine(Expr y, IReadOnlyList<Expr> v) =>
                affine.Length == 0 ? y : ExprModule.add(ExprModule.mul(y, ExprModule.reshape(perChannel, v[1])), ExprModule.reshape(perChannel, v[2]));
            Tensor output;
            if (Owner.Training)
            {
                var count = shape[0] * (shape.Length == 3 ? shape[2] : shape.Length == 4 ? shape[2] * shape[3] : 1);
                if (count < 2)
                    throw new ArgumentException($"{name}({features}): training needs more than one value per channel, got input shape {Core.ShowShape(shape)}.", nameof(input));
                output = Tensor.Apply(name, v =>
                {
                    var (_, centered, variance) = NN.Normalization.moments(ListModule.OfArray(new[] { 2, 0 }), ExprModule.reshape(grouped, v[0]));
                    return ExprModule.reshape(shape, Affine(NN.Normalization.normalize(eps, centered, variance), v));
                }, new[] { input }.Concat(affine).ToArray());
                // The running statistics are values, not part of the graph: computed from the input's value alone.
                var (runningMean, runningVar) = (Buffer("running_mean"), Buffer("running_var"));
                var tracked = Buffer("num_batches_tracked");
                // Without a momentum, batch k (from 1) weighs 1 / k: the cumulative average (PyTorch's momentum=None).
                double factor = momentum ?? 1.0 / (tracked.Value.ToArray()[0] + 1);
                var updated = Tensor.Apply(name + " statistics", v =>
                {
                    var (mean, _, variance) = NN.Normalization.moments(ListModule.OfArray(new[] { 2, 0 }), ExprModule.reshape(grouped, v[0]));
                    Expr Mix(Expr running, Expr batch) =>
                        ExprModule.add(ExprModule.mul(ExprModule.scalar(1.0 - factor), running), ExprModule.mul(ExprModule.scalar(factor), ExprModule.reshape(new[] { features }, batch)));
                    return ExprModule.concat(0, ListModule.OfArray(new[]
                    {
                        Mix(v[1], mean),
                        Mix(v[2], ExprModule.mul(variance, ExprModule.scalar((double)count / (count - 1)))),
                    }));
                }, new Tensor(input.Value), runningMean, runningVar).ToArray();
                runningMean.Value = TensorModule.create(new[] { features }, updated[..features]);
                runningVar.Value = TensorModule.create(new[] { features }, updated[features..]);
                tracked.Value = TensorModule.scalar(tracked.Value.ToArray()[0] + 1);
            }
            else
            {
                output = Tensor.Apply(name, v =>
                {
                    var x = ExprModule.reshape(grouped, v[0]);
                    var centered = ExprModule.sub(x, ExprModule.reshape(perChannel, v[^2]));
                    return ExprModule.reshape(shape, Affine(NN.Normalization.normalize(eps, centered, ExprModule.reshape(perChannel, v[^1])), v));
                }, new[] { input }.Concat(affine).Append(Buffer("running_mean")).Append(Buffer("running_var")).ToArray());
            }
            return output;
        }
    }

    /// <summary>Batch normalisation of [N, C] or [N, C, L] inputs per channel (PyTorch's BatchNorm1d).</summary>
    public sealed class BatchNorm1d : Layer
    {
        private readonly BatchNormalizer normalizer;

        /// <summary>Creates the layer: weight ones, bias zeros, running mean zeros and variance ones.</summary>
        /// <param name="features">The number of channels.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="momentum">The weight of a batch's statistics in the running ones.</param>
        /// <param name="affine">Whether to learn a scale and shift.</param>
        public BatchNorm1d(int features, double eps = 1e-5, double momentum = 0.1, bool affine = true) =>
            normalizer = new(this, new NN.BatchNorm1d(features, eps, momentum, affine), "BatchNorm1d", new[] { 2, 3 }, features, eps, momentum, OwnParameters, OwnBuffers);

        private BatchNorm1d(int features, double eps, bool affine) =>
            normalizer = new(this, NN.BatchNorm1d.CumulativeAverage(features, eps, affine), "BatchNorm1d", new[] { 2, 3 }, features, eps, null, OwnParameters, OwnBuffers);

        /// <summary>A layer whose running statistics are the cumulative average of every training batch's (PyTorch's momentum=None).</summary>
        /// <param name="features">The number of channels.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="affine">Whether to learn a scale and shift.</param>
        /// <returns>The layer.</returns>
        public static BatchNorm1d CumulativeAverage(int features, double eps = 1e-5, bool affine = true) => new(features, eps, affine);

        /// <inheritdoc />
        public override Tensor Forward(Tensor input) => normalizer.Forward(input, OwnParameters, OwnBuffers);
    }

    /// <summary>Batch normalisation of [N, C, H, W] inputs per channel (PyTorch's BatchNorm2d).</summary>
    public sealed class BatchNorm2d : Layer
    {
        private readonly BatchNormalizer normalizer;

        /// <summary>Creates the layer: weight ones, bias zeros, running mean zeros and variance ones.</summary>
        /// <param name="features">The number of channels.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="momentum">The weight of a batch's statistics in the running ones.</param>
        /// <param name="affine">Whether to learn a scale and shift.</param>
        public BatchNorm2d(int features, double eps = 1e-5, double momentum = 0.1, bool affine = true) =>
            normalizer = new(this, new NN.BatchNorm2d(features, eps, momentum, affine), "BatchNorm2d", new[] { 4 }, features, eps, momentum, OwnParameters, OwnBuffers);

        private BatchNorm2d(int features, double eps, bool affine) =>
            normalizer = new(this, NN.BatchNorm2d.CumulativeAverage(features, eps, affine), "BatchNorm2d", new[] { 4 }, features, eps, null, OwnParameters, OwnBuffers);

        /// <summary>A layer whose running statistics are the cumulative average of every training batch's (PyTorch's momentum=None).</summary>
        /// <param name="features">The number of channels.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="affine">Whether to learn a scale and shift.</param>
        /// <returns>The layer.</returns>
        public static BatchNorm2d CumulativeAverage(int features, double eps = 1e-5, bool affine = true) => new(features, eps, affine);

        /// <inheritdoc />
        public override Tensor Forward(Tensor input) => normalizer.Forward(input, OwnParameters, OwnBuffers);
    }
}
