/// `funcflow onnx check` and `funcflow onnx export`.
module FuncFlow.Cli.OnnxCommands

open System
open System.IO
open Microsoft.ML.OnnxRuntime
open Microsoft.ML.OnnxRuntime.Tensors
open FuncFlow
open FuncFlow.Onnx

/// `name=value` pairs of --dim, checked.
let parseDims (assignments: string list) : Map<string, int> =
    assignments
    |> List.map (fun a ->
        match a.Split('=') with
        | [| name; value |] when name.Trim() <> "" ->
            match Int32.TryParse(value.Trim()) with
            | true, n when n > 0 -> name.Trim(), n
            | _ -> invalidArg "dim" (sprintf "funcflow onnx check: --dim %s: the size must be a positive integer" a)
        | _ -> invalidArg "dim" (sprintf "funcflow onnx check: --dim %s: expected name=value, e.g. --dim batch=4" a))
    |> Map.ofList

/// The symbolic dimensions of a model's inputs that `dims` does not give.
let private missingDims (info: OnnxInfo) (dims: Map<string, int>) =
    info.Inputs
    |> List.collect (fun s ->
        s.Dims
        |> List.choose (fun d ->
            match d with
            | OnnxDim.Named n when not (dims.ContainsKey n) -> Some n
            | _ -> None))
    |> List.distinct

/// A FuncFlow tensor as an ONNX Runtime tensor of the same dtype and shape.
let private toOrt (t: Tensor) : OrtValue =
    let shape = t.Shape |> Array.map int64
    match t.DType with
    | Float32 -> OrtValue.CreateTensorValueFromMemory(t.ToArray32(), shape)
    | Float64 -> OrtValue.CreateTensorValueFromMemory(t.ToArray(), shape)

/// An ONNX Runtime output as float64 values, or None for an element type FuncFlow does not compute in.
let private ofOrt (v: OrtValue) : float[] option =
    match v.GetTensorTypeAndShape().ElementDataType with
    | TensorElementType.Float -> Some(v.GetTensorDataAsSpan<float32>().ToArray() |> Array.map float)
    | TensorElementType.Double -> Some(v.GetTensorDataAsSpan<float>().ToArray())
    | _ -> None

/// The largest absolute difference, and the same relative to the reference's largest magnitude (a norm-wise
/// relative difference: elementwise ratios blow up where the reference crosses zero). NaN against a number
/// counts as an infinite difference; NaN against NaN as none.
let differences (ours: float[]) (reference: float[]) =
    let diff i =
        let a, b = ours[i], reference[i]
        if Double.IsNaN a && Double.IsNaN b then 0.0
        elif a = b then 0.0 // equal infinities
        elif Double.IsNaN a || Double.IsNaN b then infinity
        else abs (a - b)
    let maxAbs = Seq.init ours.Length diff |> Seq.fold max 0.0
    let scale = reference |> Array.fold (fun m x -> if Double.IsFinite x then max m (abs x) else m) 0.0
    let relative =
        if maxAbs = 0.0 then 0.0
        elif scale = 0.0 then infinity
        else maxAbs / scale
    maxAbs, relative

/// Imports the model, runs it through FuncFlow and ONNX Runtime on the same seeded random inputs and prints each
/// output's differences; true when every output is within the tolerance.
let check (out: TextWriter) (path: string) (dims: Map<string, int>) (seed: int) (tolerance: float) : bool =
    let info = Onnx.inspect path
    match missingDims info dims with
    | [] -> ()
    | missing ->
        invalidArg
            "dim"
            (sprintf
                "funcflow onnx check: %s declares the symbolic dimensions %s: give each a size with --dim, e.g. --dim %s=1"
                path
                (String.Join(", ", missing))
                missing.Head)
    let model = Onnx.load dims path
    let inputs =
        model.Inputs
        |> List.mapi (fun i (name, v) -> name, Tensor.randNormal v.DType (seed + i) v.Shape 0.0 1.0)
        |> Map.ofList
    let ours = Onnx.evaluate model inputs
    // ONNX Runtime's warnings (old opsets, optimiser notes) would mix with the report; errors still raise.
    use sessionOptions = new SessionOptions(LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR)
    use session = new InferenceSession(path, sessionOptions)
    use runOptions = new RunOptions()
    let names = inputs |> Map.toList |> List.map fst
    let values = names |> List.map (fun n -> toOrt inputs[n])
    let outputNames = model.Outputs |> List.map fst
    use results = session.Run(runOptions, ResizeArray names, ResizeArray values, ResizeArray outputNames)
    values |> List.iter (fun v -> v.Dispose())
    out.WriteLine(sprintf "%s: %d inputs (seed %d), %d outputs" path inputs.Count seed outputNames.Length)
    let rows =
        outputNames
        |> List.mapi (fun i name ->
            let mine = ours[name]
            match ofOrt results[i] with
            | None ->
                raise (
                    NotSupportedException(
                        sprintf "funcflow onnx check: output '%s' of %s is not float32 or float64 in ONNX Runtime" name path
                    )
                )
            | Some reference ->
                let shape = results[i].GetTensorTypeAndShape().Shape |> Array.map int
                if not (Shape.equal shape mine.Shape) then
                    name, sprintf "%A" mine.Shape, infinity, infinity, sprintf "shape differs: ONNX Runtime gives %s" (Shape.show shape)
                else
                    let absolute, relative = differences (mine.ToArray()) reference
                    name, Shape.show shape, absolute, relative, (if relative <= tolerance then "ok" else "DIFFERS"))
    Info.printTable
        out
        [ "output"; "shape"; "max abs diff"; "max rel diff"; "" ]
        [
            for name, shape, a, r, verdict in rows -> [ name; shape; sprintf "%.3g" a; sprintf "%.3g" r; verdict ]
        ]
    let ok = rows |> List.forall (fun (_, _, _, r, _) -> r <= tolerance)
    out.WriteLine(
        if ok then
            sprintf "agrees with ONNX Runtime within %g relative" tolerance
        else
            sprintf "DIFFERS from ONNX Runtime by more than %g relative" tolerance
    )
    ok

/// `1,28,28` as a shape.
let parseShape (text: string) : int[] =
    text.Split(',', StringSplitOptions.TrimEntries)
    |> Array.map (fun d ->
        match Int32.TryParse d with
        | true, n when n > 0 -> n
        | _ ->
            invalidArg
                "input-shape"
                (sprintf "funcflow onnx export: --input-shape %s: expected positive integers separated by commas, e.g. 1,28,28" text))

/// Exports a FuncFlow model file to ONNX for examples of the given shape (the batch axis is symbolic) and says
/// what it wrote.
let export (out: TextWriter) (modelPath: string) (exampleShape: int[]) (onnxPath: string) =
    // Traced at a batch of one; exportModel finds the axes that follow the batch with a second trace.
    Onnx.exportFile modelPath (Array.append [| 1 |] exampleShape) onnxPath
    let info = Onnx.inspect onnxPath
    out.WriteLine(
        sprintf
            "wrote %s: %d nodes, %d initializers, opset %s; check it with: funcflow onnx check %s --dim batch=1"
            onnxPath
            (info.OperatorCounts |> List.sumBy snd)
            info.Initializers.Length
            (Info.opsets info)
            onnxPath
    )
