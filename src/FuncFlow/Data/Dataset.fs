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

    let private gather (t: Tensor) (indices: int[]) : Tensor =
        let rowSize = Shape.size t.ShapeRef[1..]
        let pick (src: 'T[]) : 'T[] =
            let dst = Array.zeroCreate<'T>(indices.Length * rowSize)
            indices |> Array.iteri (fun k i -> Array.Copy(src, i * rowSize, dst, k * rowSize, rowSize))
            dst
        let shape = Array.copy t.ShapeRef
        shape[0] <- indices.Length
        match t.Storage with
        | TensorData.F64 a -> Tensor.ofStorage shape (TensorData.F64(pick a))
        | TensorData.F32 a -> Tensor.ofStorage shape (TensorData.F32(pick a))

    /// The internal form of take, with the calling function's name for messages.
    let internal takeIn (op: string) (indices: int[]) (ds: Dataset) : Dataset =
        let n = rows op ds
        for i in indices do
            if i < 0 || i >= n then
                invalidArg "indices" (sprintf "%s: row index %d is out of range for a data set of %d rows" op i n)
        { Features = gather ds.Features indices; Targets = gather ds.Targets indices }

    /// The rows at the given indices, in that order (repeats allowed), as a new data set.
    let take (indices: int[]) (ds: Dataset) : Dataset = takeIn "Dataset.take" indices ds

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
