using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using Microsoft.FSharp.Collections;
using CoreExpr = global::FuncFlow.Expr;
using CoreTensor = global::FuncFlow.Tensor;
using NN = global::FuncFlow.NN;

namespace FuncFlow.CSharp
{
    /// <summary>
    /// What a layer sees while it builds its part of the graph: its parameters and buffers as variables, the mode,
    /// and per-step noise. Names are hierarchical ("0.weight"), as in a PyTorch state dict.
    /// </summary>
    public sealed class Scope
    {
        internal Scope(NN.Scope core) => Core = core;

        internal NN.Scope Core { get; }

        /// <summary>True when building the training graph (dropout active, batch statistics), false for evaluation.</summary>
        public bool Training => Core.Training;

        /// <summary>The model's element type.</summary>
        public DType DType => Conversions.ToDType(Core.DType);

        /// <summary>The prefix of this scope's names ("" at the top, "0." inside a Sequential's first layer).</summary>
        public string Prefix => Core.Prefix;

        /// <summary>The variable of one of this layer's parameters, by its local name; the same name gives the same node.</summary>
        /// <param name="name">The local name, as returned by <see cref="Layer.Parameters"/>.</param>
        /// <returns>The variable.</returns>
        public Expr Param(string name) => new(Core.Param(name));

        /// <summary>The variable of one of this layer's buffers (state not trained by gradients), by its local name.</summary>
        /// <param name="name">The local name, as returned by <see cref="Layer.Buffers"/>.</param>
        /// <returns>The variable.</returns>
        public Expr Buffer(string name) => new(Core.Buffer(name));

        /// <summary>A buffer's value after a training step, as an expression of the values before it.</summary>
        /// <param name="name">The buffer's local name.</param>
        /// <param name="value">Its new value, of its shape and dtype.</param>
        public void UpdateBuffer(string name, Expr value) => Core.UpdateBuffer(name, (value ?? throw new ArgumentNullException(nameof(value))).Core);

        /// <summary>The scope of a sub-layer, whose names are prefixed with <c>name.</c>.</summary>
        /// <param name="name">The sub-layer's name.</param>
        /// <returns>Its scope.</returns>
        public Scope Child(string name) => new(Core.Child(name));

        /// <summary>A variable refilled before every training step, each element drawn by <paramref name="sample"/>.</summary>
        /// <param name="name">The local name.</param>
        /// <param name="shape">The shape.</param>
        /// <param name="sample">Draws one element from the trainer's seeded generator.</param>
        /// <returns>The variable.</returns>
        public Expr Noise(string name, int[] shape, Func<Random, double> sample) => new(Core.Noise(name, shape, sample));
    }

    /// <summary>How a weight matrix is initialised; every scheme draws from a seeded generator.</summary>
    public sealed class Init
    {
        private Init(NN.Init core) => Core = core;

        internal NN.Init Core { get; }

        /// <summary>He (Kaiming) normal: standard deviation sqrt(2 / fanIn); suits ReLU.</summary>
        public static Init He { get; } = new(NN.Init.He);

        /// <summary>Xavier (Glorot) normal: standard deviation sqrt(2 / (fanIn + fanOut)); suits sigmoid and tanh.</summary>
        public static Init Xavier { get; } = new(NN.Init.Xavier);

        /// <summary>Normal values with mean 0 and the given standard deviation.</summary>
        /// <param name="std">The standard deviation.</param>
        /// <returns>The scheme.</returns>
        public static Init Normal(double std) => new(NN.Init.NewNormal(std));

        /// <inheritdoc />
        public override string ToString() => Core.ToString();
    }

    /// <summary>
    /// A layer: named parameters with seeded initial values, and a forward function that builds the layer's graph
    /// from its input. Layers hold no values; a <see cref="Model"/> pairs a layer with its parameters. Derive from
    /// it for a layer of your own: override <see cref="Parameters"/> (and <see cref="Buffers"/> for state), and
    /// <see cref="Forward"/>, reading parameters through the scope.
    /// </summary>
    public abstract class Layer
    {
        private readonly NN.Layer? wrapped;
        private NN.Layer? adapter;

        /// <summary>A layer of your own, defined by its overrides.</summary>
        protected Layer() { }

        private protected Layer(NN.Layer core) => wrapped = core;

        internal NN.Layer Core => wrapped ?? (adapter ??= new Adapter(this));

