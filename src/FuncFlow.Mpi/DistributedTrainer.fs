namespace FuncFlow.Distributed

open System
open System.Diagnostics
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN

/// A gradient plan for one shard shape: its output is every parameter's gradient, flattened and packed in the
/// parameters' name order, then the shard's mean loss and its number of correct rows, in one vector, so that one
/// MPI_Allreduce carries a whole step.
type private GradientPlan = { Plan: Plan; Noise: (Noise * Array) list; Buffers: string list }

/// Data-parallel training (as PyTorch's DistributedDataParallel): every rank holds the whole model; each global
/// batch is split into Size consecutive shards and each rank computes the gradients of its shard only; one
/// allreduce per step sums the packed gradients (weighted by shard size) over the ranks, and every rank applies
/// the same optimiser update to the same averaged gradients, so the parameters stay identical on all ranks.
///
/// A step runs two plans: a gradient plan per shard shape (forward, loss, gradients, and batch norm's buffer
/// updates: running statistics are per rank), then the allreduce on the host, then the update plan, which owns the
/// parameters, the optimiser's state and the step count. The loss must be a mean over rows (every Loss but
/// SumSquaredError), so that the global batch's gradient is the shard gradients' mean weighted by shard size.
/// The parameters and buffers are broadcast from rank 0 when the trainer is made. Every rank must make the same
/// calls (Step, Fit, Evaluate) in the same order: each is collective.
[<Sealed>]
type DistributedTrainer(comm: Communicator, model: Model, loss: Loss, optimizer: Optimizer, seed: int) =
    do
        if isNull (box comm) then nullArg "comm"
        // A sum over rows would need the shard gradients summed, not averaged: refused rather than silently scaled.
        if loss.Name = Loss.SumSquaredError.Name then
            invalidArg
                "loss"
                "DistributedTrainer: the loss 'sse' sums over rows; data-parallel training averages shard gradients, so use a mean loss (Loss.MSE)"

    let dtype = model.DType
    let newArray (n: int) : Array =
        match dtype with
        | Float64 -> Array.zeroCreate<float> n
        | Float32 -> Array.zeroCreate<float32> n
    let get (values: Array) (i: int) =
        match values with
        | :? (float[]) as a -> a[i]
        | a -> float (a :?> float32[]).[i]
    let scale (values: Array) (count: int) (factor: float) =
        match values with
        | :? (float[]) as a ->
            for i in 0 .. count - 1 do
                a[i] <- a[i] * factor
        | a ->
            let a = a :?> float32[]
            for i in 0 .. count - 1 do
                a[i] <- a[i] * float32 factor

    // Rank 0's values reach every rank in one broadcast, so ranks that drew different initial values agree.
    let model =
        if comm.Size = 1 then
            model
        else
            let all =
                Seq.append model.Parameters model.Buffers |> Seq.map (fun kv -> kv.Key, kv.Value) |> Array.ofSeq
            let buffer = newArray (all |> Array.sumBy (fun (_, t) -> t.Size))
            let mutable offset = 0
            for _, t in all do
                Array.Copy(t.Data, 0, buffer, offset, t.Size)
                offset <- offset + t.Size
            comm.Broadcast(buffer, 0)
            offset <- 0
            let values =
                all
                |> Array.map (fun (name, t) ->
                    let part = newArray t.Size
                    Array.Copy(buffer, offset, part, 0, t.Size)
                    offset <- offset + t.Size
                    name, Tensor.wrap t.Shape part)
                |> Map.ofArray
            model.WithParameters(values).WithBuffers(values)

    let names = model.Parameters |> Map.toList |> List.map fst
    let sizes = names |> List.map (fun n -> model.Parameters[n].Size)
    let total = List.sum sizes
    let rng = Generator(seed + comm.Rank)
    let evaluator = Evaluator(loss)

    // The update plan: parameters, optimiser state and the step count live here; the averaged gradients come in
    // as one vector of total + 2 values (the last two, loss and correct rows, are not read).
    let gradients = Expr.varOf dtype "distributed.gradients" [| total + 2 |]
    let update =
        let step = Expr.varOf dtype TrainStep.StepName [||]
        let offsets = List.scan (+) 0 sizes
        let perParameter =
            List.zip3 names sizes offsets.[.. names.Length - 1]
            |> List.map (fun (name, size, offset) ->
                let p = Expr.varOf dtype name model.Parameters[name].Shape
                optimizer.Update(step, p, gradients |> Expr.slice 0 offset size |> Expr.reshape p.Shape))
        let plan =
            Plan.compileWithUpdates [] ((step, step + 1.0) :: (perParameter |> List.collect (fun u -> u.Updates)))
        for name in names do
            plan.Set(name, model.Parameters[name])
        for v, initial in perParameter |> List.collect (fun u -> u.State) do
            plan.Set((Expr.tryName v).Value, initial)
        plan.Set(TrainStep.StepName, Tensor.scalarOf dtype 0.0)
        plan

    let plans = ByBatchShape<GradientPlan>()
    let mutable current: GradientPlan option = None
    let mutable buffers = model.Buffers
    let mutable lastRows: int[] = [||]
    let mutable rowsRead = 0L
    let mutable lastCorrect = 0.0

    let compile (inputShape: int[]) (targetShape: int[]) =
        let struct (graph, value, correct) =
            TrainingGraph.build "DistributedTrainer" model loss inputShape targetShape
        let ps = names |> List.map (fun n -> graph.Parameters[n])
        let grads = Grad.wrt ps value
        let correct = correct |> Option.defaultWith (fun () -> Expr.scalarOf dtype 0.0)
        let flat (e: Expr) = Expr.reshape [| Shape.size e.ShapeRef |] e
        let packed = Expr.concat 0 ((ps |> List.map (fun p -> flat grads[p])) @ [ flat value; flat correct ])
        let plan = Plan.compileWithUpdates [ packed ] graph.BufferUpdates
        let inPlan = set plan.VariableNames
        for KeyValue(name, _) in graph.Buffers do
            if inPlan.Contains name then plan.Set(name, buffers[name])
        {
            Plan = plan
            Noise = StepNoise.buffers dtype graph.Noise
            Buffers = graph.BufferUpdates |> List.map (fun (v, _) -> (Expr.tryName v).Value)
        }

    // This rank's shard of a global batch of `count` rows: the consecutive rows [rank count / size, (rank + 1)
    // count / size), so shards differ in size by at most one row and cover the batch.
    let shard (count: int) =
        let start = comm.Rank * count / comm.Size
        struct (start, (comm.Rank + 1) * count / comm.Size - start)

    /// A trainer with seed 0.
    new(comm, model, loss, optimizer) = DistributedTrainer(comm, model, loss, optimizer, 0)

    /// The communicator.
    member _.Communicator = comm
    /// The number of rows this rank has read from training data so far.
    member _.RowsRead = rowsRead
    /// The training-data row indices this rank read in the last step (its shard of the global batch).
    member _.LastRows: int[] = Array.copy lastRows

    /// The model with the current parameters (identical on every rank) and this rank's buffers (batch norm's
    /// running statistics are per rank).
    member _.Model: Model =
        let ps = names |> List.map (fun n -> n, update.Get n) |> Map.ofList
        model.WithParameters(ps).WithBuffers(buffers)

    /// One step on the global batch made of the given rows of `data` (the same rows on every rank): this rank reads
    /// only its shard, and one allreduce averages gradients, loss and correct rows. Returns the global batch's
    /// mean loss (and sets LastCorrect to its number of correct rows), the same on every rank.
    member _.Step(data: Dataset, rows: int[]) : float =
        if isNull rows || rows.Length = 0 then
            invalidArg "rows" "DistributedTrainer.Step: the global batch needs at least one row"
        let struct (start, count) = shard rows.Length
        lastRows <- rows[start .. start + count - 1]
        rowsRead <- rowsRead + int64 count
        let packed =
            if count = 0 then
                // A global batch smaller than the number of ranks leaves some ranks without rows: they add zeros.
                newArray (total + 2)
            else
                let batch = DatasetCast.cast dtype (Dataset.takeIn "DistributedTrainer.Step" lastRows data)
                let shapeX, shapeY = batch.Features.ShapeRef, batch.Targets.ShapeRef
                let g =
                    match plans.TryFind(shapeX, shapeY) with
                    | ValueSome g -> g
                    | ValueNone -> plans.Add(shapeX, shapeY, compile shapeX shapeY)
                match current with
                | Some c when not (obj.ReferenceEquals(c, g)) ->
                    for name in c.Buffers do
                        g.Plan.Set(name, buffers[name])
                | _ -> ()
                current <- Some g
                for name in names do
                    g.Plan.Set(name, update.Get name)
                StepNoise.fill g.Plan rng g.Noise
                g.Plan.Set("input", batch.Features)
                g.Plan.Set("target", batch.Targets)
                g.Plan.Execute()
                if not g.Buffers.IsEmpty then
                    buffers <- g.Buffers |> List.fold (fun m name -> Map.add name (g.Plan.Get name) m) buffers
                let packed = (g.Plan.Output 0).Data
                // Shard means become sums, so the allreduce gives the batch's sums whatever the shards' sizes.
                scale packed (total + 1) (float count)
                packed
        comm.AllreduceSum packed
        scale packed (total + 1) (1.0 / float rows.Length)
        match packed with
        | :? (float[]) as a -> update.Set(gradients |> Expr.tryName |> Option.get, a)
        | a -> update.Set(gradients |> Expr.tryName |> Option.get, (a :?> float32[]))
        update.Execute()
        let result = get packed total
        lastCorrect <- get packed (total + 1)
        result

    /// The number of correct rows in the last step's global batch (0 for regression losses), the same on every rank.
    member _.LastCorrect = lastCorrect

    /// The current model's loss and accuracy on a data set (evaluation mode): each rank evaluates its consecutive
    /// share of the rows in batches of batchSize, and one allreduce combines them; the same result on every rank.
    member t.Evaluate(data: Dataset, batchSize: int) : Evaluation =
        let n = Dataset.rows "DistributedTrainer.Evaluate" data
        let start, stop = comm.Rank * n / comm.Size, (comm.Rank + 1) * n / comm.Size
        let sums = Array.zeroCreate<float> 3
        if stop > start then
            let local =
                evaluator.Evaluate(t.Model, Dataset.takeIn "DistributedTrainer.Evaluate" [| start .. stop - 1 |] data, batchSize)
            let count = float (stop - start)
            sums[0] <- local.Loss * count
            sums[1] <- (local.Accuracy |> Option.defaultValue 0.0) * count
            sums[2] <- count
        comm.AllreduceSum sums
        { Loss = sums[0] / sums[2]; Accuracy = loss.Correct |> Option.map (fun _ -> sums[1] / sums[2]) }

    /// The current model's loss and accuracy on a data set (batches of 1000 rows per rank).
    member t.Evaluate(data: Dataset) : Evaluation = t.Evaluate(data, 1000)

    /// Trains for the options' epochs with shuffled global batches of BatchSize rows, drawn in the same seeded
    /// order as Trainer.Fit (so one rank alone trains exactly as Trainer does); every rank reads only its shards.
    /// Loss and accuracy are over the global batches; only rank 0 reports progress and writes the plot.
    /// Raises ArgumentException for non-positive epochs or batch size, or WithReplacement sampling.
    member t.Fit(train: Dataset, options: FitOptions) : History =
        if options.Epochs <= 0 || options.BatchSize <= 0 then
            invalidArg
                "options"
                (sprintf "DistributedTrainer.Fit: epochs and batch size must be positive, got %d and %d" options.Epochs options.BatchSize)
        if options.Sampling <> Shuffled then
            invalidArg "options" "DistributedTrainer.Fit: only shuffled sampling is supported, not sampling with replacement"
        // Trainer's loop features are its own; refused by name rather than ignored.
        let unsupported =
            [
                if options.StepCallback.IsSome then "step callbacks"
                if options.EpochCallback.IsSome then "epoch callbacks"
                if options.EarlyStopping.IsSome then "early stopping"
                if options.Checkpoints.IsSome then "checkpoints"
            ]
        if not unsupported.IsEmpty then
            invalidArg
                "options"
                (sprintf
                    "DistributedTrainer.Fit: %s are not supported across ranks yet; train with Trainer for them"
                    (String.Join(", ", unsupported)))
        let n = Dataset.rows "DistributedTrainer.Fit" train
        let size = options.BatchSize
        let run (report: ProgressReporter) =
            [
                for epoch in 1 .. options.Epochs do
                    let order = Dataset.permutation (seed + epoch) n
                    let count = if options.DropLast then n / size else (n + size - 1) / size
                    let title = sprintf "epoch %d/%d" epoch options.Epochs
                    report.EpochStarted(title, count)
                    let clock = Stopwatch.StartNew()
                    let mutable mean = MeanMetric.Empty
                    let mutable correct = 0.0
                    for b in 0 .. count - 1 do
                        let rows = order[b * size .. min n (b * size + size) - 1]
                        mean <- mean.Add(t.Step(train, rows), rows.Length)
                        correct <- correct + lastCorrect
                        report.Advance(
                            1,
                            Func<string>(fun () ->
                                let acc = if loss.Correct.IsSome then sprintf "  acc %.4f" (correct / float mean.Count) else ""
                                sprintf "loss %.4f%s  %.0f samples/s" mean.Value acc (float mean.Count / clock.Elapsed.TotalSeconds))
                        )
                    let seconds = clock.Elapsed.TotalSeconds
                    let result =
                        {
                            Epoch = epoch
                            Loss = mean.Value
                            Accuracy = if loss.Correct.IsSome then Some(correct / float mean.Count) else None
                            Test = options.Test |> Option.map t.Evaluate
                            Seconds = seconds
                            SamplesPerSecond = float mean.Count / seconds
                        }
                    report.EpochFinished(Trainer.Summary(title, result))
                    yield result
            ]
        let live = options.LiveProgress |> Option.defaultWith Progress.isInteractive
        let epochs = if options.Quiet || not comm.IsRoot then run (SilentProgress()) else Progress.run live run
        let history = { Epochs = epochs; StoppedEarly = false }
        if comm.IsRoot then options.PlotPath |> Option.iter (fun p -> history.SavePlot(p, loss.Name))
        history
