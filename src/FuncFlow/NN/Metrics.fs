namespace FuncFlow.NN

open FuncFlow

/// Metrics computed from values (tensors), outside the graph.
[<RequireQualifiedAccess>]
module Metrics =
    /// The index of the largest value in each row of [n; k] scores (the first one on ties).
    let argmax (scores: Tensor) : int[] =
        if scores.Rank <> 2 then
            invalidArg "scores" (sprintf "Metrics.argmax: expected [n; k] scores, got %s" (Shape.show scores.Shape))
        let k = scores.Shape[1]
        let v = scores.ToArray()
        Array.init scores.Shape[0] (fun i ->
            let mutable best = 0
            for j in 1 .. k - 1 do
                if v[i * k + j] > v[i * k + best] then best <- j
            best)

    /// The fraction of rows of [n; k] scores whose argmax equals the integer label in [n].
    let accuracy (scores: Tensor) (labels: Tensor) : float =
        let predicted = argmax scores
        let y = labels.ToArray()
        if y.Length <> predicted.Length then
            invalidArg "labels" (sprintf "Metrics.accuracy: %d rows of scores but %d labels" predicted.Length y.Length)
        if y.Length = 0 then
            0.0
        else
            float (Seq.sum (Seq.init y.Length (fun i -> if float predicted[i] = y[i] then 1 else 0)))
            / float y.Length

/// A running mean of per-batch values weighted by batch size: the mean loss over an epoch whose last
/// batch is smaller. Immutable; Add returns the updated mean.
type MeanMetric =
    {
        /// The weighted sum of values.
        Total: float
        /// The total weight (examples).
        Count: int
    }

    /// No values yet.
    static member Empty = { Total = 0.0; Count = 0 }
    /// Adds a batch's mean value, weighted by its number of examples.
    member m.Add(value: float, examples: int) = { Total = m.Total + value * float examples; Count = m.Count + examples }
    /// The mean so far (0 when empty).
    member m.Value = if m.Count = 0 then 0.0 else m.Total / float m.Count
