using System;
using System.Collections.Generic;
using FuncFlow.Interop;
using NN = global::FuncFlow.NN;

namespace FuncFlow.CSharp
{
    /// <summary>
    /// A layer together with its parameter values and buffers (state such as batch norm's running statistics), in
    /// one dtype. Immutable: training returns a new model.
    /// </summary>
    public sealed class Model
    {
        internal Model(NN.Model core, Layer layer)
        {
            Core = core;
            Layer = layer;
        }

        internal NN.Model Core { get; }

        /// <summary>A model with the layer's initial parameters drawn from <paramref name="seed"/> and its initial buffers.</summary>
        /// <param name="layer">The architecture.</param>
        /// <param name="seed">The seed of the initial parameters.</param>
        /// <param name="dtype">The element type.</param>
        /// <returns>The model.</returns>
        public static Model Create(Layer layer, int seed = 0, DType dtype = DType.Float64) =>
            new(NN.Model.Create((layer ?? throw new ArgumentNullException(nameof(layer))).Core, seed, Conversions.ToCore(dtype)), layer);

        /// <summary>The architecture.</summary>
        public Layer Layer { get; }

        /// <summary>The parameter values, by name ("0.weight").</summary>
        public IReadOnlyDictionary<string, Tensor> Parameters => Conversions.Wrap(Core.Parameters);

        /// <summary>The buffer values, by name ("1.running_mean").</summary>
        public IReadOnlyDictionary<string, Tensor> Buffers => Conversions.Wrap(Core.Buffers);

        /// <summary>The element type.</summary>
        public DType DType => Conversions.ToDType(Core.DType);

        /// <summary>The total number of parameter elements.</summary>
        public int ParameterCount => Core.ParameterCount;

        /// <summary>The same architecture and buffers with other parameter values (same names and shapes).</summary>
        /// <param name="values">A value for every parameter, by name; other names are ignored.</param>
        /// <returns>The new model.</returns>
        public Model WithParameters(IReadOnlyDictionary<string, Tensor> values) => new(Core.WithParameters(Conversions.Tensors(values)), Layer);

        /// <summary>The same architecture and parameters with other buffer values (same names and shapes).</summary>
        /// <param name="values">A value for every buffer, by name; other names are ignored.</param>
        /// <returns>The new model.</returns>
        public Model WithBuffers(IReadOnlyDictionary<string, Tensor> values) => new(Core.WithBuffers(Conversions.Tensors(values)), Layer);

        /// <summary>The model's output expression for an input expression, in evaluation mode.</summary>
        /// <param name="input">The input.</param>
        /// <returns>The output, over the parameters' variables (named as in <see cref="Parameters"/>).</returns>
        public Expr Forward(Expr input) => new(Core.Forward((input ?? throw new ArgumentNullException(nameof(input))).Core));

        /// <summary>The model's output for an input tensor, evaluated once in evaluation mode.</summary>
        /// <param name="input">The input (one row per example).</param>
        /// <returns>The output.</returns>
        public Tensor Predict(Tensor input) => new(Core.Predict((input ?? throw new ArgumentNullException(nameof(input))).Core));

        /// <summary>Writes the parameters and buffers to a safetensors file, with the architecture as metadata.</summary>
        /// <param name="path">The file.</param>
        public void Save(string path) => Core.Save(path);

        /// <summary>
        /// The same architecture with the parameters and buffers read from a model file (PyTorch's state-dict layout), strictly:
        /// a missing or extra key, a shape mismatch or another recorded architecture is an error naming the key
        /// (<see cref="LoadNonStrict"/> reports them instead).
        /// </summary>
        /// <param name="path">The file.</param>
        /// <returns>The loaded model.</returns>
        /// <exception cref="FuncFlow.Data.DataFormatException">The file does not fit this model.</exception>
        public Model Load(string path) => new(Core.Load(path), Layer);

        /// <summary>
        /// Loads what fits from a model file and reports the rest: keys the model lacks, parameters the file lacks, values
        /// of another shape, and an architecture that differs from the one recorded in the file.
        /// </summary>
        /// <param name="path">The safetensors file.</param>
        /// <returns>The model with every value that fits, and what was skipped.</returns>
        public LoadReport LoadNonStrict(string path) => new(Core.LoadNonStrict(path ?? throw new ArgumentNullException(nameof(path))), Layer);

        /// <summary>The version of the model-file format this library writes (in each file's metadata).</summary>
        public static int FormatVersion => NN.Model.FormatVersion;

        /// <inheritdoc />
        public override string ToString() => Core.ToString();
    }
}
