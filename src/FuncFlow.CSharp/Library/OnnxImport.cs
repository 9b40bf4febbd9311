using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using CoreGraph = global::FuncFlow.Graph;
using CoreOnnx = global::FuncFlow.Onnx.Onnx;
using CoreOnnxDim = global::FuncFlow.Onnx.OnnxDim;
using CoreOnnxInfo = global::FuncFlow.Onnx.OnnxInfo;
using CoreOnnxModel = global::FuncFlow.Onnx.OnnxModel;
using CoreOnnxSignature = global::FuncFlow.Onnx.OnnxSignature;

namespace FuncFlow.CSharp
{
    /// <summary>ONNX files: import an ONNX graph as expressions (and export models, in OnnxExport.cs).</summary>
    public static partial class Onnx
    {
        /// <summary>
        /// Imports an ONNX file as expressions: the graph inputs become variables, the float initializers parameters
        /// (variables whose values are in <see cref="OnnxModel.Parameters"/>), so the model can be evaluated, compiled,
        /// differentiated and fine-tuned. docs/onnx.md lists the operators imported.
        /// </summary>
        /// <param name="path">The .onnx file.</param>
        /// <param name="dims">The sizes of the inputs' named (symbolic) dimensions, e.g. "batch" = 32.</param>
        /// <returns>The imported model.</returns>
        /// <exception cref="FuncFlow.Data.DataFormatException">The file is missing, truncated or corrupt, its graph has a cycle or a dangling input, or its external data lies outside its folder.</exception>
        /// <exception cref="NotSupportedException">The graph holds an operator FuncFlow does not import (the message names it and its node).</exception>
        /// <exception cref="ArgumentException">A named dimension is not in <paramref name="dims"/>.</exception>
        public static OnnxModel Import(string path, IReadOnlyDictionary<string, int>? dims = null)
        {
            ArgumentNullException.ThrowIfNull(path);
            return new OnnxModel(CoreOnnx.load(Conversions.Sizes(dims), path));
        }

        /// <summary>What an ONNX file declares (inputs, outputs, initializers, operators, metadata), read without importing it.</summary>
        /// <param name="path">The .onnx file.</param>
        /// <returns>The declarations.</returns>
        /// <exception cref="FuncFlow.Data.DataFormatException">The file is missing, truncated or corrupt.</exception>
        public static OnnxInfo Inspect(string path)
        {
            ArgumentNullException.ThrowIfNull(path);
            return new OnnxInfo(CoreOnnx.inspect(path));
        }

        /// <summary>The operator types (ONNX's default domain) that <see cref="Import"/> imports.</summary>
        public static IReadOnlyList<string> ImportedOperators { get; } = CoreOnnx.operators.ToList().AsReadOnly();
    }

    /// <summary>An ONNX graph imported as expressions (<see cref="Onnx.Import"/>).</summary>
    public sealed class OnnxModel
    {
        private readonly CoreOnnxModel core;

        internal OnnxModel(CoreOnnxModel core)
        {
            this.core = core;
            Inputs = Conversions.Named(core.Inputs);
            Outputs = Conversions.Named(core.Outputs);
            Parameters = Conversions.Wrap(core.Parameters);
            Info = new OnnxInfo(core.Info);
            ParameterVariables = CoreGraph.variables(core.Outputs.Select(p => p.Item2))
                .Select(v => new Expr(v))
                .Where(v => v.Name is { } name && core.Parameters.ContainsKey(name))
                .ToDictionary(v => v.Name!, v => v, StringComparer.Ordinal);
        }

        /// <summary>The graph inputs that are not initializers, as variables of their declared names, in the file's order.</summary>
        public IReadOnlyList<KeyValuePair<string, Expr>> Inputs { get; }

        /// <summary>The graph outputs, as expressions of the inputs and the parameters, in the file's order.</summary>
        public IReadOnlyList<KeyValuePair<string, Expr>> Outputs { get; }

        /// <summary>The float initializers' values, keyed by their variables' names: the trainable parameters.</summary>
        public IReadOnlyDictionary<string, Tensor> Parameters { get; }

        /// <summary>The parameters' variables (those the outputs read), by name: what to differentiate with respect to.</summary>
        public IReadOnlyDictionary<string, Expr> ParameterVariables { get; }

        /// <summary>What the file declares.</summary>
        public OnnxInfo Info { get; }

