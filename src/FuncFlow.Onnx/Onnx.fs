namespace FuncFlow.Onnx

open System
open FuncFlow
open FuncFlow.NN

/// ONNX files: FuncFlow models and expressions exported for other runtimes, and ONNX graphs imported as expressions.
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

    /// What an ONNX file declares (inputs, outputs, initializers, operators, metadata), read without building
    /// expressions. A missing, truncated or corrupt file is a DataFormatException naming it.
    let inspect (path: string) : OnnxInfo = Import.info path (Import.read path)

    /// The operator types (ONNX's default domain) that load imports.
    let operators: string list = Import.claimed

    /// Imports an ONNX file as expressions: the graph inputs as variables, the float initializers as parameters
    /// (variables whose values are in Parameters), the outputs as expressions of both. Every named dimension of an
    /// input must be sized in dims (an ArgumentException names the missing ones). A bad file (truncated, corrupt,
    /// a cycle, a dangling input, external data outside the model's folder) is a DataFormatException naming the
    /// file and the problem; an operator FuncFlow does not import is a NotSupportedException naming it and its node.
    let load (dims: Map<string, int>) (path: string) : OnnxModel = Import.build path dims (Import.read path)

    /// The model's outputs, by name, for values of its inputs (by name) and its parameters.
    let evaluate (model: OnnxModel) (inputs: Map<string, Tensor>) : Map<string, Tensor> =
        let missing = model.Inputs |> List.map fst |> List.filter (fun name -> not (inputs.ContainsKey name))
        if not missing.IsEmpty then
            invalidArg "inputs" (sprintf "Onnx.evaluate: no value for the inputs %s" (String.Join(", ", missing)))
        let env = Seq.append (Map.toSeq model.Parameters) (Map.toSeq inputs) |> Eval.bindings
        // One evaluation per dtype: a pass computes in one dtype.
        model.Outputs
        |> List.groupBy (fun (_, e) -> e.DType)
        |> List.collect (fun (_, outputs) -> List.zip (List.map fst outputs) (Eval.many env (List.map snd outputs)))
        |> Map.ofList
