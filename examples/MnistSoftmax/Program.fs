/// Seed 001 (lecture 10): softmax regression on MNIST optimised three ways, as the lecture does: random
/// search, random local steps, and gradient descent; plus the lecture's hand-derived gradient checked
/// against FuncFlow's.
module MnistSoftmax

open FuncFlow
open FuncFlow.Data
open FuncFlow.NN

[<EntryPoint>]
let main _ =
    let train, test = Datasets.mnistDefault ()
    let layer = Linear(784, 10, Normal 0.01)
    let fresh = Model.Create(layer, 0, Float32)
    let evaluator = Evaluator(Loss.CrossEntropy)
    let lossOf (m: Model) = evaluator.Evaluate(m, test).Loss
    let accuracyOf (m: Model) = evaluator.Evaluate(m, test).Accuracy.Value
    let withWeights (w: Tensor) (b: Tensor) = fresh.WithParameters(Map [ "weight", w; "bias", b ])

    // Method 1: random search, keeping the weights with the lowest loss (the lecture scores on the test set).
    let normal seed (shape: int[]) = Tensor.randNormal Float32 seed shape 0.0 1.0
    // Candidates are drawn [inputs; outputs], as the lecture's W, and given to Linear as [outputs; inputs].
    let transposed (t: Tensor) =
        let a = Tensor.toArray2D t
        Tensor.cast Float32 (Tensor.ofArray2D (Array2D.init (Array2D.length2 a) (Array2D.length1 a) (fun i j -> a[j, i])))
    let candidates =
        [
            for i in 0..9 -> withWeights (transposed (normal (2 * i) [| 784; 10 |])) (normal (2 * i + 1) [| 10 |])
        ]
    let scored = candidates |> List.map (fun m -> m, lossOf m)
    scored |> List.iter (snd >> printfn "%.4f")
    let best = scored |> List.minBy snd |> fst
    let searchAccuracy = accuracyOf best

    // Method 2: random local steps of size 0.1 from the best random weights, kept only when the loss falls.
    let perturb seed (t: Tensor) =
        let noise = (normal seed t.Shape).ToArray32()
        Tensor.create32 t.Shape (Array.map2 (fun v n -> v + 0.1f * n) (t.ToArray32()) noise)
    let refined, refinedLoss =
        [ 0..29 ]
        |> List.fold
            (fun (m: Model, l) i ->
                let trial =
                    withWeights (perturb (100 + 2 * i) m.Parameters["weight"]) (perturb (101 + 2 * i) m.Parameters["bias"])
                let tl = lossOf trial
                printfn "%.4f" tl
                if tl < l then trial, tl else m, l)
            (best, lossOf best)
    printfn "best local-step loss: %.4f" refinedLoss
    let localAccuracy = accuracyOf refined

    // The lecture's hand-derived gradient: (softmax(XW + b) - onehot(y)) / n, times the inputs.
    let batch = (Batches.sequential 64 train |> Seq.head)
    let x = Expr.var32 "x" batch.Features.Shape
    let y = Expr.var32 "y" batch.Targets.Shape
    // Linear's weight is [outputs; inputs] (PyTorch's layout): logits = x W^T + b.
    let w = Expr.var32 "weight" [| 10; 784 |]
    let b = Expr.var32 "bias" [| 10 |]
    let logits = Expr.matmul x (Expr.transpose w) + b
    let hand = Expr.matmul (Expr.transpose ((Expr.softmax 1 logits - Expr.oneHot 10 y) / 64.0)) x
    let auto = (Grad.wrt [ w ] (Losses.crossEntropy logits y))[w]
    let env =
        Eval.bindings
            [
                "x", batch.Features
                "y", batch.Targets
                "weight", fresh.Parameters["weight"]
                "bias", fresh.Parameters["bias"]
            ]
    let diff = Eval.evaluate env (Expr.max (Expr.abs (hand - auto))) |> Tensor.item
    printfn "max |hand-derived gradient - FuncFlow gradient| = %.3g" diff

    // Method 3: gradient descent, learning rate 0.1, batches of 64, 10 epochs.
    let trainer = Trainer(fresh, Loss.CrossEntropy, SGD 0.1, 0)
    let plot = System.IO.Path.Combine(__SOURCE_DIRECTORY__, "output", "mnist-softmax.svg")
    trainer.Fit(train, { FitOptions.Create(10, 64) with PlotPath = Some plot }) |> ignore
    let gdAccuracy = trainer.Evaluate(test).Accuracy.Value
    printfn "plot: %s" plot
    printfn "%-16s %-16s %-16s" "random search" "random steps" "gradient descent"
    printfn "%-16.4f %-16.4f %-16.4f" searchAccuracy localAccuracy gdAccuracy
    printfn "test accuracy: %.4f" gdAccuracy
    0
