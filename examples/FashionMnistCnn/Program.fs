/// A small CNN on Fashion-MNIST in float32: two blocks of conv 3x3 (padding 1), batch norm, ReLU and max-pool 2
/// (1->16->32 channels), then 1568-128 with ReLU, dropout 0.3, 128-10; Adam (lr 2e-3 decaying linearly to 0,
/// batch 64). Batch norm trains on each batch's statistics and evaluates on its running ones.
///
///     dotnet run -c Release --project examples/FashionMnistCnn [-- --seed N --epochs N --train N]
///
/// --train N trains on the first N images only (a quick check of the code, not a result).
module FashionMnistCnn

open System.IO
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN

/// Rows of 784 pixels as [n; 1; 28; 28] images; batch norm after the first convolution makes scaling needless.
let images (ds: Dataset) = { ds with Features = Tensor.reshape [| ds.Count; 1; 28; 28 |] ds.Features }

[<EntryPoint>]
let main argv =
    let option = CommandLine.intOption argv
    let seed, epochs = option "--seed" 1, option "--epochs" 5
    let train, test = Datasets.fashionMnistDefault ()
    let train = Dataset.take [| 0 .. (min train.Count (option "--train" train.Count)) - 1 |] train
    let train, test = images train, images test
    let block inputs outputs : Layer list = [ Conv2d(inputs, outputs, 3, 1, 1); BatchNorm2d outputs; ReLU(); MaxPool2d 2 ]
    let layers =
        block 1 16
        @ block 16 32
        @ [ Flatten(); Linear(32 * 7 * 7, 128); ReLU(); Dropout 0.3; Linear(128, 10) ]
    let model = Model.Create(Sequential(Array.ofList layers), seed, Float32)
    printfn "fashion-mnist: %O, seed %d, trained on %d images, tested on %d" model seed train.Count test.Count
    let batch = 64
    let steps = epochs * ((train.Count + batch - 1) / batch)
    let trainer = Trainer(model, Loss.CrossEntropy, Scheduled(Adam 2e-3, LinearDecay steps), seed)
    let output = Path.Combine(__SOURCE_DIRECTORY__, "output")
    let plot = Path.Combine(output, "fashion-mnist-cnn.svg")
    let history =
        trainer.Fit(train, { FitOptions.Create(epochs, batch) with Test = Some test; PlotPath = Some plot })
    for e in history.Epochs do
        printfn "epoch %d: %.2f s (%.0f samples/s)" e.Epoch e.Seconds e.SamplesPerSecond
    printfn "time per epoch: %.1f s (mean of %d)" (history.Epochs |> List.averageBy (fun e -> e.Seconds)) epochs
    trainer.Model.Save(Path.Combine(output, "fashion-mnist-cnn.safetensors"))
    printfn "plot: %s" plot
    printfn "test accuracy: %.4f" (trainer.Evaluate(test).Accuracy.Value)
    0
