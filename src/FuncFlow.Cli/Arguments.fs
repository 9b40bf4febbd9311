/// The command line, declared with Argu: `funcflow info FILE`, `funcflow onnx check MODEL`, `funcflow onnx export MODEL`.
module FuncFlow.Cli.Arguments

open Argu

/// `funcflow info FILE`.
type InfoArgs =
    | [<MainCommand; ExactlyOnce>] File of path: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | File _ -> "a safetensors (.safetensors) or ONNX (.onnx) file."

/// `funcflow onnx check MODEL.onnx`.
type CheckArgs =
    | [<MainCommand; ExactlyOnce>] Model of path: string
    | Dim of assignment: string
    | Seed of int
    | Tolerance of float

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model _ -> "the ONNX model to check."
            | Dim _ -> "the size of a symbolic dimension, as name=value (repeat for each one), e.g. --dim batch=4."
            | Seed _ -> "the seed of the random inputs (default 0)."
            | Tolerance _ -> "the largest relative difference accepted (default 1e-4)."

/// `funcflow onnx export MODEL.safetensors`.
type ExportArgs =
    | [<MainCommand; ExactlyOnce>] Model of path: string
    | [<Mandatory>] Input_Shape of dims: string
    | [<AltCommandLine("-o")>] Output of path: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model _ -> "a FuncFlow model file (safetensors written by Model.Save)."
            | Input_Shape _ -> "the shape of one input example, without the batch axis, e.g. 1,28,28."
            | Output _ -> "the ONNX file to write (default: the model file with the extension .onnx)."

/// `funcflow onnx ...`.
type OnnxArgs =
    | [<CliPrefix(CliPrefix.None)>] Check of ParseResults<CheckArgs>
    | [<CliPrefix(CliPrefix.None)>] Export of ParseResults<ExportArgs>

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Check _ -> "import an ONNX model, run it through FuncFlow and ONNX Runtime on seeded random inputs, and compare."
            | Export _ -> "export a FuncFlow model file to ONNX."

/// `funcflow ...`.
type CliArgs =
    | [<CliPrefix(CliPrefix.None)>] Info of ParseResults<InfoArgs>
    | [<CliPrefix(CliPrefix.None)>] Onnx of ParseResults<OnnxArgs>

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Info _ -> "describe a safetensors or ONNX file: its tensors, shapes, dtypes and metadata."
            | Onnx _ -> "check or export ONNX models."
