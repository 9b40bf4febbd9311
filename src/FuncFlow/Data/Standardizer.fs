namespace FuncFlow.Data

open System
open System.Collections.Generic
open FuncFlow

/// Per-column mean and standard deviation fitted on training features, to scale every split the same way.
type Standardizer =
    {
        /// The mean of each column (read-only: apply uses it later).
        Mean: IReadOnlyList<float>
        /// The population standard deviation of each column; 1 for a constant column, so it maps to 0, not NaN.
        Std: IReadOnlyList<float>
    }

/// Fitting and applying a Standardizer.
[<RequireQualifiedAccess>]
module Standardizer =
    let private columns (op: string) (features: Tensor) =
        if features.Rank <> 2 then
            invalidArg "features" (sprintf "%s: expected features of shape [n; d], got %s" op (Shape.show features.ShapeRef))
        features.ShapeRef[0], features.ShapeRef[1]

    /// Fits the column means and standard deviations (as scikit-learn's StandardScaler, dividing by n) of [n; d]
    /// features. A column whose spread is only rounding noise gets std 1. Raises ArgumentException for no rows.
    let fit (features: Tensor) : Standardizer =
        let n, d = columns "Standardizer.fit" features
        if n = 0 then invalidArg "features" "Standardizer.fit: needs at least one row, got 0"
        let x = features.ToArray()
        // Row-major loops: one pass for the sums, one for the squared deviations (two-pass is more accurate).
        let mean = Array.zeroCreate d
        for k in 0 .. x.Length - 1 do
            mean[k % d] <- mean[k % d] + x[k]
        for j in 0 .. d - 1 do
            mean[j] <- mean[j] / float n
        let sq = Array.zeroCreate d
        for k in 0 .. x.Length - 1 do
            let e = x[k] - mean[k % d]
            sq[k % d] <- sq[k % d] + e * e
        let std =
            Array.init d (fun j ->
                let s = sqrt (sq[j] / float n)
                // A constant column's mean can be off by an ulp, leaving a tiny std that would blow noise up to +-1.
                if s <= 1e-12 * max 1.0 (abs mean[j]) then 1.0 else s)
        { Mean = Array.AsReadOnly mean; Std = Array.AsReadOnly std }

    /// (x - mean) / std column by column, keeping the dtype; raises ArgumentException when the column count differs.
    let apply (s: Standardizer) (features: Tensor) : Tensor =
        let n, d = columns "Standardizer.apply" features
        if d <> s.Mean.Count || d <> s.Std.Count then
            invalidArg
                "features"
                (sprintf "Standardizer.apply: features have %d columns but the standardizer was fitted on %d" d s.Mean.Count)
        let x = features.ToArray()
        // Plain arrays in the loop: an interface call per element costs more than the arithmetic.
        let mean, std = Array.ofSeq s.Mean, Array.ofSeq s.Std
        let y = Array.init (n * d) (fun k -> (x[k] - mean[k % d]) / std[k % d])
        Tensor.ofFloats features.DType [| n; d |] y

    /// The same data set with its features standardized.
    let applyTo (s: Standardizer) (ds: Dataset) : Dataset = { ds with Features = apply s ds.Features }
