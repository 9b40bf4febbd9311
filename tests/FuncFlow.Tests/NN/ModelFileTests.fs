/// Model files: PyTorch's state-dict names and layouts, strict and non-strict loading, format versions.
module FuncFlow.Tests.NN.ModelFileTests

open System
open System.IO
open System.Text.Json
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support

let private tempFile () =
    Path.Combine(Path.GetTempPath(), sprintf "funcflow-modelfile-%s.safetensors" (Guid.NewGuid().ToString "N"))

let private withFile (body: string -> unit) =
    let path = tempFile ()
    try
        body path
    finally
        File.Delete path

let private mlp () = Sequential(Linear(3, 4), Tanh(), Linear(4, 2))

/// The PyTorch fixture (reference/make_model_file.py): its input and PyTorch's output.
let private torchCase =
    lazy
        (let doc =
            JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "reference", "torch_mlp.json")))
         let rows (name: string) = Fixtures.matrix (doc.RootElement.GetProperty name)
         rows "input", rows "output")

let private torchFile () = Path.Combine(AppContext.BaseDirectory, "reference", "torch_mlp.safetensors")

/// The batch-norm fixture: its input and PyTorch's output in evaluation mode.
let private torchBatchNorm =
    lazy
        (let doc =
            JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "reference", "torch_bn.json")))
         let rows (name: string) = Fixtures.matrix (doc.RootElement.GetProperty name)
         rows "input", rows "output")

let private message (f: unit -> unit) = (throws<DataFormatException> f).Message

let private contains (text: string) (fragments: string list) =
    for f in fragments do
        Expect.stringContains text f "message"

/// A layer of the user's with a 2-D parameter FuncFlow cannot see into.
type private Bilinear() =
    inherit Layer()
    override _.Parameters(_: int) = [ "table", Tensor.ones Float64 [| 2; 2 |] ]
    override _.Forward(scope: Scope, x: Expr) = Expr.matmul x (scope.Param "table")
    override _.Describe() = "Bilinear"

