/// `funcflow info FILE`: what a safetensors or ONNX file holds, without evaluating anything.
module FuncFlow.Cli.Info

open System
open System.IO
open FuncFlow
open FuncFlow.Data
open FuncFlow.Onnx

/// Prints rows as left-aligned columns separated by two spaces.
let printTable (out: TextWriter) (header: string list) (rows: string list list) =
    let all = header :: rows
    let widths =
        header |> List.mapi (fun i _ -> all |> List.map (fun r -> (List.item i r).Length) |> List.max)
    for row in all do
        out.WriteLine(String.Join("  ", List.map2 (fun (cell: string) w -> cell.PadRight w) row widths).TrimEnd())

let private showShape (shape: int[]) = "[" + String.Join(", ", shape) + "]"

let private safetensors (out: TextWriter) (path: string) =
    let info = Safetensors.inspect path
    out.WriteLine(
        sprintf "%s: safetensors, %d tensors, %d bytes of data" path info.Tensors.Length (info.Tensors |> List.sumBy (fun e -> e.Bytes))
    )
    printTable out [ "name"; "dtype"; "shape"; "bytes" ] [ for e in info.Tensors -> [ e.Name; e.DType; showShape e.Shape; string e.Bytes ] ]
    if not info.Metadata.IsEmpty then
        out.WriteLine "metadata:"
        for KeyValue(k, v) in info.Metadata do
            out.WriteLine(sprintf "  %s: %s" k v)

/// A model's opsets as "ai.onnx 17, ..." (the default domain is the empty string in the file).
let opsets (info: OnnxInfo) =
    String.Join(
        ", ",
        info.Opsets
        |> List.map (fun (domain, version) -> (if domain = "" then "ai.onnx" else domain) + " " + string version)
    )

let private onnx (out: TextWriter) (path: string) =
    let info = Onnx.inspect path
    let dtype = Option.map (fun (d: DType) -> d.Name) >> Option.defaultValue "(not float32/float64)"
    let dims (ds: OnnxDim list) =
        "["
        + String.Join(
            ", ",
            ds
            |> List.map (fun d ->
                match d with
                | OnnxDim.Known n -> string n
                | OnnxDim.Named n -> n)
        )
        + "]"
    out.WriteLine(
        sprintf
            "%s: ONNX, IR version %d, opset %s, producer '%s', graph '%s'"
            path
            info.IrVersion
            (opsets info)
            info.Producer
            info.GraphName
    )
    let signatures (title: string) (ss: OnnxSignature list) =
        out.WriteLine(title + ":")
        printTable out [ "  name"; "dtype"; "shape" ] [ for s in ss -> [ "  " + s.Name; dtype s.DType; dims s.Dims ] ]
    signatures "inputs" info.Inputs
    signatures "outputs" info.Outputs
    out.WriteLine(sprintf "initializers: %d" info.Initializers.Length)
    if not info.Initializers.IsEmpty then
        printTable
            out
            [ "  name"; "dtype"; "shape" ]
            [ for name, d, shape in info.Initializers -> [ "  " + name; dtype d; showShape shape ] ]
    out.WriteLine "operators:"
    printTable out [ "  op"; "count" ] [ for op, n in info.OperatorCounts -> [ "  " + op; string n ] ]
    if not info.Metadata.IsEmpty then
        out.WriteLine "metadata:"
        for k, v in info.Metadata do
            out.WriteLine(sprintf "  %s: %s" k v)

/// Describes the file by its extension: .safetensors or .onnx.
let run (out: TextWriter) (path: string) =
    match Path.GetExtension(path).ToLowerInvariant() with
    | ".safetensors" -> safetensors out path
    | ".onnx" -> onnx out path
    | other -> raise (ArgumentException(sprintf "funcflow info: %s: the extension '%s' is neither .safetensors nor .onnx" path other))
