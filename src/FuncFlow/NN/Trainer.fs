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

/// Fitting's history: one result per epoch.
type History =
    {
        /// The epochs, in order.
        Epochs: EpochResult list
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

/// Trains a model: forward, loss, backward and optimiser step run as one compiled plan per batch shape
/// (compiled on first use, then cached; parameters and optimiser state move to the new plan when the shape
/// changes, e.g. for a final smaller batch). Gradients are derived once per shape, never per step.
[<Sealed>]
type Trainer(model: Model, loss: Loss, optimizer: Optimizer, seed: int) =
    let rng = Random(seed)
    let steps = Dictionary<struct (string * string), TrainStep>()
    let mutable current: TrainStep option = None
    let evaluator = Evaluator(loss)

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
        | None -> model

    /// One step on a batch: forward, loss, gradients, update. Returns the batch's loss before the update.
    member _.Step(features: Tensor, targets: Tensor) : float =
        let key = struct (Shape.show features.Shape, Shape.show targets.Shape)
        let step =
            match steps.TryGetValue key with
            | true, s -> s
            | _ ->
                let s = TrainStep.Compile(model, loss, optimizer, features.Shape, targets.Shape, rng)
                steps[key] <- s
                s
        match current with
        | Some c when not (obj.ReferenceEquals(c, step)) -> step.CopyStateFrom c
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

    /// Trains for the given options' epochs, reporting progress, and returns the history.
    member t.Fit(train: Dataset, options: FitOptions) : History =
        if options.Epochs <= 0 || options.BatchSize <= 0 then
            invalidArg
                "options"
                (sprintf "Trainer.Fit: epochs and batch size must be positive, got %d and %d" options.Epochs options.BatchSize)
        let train = DatasetCast.cast model.DType train
        let batches epoch =
            match options.Sampling with
            | Shuffled -> Batches.shuffledWith options.DropLast (seed + epoch) options.BatchSize train |> Array.ofSeq
            | WithReplacement k -> Array.init k (fun _ -> Batches.sampleWithReplacement rng options.BatchSize train)
        let run (report: ProgressReporter) =
            [
                for epoch in 1 .. options.Epochs do
                    let epochBatches = batches epoch
                    let title = sprintf "epoch %d/%d" epoch options.Epochs
                    report.EpochStarted(title, epochBatches.Length)
                    let clock = Stopwatch.StartNew()
                    let mutable mean = MeanMetric.Empty
                    let mutable correct = 0.0
                    for b in epochBatches do
                        let l = t.Step(b.Features, b.Targets)
                        mean <- mean.Add(l, b.Count)
                        correct <- correct + t.LastCorrect
                        report.Advance(
                            1,
                            Func<string>(fun () ->
                                let acc = if loss.Correct.IsSome then sprintf "  acc %.4f" (correct / float mean.Count) else ""
                                sprintf "loss %.4f%s  %.0f samples/s" mean.Value acc (float mean.Count / clock.Elapsed.TotalSeconds))
                        )
                    let seconds = clock.Elapsed.TotalSeconds
                    let test = options.Test |> Option.map t.Evaluate
                    let result =
                        {
                            Epoch = epoch
                            Loss = mean.Value
                            Accuracy = if loss.Correct.IsSome then Some(correct / float mean.Count) else None
                            Test = test
                            Seconds = seconds
                            SamplesPerSecond = float mean.Count / seconds
                        }
                    report.EpochFinished(Trainer.Summary(title, result))
                    yield result
            ]
        let live = options.LiveProgress |> Option.defaultWith Progress.isInteractive
        let epochs = if options.Quiet then run (SilentProgress()) else Progress.run live run
        let history = { Epochs = epochs }
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
