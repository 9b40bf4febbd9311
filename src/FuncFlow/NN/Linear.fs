namespace FuncFlow.NN

open FuncFlow

/// A fully connected layer y = x W^T + b, W of shape [outputs; inputs] (PyTorch's layout, so a state dict
/// loads as it is), b of [outputs] initialised to zeros. Works on any input whose last axis has `inputs`
/// elements. Plans read W^T through a GEMM flag, so the layout costs no copy in the forward pass.
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
            // Drawn as [inputs; outputs] and transposed, so a seed gives the weights it gave in that layout.
            let drawn = Tensor.toArray2D (init.Sample(seed, [| inputs; outputs |], inputs, outputs))
            yield "weight", Tensor.ofArray2D (Array2D.init outputs inputs (fun o i -> drawn[i, o]))
            if useBias then yield "bias", Tensor.zeros Float64 [| outputs |]
        ]

    override _.Forward(scope: Scope, x: Expr) =
        let y = Expr.matmul x (Expr.transpose (scope.Param "weight"))
        if useBias then y + scope.Param "bias" else y

    // ", bias=false" only without a bias, so that descriptions of layers with one (model files) are as before.
    override _.Describe() = sprintf "Linear(%d, %d, %A%s)" inputs outputs init (if useBias then "" else ", bias=false")
