namespace FuncFlow.NN

open FuncFlow

/// Flattens the axes from `startAxis` on into one (PyTorch's Flatten; start 1 keeps the batch axis).
[<Sealed>]
type Flatten(startAxis: int) =
    inherit Layer()
    do
        if startAxis < 0 then
            invalidArg "startAxis" (sprintf "Flatten: the start axis must be non-negative, got %d" startAxis)

    /// Flattens everything but the batch axis 0.
    new() = Flatten(1)

    /// The first flattened axis.
    member _.StartAxis = startAxis

    override _.Forward(_: Scope, x: Expr) =
        let shape = x.Shape
        if startAxis >= shape.Length then
            invalidArg
                "input"
                (sprintf "Flatten(%d): expected an input of rank above %d, got shape %s" startAxis startAxis (Shape.show shape))
        Expr.reshape (Array.append shape[.. startAxis - 1] [| Shape.size shape[startAxis..] |]) x

    override _.Describe() = sprintf "Flatten(%d)" startAxis
