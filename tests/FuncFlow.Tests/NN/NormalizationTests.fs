/// Normalisation layers with state: BatchNorm2d against PyTorch in float64 over three SGD training steps
/// (outputs, gradients, parameters and running statistics after each step, then eval mode; reference
/// layer_reference.json); how buffers travel through training plans, trainers, evaluation and safetensors
/// files; names, initial values and descriptions.
module FuncFlow.Tests.NN.NormalizationTests

open System
open System.IO
open System.Text.Json
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support
open FuncFlow.Tests.TorchReference
open FuncFlow.Tests.NN.LayerReferenceTests


/// The reference case `key`: "batchnorm2d" (momentum 0.2) or "batchnorm2d_cumulative" (momentum None).
let private batchNorm2dSteps (key: string) () =
    let case = field key reference.Value
    let shape = ints (field "shape" case)
    let num key = (field key case).GetDouble()
    let layer =
        match (field "momentum" case).ValueKind with
        | JsonValueKind.Null -> BatchNorm2d.CumulativeAverage(shape[1], num "eps", true)
        | _ -> BatchNorm2d(shape[1], num "eps", num "momentum", true)
    let model =
        Model
            .Create(layer, 0)
            .WithParameters(
                Map
                    [
                        "weight", Tensor.ofArray (numbers (field "weight" case))
                        "bias", Tensor.ofArray (numbers (field "bias" case))
                    ]
            )
    let step = TrainStep.Compile(model, Loss.MSE, SGD(num "lr"), shape, shape)
    for k, s in Seq.indexed ((field "steps" case).EnumerateArray()) do
        let x, target =
            Tensor.create shape (numbers (field "x" s)), Tensor.create shape (numbers (field "target" s))
        let output, grads = trainingPass step.Model x (fun out -> Losses.mse out (Expr.constant target))
        let loss = step.Run(x, target)
        let trained = step.Model
        let compare (key: string) (actual: float[]) = mismatches tolerance tolerance key (numbers (field key s)) actual
        [
            yield! compare "output" output
            yield! compare "grad_input" grads["input"]
            yield! compare "grad_weight" grads["weight"]
            yield! compare "grad_bias" grads["bias"]
            yield! mismatches tolerance tolerance "loss" [| (field "loss" s).GetDouble() |] [| loss |]
            yield! compare "weight" (trained.Parameters["weight"].ToArray())
            yield! compare "bias" (trained.Parameters["bias"].ToArray())
            yield! compare "running_mean" (trained.Buffers["running_mean"].ToArray())
            yield! compare "running_var" (trained.Buffers["running_var"].ToArray())
            yield!
                mismatches
                    0.0
                    0.0
                    "num_batches_tracked"
                    [| float ((field "num_batches_tracked" s).GetInt32()) |]
                    (trained.Buffers["num_batches_tracked"].ToArray())
        ]
        |> assertNone (sprintf "BatchNorm2d step %d" (k + 1))
    let eval = field "eval" case
    let predicted = step.Model.Predict(Tensor.create shape (numbers (field "x" eval)))
    assertClose tolerance (numbers (field "output" eval)) (predicted.ToArray())

let private tempFile () =
    Path.Combine(Path.GetTempPath(), sprintf "funcflow-norm-%s.safetensors" (Guid.NewGuid().ToString "N"))

