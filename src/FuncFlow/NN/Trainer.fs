namespace FuncFlow.NN

open System
open System.Collections.Generic
open System.Diagnostics
open FuncFlow
open FuncFlow.Data

/// How an epoch draws its batches.
type Sampling =
    /// Every example once, in a new seeded order each epoch.
    | Shuffled
    /// The given number of batches, each drawn with replacement (MiniFlow's resample).
    | WithReplacement of stepsPerEpoch: int

/// The result of one epoch.
type EpochResult =
    {
        /// The epoch number, from 1.
        Epoch: int
        /// The mean training loss over the epoch's steps (weighted by batch size).
        Loss: float
        /// The training accuracy over the epoch, for classifiers.
        Accuracy: float option
        /// The loss and accuracy on the test data, when given.
        Test: Evaluation option
        /// Wall-clock seconds for the epoch's training steps.
        Seconds: float
        /// Training examples processed per second.
        SamplesPerSecond: float
    }

/// One training step's result, for a step callback.
type StepResult =
    {
        /// The epoch number, from 1.
        Epoch: int
        /// The batch number within the epoch, from 1.
        Batch: int
        /// The number of steps taken in all, this one included (the step count checkpoints carry).
        Step: int
        /// The batch's loss before the update.
        Loss: float
    }

/// The validation metric early stopping watches (computed on FitOptions.Test after each epoch).
type StoppingMetric =
    /// The test loss; lower is better.
    | ValidationLoss
    /// The test accuracy (classifiers); higher is better.
    | ValidationAccuracy

/// Early stopping: training ends once the metric has not improved by more than MinDelta for Patience epochs.
type EarlyStopping =
    {
        /// The metric watched.
        Metric: StoppingMetric
        /// How many epochs without improvement end training.
        Patience: int
        /// The least change that counts as an improvement.
        MinDelta: float
    }

/// Checkpoints written while fitting: every Every steps, the whole training state to Path (see
/// Trainer.SaveCheckpoint), replacing the previous one atomically.
type Checkpointing =
    {
        /// The checkpoint file.
        Path: string
        /// The number of steps between checkpoints.
        Every: int
    }

