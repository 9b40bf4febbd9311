namespace FuncFlow.Data

open System
open FuncFlow

/// A data set: row i of Features and row i of Targets describe example i.
type Dataset =
    {
        /// The inputs, [n; d] (or [n; ...]), one row per example.
        Features: Tensor
        /// The targets: [n] class indices for classification, [n; k] values for regression.
        Targets: Tensor
    }

    /// The number of examples (rows).
    member d.Count = if d.Features.Rank = 0 then 0 else d.Features.ShapeRef[0]

/// Functions on data sets.
[<RequireQualifiedAccess>]
module Dataset =
    /// The number of rows, or an ArgumentException naming the operation when features and targets disagree.
    let internal rows (op: string) (ds: Dataset) : int =
        if ds.Features.Rank = 0 || ds.Targets.Rank = 0 then
            invalidArg
                "ds"
                (sprintf
                    "%s: features and targets need a row axis, got shapes %s and %s"
                    op
                    (Shape.show ds.Features.ShapeRef)
                    (Shape.show ds.Targets.ShapeRef))
        let n = ds.Features.ShapeRef[0]
        if ds.Targets.ShapeRef[0] <> n then
            invalidArg
                "ds"
                (sprintf
                    "%s: features have %d rows but targets have %d (shapes %s and %s)"
                    op
                    n
                    ds.Targets.ShapeRef[0]
                    (Shape.show ds.Features.ShapeRef)
                    (Shape.show ds.Targets.ShapeRef))
        n

    /// A data set from features and targets; raises ArgumentException when their row counts differ.
    let create (features: Tensor) (targets: Tensor) : Dataset =
        let ds = { Features = features; Targets = targets }
        rows "Dataset.create" ds |> ignore
        ds

    /// A tensor of `rows` rows shaped as t's, zero-filled, for gatherInto.
    let private allocRows (rows: int) (t: Tensor) : Tensor =
        let shape = Array.copy t.ShapeRef
        shape[0] <- rows
        match t.Storage with
        | TensorData.F64 _ -> Tensor.ofStorage shape (TensorData.F64(Array.zeroCreate (Shape.size shape)))
        | TensorData.F32 _ -> Tensor.ofStorage shape (TensorData.F32(Array.zeroCreate (Shape.size shape)))

    /// Copies rows indices[start .. start + dst.rows - 1] of src into dst's storage (same dtype and row shape).
    let private gatherInto (src: Tensor) (indices: int[]) (start: int) (dst: Tensor) =
        let rowSize = Shape.size src.ShapeRef[1..]
        for k in 0 .. dst.ShapeRef[0] - 1 do
            Array.Copy(src.Data, indices[start + k] * rowSize, dst.Data, k * rowSize, rowSize)

    let private gather (t: Tensor) (indices: int[]) : Tensor =
        let dst = allocRows indices.Length t
        gatherInto t indices 0 dst
        dst

    /// The internal form of take, with the calling function's name for messages.
    let internal takeIn (op: string) (indices: int[]) (ds: Dataset) : Dataset =
        let n = rows op ds
        for i in indices do
            if i < 0 || i >= n then
                invalidArg "indices" (sprintf "%s: row index %d is out of range for a data set of %d rows" op i n)
        { Features = gather ds.Features indices; Targets = gather ds.Targets indices }

    /// Consecutive batches of rows in the given order gathered into buffers reused from one batch to the next (one
    /// pair per batch size), for a consumer that copies each batch before asking for the next, as the trainer
    /// does: an epoch then allocates no array per batch. Internal, since each batch shares storage with the next.
    let internal batchesInto (order: int[]) (batchSize: int) (count: int) (ds: Dataset) : seq<Dataset> =
        let buffers = Collections.Generic.Dictionary<int, Dataset>()
        Seq.init count (fun b ->
            let start = b * batchSize
            let rows = min order.Length (start + batchSize) - start
            let batch =
                match buffers.TryGetValue rows with
                | true, d -> d
                | _ ->
                    let d = { Features = allocRows rows ds.Features; Targets = allocRows rows ds.Targets }
                    buffers[rows] <- d
                    d
            gatherInto ds.Features order start batch.Features
            gatherInto ds.Targets order start batch.Targets
            batch)

    /// The rows at the given indices, in that order (repeats allowed), as a new data set.
    let take (indices: int[]) (ds: Dataset) : Dataset = takeIn "Dataset.take" indices ds

    /// The features as (x - mean) / std with one mean and standard deviation for every feature, as torchvision's
    /// Normalize((mean,), (std,)) (MNIST's 0.1307 and 0.3081); targets unchanged. Computed in the features' dtype
    /// in one pass: one new array, no intermediate copies. Raises ArgumentException unless mean is finite and std
    /// finite and positive.
    let normalize (mean: float) (std: float) (ds: Dataset) : Dataset =
        if not (Double.IsFinite mean && Double.IsFinite std && std > 0.0) then
            invalidArg "std" (sprintf "Dataset.normalize: mean must be finite and std finite and positive, got mean=%g std=%g" mean std)
        let features =
            match ds.Features.Storage with
            | TensorData.F64 a -> TensorData.F64(Array.map (fun v -> (v - mean) / std) a)
            | TensorData.F32 a ->
                let m, s = float32 mean, float32 std
                TensorData.F32(Array.map (fun v -> (v - m) / s) a)
        { ds with Features = Tensor.ofStorage (Array.copy ds.Features.ShapeRef) features }

    /// A permutation of 0..n-1 from a seeded generator (Fisher-Yates): the same seed gives the same order.
    let internal permutation (seed: int) (n: int) : int[] =
        let rng = Random(seed)
        let p = Array.init n id
        for i in n - 1 .. -1 .. 1 do
            let j = rng.Next(i + 1)
            let t = p[i]
            p[i] <- p[j]
            p[j] <- t
        p
