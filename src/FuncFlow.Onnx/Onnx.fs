namespace FuncFlow.Onnx

open FuncFlow
open FuncFlow.NN

/// ONNX files: FuncFlow models and expressions exported for other runtimes.
[<RequireQualifiedAccess>]
module Onnx =
    /// Writes expressions as an ONNX model (opset 17): `inputs` are graph inputs (ONNX name, variable), `outputs`
    /// the graph's outputs (ONNX name, expression), and every other variable the outputs read is an initializer
    /// from `parameters` (by variable name). Shapes are fixed, as traced. An operation with no ONNX mapping
    /// raises NotSupportedException naming it and its node.
    let exportGraph (inputs: (string * Expr) list) (outputs: (string * Expr) list) (parameters: Map<string, Tensor>) (path: string) : unit =
        OnnxExport.exportGraph inputs outputs parameters path

    /// Writes a model's evaluation-mode graph (dropout off, batch norm on its running statistics) as an ONNX
    /// model (opset 17) with one input "input" of `inputShape`, whose axis 0 is the symbolic dimension "batch",
    /// and one output "output"; parameters and buffers are initializers under their state-dict names, and the
    /// metadata "funcflow.model" records the architecture.
    let exportModel (model: Model) (inputShape: int[]) (path: string) : unit = OnnxExport.exportModel model inputShape path

    /// Exports a model file written by Model.Save (or a PyTorch state dict with FuncFlow's "funcflow.model"
    /// metadata) as exportModel does: the architecture is rebuilt from the description the file records
    /// (LayerDescription.parse), the parameters and buffers are the file's. A file without that metadata, or one
    /// whose architecture is not built from FuncFlow's layers, raises DataFormatException naming it.
    let exportFile (modelPath: string) (inputShape: int[]) (onnxPath: string) : unit = OnnxExport.exportFile modelPath inputShape onnxPath