/// Options for Trainer.Fit.
type FitOptions =
    {
        /// The number of epochs.
        Epochs: int
        /// The number of examples per step.
        BatchSize: int
        /// How batches are drawn.
        Sampling: Sampling
        /// With Shuffled sampling, leave out a final smaller batch instead of compiling a plan for its shape.
        DropLast: bool
        /// Data evaluated after each epoch (loss and accuracy), if any.
        Test: Dataset option
        /// A live progress bar (true), plain lines (false); by default, a bar only in an interactive terminal.
        LiveProgress: bool option
        /// Print nothing at all.
        Quiet: bool
        /// Where to write the loss (and accuracy) curve as SVG, if anywhere.
        PlotPath: string option
        /// Called after every step (a delegate, so that options stay comparable).
        StepCallback: Action<StepResult> option
        /// Called after every epoch, after its test evaluation.
        EpochCallback: Action<EpochResult> option
        /// When to stop before the last epoch, if ever.
        EarlyStopping: EarlyStopping option
        /// Where and how often to write checkpoints, if at all.
        Checkpoints: Checkpointing option
    }

    /// Shuffled epochs, keeping the last smaller batch, no test set, automatic progress, no plot.
    static member Create(epochs: int, batchSize: int) =
        {
            Epochs = epochs
            BatchSize = batchSize
            Sampling = Shuffled
            DropLast = false
            Test = None
            LiveProgress = None
            Quiet = false
            PlotPath = None
            StepCallback = None
            EpochCallback = None
            EarlyStopping = None
            Checkpoints = None
        }

    // Fluent copies, so C# (which has neither `{ o with ... }` nor F# options) can write
    // FitOptions.Create(5, 64).WithTest(test).WithPlot(path).

    /// A copy that evaluates the given data (loss and accuracy) after each epoch.
    member o.WithTest(test: Dataset) =
        if isNull (box test) then nullArg "test"
        { o with Test = Some test }

    /// A copy that writes the loss (and accuracy) curve as SVG to the given path.
    member o.WithPlot(path: string) =
        if isNull path then nullArg "path"
        { o with PlotPath = Some path }

    /// A copy that shows a live progress bar (true) or prints plain lines (false), whatever the terminal.
    member o.WithProgress(live: bool) = { o with LiveProgress = Some live }

    /// A copy that prints nothing at all.
    member o.Quietly() = { o with Quiet = true }

    /// A copy whose epochs are stepsPerEpoch batches each drawn with replacement (MiniFlow's resample).
    /// Raises ArgumentException when stepsPerEpoch is not positive.
    member o.WithReplacement(stepsPerEpoch: int) =
        if stepsPerEpoch <= 0 then
            invalidArg "stepsPerEpoch" (sprintf "FitOptions.WithReplacement: stepsPerEpoch must be positive, got %d" stepsPerEpoch)
        { o with Sampling = WithReplacement stepsPerEpoch }

    /// A copy that, with shuffled sampling, leaves out a final smaller batch.
    member o.DroppingLast() = { o with DropLast = true }

    /// A copy that calls `callback` after every step.
    member o.WithStepCallback(callback: Action<StepResult>) =
        if isNull callback then nullArg "callback"
        { o with StepCallback = Some callback }

    /// A copy that calls `callback` after every epoch.
    member o.WithEpochCallback(callback: Action<EpochResult>) =
        if isNull callback then nullArg "callback"
        { o with EpochCallback = Some callback }

    /// A copy that stops once the test loss has not fallen by more than minDelta for `patience` epochs
    /// (needs test data). Raises ArgumentException for patience below 1 or a negative or NaN minDelta.
    member o.WithEarlyStopping(patience: int, minDelta: float) = o.WithEarlyStopping(ValidationLoss, patience, minDelta)

    /// A copy that stops once `metric` has not improved by more than minDelta for `patience` epochs.
    member o.WithEarlyStopping(metric: StoppingMetric, patience: int, minDelta: float) =
        if patience < 1 then
            invalidArg "patience" (sprintf "FitOptions.WithEarlyStopping: patience must be at least 1, got %d" patience)
        if not (minDelta >= 0.0) then
            invalidArg "minDelta" (sprintf "FitOptions.WithEarlyStopping: minDelta must be a number >= 0, got %g" minDelta)
        { o with EarlyStopping = Some { Metric = metric; Patience = patience; MinDelta = minDelta } }

    /// A copy that writes a checkpoint to `path` every `every` steps. Raises ArgumentException when every is
    /// not positive.
    member o.WithCheckpoints(path: string, every: int) =
        if isNull path then nullArg "path"
        if every <= 0 then
            invalidArg "every" (sprintf "FitOptions.WithCheckpoints: every must be positive, got %d" every)
        { o with Checkpoints = Some { Path = path; Every = every } }

/// Fitting's history: one result per epoch.
type History =
    {
        /// The epochs, in order (from the resumed epoch on, after Trainer.Resume).
        Epochs: EpochResult list
        /// True when early stopping ended training before the last epoch.
        StoppedEarly: bool
    }

    /// Writes the loss curve (and the accuracy curve for classifiers) as an SVG file.
    member h.SavePlot(path: string, title: string) =
        let series name (f: EpochResult -> float option) =
            let values = h.Epochs |> List.map (f >> Option.defaultValue nan) |> Array.ofList
            if values |> Array.exists Double.IsFinite then [ { Name = name; Values = values } ] else []
        let losses =
            series "train" (fun e -> Some e.Loss)
            @ series "test" (fun e -> e.Test |> Option.map (fun t -> t.Loss))
        let accuracy =
            series "train" (fun e -> e.Accuracy)
            @ series "test" (fun e -> e.Test |> Option.bind (fun t -> t.Accuracy))
        let panels =
            [ title + ": loss", losses ] @ (if accuracy.IsEmpty then [] else [ title + ": accuracy", accuracy ])
        Plot.save path "epoch" panels

