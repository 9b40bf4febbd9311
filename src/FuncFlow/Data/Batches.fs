namespace FuncFlow.Data

open System

/// Mini-batches of a data set, for one epoch of training.
[<RequireQualifiedAccess>]
module Batches =
    let private check (op: string) (batchSize: int) (ds: Dataset) =
        if batchSize <= 0 then
            invalidArg "batchSize" (sprintf "%s: batchSize must be positive, got %d" op batchSize)
        Dataset.rows op ds

    /// How many batches an epoch of n rows has.
    let internal count (dropLast: bool) (batchSize: int) (n: int) = if dropLast then n / batchSize else (n + batchSize - 1) / batchSize

    /// Each batch is copied out of the data set when it is reached, so an epoch holds one batch at a time.
    let private ofOrder (op: string) (dropLast: bool) (batchSize: int) (order: int[]) (ds: Dataset) : seq<Dataset> =
        let n = order.Length
        Seq.init (count dropLast batchSize n) (fun b ->
            let start = b * batchSize
            Dataset.takeIn op order[start .. min n (start + batchSize) - 1] ds)

    /// Consecutive batches of batchSize rows in the data set's order; when dropLast is true a final batch
    /// smaller than batchSize is left out. Raises ArgumentException for batchSize <= 0 or mismatched row counts.
    let sequentialWith (dropLast: bool) (batchSize: int) (ds: Dataset) : seq<Dataset> =
        let n = check "Batches.sequential" batchSize ds
        ofOrder "Batches.sequential" dropLast batchSize (Array.init n id) ds

    /// Consecutive batches of batchSize rows in the data set's order, the last one possibly smaller.
    let sequential (batchSize: int) (ds: Dataset) : seq<Dataset> = sequentialWith false batchSize ds

    /// One epoch in a seeded random order: every row appears in exactly one batch (with dropLast false), and the
    /// same seed gives the same batches. Pass a different seed per epoch (e.g. seed + epoch) to reshuffle.
    /// Raises ArgumentException for batchSize <= 0 or mismatched row counts.
    let shuffledWith (dropLast: bool) (seed: int) (batchSize: int) (ds: Dataset) : seq<Dataset> =
        let n = check "Batches.shuffled" batchSize ds
        ofOrder "Batches.shuffled" dropLast batchSize (Dataset.permutation seed n) ds

    /// One epoch in a seeded random order, the last batch possibly smaller (see shuffledWith).
    let shuffled (seed: int) (batchSize: int) (ds: Dataset) : seq<Dataset> = shuffledWith false seed batchSize ds

    /// batchSize rows drawn uniformly with replacement, as scikit-learn's resample(X, y, n_samples=batchSize)
    /// that the MiniFlow seed trains with. Raises ArgumentException for batchSize <= 0 or an empty data set.
    let sampleWithReplacement (rng: Random) (batchSize: int) (ds: Dataset) : Dataset =
        let n = check "Batches.sampleWithReplacement" batchSize ds
        if n = 0 then
            invalidArg "ds" "Batches.sampleWithReplacement: cannot sample from a data set with 0 rows"
        Dataset.takeIn "Batches.sampleWithReplacement" (Array.init batchSize (fun _ -> rng.Next n)) ds