        /// <summary>The parameters' local names and float64 initial values, drawn from <paramref name="seed"/>. None by default.</summary>
        /// <param name="seed">The seed the values are drawn from.</param>
        /// <returns>The names and values.</returns>
        public virtual IReadOnlyList<KeyValuePair<string, Tensor>> Parameters(int seed) =>
            wrapped is null ? Array.Empty<KeyValuePair<string, Tensor>>() : Conversions.Named(wrapped.Parameters(seed));

        /// <summary>The buffers' local names and initial values (state carried by training but not trained by gradients). None by default.</summary>
        /// <returns>The names and values.</returns>
        public virtual IReadOnlyList<KeyValuePair<string, Tensor>> Buffers() =>
            wrapped is null ? Array.Empty<KeyValuePair<string, Tensor>>() : Conversions.Named(wrapped.Buffers());

        /// <summary>The output expression for an input expression; parameters are read with <see cref="Scope.Param"/>.</summary>
        /// <param name="scope">The layer's parameters, mode and noise.</param>
        /// <param name="input">The input.</param>
        /// <returns>The output.</returns>
        /// <exception cref="InvalidOperationException">A layer of your own does not override this method.</exception>
        public virtual Expr Forward(Scope scope, Expr input)
        {
            ArgumentNullException.ThrowIfNull(scope);
            ArgumentNullException.ThrowIfNull(input);
            if (wrapped is null)
                throw new InvalidOperationException($"{GetType().Name}: a layer of your own must override Forward(Scope, Expr).");
            return new Expr(wrapped.Forward(scope.Core, input.Core));
        }

        /// <summary>A short description, for printing a model.</summary>
        /// <returns>The description.</returns>
        public virtual string Describe() => wrapped?.Describe() ?? GetType().Name;

        /// <inheritdoc />
        public override string ToString() => Describe();

        /// <summary>
        /// The built-in layer (or tree of them) that a description was written from: the text <see cref="Describe"/>
        /// gives and model files record, such as <c>Sequential(Linear(784, 128, KaimingUniform), ReLU, ...)</c>.
        /// </summary>
        /// <param name="description">The description.</param>
        /// <returns>The layer.</returns>
        /// <exception cref="ArgumentException">The description is empty, names a layer that is not built in (a layer of your own has no description to read back), or has an argument that is missing, unknown or malformed; the message names it.</exception>
        public static Layer Parse(string description) =>
            new BuiltInLayer(NN.LayerDescription.parse(description ?? throw new ArgumentNullException(nameof(description))));

        /// <summary>A C# layer as a core layer: each call goes back to the C# overrides.</summary>
        private sealed class Adapter : NN.Layer
        {
            private readonly Layer layer;

            public Adapter(Layer layer) => this.layer = layer;

            public override FSharpList<Tuple<string, CoreTensor>> Parameters(int seed) => Conversions.Named(layer.Parameters(seed));

            public override FSharpList<Tuple<string, CoreTensor>> Buffers() => Conversions.Named(layer.Buffers());

            public override CoreExpr Forward(NN.Scope scope, CoreExpr input) =>
                (layer.Forward(new Scope(scope), new Expr(input)) ?? throw new InvalidOperationException($"{layer.GetType().Name}.Forward returned null.")).Core;

            public override string Describe() => layer.Describe();
        }
    }

    /// <summary>A core layer that has no C# class of its own (read from a description, or one of <see cref="Models"/>).</summary>
    internal sealed class BuiltInLayer : Layer
    {
        internal BuiltInLayer(NN.Layer core) : base(core) { }
    }

    /// <summary>Networks defined once in the core, as the examples, tests and benchmarks build them.</summary>
    public static class Models
    {
        /// <summary>LeNet-5 for [N, 1, 28, 28] images: conv 1-&gt;6 (5x5, padding 2), ReLU, max-pool 2; conv 6-&gt;16 (5x5), ReLU, max-pool 2; flatten; linear 400-&gt;120-&gt;84-&gt;10 with ReLU between.</summary>
        /// <returns>The layer.</returns>
        public static Layer LeNet5() => new BuiltInLayer(NN.Models.lenet5());
    }

    /// <summary>Spec records for the core's convolution and pooling builders, from the same value on every axis.</summary>
    internal static class Specs
    {
        public static global::FuncFlow.ConvSpec Conv(int axes, int stride, int padding, int dilation, int groups) =>
            new(Same(axes, stride), Same(axes, padding), Same(axes, dilation), groups);