/// Where training stands within Fit: the epoch in progress, the batches of it done, its running loss and
/// correct count, and early stopping's record. Checkpoints carry it, so a resumed Fit goes on from there.
type internal Position =
    {
        Epoch: int
        Batch: int
        Mean: MeanMetric
        Correct: float
        /// The best value of the stopping metric so far (NaN before the first).
        Best: float
        /// Epochs since the best one.
        Waited: int
    }

    static member Start = { Epoch = 1; Batch = 0; Mean = MeanMetric.Empty; Correct = 0.0; Best = nan; Waited = 0 }

/// Trains a model: forward, loss, backward and optimiser step run as one compiled plan per batch shape
/// (compiled on first use, then cached; parameters and optimiser state move to the new plan when the shape
/// changes, e.g. for a final smaller batch). Gradients are derived once per shape, never per step. Its
/// random numbers (dropout masks, batches drawn with replacement) come from a Generator whose state
/// checkpoints carry, and shuffled epochs from the seed and the epoch number, so a resumed run draws what an
/// uninterrupted one would.
[<Sealed>]
type Trainer(model: Model, loss: Loss, optimizer: Optimizer, seed: int) =
    let rng = Generator(seed)
    /// One compiled step per (input shape, target shape) seen.
    let steps = ByBatchShape<TrainStep>()
    let mutable current: TrainStep option = None
    /// The parameters and buffers a newly compiled first plan starts from (the model's, or a checkpoint's).
    let mutable start = model
    /// Optimiser state and step count from a checkpoint (and the checkpoint's path), for the next first plan.
    let mutable pending: (string * Map<string, Tensor>) option = None
    let mutable position = Position.Start
    let mutable resumed = false
    let evaluator = Evaluator(loss)

    static let checkpointKey = "funcflow.checkpoint"

    static let number (x: float) = x.ToString("R", Globalization.CultureInfo.InvariantCulture)

    /// A trainer whose noise and sampling come from seed 0.
    new(model, loss, optimizer) = Trainer(model, loss, optimizer, 0)

    /// The loss being minimised.
    member _.Loss = loss
    /// The optimiser.
    member _.Optimizer = optimizer
    /// The number of compiled step plans (one per batch shape seen).
    member _.CompiledPlans = steps.Count

    /// The model with its current (trained) parameters.
    member _.Model: Model =
        match current with
        | Some s -> s.Model
        | None -> start

    /// The number of steps taken, counting those before a resumed checkpoint.
    member _.StepsTaken =
        match current with
        | Some s -> s.Steps
        | None ->
            match pending with
            | Some(_, state) -> int (Tensor.item state[TrainStep.StepName])
            | None -> 0

    /// One step on a batch: forward, loss, gradients, update. Returns the batch's loss before the update.
    member _.Step(features: Tensor, targets: Tensor) : float =
        let step =
            match steps.TryFind(features.ShapeRef, targets.ShapeRef) with
            | ValueSome s -> s
            | ValueNone ->
                steps.Add(
                    features.ShapeRef,
                    targets.ShapeRef,
                    TrainStep.Compile(start, loss, optimizer, features.Shape, targets.Shape, rng)
                )
        match current, pending with
        | Some c, _ when not (obj.ReferenceEquals(c, step)) -> step.CopyStateFrom c
        | None, Some(path, state) ->
            // The optimiser's state names and shapes are known only now, with the plan: a checkpoint that does
            // not fit them is still the file's fault.
            for name in step.StateNames do
                match state.TryFind name with
                | Some v ->
                    try
                        step.Plan.Set(name, Tensor.cast model.DType v)
                    with :? ArgumentException as e ->
                        raise (
                            DataFormatException(
                                sprintf "%s: the checkpoint's '%s' does not fit the optimiser's state: %s" path name e.Message,
                                e
                            )
                        )
                | None ->
                    raise (
                        DataFormatException(
                            sprintf "%s: the checkpoint resumed has no value for '%s' (was it written with another optimiser?)" path name
                        )
                    )
            pending <- None
        | _ -> ()
        current <- Some step
        step.Run(Tensor.cast model.DType features, Tensor.cast model.DType targets)

    /// The number of correct rows in the last step's batch (0 for regression losses).
    member _.LastCorrect =
        match current with
        | Some s -> s.Correct
        | None -> 0.0

    /// The current model's loss and accuracy on a data set (evaluation mode, batches of batchSize).
    member t.Evaluate(data: Dataset, batchSize: int) : Evaluation = evaluator.Evaluate(t.Model, data, batchSize)

    /// The current model's loss and accuracy on a data set (batches of 1000).
    member t.Evaluate(data: Dataset) : Evaluation = evaluator.Evaluate(t.Model, data)

    /// Writes the whole training state to a safetensors file, atomically (a temporary file beside it,
    /// flushed to disk, then renamed over it): parameters, buffers, optimiser state (momentum, moments), the
    /// step count (which schedules read), the generator's state, and where Fit stands (epoch, batch, the
    /// epoch's running loss, early stopping's record). Raises InvalidOperationException before the first step.
    member _.SaveCheckpoint(path: string) =
        let s =
            match current with
            | Some s -> s
            | None -> invalidOp "Trainer.SaveCheckpoint: no step has been taken yet (Model.Save saves a model)"
        let p = position
        let metadata =
            Map
                [
                    checkpointKey, "1"
                    ModelFile.ArchitectureKey, model.Layer.Describe()
                    ModelFile.FormatKey, string ModelFile.Version
                    "trainer.epoch", string p.Epoch
                    "trainer.batch", string p.Batch
                    "trainer.loss_total", number p.Mean.Total
                    "trainer.loss_count", string p.Mean.Count
                    "trainer.correct", number p.Correct
                    "trainer.best", number p.Best
                    "trainer.waited", string p.Waited
                    "trainer.rng", rng.State
                ]
        Safetensors.saveWithMetadata path metadata [ for name in s.StateNames -> name, s.Plan.Get name ]

    /// Restores a checkpoint written by SaveCheckpoint (or Fit's checkpoints) for this trainer's model and
    /// optimiser: the next Fit, given the same data and options, goes on from the step after it and reaches
    /// what an uninterrupted run reaches, bit for bit. Raises DataFormatException naming the file and the
    /// key for a file that is not a checkpoint of this architecture.
    member _.Resume(path: string) =
        let metadata = Safetensors.loadMetadata path
        let fail (what: string) = raise (DataFormatException(sprintf "%s: %s" path what))
        let field (key: string) =
            match metadata.TryFind key with
            | Some v -> v
            | None -> fail (sprintf "not a FuncFlow checkpoint: metadata '%s' is missing (Model.Load reads model files)" key)
        let parse (key: string) (f: string -> bool * 'a) =
            match f (field key) with
            | true, v -> v
            | _ -> fail (sprintf "metadata '%s' is '%s', not a number" key (field key))
        let invariant = Globalization.CultureInfo.InvariantCulture
        // Counts below their least value would make Fit skip a negative number of batches.
        let count (least: int) key =
            let n = parse key (fun v -> Int32.TryParse(v, Globalization.NumberStyles.Integer, invariant))
            if n < least then fail (sprintf "metadata '%s' is %d, below its least value %d" key n least)
            n
        let real key = parse key (fun v -> Double.TryParse(v, Globalization.NumberStyles.Float, invariant))
        if field checkpointKey <> "1" then
            fail (sprintf "checkpoint version '%s' is not one this FuncFlow reads (1)" (field checkpointKey))
        let recorded = field ModelFile.ArchitectureKey
        if recorded <> model.Layer.Describe() then
            fail (
                sprintf
                    "metadata '%s' records %s, but the trainer's model is %s"
                    ModelFile.ArchitectureKey
                    recorded
                    (model.Layer.Describe())
            )
        let at =
            {
                Epoch = count 1 "trainer.epoch"
                Batch = count 0 "trainer.batch"
                Mean = ({ Total = real "trainer.loss_total"; Count = count 0 "trainer.loss_count" }: MeanMetric)
                Correct = real "trainer.correct"
                Best = real "trainer.best"
                Waited = count 0 "trainer.waited"
            }
        let values = Safetensors.load path
        match values.TryFind TrainStep.StepName with
        | None -> fail (sprintf "the checkpoint has no '%s'" TrainStep.StepName)
        // The step count is read back as an int (StepsTaken, schedules): one whole number that fits.
        | Some count when
            count.Size <> 1
            || (let v = Tensor.item count in not (v >= 0.0 && v <= float Int32.MaxValue && v = floor v))
            ->
            fail (
                sprintf
                    "'%s' must be one whole number of steps, got shape %s%s"
                    TrainStep.StepName
                    (Shape.show count.Shape)
                    (if count.Size = 1 then sprintf " holding %g" (Tensor.item count) else "")
            )
        | Some _ -> ()
        let restored =
            try
                model.WithParameters(values).WithBuffers(values)
            with :? ArgumentException as e ->
                raise (DataFormatException(sprintf "%s: the checkpoint does not fit this model: %s" path e.Message, e))
        try
            rng.Restore(field "trainer.rng")
        with :? ArgumentException as e ->
            raise (DataFormatException(sprintf "%s: metadata 'trainer.rng': %s" path e.Message, e))
        start <- restored
        pending <- Some(path, values)
        steps.Clear()
        current <- None
        position <- at
        resumed <- true

    /// Trains for the given options' epochs, reporting progress, and returns the history. After Resume it
    /// goes on from the checkpoint's epoch and batch.
    member t.Fit(train: Dataset, options: FitOptions) : History =
        if options.Epochs <= 0 || options.BatchSize <= 0 then
            invalidArg
                "options"
                (sprintf "Trainer.Fit: epochs and batch size must be positive, got %d and %d" options.Epochs options.BatchSize)
        match options.EarlyStopping, options.Test with
        | Some _, None -> invalidArg "options" "Trainer.Fit: early stopping watches the test data, but FitOptions.Test is not set"
        | Some { Metric = ValidationAccuracy }, _ when loss.Correct.IsNone ->
            invalidArg "options" (sprintf "Trainer.Fit: early stopping on accuracy needs a classifier's loss, not %s" loss.Name)
        | _ -> ()
        let train = DatasetCast.cast model.DType train
        if not resumed then position <- Position.Start
        resumed <- false
        // The epoch's batch count and its batches after the first `skip`. Batches drawn with replacement are
        // drawn as they are reached, so a checkpoint's generator state covers them.
        let batches epoch skip =
            // A checkpoint's batch comes from a file, written under other data or options perhaps.
            let within count =
                if skip > count then
                    invalidArg
                        "options"
                        (sprintf
                            "Trainer.Fit: the checkpoint resumed stands after batch %d of epoch %d, but these data and options give %d batches an epoch"
                            skip
                            epoch
                            count)
            match options.Sampling with
            | Shuffled ->
                // Batches.shuffledWith's batches, gathered into reused buffers (Step copies each into its plan), so
                // an epoch allocates neither a copy of the data set nor an array per batch.
                let n = train.Count
                let count = Batches.count options.DropLast options.BatchSize n
                within count
                count, Seq.skip skip (Dataset.batchesInto (Dataset.permutation (seed + epoch) n) options.BatchSize count train)
            | WithReplacement k ->
                within k
                k, Seq.init (k - skip) (fun _ -> Batches.sampleWithReplacement rng options.BatchSize train)
        let run (report: ProgressReporter) =
            let results = ResizeArray<EpochResult>()
            let mutable stopped = false
            while not stopped && position.Epoch <= options.Epochs do
                let epoch = position.Epoch
                let count, epochBatches = batches epoch position.Batch
                let title = sprintf "epoch %d/%d" epoch options.Epochs
                report.EpochStarted(title, count)
                if position.Batch > 0 then report.Advance(position.Batch, Func<string>(fun () -> "resumed"))
                let clock = Stopwatch.StartNew()
                let started = position.Mean.Count
                for b in epochBatches do
                    let l = t.Step(b.Features, b.Targets)
                    position <-
                        { position with
                            Batch = position.Batch + 1
                            Mean = position.Mean.Add(l, b.Count)
                            Correct = position.Correct + t.LastCorrect
                        }
                    let mean = position.Mean
                    let correct = position.Correct
                    let stepCount = lazy t.StepsTaken
                    match options.Checkpoints with
                    | Some c when stepCount.Value % c.Every = 0 -> t.SaveCheckpoint c.Path
                    | _ -> ()
                    options.StepCallback
                    |> Option.iter (fun f -> f.Invoke { Epoch = epoch; Batch = position.Batch; Step = stepCount.Value; Loss = l })
                    report.Advance(
                        1,
                        Func<string>(fun () ->
                            let acc = if loss.Correct.IsSome then sprintf "  acc %.4f" (correct / float mean.Count) else ""
                            sprintf
                                "loss %.4f%s  %.0f samples/s"
                                mean.Value
                                acc
                                (float (mean.Count - started) / clock.Elapsed.TotalSeconds))
                    )
                let seconds = clock.Elapsed.TotalSeconds
                let test = options.Test |> Option.map t.Evaluate
                let mean = position.Mean
                let result =
                    {
                        Epoch = epoch
                        Loss = mean.Value
                        Accuracy = if loss.Correct.IsSome then Some(position.Correct / float mean.Count) else None
                        Test = test
                        Seconds = seconds
                        SamplesPerSecond = float (mean.Count - started) / seconds
                    }
                report.EpochFinished(Trainer.Summary(title, result))
                results.Add result
                options.EpochCallback |> Option.iter (fun f -> f.Invoke result)
                let mutable best = position.Best
                let mutable waited = position.Waited
                match options.EarlyStopping, test with
                | Some es, Some e ->
                    let value, improved =
                        match es.Metric with
                        | ValidationLoss -> e.Loss, (fun v -> v < best - es.MinDelta)
                        | ValidationAccuracy ->
                            let a = Option.defaultValue nan e.Accuracy
                            a, (fun v -> v > best + es.MinDelta)
                    if Double.IsNaN best || improved value then
                        best <- value
                        waited <- 0
                    else
                        waited <- waited + 1
                    stopped <- waited >= es.Patience
                | _ -> ()
                position <- { Position.Start with Epoch = epoch + 1; Best = best; Waited = waited }
            List.ofSeq results, stopped
        let live = options.LiveProgress |> Option.defaultWith Progress.isInteractive
        let epochs, stopped = if options.Quiet then run (SilentProgress()) else Progress.run live run
        let history = { Epochs = epochs; StoppedEarly = stopped }
        options.PlotPath |> Option.iter (fun p -> history.SavePlot(p, loss.Name))
        history

    /// Trains with shuffled batches for some epochs (see FitOptions.Create).
    member t.Fit(train: Dataset, epochs: int, batchSize: int) = t.Fit(train, FitOptions.Create(epochs, batchSize))

    /// One epoch's summary line.
    static member Summary(title: string, r: EpochResult) =
        let acc =
            match r.Accuracy with
            | Some a -> sprintf "  acc %.4f" a
            | None -> ""
        let test =
            match r.Test with
            | Some e ->
                sprintf
                    "  test loss %.4f%s"
                    e.Loss
                    (match e.Accuracy with
                     | Some a -> sprintf "  test acc %.4f" a
                     | None -> "")
            | None -> ""
        sprintf "%s  loss %.4f%s%s  %.2f s  %.0f samples/s" title r.Loss acc test r.Seconds r.SamplesPerSecond
