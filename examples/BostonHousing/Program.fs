/// Seed 000 (MiniFlow): Boston housing, 13 standardised features -> 10 sigmoid units -> 1 output, mean
/// squared error, SGD with learning rate 1e-2 on batches of 11 drawn with replacement, 100 epochs of
/// n_train / 11 steps; tested on a held-out fifth.
module BostonHousing

open System.IO
open FuncFlow.Data
open FuncFlow.NN

[<EntryPoint>]
let main _ =
    let train, test = Datasets.bostonDefault () |> Datasets.split 0 0.2
    // Standardise with the training rows' statistics only, so the test fifth stays unseen.
    let scaler = Standardizer.fit train.Features
    let train, test = Standardizer.applyTo scaler train, Standardizer.applyTo scaler test
    let batch = 11
    let stepsPerEpoch = train.Count / batch
    printfn
        "Total number of examples = %d (train %d, test %d), %d steps per epoch"
        (train.Count + test.Count)
        train.Count
        test.Count
        stepsPerEpoch
    // MiniFlow draws its weights with np.random.randn: normal with standard deviation 1, biases zero.
    let model =
        Model.Create(Sequential(Linear(13, 10, Normal 1.0), Sigmoid(), Linear(10, 1, Normal 1.0)), 0)
    let trainer = Trainer(model, Loss.MSE, SGD 1e-2, 0)
    let plot = Path.Combine(__SOURCE_DIRECTORY__, "output", "boston-loss.svg")
    let options =
        { FitOptions.Create(100, batch) with
            Sampling = WithReplacement stepsPerEpoch
            LiveProgress = Some false
            PlotPath = Some plot
        }
    trainer.Fit(train, options) |> ignore
    printfn "plot: %s" plot
    printfn "test mse: %.4f" (trainer.Evaluate(test).Loss)
    0
