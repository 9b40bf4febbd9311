/// An MLP 784-128-10 with ReLU, trained by Adam (lr 2e-3 decaying linearly to 0, batch 64) on MNIST in float32
/// for 5 epochs: the README's main command.
module MnistMlp

open System.IO
open System.Runtime
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN

[<EntryPoint>]
let main _ =
    let output = Path.Combine(__SOURCE_DIRECTORY__, "output")
    // Multicore JIT: the methods the last run compiled (recorded in output/) are compiled again on the idle core
    // while the data loads, so that from the second run on the first epoch is hardly slower than the others.
    ProfileOptimization.SetProfileRoot(Directory.CreateDirectory(output).FullName)
    ProfileOptimization.StartProfile "mnist-mlp.jitprofile"
    let train, test = Datasets.mnistDefault ()
    // MNIST's usual normalisation, (x - 0.1307) / 0.3081, which centres the pixels and helps the first layer.
    let train, test = Dataset.normalize 0.1307 0.3081 train, Dataset.normalize 0.1307 0.3081 test
    let layers = Sequential(Linear(784, 128), ReLU(), Linear(128, 10))
    let model = Model.Create(layers, 1, Float32)
    printfn "%O, trained on %d images, tested on %d" model train.Count test.Count
    let epochs, batch = 5, 64
    // A decaying rate lets the last epoch settle into a minimum instead of hopping around it.
    let steps = epochs * ((train.Count + batch - 1) / batch)
    let trainer = Trainer(model, Loss.CrossEntropy, Scheduled(Adam 2e-3, LinearDecay steps), 1)
    let plot = Path.Combine(output, "mnist-mlp.svg")
    let history =
        trainer.Fit(train, { FitOptions.Create(epochs, batch) with Test = Some test; PlotPath = Some plot })
    for e in history.Epochs do
        printfn "epoch %d: %.2f s (%.0f samples/s)" e.Epoch e.Seconds e.SamplesPerSecond
    trainer.Model.Save(Path.Combine(output, "mnist-mlp.safetensors"))
    printfn "plot: %s" plot
    printfn "test accuracy: %.4f" (trainer.Evaluate(test).Accuracy.Value)
    0