        /// <summary>The outputs for values of the inputs, with the parameters' values.</summary>
        /// <param name="inputs">A value for every input, by name.</param>
        /// <returns>Each output's value, by name.</returns>
        /// <exception cref="ArgumentException">An input has no value.</exception>
        public IReadOnlyDictionary<string, Tensor> Evaluate(IReadOnlyDictionary<string, Tensor> inputs) =>
            Conversions.Wrap(CoreOnnx.evaluate(core, Conversions.Tensors(inputs)));
    }

    /// <summary>What an ONNX file declares (<see cref="Onnx.Inspect"/>).</summary>
    public sealed class OnnxInfo
    {
        internal OnnxInfo(CoreOnnxInfo core)
        {
            IrVersion = core.IrVersion;
            Opsets = core.Opsets.Select(o => new KeyValuePair<string, long>(o.Item1, o.Item2)).ToList().AsReadOnly();
            Producer = core.Producer;
            GraphName = core.GraphName;
            Inputs = core.Inputs.Select(s => new OnnxSignature(s)).ToList().AsReadOnly();
            Outputs = core.Outputs.Select(s => new OnnxSignature(s)).ToList().AsReadOnly();
            Initializers = core.Initializers.Select(i => new OnnxInitializer(i.Item1, Conversions.ToDType(i.Item2), i.Item3)).ToList().AsReadOnly();
            OperatorCounts = core.OperatorCounts.Select(o => new KeyValuePair<string, int>(o.Item1, o.Item2)).ToList().AsReadOnly();
            Metadata = core.Metadata.Select(m => new KeyValuePair<string, string>(m.Item1, m.Item2)).ToList().AsReadOnly();
        }

        /// <summary>The ONNX IR version.</summary>
        public long IrVersion { get; }

        /// <summary>The operator sets imported: domain ("" for ONNX's default) and version.</summary>
        public IReadOnlyList<KeyValuePair<string, long>> Opsets { get; }

        /// <summary>The producer's name and version, e.g. "pytorch 1.13.0".</summary>
        public string Producer { get; }

        /// <summary>The graph's name.</summary>
        public string GraphName { get; }

        /// <summary>The graph inputs that are not initializers: what a caller feeds.</summary>
        public IReadOnlyList<OnnxSignature> Inputs { get; }

        /// <summary>The graph outputs.</summary>
        public IReadOnlyList<OnnxSignature> Outputs { get; }

        /// <summary>The initializers.</summary>
        public IReadOnlyList<OnnxInitializer> Initializers { get; }

        /// <summary>How many nodes of each operator type the graph holds, in order of first use.</summary>
        public IReadOnlyList<KeyValuePair<string, int>> OperatorCounts { get; }

        /// <summary>The model's metadata, in the file's order.</summary>
        public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; }
    }

    /// <summary>A declared input or output: name, dtype and dimensions.</summary>
    public sealed class OnnxSignature
    {
        internal OnnxSignature(CoreOnnxSignature core)
        {
            Name = core.Name;
            DType = Conversions.ToDType(core.DType);
            Dims = core.Dims.Select(d => d is CoreOnnxDim.Known known ? new OnnxDimension(known.Item, null) : new OnnxDimension(null, ((CoreOnnxDim.Named)d).Item))
                .ToList().AsReadOnly();
        }

        /// <summary>The name.</summary>
        public string Name { get; }

        /// <summary>The dtype, or null for one FuncFlow does not compute in (such as INT64).</summary>
        public DType? DType { get; }

        /// <summary>The dimensions, outermost first.</summary>
        public IReadOnlyList<OnnxDimension> Dims { get; }
    }

    /// <summary>A declared dimension: a size, or a name to size when importing (e.g. "batch").</summary>
    public sealed class OnnxDimension
    {
        internal OnnxDimension(int? size, string? name)
        {
            Size = size;
            Name = name;
        }

        /// <summary>The size, or null for a named dimension.</summary>
        public int? Size { get; }

        /// <summary>The name of a symbolic dimension, or null for a sized one.</summary>
        public string? Name { get; }

        /// <summary>The size, or the name.</summary>
        /// <returns>"32" or "batch".</returns>
        public override string ToString() => Size?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? Name!;
    }

    /// <summary>A declared initializer: name, dtype and shape.</summary>
    public sealed class OnnxInitializer
    {
        internal OnnxInitializer(string name, DType? dtype, int[] shape)
        {
            Name = name;
            DType = dtype;
            shapeValue = shape;
        }

        private readonly int[] shapeValue;

        /// <summary>The name.</summary>
        public string Name { get; }

        /// <summary>The dtype, or null for one FuncFlow does not compute in.</summary>
        public DType? DType { get; }

        /// <summary>The shape (a copy).</summary>
        public int[] Shape => (int[])shapeValue.Clone();
    }
}
