/// The `funcflow` command, run in-process (FuncFlow.Cli.Program.run): its output and exit codes.
module FuncFlow.Onnx.Tests.CliTests

open System
open System.IO
open Expecto
open Google.Protobuf
open Onnx
open FuncFlow.Tests
open FuncFlow.Onnx.Tests.Support

/// Runs the command line; returns the exit code, standard output and standard error.
let private funcflow (args: string list) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = FuncFlow.Cli.Program.run (Array.ofList args) out err
    code, out.ToString(), err.ToString()

/// A one-node float32 model, x -> op -> y, with x and y of shape [N; 3] (N symbolic), written with ONNX's schema.
let private oneNodeModel (folder: string) (op: string) =
    let valueInfo (name: string) =
        let shape = TensorShapeProto()
        shape.Dim.Add(TensorShapeProto.Types.Dimension(DimParam = "N"))
        shape.Dim.Add(TensorShapeProto.Types.Dimension(DimValue = 3L))
        ValueInfoProto(Name = name, Type = TypeProto(TensorType = TypeProto.Types.Tensor(ElemType = 1, Shape = shape)))
    let node = NodeProto(OpType = op, Name = "the_" + op.ToLowerInvariant())
    node.Input.Add "x"
    node.Output.Add "y"
    let graph = GraphProto(Name = "one_node")
    graph.Node.Add node
    graph.Input.Add(valueInfo "x")
    graph.Output.Add(valueInfo "y")
    let model = ModelProto(IrVersion = 8L, ProducerName = "CliTests", Graph = graph)
    model.OpsetImport.Add(OperatorSetIdProto(Domain = "", Version = 17L))
    let path = Path.Combine(folder, op + ".onnx")
    File.WriteAllBytes(path, model.ToByteArray())
    path