        public static global::FuncFlow.PoolSpec Pool(int kernel, int stride, int padding) =>
            new(Same(2, kernel), Same(2, stride), Same(2, padding));

        public static FSharpList<int> Same(int axes, int value) => ListModule.Replicate(axes, value);
    }

    /// <summary>A fully connected layer y = x W^T + b, W of shape [outputs, inputs] (PyTorch's layout), b of [outputs] starting at zeros.</summary>
    public sealed class Linear : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="inputs">The input size (the last axis).</param>
        /// <param name="outputs">The output size.</param>
        /// <param name="init">The weights' initialisation (He when null).</param>
        /// <param name="bias">Whether to add a bias.</param>
        public Linear(int inputs, int outputs, Init? init = null, bool bias = true) : base(new NN.Linear(inputs, outputs, (init ?? Init.He).Core, bias)) { }
    }

    /// <summary>Layers applied in order; parameters are named by position ("0.weight").</summary>
    public sealed class Sequential : Layer
    {
        /// <summary>Creates the stack.</summary>
        /// <param name="layers">The layers, first to last.</param>
        public Sequential(params Layer[] layers) : base(new NN.Sequential(Cores(layers))) => Layers = layers.ToList().AsReadOnly();

        /// <summary>The layers, first to last.</summary>
        public IReadOnlyList<Layer> Layers { get; }

        private static NN.Layer[] Cores(Layer[] layers) =>
            (layers ?? throw new ArgumentNullException(nameof(layers))).Select((l, i) =>
                (l ?? throw new ArgumentNullException(nameof(layers), $"Sequential: layer {i} is null.")).Core).ToArray();
    }

    /// <summary>A parameter-free layer applying a function of your own to its input.</summary>
    public sealed class Activation : Layer
    {
        private readonly string name;
        private readonly Func<Expr, Expr> function;

        /// <summary>Creates the layer.</summary>
        /// <param name="name">A name for printing the model.</param>
        /// <param name="function">The function, from the input expression to the output.</param>
        public Activation(string name, Func<Expr, Expr> function)
        {
            this.name = name ?? throw new ArgumentNullException(nameof(name));
            this.function = function ?? throw new ArgumentNullException(nameof(function));
        }

        /// <inheritdoc />
        public override Expr Forward(Scope scope, Expr input) =>
            function(input ?? throw new ArgumentNullException(nameof(input))) ?? throw new InvalidOperationException($"{name}: the function returned null.");

        /// <inheritdoc />
        public override string Describe() => name;
    }

    /// <summary>The logistic function.</summary>
    public sealed class Sigmoid : Layer
    {
        /// <summary>Creates the layer.</summary>
        public Sigmoid() : base(new NN.Sigmoid()) { }
    }

    /// <summary>The hyperbolic tangent.</summary>
    public sealed class Tanh : Layer
    {
        /// <summary>Creates the layer.</summary>
        public Tanh() : base(new NN.Tanh()) { }
    }

    /// <summary>max(x, 0).</summary>
    public sealed class ReLU : Layer
    {
        /// <summary>Creates the layer.</summary>
        public ReLU() : base(new NN.ReLU()) { }
    }

    /// <summary>The softmax along an axis.</summary>
    public sealed class Softmax : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="axis">The axis (the last by default).</param>
        public Softmax(int axis = -1) : base(new NN.Softmax(axis)) { }
    }

    /// <summary>x where x &gt; 0, else slope x.</summary>
    public sealed class LeakyReLU : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="slope">The negative side's slope.</param>
        public LeakyReLU(double slope = 0.01) : base(new NN.LeakyReLU(slope)) { }
    }

    /// <summary>x where x &gt; 0, else alpha (e^x - 1).</summary>
    public sealed class ELU : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="alpha">The negative side's scale.</param>
        public ELU(double alpha = 1.0) : base(new NN.ELU(alpha)) { }
    }

    /// <summary>The Gaussian error linear unit.</summary>
    public sealed class GELU : Layer
    {
        /// <summary>Creates the layer.</summary>
        public GELU() : base(new NN.GELU()) { }
    }

    /// <summary>x sigmoid(x).</summary>
    public sealed class SiLU : Layer
    {
        /// <summary>Creates the layer.</summary>
        public SiLU() : base(new NN.SiLU()) { }
    }

    /// <summary>log sigmoid(x).</summary>
    public sealed class LogSigmoid : Layer
    {
        /// <summary>Creates the layer.</summary>
        public LogSigmoid() : base(new NN.LogSigmoid()) { }
    }

    /// <summary>log(1 + e^x).</summary>
    public sealed class Softplus : Layer
    {
        /// <summary>Creates the layer.</summary>
        public Softplus() : base(new NN.Softplus()) { }
    }

    /// <summary>Inverted dropout: in training each element is zeroed with probability p and the rest scaled by 1 / (1 - p).</summary>
    public sealed class Dropout : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="p">The probability of zeroing an element, in [0, 1).</param>
        public Dropout(double p) : base(new NN.Dropout(p)) { }
    }

    /// <summary>A lookup table: integer indices to rows of a [count, dim] weight.</summary>
    public sealed class Embedding : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="count">The number of rows.</param>
        /// <param name="dim">The size of each row.</param>
        /// <param name="init">The initialisation (normal with std 1 when null).</param>
        public Embedding(int count, int dim, Init? init = null) : base(new NN.Embedding(count, dim, (init ?? Init.Normal(1.0)).Core)) { }
    }

    /// <summary>Batch normalisation of [N, C] or [N, C, L] inputs per channel (PyTorch's BatchNorm1d).</summary>
    public sealed class BatchNorm1d : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="features">The number of channels.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="momentum">The running statistics' update rate.</param>
        /// <param name="affine">Whether to learn a scale and shift.</param>
        public BatchNorm1d(int features, double eps = 1e-5, double momentum = 0.1, bool affine = true) : base(new NN.BatchNorm1d(features, eps, momentum, affine)) { }

        private BatchNorm1d(NN.Layer core) : base(core) { }

        /// <summary>Running statistics as the cumulative average of every batch's (PyTorch's momentum=None).</summary>
        /// <param name="features">The number of features (channels).</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="affine">Whether the layer has a learned scale and shift.</param>
        /// <returns>The layer.</returns>
        public static BatchNorm1d CumulativeAverage(int features, double eps = 1e-5, bool affine = true) => new(NN.BatchNorm1d.CumulativeAverage(features, eps, affine));
    }

    /// <summary>Batch normalisation of [N, C, H, W] inputs per channel (PyTorch's BatchNorm2d).</summary>
    public sealed class BatchNorm2d : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="features">The number of channels.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="momentum">The running statistics' update rate.</param>
        /// <param name="affine">Whether to learn a scale and shift.</param>
        public BatchNorm2d(int features, double eps = 1e-5, double momentum = 0.1, bool affine = true) : base(new NN.BatchNorm2d(features, eps, momentum, affine)) { }

        private BatchNorm2d(NN.Layer core) : base(core) { }

        /// <summary>Running statistics as the cumulative average of every batch's (PyTorch's momentum=None).</summary>
        /// <param name="features">The number of features (channels).</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="affine">Whether the layer has a learned scale and shift.</param>
        /// <returns>The layer.</returns>
        public static BatchNorm2d CumulativeAverage(int features, double eps = 1e-5, bool affine = true) => new(NN.BatchNorm2d.CumulativeAverage(features, eps, affine));
    }

    /// <summary>Layer normalisation over the last axes (PyTorch's LayerNorm).</summary>
    public sealed class LayerNorm : Layer
    {
        /// <summary>Normalises over the last axis.</summary>
        /// <param name="features">The last axis's size.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="affine">Whether to learn a scale and shift.</param>
        public LayerNorm(int features, double eps = 1e-5, bool affine = true) : this(new[] { features }, eps, affine) { }

        /// <summary>Normalises over the last axes of the given shape.</summary>
        /// <param name="normalizedShape">The shape of the last axes.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="affine">Whether to learn a scale and shift.</param>
        public LayerNorm(int[] normalizedShape, double eps = 1e-5, bool affine = true) : base(new NN.LayerNorm(normalizedShape, eps, affine)) { }
    }

    /// <summary>Group normalisation of [N, C, ...] inputs (PyTorch's GroupNorm).</summary>
    public sealed class GroupNorm : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="groups">The number of groups of consecutive channels.</param>
        /// <param name="channels">The number of channels.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <param name="affine">Whether to learn a scale and shift.</param>
        public GroupNorm(int groups, int channels, double eps = 1e-5, bool affine = true) : base(new NN.GroupNorm(groups, channels, eps, affine)) { }
    }

    /// <summary>The axes from <c>startAxis</c> on merged into one.</summary>
    public sealed class Flatten : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="startAxis">The first axis merged (1 keeps the batch axis).</param>
        public Flatten(int startAxis = 1) : base(new NN.Flatten(startAxis)) { }
    }

    /// <summary>1-D convolution (PyTorch's Conv1d): [N, C, L] to [N, O, L'].</summary>
    public sealed class Conv1d : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="inChannels">Input channels.</param>
        /// <param name="outChannels">Output channels.</param>
        /// <param name="kernelSize">The kernel's length.</param>
        /// <param name="stride">The step between windows.</param>
        /// <param name="padding">Zeros added on both sides.</param>
        /// <param name="dilation">The spacing of the kernel's taps.</param>
        /// <param name="groups">Channel groups.</param>
        /// <param name="bias">Whether to add a bias.</param>
        public Conv1d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true)
            : base(new NN.Conv1d(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, bias)) { }
    }

    /// <summary>2-D convolution (PyTorch's Conv2d): [N, C, H, W] to [N, O, H', W'].</summary>
    public sealed class Conv2d : Layer
    {
        /// <summary>Creates the layer with a square kernel.</summary>
        /// <param name="inChannels">Input channels.</param>
        /// <param name="outChannels">Output channels.</param>
        /// <param name="kernelSize">The kernel's side.</param>
        /// <param name="stride">The step between windows, on both axes.</param>
        /// <param name="padding">Zeros added on both sides of both axes.</param>
        /// <param name="dilation">The spacing of the kernel's taps.</param>
        /// <param name="groups">Channel groups.</param>
        /// <param name="bias">Whether to add a bias.</param>
        public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true)
            : base(new NN.Conv2d(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, bias)) { }

        /// <summary>Creates the layer with a rectangular kernel and per-axis settings (height, then width).</summary>
        /// <param name="inChannels">Input channels.</param>
        /// <param name="outChannels">Output channels.</param>
        /// <param name="kernelSize">The kernel's height and width.</param>
        /// <param name="stride">The steps between windows.</param>
        /// <param name="padding">Zeros added on both sides of each axis.</param>
        /// <param name="dilation">The spacing of the kernel's taps on each axis.</param>
        /// <param name="groups">Channel groups.</param>
        /// <param name="bias">Whether to add a bias.</param>
        public Conv2d(int inChannels, int outChannels, int[] kernelSize, int[] stride, int[] padding, int[] dilation, int groups = 1, bool bias = true)
            : base(new NN.Conv2d(inChannels, outChannels, Conversions.List(kernelSize),
                new global::FuncFlow.ConvSpec(Conversions.List(stride), Conversions.List(padding), Conversions.List(dilation), groups), bias)) { }
    }

    /// <summary>Max pooling over square windows (PyTorch's MaxPool2d).</summary>
    public sealed class MaxPool2d : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="kernelSize">The window's side.</param>
        /// <param name="stride">The step between windows (the kernel size when null).</param>
        /// <param name="padding">-infinity added on both sides.</param>
        public MaxPool2d(int kernelSize, int? stride = null, int padding = 0) : base(new NN.MaxPool2d(kernelSize, stride ?? kernelSize, padding)) { }
    }

    /// <summary>Average pooling over square windows (PyTorch's AvgPool2d, padded zeros counted).</summary>
    public sealed class AvgPool2d : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="kernelSize">The window's side.</param>
        /// <param name="stride">The step between windows (the kernel size when null).</param>
        /// <param name="padding">Zeros added on both sides.</param>
        public AvgPool2d(int kernelSize, int? stride = null, int padding = 0) : base(new NN.AvgPool2d(kernelSize, stride ?? kernelSize, padding)) { }
    }

    /// <summary>Average pooling to a fixed output size (PyTorch's AdaptiveAvgPool2d, sizes dividing the input's).</summary>
    public sealed class AdaptiveAvgPool2d : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="height">The output height.</param>
        /// <param name="width">The output width.</param>
        public AdaptiveAvgPool2d(int height, int width) : base(new NN.AdaptiveAvgPool2d(height, width)) { }

        /// <summary>Creates the layer with a square output.</summary>
        /// <param name="size">The output's side.</param>
        public AdaptiveAvgPool2d(int size) : this(size, size) { }
    }
}
