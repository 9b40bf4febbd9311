namespace FuncFlow.NN

open FuncFlow

/// A fully connected layer y = x W + b, W of shape [inputs; outputs] (the seeds' layout), b of [outputs]
/// initialised to zeros. Works on any input whose last axis has `inputs` elements.
[<Sealed>]
type Linear(inputs: int, outputs: int, init: Init, useBias: bool) =
    inherit Layer()
    do
        if inputs <= 0 || outputs <= 0 then
            invalidArg "inputs" (sprintf "Linear: sizes must be positive, got %d -> %d" inputs outputs)

    /// A layer with He initialisation and a bias (the Grokking seed's Linear).
    new(inputs, outputs) = Linear(inputs, outputs, He, true)
    /// A layer with the given initialisation and a bias.
    new(inputs, outputs, init) = Linear(inputs, outputs, init, true)

    /// The input size.
    member _.Inputs = inputs
    /// The output size.
    member _.Outputs = outputs
    /// The weight initialisation.
    member _.Init = init

    override _.Parameters(seed: int) =
        [
            yield "weight", init.Sample(seed, [| inputs; outputs |], inputs, outputs)
            if useBias then yield "bias", Tensor.zeros Float64 [| outputs |]
        ]

    override _.Forward(scope: Scope, x: Expr) =
        let y = Expr.matmul x (scope.Param "weight")
        if useBias then y + scope.Param "bias" else y

    override _.Describe() = sprintf "Linear(%d, %d, %A)" inputs outputs init