[<Tests>]
let tests =
    moduleTests
        "CliTests"
        [
            testCase "onnx check runs a model through FuncFlow and ONNX Runtime and exits 0 when they agree"
            <| fun () ->
                let model = oneNodeModel (tempFolder ()) "Tanh"
                let code, out, err = funcflow [ "onnx"; "check"; model; "--dim"; "N=5" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                // One row for y, shape (5, 3), and the verdict.
                expectMentions
                    out
                    [
                        "1 inputs (seed 0), 1 outputs"
                        "(5, 3)"
                        "ok"
                        "agrees with ONNX Runtime within 0.0001 relative"
                    ]
            testCase "onnx check names the symbolic dimensions it needs and exits 64 without them"
            <| fun () ->
                let model = oneNodeModel (tempFolder ()) "Relu"
                let code, _, err = funcflow [ "onnx"; "check"; model ]
                Expect.equal code 64 "exit code"
                expectMentions err [ "symbolic dimensions N"; "--dim N=1" ]
                let code, _, err = funcflow [ "onnx"; "check"; model; "--dim"; "N=zero" ]
                Expect.equal code 64 "exit code for a size that is not a number"
                expectMentions err [ "--dim N=zero"; "positive integer" ]
            testCase "onnx check of an unsupported operator names it and its node and exits 2"
            <| fun () ->
                let model = oneNodeModel (tempFolder ()) "Det"
                let code, _, err = funcflow [ "onnx"; "check"; model; "--dim"; "N=2" ]
                Expect.equal code 2 "exit code"
                expectMentions err [ "Det"; "the_det" ]
            testCase "a truncated ONNX file exits 65 with a message naming it"
            <| fun () ->
                let model = oneNodeModel (tempFolder ()) "Relu"
                let bytes = File.ReadAllBytes model
                File.WriteAllBytes(model, bytes[.. bytes.Length / 2])
                let code, _, err = funcflow [ "onnx"; "check"; model; "--dim"; "N=2" ]
                Expect.equal code 65 "exit code"
                expectMentions err [ model ]
            testCase "info lists an ONNX file's inputs with their symbolic shapes and its operators"
            <| fun () ->
                let model = oneNodeModel (tempFolder ()) "Sigmoid"
                let code, out, _ = funcflow [ "info"; model ]
                Expect.equal code 0 "exit code"
                expectMentions
                    out
                    [
                        "ONNX, IR version 8, opset ai.onnx 17, producer 'CliTests', graph 'one_node'"
                        "x     float32  [N, 3]"
                        "Sigmoid  1"
                    ]
            testCase "info lists a safetensors file's tensors and metadata from its header"
            <| fun () ->
                let path = Path.Combine(tempFolder (), "two.safetensors")
                FuncFlow.Data.Safetensors.saveWithMetadata
                    path
                    (Map [ "note", "hello" ])
                    [
                        "w", FuncFlow.Tensor.create32 [| 2; 3 |] (Array.zeroCreate 6)
                        "b", FuncFlow.Tensor.ofArray [| 1.0 |]
                    ]
                let code, out, _ = funcflow [ "info"; path ]
                Expect.equal code 0 "exit code"
                expectMentions
                    out
                    [
                        "safetensors, 2 tensors, 32 bytes of data"
                        "w     F32    [2, 3]  24"
                        "b     F64    [1]     8"
                        "note: hello"
                    ]
            testCase "onnx export writes a saved model as ONNX that onnx check then passes at another batch size"
            <| fun () ->
                let folder = tempFolder ()
                let saved = Path.Combine(folder, "mlp.safetensors")
                let layers =
                    FuncFlow.NN.Sequential(FuncFlow.NN.Linear(4, 8), FuncFlow.NN.Tanh(), FuncFlow.NN.Linear(8, 3))
                FuncFlow.NN.Model.Create(layers, 3, FuncFlow.Float32).Save saved
                let code, out, err = funcflow [ "onnx"; "export"; saved; "--input-shape"; "4" ]
                Expect.equal code 0 (sprintf "export exit code (stderr: %s)" err)
                let onnx = Path.Combine(folder, "mlp.onnx")
                expectMentions out [ "wrote " + onnx; "opset ai.onnx 17" ]
                let code, out, err = funcflow [ "onnx"; "check"; onnx; "--dim"; "batch=5" ]
                Expect.equal code 0 (sprintf "check exit code (stderr: %s)" err)
                expectMentions out [ "(5, 3)"; "agrees with ONNX Runtime" ]
                let code, _, err =
                    funcflow [ "onnx"; "export"; saved; "--input-shape"; "4,x"; "-o"; Path.Combine(folder, "bad.onnx") ]
                Expect.equal code 64 "a malformed shape"
                expectMentions err [ "--input-shape 4,x" ]
                Expect.isFalse (File.Exists(Path.Combine(folder, "bad.onnx"))) "nothing written"
            testCase "usage errors exit 64 and --help exits 0"
            <| fun () ->
                let code, _, err = funcflow [ "frobnicate" ]
                Expect.equal code 64 "unknown command"
                expectMentions err [ "frobnicate" ]
                let code, out, _ = funcflow [ "--help" ]
                Expect.equal code 0 "--help"
                expectMentions out [ "info"; "onnx" ]
                let code, _, err = funcflow [ "info"; "notes.txt" ]
                Expect.equal code 64 "an extension that is neither"
                expectMentions err [ "notes.txt"; ".safetensors nor .onnx" ]
            testCase "differences are norm-wise relative, and NaN against a number is infinitely far"
            <| fun () ->
                let a, r = FuncFlow.Cli.OnnxCommands.differences [| 1.0; 2.0; -4.0 |] [| 1.0; 2.5; -4.0 |]
                Expect.equal (a, r) (0.5, 0.125) "|2 - 2.5| over the largest |reference|, 4"
                Expect.equal (FuncFlow.Cli.OnnxCommands.differences [| nan; 1.0 |] [| nan; 1.0 |]) (0.0, 0.0) "NaN against NaN"
                Expect.equal (fst (FuncFlow.Cli.OnnxCommands.differences [| nan |] [| 1.0 |])) infinity "NaN against a number"
        ]
