/// Layers back from their descriptions (LayerDescription.parse), as model files record them.
module FuncFlow.Tests.NN.LayerDescriptionTests

open System
open Expecto
open FuncFlow
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support

/// Every built-in layer, each with arguments away from its defaults where it has them.
let private layers: Layer list =
    [
        Linear(3, 4)
        Linear(3, 4, Xavier, false)
        Linear(5, 2, Normal 0.25)
        Sigmoid()
        Tanh()
        ReLU()
        GELU()
        SiLU()
        LogSigmoid()
        Softplus()
        Softmax 0
        LeakyReLU 0.2
        ELU 1.5
        Dropout 0.25
        Embedding(10, 4)
        BatchNorm1d 6
        BatchNorm2d(3, 1e-3, 0.2, false)
        BatchNorm1d.CumulativeAverage(4, 1e-4, true)
        BatchNorm2d.CumulativeAverage(2, 1e-5, false)
        LayerNorm 5
        LayerNorm([| 2; 3 |], 1e-6, false)
        GroupNorm(2, 6)
        GroupNorm(3, 6, 1e-4, false)
        Flatten()
        Flatten 2
        Conv1d(2, 4, 3, 2, 1)
        Conv1d(4, 6, 3, { Stride = [ 1 ]; Padding = [ 2 ]; Dilation = [ 2 ]; Groups = 2 }, false)
        Conv2d(1, 6, 5, 1, 2)
        Conv2d(4, 8, [ 3; 2 ], { Stride = [ 2; 1 ]; Padding = [ 1; 0 ]; Dilation = [ 1; 2 ]; Groups = 4 }, false)
        MaxPool2d 2
        MaxPool2d(3, 2, 1)
        AvgPool2d(PoolSpec.Create [ 2; 3 ])
        AdaptiveAvgPool2d 1
        AdaptiveAvgPool2d(3, 2)
        MultiheadAttention(8, 2)
        MultiheadAttention(8, 4, true)
        SinusoidalPositionalEncoding(16, 8)
        LearnedPositionalEmbedding(16, 8)
        TransformerBlock(8, 2, false)
        TransformerBlock(8, 2, 16, true, BlockActivation.GeluTanh)
        RNNCell(3, 5)
        RNNCell(3, 5, true, true)
        GRUCell(3, 5)
        LSTMCell(3, 5)
        RNN(3, 5)
        RNN(3, 5, true, { RecurrentOptions.Default with Layers = 2; Bidirectional = true })
        GRU(3, 5, { RecurrentOptions.Default with BatchFirst = true })
        LSTM(3, 5, { RecurrentOptions.Default with Layers = 3; Bidirectional = true; BatchFirst = true })
        Models.lenet5 ()
        Sequential(Linear(2, 3), Sequential(ReLU(), Dropout 0.5, Sequential(Linear(3, 1, He, false))), Sigmoid())
    ]

/// Parameter and buffer names with their shapes: the layer's structure as a model file stores it.
let private stateOf (layer: Layer) =
    [
        for name, t in layer.Parameters 7 -> "parameter " + name, t.Shape
        for name, t in layer.Buffers() -> "buffer " + name, t.Shape
    ]

let private refused (description: string) (parts: string list) =
    let e = throwsAny<ArgumentException>(fun () -> LayerDescription.parse description |> ignore)
    for part in parts do
        Expect.stringContains e.Message part (sprintf "the error for '%s'" description)

[<Tests>]
let tests =
    moduleTests
        "LayerDescription"
        [
            test "every built-in layer comes back from its description: same type, description, parameters and buffers" {
                for layer in layers do
                    let description = layer.Describe()
                    let back = LayerDescription.parse description
                    Expect.equal (back.GetType()) (layer.GetType()) (description + ": type")
                    Expect.equal (back.Describe()) description "description"
                    Expect.equal (stateOf back) (stateOf layer) (description + ": parameter and buffer names and shapes")
            }

            test "the round trip covers every concrete layer type of the core" {
                let covered = layers |> List.map (fun l -> l.GetType().FullName) |> Set.ofList
                let concrete =
                    typeof<Layer>.Assembly.GetExportedTypes()
                    |> Array.filter (fun t -> t.IsSubclassOf typeof<Layer> && not t.IsAbstract)
                    // Bases of RNNCell/GRUCell/LSTMCell and RNN/GRU/LSTM, which describe themselves as those.
                    |> Array.filter (fun t -> t <> typeof<RecurrentCell> && t <> typeof<RecurrentLayer>)
                for t in concrete do
                    Expect.isTrue (covered.Contains t.FullName) (sprintf "layer type %s has a round-trip case" t.Name)
            }

            test "a parsed model gives the original's outputs from the same parameters" {
                let original = Model.Create(Models.lenet5 (), 4)
                let parsed = Model(LayerDescription.parse (original.Layer.Describe()), original.Parameters, Float64)
                let x = Tensor.randNormal Float64 2 [| 2; 1; 28; 28 |] 0.0 1.0
                Expect.equal ((parsed.Predict x).ToArray()) ((original.Predict x).ToArray()) "outputs"
            }

            test "an unknown layer, a wrong argument and runaway nesting are ArgumentExceptions naming them" {
                refused "Bilinear" [ "unknown layer 'Bilinear'"; "Linear"; "Conv2d"; "(in 'Bilinear')" ]
                refused "Sequential(ReLU(), Bilinear(3))" [ "unknown layer 'Bilinear'" ]
                refused "Linear(4)" [ "Linear"; "expected 3 positional arguments, got 1" ]
                refused "LeakyReLU(abc)" [ "'abc' is not a number" ]
                refused "Conv2d(3, 8, kernel=(3, 3))" [ "Conv2d"; "missing argument 'stride'" ]
                refused "Dropout(0.5, rate=2)" [ "unknown argument 'rate'" ]
                refused "Linear(3, 4, Uniform)" [ "'Uniform' is not an initialisation" ]
                refused "Sequential(ReLU()" [ "unbalanced parentheses" ]
                refused "" [ "empty" ]
                refused (String.replicate 100 "Sequential(" + "ReLU()" + String.replicate 100 ")") [ "nested more than 64 deep" ]
            }
        ]
