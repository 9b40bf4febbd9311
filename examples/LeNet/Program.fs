/// LeNet-5 on MNIST in float32: conv 1->6 (5x5, padding 2), ReLU, max-pool 2; conv 6->16 (5x5), ReLU, max-pool 2;
/// flatten; 400-120-84-10 with ReLU; Adam (lr 1e-3 decaying linearly to 0, batch 64).
///
///     dotnet run -c Release --project examples/LeNet [-- --seed N --epochs N --train N]
///
/// --train N trains on the first N images only (a quick check of the code, not a result).
module LeNet

open System
open System.IO
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN

/// Rows of 784 pixels as [n; 1; 28; 28] images (one channel), scaled as MNIST is usually: (x - 0.1307) / 0.3081.
let images (ds: Dataset) =
    let scaled = Dataset.normalize 0.1307 0.3081 ds
    { scaled with Features = Tensor.reshape [| ds.Count; 1; 28; 28 |] scaled.Features }

[<EntryPoint>]
let main argv =
    let option = CommandLine.intOption argv
    let seed, epochs = option "--seed" 1, option "--epochs" 8
    let train, test = Datasets.mnistDefault ()
    let train = Dataset.take [| 0 .. (min train.Count (option "--train" train.Count)) - 1 |] train
    let train, test = images train, images test
    let model = Model.Create(Models.lenet5 (), seed, Float32)
    printfn "%O, seed %d, trained on %d images, tested on %d" model seed train.Count test.Count
    let batch = 64
    let steps = epochs * ((train.Count + batch - 1) / batch)
    let trainer = Trainer(model, Loss.CrossEntropy, Scheduled(Adam 1e-3, LinearDecay steps), seed)
    let output = Path.Combine(__SOURCE_DIRECTORY__, "output")
    let plot = Path.Combine(output, "lenet.svg")
    let history =
        trainer.Fit(train, { FitOptions.Create(epochs, batch) with Test = Some test; PlotPath = Some plot })
    for e in history.Epochs do
        printfn "epoch %d: %.2f s (%.0f samples/s)" e.Epoch e.Seconds e.SamplesPerSecond
    printfn "time per epoch: %.1f s (mean of %d)" (history.Epochs |> List.averageBy (fun e -> e.Seconds)) epochs
    trainer.Model.Save(Path.Combine(output, "lenet.safetensors"))
    printfn "plot: %s" plot
    printfn "test accuracy: %.4f" (trainer.Evaluate(test).Accuracy.Value)
    0
