/// Running ONNX files in ONNX Runtime, and ONNX's own checker (Debian's python3-onnx) on them.
module FuncFlow.Onnx.Tests.Ort

open System
open System.Diagnostics
open Expecto
open Microsoft.ML.OnnxRuntime
open FuncFlow

type private Dense<'T> = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<'T>

/// The outputs of an ONNX file run in ONNX Runtime on named inputs, by name, in the inputs' dtype.
let run (path: string) (inputs: (string * Tensor) list) : Map<string, Tensor> =
    use session = new InferenceSession(path)
    let values =
        inputs
        |> List.map (fun (name, t) ->
            match t.DType with
            | Float32 -> NamedOnnxValue.CreateFromTensor(name, Dense<float32>(Memory(t.ToArray32()), ReadOnlySpan<int>(t.Shape)))
            | Float64 -> NamedOnnxValue.CreateFromTensor(name, Dense<float>(Memory(t.ToArray()), ReadOnlySpan<int>(t.Shape))))
    use results = session.Run values
    results
    |> Seq.map (fun r ->
        let t =
            match r.ElementType with
            | Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float ->
                let v = r.AsTensor<float32>() :?> Dense<float32>
                Tensor.create32 (v.Dimensions.ToArray()) (v.Buffer.ToArray())
            | Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Double ->
                let v = r.AsTensor<float>() :?> Dense<float>
                Tensor.create (v.Dimensions.ToArray()) (v.Buffer.ToArray())
            | other -> failtestf "%s: output '%s' has element type %O" path r.Name other
        r.Name, t)
    |> Map.ofSeq

/// Whether Debian's python3 can import onnx (python3-onnx), asked once.
let private pythonOnnx =
    lazy
        (try
            use p =
                Process.Start(ProcessStartInfo("/usr/bin/python3", "-c \"import onnx\"", RedirectStandardError = true))
            p.WaitForExit()
            p.ExitCode = 0
         with _ ->
             false)

/// Runs ONNX's checker, with full shape inference, on each file; fails naming the file and the checker's words.
/// Skipped, with a note, where python3-onnx is not installed.
let check (paths: string list) =
    if not pythonOnnx.Value then
        skiptest "/usr/bin/python3 cannot import onnx: apt-get install python3-onnx to validate the exported files"
    let script =
        "import sys, onnx\nfor p in sys.argv[1:]:\n    try:\n        onnx.checker.check_model(onnx.load(p), full_check=True)\n    except Exception as e:\n        print(p + ': ' + str(e)); sys.exit(1)\n"
    let start =
        ProcessStartInfo("/usr/bin/python3", RedirectStandardOutput = true, RedirectStandardError = true)
    start.ArgumentList.Add "-c"
    start.ArgumentList.Add script
    for p in paths do
        start.ArgumentList.Add p
    use p = Process.Start start
    let out = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd()
    p.WaitForExit()
    if p.ExitCode <> 0 then failtestf "onnx.checker refused a file: %s" out