[<Tests>]
let tests =
    moduleTests
        "ModelFileTests"
        [
            testCase "A safetensors file written from a PyTorch state dict loads strictly and gives PyTorch's outputs"
            <| fun () ->
                let input, output = torchCase.Value
                for dtype, tol in [ Float32, 1e-6; Float64, 1e-6 ] do
                    let model = Model.Create(mlp (), 0, dtype).Load(torchFile ())
                    Expect.equal model.Parameters["0.weight"].Shape [| 4; 3 |] "0.weight is [out, in]"
                    let y = model.Predict(Tensor.cast dtype (Tensor.ofRows input))
                    assertClose tol (Array.concat output) (y.ToArray())
            testCase "A PyTorch state dict with batch norm (running statistics, int64 num_batches_tracked) loads strictly"
            <| fun () ->
                let input, output = torchBatchNorm.Value
                let layer = Sequential(Linear(3, 4), BatchNorm1d 4, Tanh(), Linear(4, 2))
                let model =
                    Model.Create(layer, 0, Float32).Load(Path.Combine(AppContext.BaseDirectory, "reference", "torch_bn.safetensors"))
                Expect.equal (model.Buffers["1.num_batches_tracked"].ToArray()) [| 3.0 |] "three training batches"
                let y = model.Predict(Tensor.cast Float32 (Tensor.ofRows input))
                assertClose 1e-5 (Array.concat output) (y.ToArray())
            testCase "Save writes PyTorch's names and layout, the architecture and the format version"
            <| fun () ->
                withFile (fun path ->
                    let model = Model.Create(mlp (), 5)
                    model.Save path
                    let values = Safetensors.load path
                    Expect.equal (values.Keys |> List.ofSeq) [ "0.bias"; "0.weight"; "2.bias"; "2.weight" ] "names"
                    Expect.equal values["2.weight"].Shape [| 2; 4 |] "2.weight is [out, in]"
                    let metadata = Safetensors.loadMetadata path
                    Expect.equal metadata["funcflow.format"] "2" "format"
                    Expect.equal metadata["funcflow.model"] (model.Layer.Describe()) "architecture"
                    // y = tanh(x W0^T + b0) W2^T + b2 from the file's arrays, by hand.
                    let x = [| 0.5; -1.0; 2.0 |]
                    let w0, b0 = Tensor.toArray2D values["0.weight"], values["0.bias"].ToArray()
                    let w2, b2 = Tensor.toArray2D values["2.weight"], values["2.bias"].ToArray()
                    let h = Array.init 4 (fun o -> tanh (b0[o] + Seq.sum (Seq.init 3 (fun i -> w0[o, i] * x[i]))))
                    let y = Array.init 2 (fun o -> b2[o] + Seq.sum (Seq.init 4 (fun i -> w2[o, i] * h[i])))
                    assertClose 1e-12 y (model.Predict(Tensor.ofRows [| x |]).ToArray()))
            testCase "Strict loading names the extra key, the missing key, the shape and the architecture"
            <| fun () ->
                withFile (fun path ->
                    let model = Model.Create(mlp (), 1)
                    let ps = model.Parameters
                    Safetensors.saveWithMetadata path Map.empty (Map.toSeq (ps.Add("3.weight", Tensor.ones Float64 [| 2 |])))
                    contains (message (fun () -> model.Load path |> ignore)) [ path; "'3.weight' is in the file but not in the model" ]
                    Safetensors.save path (Map.toSeq (ps.Remove "2.bias"))
                    contains (message (fun () -> model.Load path |> ignore)) [ "'2.bias' is in the model but not in the file" ]
                    Safetensors.save path (Map.toSeq (ps.Add("0.weight", Tensor.ones Float64 [| 3; 4 |])))
                    contains (message (fun () -> model.Load path |> ignore)) [ "'0.weight' has shape (3, 4) in the file, expected (4, 3)" ]
                    // Same names and shapes, another activation: only the metadata tells them apart.
                    Model.Create(Sequential(Linear(3, 4), ReLU(), Linear(4, 2)), 1).Save path
                    contains
                        (message (fun () -> model.Load path |> ignore))
                        [ "metadata 'funcflow.model' records Sequential(Linear(3, 4, He), ReLU, Linear(4, 2, He))"; "Tanh" ])
            testCase "Non-strict loading takes what fits and reports what it skipped"
            <| fun () ->
                withFile (fun path ->
                    let model = Model.Create(mlp (), 1)
                    let other = Model.Create(Sequential(Linear(3, 4), ReLU(), Linear(4, 2)), 2)
                    let values =
                        other.Parameters
                            .Remove("2.bias")
                            .Add("0.weight", Tensor.ones Float64 [| 3; 3 |])
                            .Add("head.weight", Tensor.ones Float64 [| 1 |])
                    Safetensors.saveWithMetadata
                        path
                        (Map [ "funcflow.model", other.Layer.Describe(); "funcflow.format", "2" ])
                        (Map.toSeq values)
                    let report = model.LoadNonStrict path
                    Expect.equal report.Unexpected [ "head.weight" ] "unexpected"
                    Expect.equal report.Missing [ "2.bias" ] "missing"
                    Expect.equal report.Mismatched [ "'0.weight' has shape (3, 3) in the file, expected (4, 3)" ] "mismatched"
                    Expect.isSome report.Architecture "architecture"
                    let loaded = report.Model.Parameters
                    Expect.equal (loaded["0.bias"].ToArray()) (other.Parameters["0.bias"].ToArray()) "taken from the file"
                    Expect.equal (loaded["2.weight"].ToArray()) (other.Parameters["2.weight"].ToArray()) "taken from the file"
                    Expect.equal (loaded["0.weight"].ToArray()) (model.Parameters["0.weight"].ToArray()) "kept: wrong shape"
                    Expect.equal (loaded["2.bias"].ToArray()) (model.Parameters["2.bias"].ToArray()) "kept: missing")
            testCase "A file of format 1 (Linear weights [in, out]) loads converted and predicts as before"
            <| fun () ->
                withFile (fun path ->
                    let model = Model.Create(Sequential(Linear(3, 3), Tanh(), Embedding(5, 3), Linear(3, 2)), 4)
                    // As FuncFlow wrote it before format 2: no version, each Linear weight transposed.
                    let format1 =
                        model.Parameters
                        |> Map.map (fun name t ->
                            if name = "0.weight" || name = "3.weight" then
                                Tensor.ofRows (Array.transpose (Array.init t.Shape[0] (fun r -> (Tensor.toArray2D t)[r, *])))
                            else
                                t)
                    Safetensors.saveWithMetadata path (Map [ "funcflow.model", model.Layer.Describe() ]) (Map.toSeq format1)
                    let loaded = Model.Create(model.Layer, 9).Load path
                    for KeyValue(name, t) in model.Parameters do
                        Expect.equal (loaded.Parameters[name].ToArray()) (t.ToArray()) name)
            testCase "A format-1 file of a layer FuncFlow cannot see into, or a newer format, fails saying what to do"
            <| fun () ->
                withFile (fun path ->
                    let model = Model.Create(Sequential(Linear(2, 2), Bilinear()), 0)
                    Safetensors.saveWithMetadata path (Map [ "funcflow.model", model.Layer.Describe() ]) (Map.toSeq model.Parameters)
                    contains
                        (message (fun () -> model.Load path |> ignore))
                        [
                            path
                            "format 1"
                            "Bilinear"
                            "transpose each Linear weight to [out, in]"
                            "Model.WithParameters"
                        ]
                    Safetensors.saveWithMetadata
                        path
                        (Map [ "funcflow.model", model.Layer.Describe(); "funcflow.format", "3" ])
                        (Map.toSeq model.Parameters)
                    contains (message (fun () -> model.Load path |> ignore)) [ "format 3 is newer"; "(2)" ])
        ]
