using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using CoreOnnx = global::FuncFlow.Onnx.Onnx;

namespace FuncFlow.CSharp
{
    /// <summary>
    /// ONNX files (opset 17): FuncFlow models and expressions exported for other runtimes such as ONNX Runtime.
    /// </summary>
    public static partial class Onnx
    {
        /// <summary>
        /// Writes a model's evaluation-mode graph (dropout off, batch norm on its running statistics) as an ONNX
        /// model with one input "input", whose axis 0 is the symbolic dimension "batch", and one output "output";
        /// parameters and buffers are initializers under their state-dict names.
        /// </summary>
        /// <param name="model">The model.</param>
        /// <param name="inputShape">The shape of one input, batch axis first (any batch size: the file takes any).</param>
        /// <param name="path">The ONNX file to write.</param>
        /// <exception cref="NotSupportedException">The model uses an operation with no ONNX mapping (named).</exception>
        public static void Export(Model model, IReadOnlyList<int> inputShape, string path)
        {
            ArgumentNullException.ThrowIfNull(model);
            ArgumentNullException.ThrowIfNull(inputShape);
            ArgumentNullException.ThrowIfNull(path);
            CoreOnnx.exportModel(model.Core, inputShape.ToArray(), path);
        }

        /// <summary>
        /// Writes expressions as an ONNX model of fixed shapes: <paramref name="inputs"/> are the graph's inputs
        /// (ONNX name, variable), <paramref name="outputs"/> its outputs (ONNX name, expression), in order, and
        /// every other variable the outputs read is an initializer from <paramref name="parameters"/> (by the
        /// variable's name).
        /// </summary>
        /// <param name="inputs">The graph's inputs: names and variables.</param>
        /// <param name="outputs">The graph's outputs: names and expressions.</param>
        /// <param name="parameters">The values of the other variables, by name.</param>
        /// <param name="path">The ONNX file to write.</param>
        /// <exception cref="NotSupportedException">An operation has no ONNX mapping (named, with its node).</exception>
        public static void Export(
            IEnumerable<KeyValuePair<string, Expr>> inputs,
            IEnumerable<KeyValuePair<string, Expr>> outputs,
            IReadOnlyDictionary<string, Tensor> parameters,
            string path)
        {
            ArgumentNullException.ThrowIfNull(path);
            CoreOnnx.exportGraph(Conversions.NamedExprs(inputs), Conversions.NamedExprs(outputs), Conversions.Tensors(parameters), path);
        }

        /// <summary>
        /// Exports a model file written by <see cref="Model.Save"/> as <see cref="Export(Model, IReadOnlyList{int}, string)"/>
        /// does, rebuilding the architecture from the description the file records.
        /// </summary>
        /// <param name="modelPath">The model file (safetensors with FuncFlow's metadata).</param>
        /// <param name="inputShape">The shape of one input, batch axis first.</param>
        /// <param name="onnxPath">The ONNX file to write.</param>
        /// <exception cref="FuncFlow.Data.DataFormatException">The file records no architecture, or one not built from FuncFlow's layers.</exception>
        public static void ExportFile(string modelPath, IReadOnlyList<int> inputShape, string onnxPath)
        {
            ArgumentNullException.ThrowIfNull(modelPath);
            ArgumentNullException.ThrowIfNull(inputShape);
            ArgumentNullException.ThrowIfNull(onnxPath);
            CoreOnnx.exportFile(modelPath, inputShape.ToArray(), onnxPath);
        }
    }
}