[<Tests>]
let tests =
    moduleTests
        "NormalizationTests"
        [
            testCase "BatchNorm2d matches PyTorch over three SGD steps: outputs, gradients, parameters, running statistics, eval"
            <| batchNorm2dSteps "batchnorm2d"
            testCase "BatchNorm2d with momentum None keeps the cumulative average of the batch statistics, as PyTorch"
            <| batchNorm2dSteps "batchnorm2d_cumulative"
            testCase "the layers carry PyTorch's state-dict names and initial values"
            <| fun () ->
                let model =
                    Model.Create(Sequential(BatchNorm2d 3, LayerNorm [| 2; 2 |], GroupNorm(2, 4), BatchNorm1d(5, 1e-5, 0.1, false)), 7)
                Expect.equal
                    (model.Parameters |> Map.keys |> List.ofSeq)
                    [ "0.bias"; "0.weight"; "1.bias"; "1.weight"; "2.bias"; "2.weight" ]
                    "parameter names"
                Expect.equal
                    (model.Buffers |> Map.keys |> List.ofSeq)
                    [
                        "0.num_batches_tracked"
                        "0.running_mean"
                        "0.running_var"
                        "3.num_batches_tracked"
                        "3.running_mean"
                        "3.running_var"
                    ]
                    "buffer names"
                Expect.equal (model.Parameters["0.weight"].ToArray()) [| 1.0; 1.0; 1.0 |] "weight starts at ones"
                Expect.equal (model.Parameters["1.bias"].ToArray()) [| 0.0; 0.0; 0.0; 0.0 |] "bias starts at zeros"
                Expect.equal (model.Buffers["3.running_var"].ToArray()) (Array.create 5 1.0) "running_var starts at ones"
                Expect.equal (model.Buffers["3.running_mean"].ToArray()) (Array.zeroCreate 5) "running_mean starts at zeros"
                Expect.equal model.ParameterCount (6 + 8 + 8) "buffers are not parameters"
            testCase "a trainer carries the running statistics across plans, and evaluation and Predict use them"
            <| fun () ->
                // Rows 2N(0,1) + 3 in two columns; batches of 4 and a last one of 2 (two plans).
                let rng = Random 5
                let features =
                    Tensor.create [| 10; 2 |] (Array.init 20 (fun i -> 3.0 + float (i % 2) + 2.0 * (rng.NextDouble() - 0.5)))
                let data: Dataset = { Features = features; Targets = Tensor.zeros Float64 [| 10; 2 |] }
                let model = Model.Create(BatchNorm1d(2, 1e-5, 0.5, false), 0)
                let trainer = Trainer(model, Loss.MSE, SGD 0.1, 0)
                trainer.Fit(data, { FitOptions.Create(1, 4) with Quiet = true }) |> ignore
                Expect.equal trainer.CompiledPlans 2 "trainer.CompiledPlans"
                let trained = trainer.Model
                // Three steps with momentum 0.5 from (0, 1): running = 0.125 * initial + 0.125 b1 + 0.25 b2 + 0.5 b3.
                let order = Batches.shuffledWith false 1 4 data |> Array.ofSeq
                let columnStats (b: Dataset) (c: int) =
                    let v = [| for r in 0 .. b.Count - 1 -> b.Features.ToArray()[2 * r + c] |]
                    let m = Array.average v
                    m, (v |> Array.sumBy (fun x -> (x - m) ** 2.0)) / float (v.Length - 1)
                let expected (pick: float * float -> float) (start: float) (c: int) =
                    order |> Array.fold (fun acc b -> 0.5 * acc + 0.5 * pick (columnStats b c)) start
                assertClose 1e-12 [| for c in 0..1 -> expected fst 0.0 c |] (trained.Buffers["running_mean"].ToArray())
                assertClose 1e-12 [| for c in 0..1 -> expected snd 1.0 c |] (trained.Buffers["running_var"].ToArray())
                Expect.equal (Tensor.item trained.Buffers["num_batches_tracked"]) 3.0 "num_batches_tracked"
                // Evaluation normalises with the running statistics, not the batch's.
                let normalised =
                    [|
                        for r in 0..9 do
                            for c in 0..1 ->
                                (features.ToArray()[2 * r + c] - trained.Buffers["running_mean"].ToArray()[c])
                                / sqrt (trained.Buffers["running_var"].ToArray()[c] + 1e-5)
                    |]
                assertClose 1e-12 normalised ((trained.Predict features).ToArray())
                let evaluation = trainer.Evaluate(data, 3)
                expectWithin 1e-12 (normalised |> Array.averageBy (fun v -> v * v)) evaluation.Loss "evaluation loss"
            testCase "Save and Load carry the buffers"
            <| fun () ->
                let layer = Sequential(Linear(3, 4), BatchNorm1d 4)
                let model = Model.Create(layer, 1, Float32)
                let step = TrainStep.Compile(model, Loss.MSE, SGD 0.1, [| 6; 3 |], [| 6; 4 |])
                step.Run(Tensor.randNormal Float32 2 [| 6; 3 |] 1.0 2.0, Tensor.zeros Float32 [| 6; 4 |]) |> ignore
                let trained = step.Model
                Expect.notEqual (trained.Buffers["1.running_mean"].ToArray()) (Array.zeroCreate 4) "the step moved running_mean"
                let path = tempFile ()
                try
                    trained.Save path
                    let loaded = Model.Create(layer, 9, Float32).Load path
                    for KeyValue(name, t) in trained.Buffers do
                        Expect.equal (loaded.Buffers[name].ToArray32()) (t.ToArray32()) name
                    let x = Tensor.randNormal Float32 3 [| 2; 3 |] 0.0 1.0
                    Expect.equal ((loaded.Predict x).ToArray32()) ((trained.Predict x).ToArray32()) "Predict after Load"
                    // A file without the buffers does not fit a model that has them.
                    Safetensors.save path [ "weight", Tensor.ones Float64 [| 4 |]; "bias", Tensor.zeros Float64 [| 4 |] ]
                    let ex = throws<DataFormatException>(fun () -> Model.Create(BatchNorm1d 4, 0).Load path |> ignore)
                    Expect.stringContains ex.Message "'num_batches_tracked' is in the model but not in the file" "ex.Message"
                finally
                    File.Delete path
            testCase "LayerNorm and GroupNorm normalise in evaluation as in training, with no buffers"
            <| fun () ->
                let x = Tensor.randNormal Float64 4 [| 2; 4; 3 |] 1.0 3.0
                for layer in [ LayerNorm [| 4; 3 |] :> Layer; GroupNorm(2, 4) ] do
                    let model = Model.Create(layer, 0)
                    Expect.isEmpty model.Buffers "buffers"
                    let training, _ = trainingPass model x Expr.sum
                    assertClose 1e-12 training ((model.Predict x).ToArray())
            testCase "Flatten keeps the axes before its start and joins the rest, in row-major order"
            <| fun () ->
                let x = Tensor.create [| 2; 3; 2 |] (Array.init 12 float)
                let out = Model.Create(Flatten(), 0).Predict x
                Expect.equal out.Shape [| 2; 6 |] "Flatten() shape"
                Expect.equal (out.ToArray()) (x.ToArray()) "Flatten() values"
                Expect.equal (Model.Create(Flatten 2, 0).Predict x).Shape [| 2; 3; 2 |] "Flatten 2 of a rank-3 input"
                Expect.equal (Model.Create(Flatten 0, 0).Predict x).Shape [| 12 |] "Flatten 0"
            testCase "the layers describe themselves with their hyper-parameters"
            <| fun () ->
                Expect.equal ((BatchNorm2d 8).Describe()) "BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=true)" "BatchNorm2d"
                Expect.equal
                    ((BatchNorm1d.CumulativeAverage(4, 1e-5, false)).Describe())
                    "BatchNorm1d(4, eps=1e-05, momentum=None, affine=false)"
                    "BatchNorm1d, cumulative"
                Expect.equal ((LayerNorm [| 3; 4 |]).Describe()) "LayerNorm((3, 4), eps=1e-05, affine=true)" "LayerNorm"
                Expect.equal ((GroupNorm(2, 6, 1e-3, false)).Describe()) "GroupNorm(2, 6, eps=0.001, affine=false)" "GroupNorm"
                Expect.equal ((Flatten()).Describe()) "Flatten(1)" "Flatten"
        ]
