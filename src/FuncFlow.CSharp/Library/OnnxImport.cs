using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using Microsoft.FSharp.Collections;
using CoreGraph = global::FuncFlow.Graph;
using CoreOnnx = global::FuncFlow.Onnx.Onnx;
using CoreOnnxModel = global::FuncFlow.Onnx.OnnxModel;

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
            var sizes = MapModule.OfSeq((dims ?? new Dictionary<string, int>()).Select(kv => Tuple.Create(kv.Key, kv.Value)));
            return new OnnxModel(CoreOnnx.load(sizes, path));
        }
    }

    /// <summary>An ONNX graph imported as expressions (<see cref="Onnx.Import"/>).</summary>
    public sealed class OnnxModel
    {
        private readonly CoreOnnxModel core;

        internal OnnxModel(CoreOnnxModel core)
        {
            this.core = core;
            Inputs = core.Inputs.Select(p => new KeyValuePair<string, Expr>(p.Item1, new Expr(p.Item2))).ToList().AsReadOnly();
            Outputs = core.Outputs.Select(p => new KeyValuePair<string, Expr>(p.Item1, new Expr(p.Item2))).ToList().AsReadOnly();
            Parameters = Conversions.Wrap(core.Parameters);
            var variables = CoreGraph.variables(core.Outputs.Select(p => p.Item2));
            ParameterVariables = variables.Where(v => core.Parameters.ContainsKey(global::FuncFlow.ExprModule.tryName(v).Value))
                .ToDictionary(v => global::FuncFlow.ExprModule.tryName(v).Value, v => new Expr(v), StringComparer.Ordinal);
        }

        /// <summary>The graph inputs that are not initializers, as variables of their declared names, in the file's order.</summary>
        public IReadOnlyList<KeyValuePair<string, Expr>> Inputs { get; }

        /// <summary>The graph outputs, as expressions of the inputs and the parameters, in the file's order.</summary>
        public IReadOnlyList<KeyValuePair<string, Expr>> Outputs { get; }

        /// <summary>The float initializers' values, keyed by their variables' names: the trainable parameters.</summary>
        public IReadOnlyDictionary<string, Tensor> Parameters { get; }

        /// <summary>The parameters' variables (those the outputs read), by name: what to differentiate with respect to.</summary>
        public IReadOnlyDictionary<string, Expr> ParameterVariables { get; }

        /// <summary>The outputs for values of the inputs, with the parameters' values.</summary>
        /// <param name="inputs">A value for every input, by name.</param>
        /// <returns>Each output's value, by name.</returns>
        /// <exception cref="ArgumentException">An input has no value.</exception>
        public IReadOnlyDictionary<string, Tensor> Evaluate(IReadOnlyDictionary<string, Tensor> inputs) =>
            Conversions.Wrap(CoreOnnx.evaluate(core, Conversions.Tensors(inputs)));
    }
}
