namespace FuncFlow.NN

open System
open FuncFlow

/// Inverted dropout: in training, each element is zeroed with probability p and the rest are scaled by
/// 1 / (1 - p), so evaluation is the identity. The mask is a variable refilled from the trainer's seeded
/// generator before each step.
[<Sealed>]
type Dropout(p: float) =
    inherit Layer()
    do if not (p >= 0.0 && p < 1.0) then invalidArg "p" (sprintf "Dropout: p must be in [0, 1), got %g" p)

    /// The probability of zeroing an element.
    member _.P = p

    override _.Forward(scope: Scope, x: Expr) =
        if not scope.Training || p = 0.0 then
            x
        else
            let keep = 1.0 / (1.0 - p)
            x
            * scope.Noise("mask", x.Shape, Func<Random, float>(fun rng -> if rng.NextDouble() < p then 0.0 else keep))

    override _.Describe() = sprintf "Dropout(%g)" p
