namespace FuncFlow.NN

open System
open FuncFlow

/// Layers applied in order, each to the previous one's output. Parameters are named by position
/// ("0.weight", "2.bias"), and each layer draws its initial values from its own seed derived from the model's.
[<Sealed>]
type Sequential([<ParamArray>] layerArray: Layer[]) =
    inherit Layer()
    let layers = List.ofArray layerArray

    /// The layers, in order.
    member _.Layers = layers

    override _.Parameters(seed: int) =
        // One generator hands out the children's seeds, so equal layers get different weights.
        let rng = Random(seed)
        layers
        |> List.mapi (fun i layer ->
            let childSeed = rng.Next()
            layer.Parameters childSeed |> List.map (fun (name, t) -> sprintf "%d.%s" i name, t))
        |> List.concat

    override _.Buffers() =
        layers
        |> List.mapi (fun i layer -> layer.Buffers() |> List.map (fun (name, t) -> sprintf "%d.%s" i name, t))
        |> List.concat

    override _.Forward(scope: Scope, x: Expr) =
        layers |> List.indexed |> List.fold (fun h (i, layer) -> layer.Forward(scope.Child(string i), h)) x

    override _.Describe() = "Sequential(" + String.Join(", ", layers |> List.map (fun l -> l.Describe())) + ")"
