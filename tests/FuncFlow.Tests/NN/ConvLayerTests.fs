/// The convolution and pooling layers beyond their values (which LayerReferenceTests checks against PyTorch):
/// PyTorch's initialisation and state-dict names, descriptions, and LeNet-5 learning on a slice of MNIST.
module FuncFlow.Tests.NN.ConvLayerTests

open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support

/// The population standard deviation of some values.
let private std (values: float[]) =
    let m = Array.average values
    sqrt (values |> Array.averageBy (fun v -> (v - m) ** 2.0))

[<Tests>]
let tests =
    moduleTests
        "ConvLayerTests"
        [
            testCase "Conv2d starts as PyTorch's: weight and bias uniform in +-1/sqrt(fan_in), fan_in = in/groups x taps"
            <| fun () ->
                let model = Model.Create(Conv2d(32, 64, 3, 1, 1, 1, 2, true), 3)
                let w, b = model.Parameters["weight"].ToArray(), model.Parameters["bias"].ToArray()
                Expect.equal model.Parameters["weight"].Shape [| 64; 16; 3; 3 |] "weight shape [O; C/groups; kh; kw]"
                Expect.equal model.Parameters["bias"].Shape [| 64 |] "bias shape"
                // fan_in = 16 x 9 = 144: bound 1/12, and a uniform's standard deviation is bound / sqrt 3.
                let bound = 1.0 / 12.0
                Expect.isTrue (Array.forall (fun v -> abs v <= bound) (Array.append w b)) "all within the bound"
                expectWithin (0.03 * bound) (bound / sqrt 3.0) (std w) "weight standard deviation"
                expectWithin (0.03 * bound) 0.0 (Array.average w) "weight mean"
                Expect.isTrue (Array.max b > 0.5 * bound && Array.min b < -0.5 * bound) "bias spans the range"
                Expect.notEqual w[..63] b "weight and bias come from different seeds"
                Expect.notEqual (Model.Create(Conv2d(32, 64, 3, 1, 1, 1, 2, true), 4).Parameters["weight"].ToArray()) w "another seed"
            testCase "Conv1d starts as PyTorch's and has no bias when asked"
            <| fun () ->
                let model = Model.Create(Conv1d(5, 7, 4, ConvSpec.Default1d, false), 0)
                Expect.equal (model.Parameters |> Map.keys |> List.ofSeq) [ "weight" ] "parameter names"
                Expect.equal model.Parameters["weight"].Shape [| 7; 5; 4 |] "weight shape [O; C; k]"
                let w = model.Parameters["weight"].ToArray()
                Expect.isTrue (w |> Array.forall (fun v -> abs v <= 1.0 / sqrt 20.0)) "within 1/sqrt(5 x 4)"
            testCase "LeNet-5 has PyTorch's parameter names, shapes and count"
            <| fun () ->
                let model = Model.Create(Models.lenet5 (), 1, Float32)
                Expect.equal model.Parameters["0.weight"].Shape [| 6; 1; 5; 5 |] "0.weight"
                Expect.equal model.Parameters["3.weight"].Shape [| 16; 6; 5; 5 |] "3.weight"
                Expect.equal model.Parameters["3.bias"].Shape [| 16 |] "3.bias"
                // PyTorch's LeNet-5 of WORKLOADS.md: sum(p.numel() for p in m.parameters()) = 61706.
                Expect.equal model.ParameterCount 61706 "parameters"
                let x = Expr.var32 "input" [| 3; 1; 28; 28 |]
                Expect.equal (model.Forward x).Shape [| 3; 10 |] "output shape"
            testCase "LeNet-5 learns a slice of MNIST: the loss falls in a few compiled steps"
            <| fun () ->
                let train, _ = Datasets.mnistDefault ()
                let slice = Dataset.take [| 0..255 |] train
                let images = { slice with Features = Tensor.reshape [| 256; 1; 28; 28 |] slice.Features }
                let trainer = Trainer(Model.Create(Models.lenet5 (), 1, Float32), Loss.CrossEntropy, Adam 2e-3, 1)
                // PyTorch's initialisation leaves the ten classes near equally likely: a loss near ln 10.
                expectWithin 0.1 (log 10.0) (trainer.Evaluate images).Loss "loss before training"
                let history = trainer.Fit(images, { FitOptions.Create(6, 32) with Quiet = true })
                let first, last = history.Epochs.Head, List.last history.Epochs
                // 48 Adam steps on 256 images (seeds 1-3: the last epoch's mean loss 0.27-0.33, accuracy 0.90-0.93).
                Expect.isTrue (last.Loss < 0.3 * first.Loss) (sprintf "loss went from %g to %g" first.Loss last.Loss)
                Expect.isTrue (last.Accuracy.Value > 0.8) (sprintf "last epoch's training accuracy %g" last.Accuracy.Value)
                Expect.equal trainer.CompiledPlans 1 "one plan for one batch shape"
            testCase "the layers describe themselves with their hyper-parameters"
            <| fun () ->
                Expect.equal
                    ((Conv2d(1, 6, 5, 1, 2)).Describe())
                    "Conv2d(1, 6, kernel=(5, 5), stride=(1, 1), padding=(2, 2), dilation=(1, 1), groups=1, bias=true)"
                    "Conv2d"
                Expect.equal
                    ((Conv1d(4, 8, 3, 2, 1, 1, 4, false)).Describe())
                    "Conv1d(4, 8, kernel=(3,), stride=(2,), padding=(1,), dilation=(1,), groups=4, bias=false)"
                    "Conv1d"
                Expect.equal ((MaxPool2d 2).Describe()) "MaxPool2d(kernel=(2, 2), stride=(2, 2), padding=(0, 0))" "MaxPool2d"
                Expect.equal ((AvgPool2d(3, 1, 1)).Describe()) "AvgPool2d(kernel=(3, 3), stride=(1, 1), padding=(1, 1))" "AvgPool2d"
                Expect.equal ((AdaptiveAvgPool2d 1).Describe()) "AdaptiveAvgPool2d(1, 1)" "AdaptiveAvgPool2d"
        ]
