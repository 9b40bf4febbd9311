/// Seed 002 (Grokking Deep Learning, chapter 13): Sequential([Linear(2, 3), Linear(3, 1)]) trained with
/// MSELoss (summed over the batch axis) and SGD (alpha 0.05) for 10 iterations on the seed's four examples.
/// The initial weights are the ones numpy's seed 42 gives the seed's code, so the losses match its print-out.
module GrokkingNetwork

open FuncFlow
open FuncFlow.NN

[<EntryPoint>]
let main _ =
    let data = Tensor.ofRows [| [| 0.0; 0.0 |]; [| 0.0; 1.0 |]; [| 1.0; 0.0 |]; [| 1.0; 1.0 |] |]
    let target = Tensor.ofRows [| [| 0.0 |]; [| 1.0 |]; [| 0.0 |]; [| 1.0 |] |]
    let model =
        Model
            .Create(Sequential(Linear(2, 3), Linear(3, 1)), 42)
            .WithParameters(
                Map
                    [
                        // The seed's weights, in PyTorch's [outputs; inputs] layout (the seed prints them transposed).
                        "0.weight",
                        Tensor.ofRows
                            [|
                                [| 0.5437431604812986; 2.1416584322166123 |]
                                [| -0.615429769598336; -0.09462100189797196 |]
                                [| -1.1978064265539556; -0.9288281000339327 |]
                            |]
                        "0.bias", Tensor.zeros Float64 [| 3 |]
                        "1.weight", Tensor.ofRows [| [| -0.4742850103658774; -0.4287993519674308; -0.4665299517481739 |] |]
                        "1.bias", Tensor.zeros Float64 [| 1 |]
                    ]
            )
    // Forward, loss, backward and the SGD update are one compiled plan; each Run is one iteration.
    let step = TrainStep.Compile(model, Loss.SumSquaredError, SGD 0.05, data.Shape, target.Shape)
    let losses = [ for _ in 1..10 -> step.Run(data, target) ]
    for l in losses do
        printfn "[%.8f]" l
    printfn "loss after 10 iterations: %.8f (first %.8f)" (List.last losses) losses.Head
    0
