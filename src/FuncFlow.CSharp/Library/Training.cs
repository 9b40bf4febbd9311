using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using Microsoft.FSharp.Core;
using CoreExpr = global::FuncFlow.Expr;
using NN = global::FuncFlow.NN;

namespace FuncFlow.CSharp
{
    /// <summary>A loss for training: the loss expression of (prediction, target) and, for classifiers, the number of correct rows.</summary>
    public sealed class Loss
    {
        private Loss(NN.Loss core) => Core = core;

        internal NN.Loss Core { get; }

        /// <summary>The mean over all elements of (target - prediction)^2.</summary>
        public static Loss MSE { get; } = new(NN.Loss.MSE);

        /// <summary>Grokking's MSELoss: the squared error summed over the batch axis.</summary>
        public static Loss SumSquaredError { get; } = new(NN.Loss.SumSquaredError);

        /// <summary>Softmax cross-entropy of logits [n, classes] against integer labels [n], averaged; with accuracy.</summary>
        public static Loss CrossEntropy { get; } = new(NN.Loss.CrossEntropy);

        /// <summary>Binary cross-entropy of probabilities (logarithms clamped at -100, as PyTorch); accuracy at 0.5.</summary>
        public static Loss BinaryCrossEntropy { get; } = new(NN.Loss.BinaryCrossEntropy);

        /// <summary>Binary cross-entropy of logits, computed stably; accuracy at 0.</summary>
        public static Loss BinaryCrossEntropyWithLogits { get; } = new(NN.Loss.BinaryCrossEntropyWithLogits);

        /// <summary>
        /// Softmax cross-entropy over logits [batch, time, classes] with class indices [batch, time], positions whose
        /// target is <paramref name="ignoreIndex"/> left out (PyTorch's cross_entropy with ignore_index); no accuracy.
        /// </summary>
        /// <param name="ignoreIndex">The target value of positions that add nothing to the loss.</param>
        /// <returns>The loss.</returns>
        public static Loss SequenceCrossEntropy(int ignoreIndex = -100) => new(NN.Loss.SequenceCrossEntropy(ignoreIndex));

        /// <summary>A loss of your own.</summary>
        /// <param name="name">A name for messages and plots.</param>
        /// <param name="compute">(prediction, target) to a one-element loss.</param>
        /// <param name="correct">(prediction, target) to the number of correct rows, or null for a regression loss.</param>
        /// <returns>The loss.</returns>
        public static Loss Custom(string name, Func<Expr, Expr, Expr> compute, Func<Expr, Expr, Expr>? correct = null)
        {
            ArgumentNullException.ThrowIfNull(name);
            ArgumentNullException.ThrowIfNull(compute);
            static FSharpFunc<CoreExpr, FSharpFunc<CoreExpr, CoreExpr>> Lift(Func<Expr, Expr, Expr> f) =>
                FuncConvert.FromFunc<CoreExpr, CoreExpr, CoreExpr>((p, t) => (f(new Expr(p), new Expr(t)) ?? throw new InvalidOperationException("a loss function returned null")).Core);
            return new(new NN.Loss(name, Lift(compute), correct is null ? null : FSharpOption<FSharpFunc<CoreExpr, FSharpFunc<CoreExpr, CoreExpr>>>.Some(Lift(correct))));
        }

        /// <summary>A name for messages and plots.</summary>
        public string Name => Core.Name;

        /// <summary>The loss expression.</summary>
        /// <param name="prediction">The model's output.</param>
        /// <param name="target">The expected output.</param>
        /// <returns>A one-element expression.</returns>
        public Expr Compute(Expr prediction, Expr target) =>
            new(FSharpFunc<CoreExpr, CoreExpr>.InvokeFast(Core.Compute, (prediction ?? throw new ArgumentNullException(nameof(prediction))).Core,
                (target ?? throw new ArgumentNullException(nameof(target))).Core));

        /// <inheritdoc />
        public override string ToString() => Name;
    }

    /// <summary>A learning-rate schedule: a factor on the base rate as a function of the steps taken, computed inside the training plan.</summary>
    public sealed class Schedule
    {
        private Schedule(NN.Schedule core) => Core = core;

        internal NN.Schedule Core { get; }

        /// <summary>Falls linearly from the base rate to zero over the given number of steps, then stays at zero.</summary>
        /// <param name="steps">The number of steps (positive).</param>
        /// <returns>The schedule.</returns>
        public static Schedule LinearDecay(int steps) => new(NN.Schedule.NewLinearDecay(steps));

        /// <summary>Multiplies the rate by <paramref name="gamma"/> after every step.</summary>
        /// <param name="gamma">The factor, in (0, 1].</param>
        /// <returns>The schedule.</returns>
        public static Schedule ExponentialDecay(double gamma) => new(NN.Schedule.NewExponentialDecay(gamma));

        /// <summary>
        /// Cosine annealing (PyTorch's CosineAnnealingLR): after t steps the factor is
        /// minFactor + (1 - minFactor) (1 + cos(pi t / steps)) / 2, then minFactor from <paramref name="steps"/> on.
        /// </summary>
        /// <param name="steps">The number of steps of the half cosine.</param>
        /// <param name="minFactor">The final factor, in [0, 1].</param>
        /// <returns>The schedule.</returns>
        public static Schedule Cosine(int steps, double minFactor = 0.0) => new(NN.Schedule.NewCosine(steps, minFactor));

        /// <summary>
        /// Linear warm-up from <paramref name="startFactor"/> to 1 over <paramref name="steps"/> steps, then
        /// <paramref name="after"/> counted from the end of the warm-up (PyTorch's SequentialLR of LinearLR and it).
        /// </summary>
        /// <param name="steps">The warm-up's length.</param>
        /// <param name="startFactor">The first step's factor, in [0, 1].</param>
        /// <param name="after">The schedule that follows.</param>
        /// <returns>The schedule.</returns>
        public static Schedule Warmup(int steps, double startFactor, Schedule after) =>
            new(NN.Schedule.NewWarmup(steps, startFactor, (after ?? throw new ArgumentNullException(nameof(after))).Core));

        /// <summary>The learning-rate factor after <paramref name="step"/> steps, as an expression of the step.</summary>
        /// <param name="step">A scalar expression of the number of steps taken.</param>
        /// <returns>The factor.</returns>
        public Expr Factor(Expr step) => new(Core.Factor((step ?? throw new ArgumentNullException(nameof(step))).Core));

        /// <inheritdoc />
        public override string ToString() => Core.ToString();
    }

    /// <summary>
    /// An optimiser: how a parameter and its gradient become update expressions, so the whole training step compiles
    /// into one plan. Hyper-parameters are checked when it is created.
    /// </summary>
    public abstract class Optimizer
    {
        private protected Optimizer(NN.Optimizer core) => Core = core;

        internal NN.Optimizer Core { get; }

        /// <summary>This optimiser with its learning rate following a schedule.</summary>
        /// <param name="schedule">The schedule.</param>
        /// <returns>The scheduled optimiser.</returns>
        public Optimizer WithSchedule(Schedule schedule) =>
            new Scheduled(new NN.Scheduled(Core, (schedule ?? throw new ArgumentNullException(nameof(schedule))).Core));

        private sealed class Scheduled : Optimizer
        {
            public Scheduled(NN.Optimizer core) : base(core) { }
        }
    }

    /// <summary>Stochastic gradient descent, PyTorch's form, with optional momentum (Nesterov's too) and weight decay.</summary>
    public sealed class SGD : Optimizer
    {
        /// <summary>Creates the optimiser.</summary>
        /// <param name="learningRate">The learning rate (finite, positive).</param>
        /// <param name="momentum">The momentum coefficient (0 for plain SGD).</param>
        /// <param name="nesterov">Use Nesterov's momentum (needs a positive momentum).</param>
        /// <param name="weightDecay">L2 weight decay added to the gradient.</param>
        public SGD(double learningRate, double momentum = 0.0, bool nesterov = false, double weightDecay = 0.0)
            : base(new NN.SGD(learningRate, momentum, nesterov, weightDecay)) { }
    }

    /// <summary>Adam with bias correction; weight decay is added to the gradient (PyTorch's Adam).</summary>
    public sealed class Adam : Optimizer
    {
        /// <summary>Creates the optimiser.</summary>
        /// <param name="learningRate">The learning rate (finite, positive).</param>
        /// <param name="beta1">The first moment's decay, in [0, 1).</param>
        /// <param name="beta2">The second moment's decay, in [0, 1).</param>
        /// <param name="epsilon">Added to the denominator.</param>
        /// <param name="weightDecay">L2 weight decay added to the gradient.</param>
        public Adam(double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.0)
            : base(new NN.Adam(learningRate, beta1, beta2, epsilon, weightDecay, false)) { }
    }

    /// <summary>AdamW: Adam with decoupled weight decay.</summary>
    public sealed class AdamW : Optimizer
    {
        /// <summary>Creates the optimiser.</summary>
        /// <param name="learningRate">The learning rate (finite, positive).</param>
        /// <param name="weightDecay">The decoupled weight decay (PyTorch's default 0.01).</param>
        /// <param name="beta1">The first moment's decay, in [0, 1).</param>
        /// <param name="beta2">The second moment's decay, in [0, 1).</param>
        /// <param name="epsilon">Added to the denominator.</param>
        public AdamW(double learningRate, double weightDecay = 0.01, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
            : base(new NN.AdamW(learningRate, weightDecay, beta1, beta2, epsilon)) { }
    }

    /// <summary>
    /// An optimiser whose updates see the gradients clipped by their global norm (PyTorch's clip_grad_norm_ before
    /// the step), all parameters' gradients together.
    /// </summary>
    public sealed class ClipGradNorm : Optimizer
    {
        /// <summary>Wraps an optimiser.</summary>
        /// <param name="inner">The optimiser whose updates see the clipped gradients.</param>
        /// <param name="maxNorm">The largest global norm the updates see; positive.</param>
        /// <exception cref="ArgumentException"><paramref name="maxNorm"/> is not positive.</exception>
        public ClipGradNorm(Optimizer inner, double maxNorm) : base(new NN.ClipGradNorm((inner ?? throw new ArgumentNullException(nameof(inner))).Core, maxNorm)) { }
    }

    /// <summary>An optimiser that leaves its parameters as they are: give it to <see cref="ParameterGroups"/> for the parameters to freeze.</summary>
    public sealed class Frozen : Optimizer
    {
        /// <summary>Creates it.</summary>
        public Frozen() : base(new NN.Frozen()) { }
    }

    /// <summary>
    /// Parameter groups, as PyTorch's param_groups: each parameter is updated by the optimiser of the first group one
    /// of whose names selects it ("0" selects "0.weight" and "0.bias"), the others by the rest's optimiser.
    /// </summary>
    public sealed class ParameterGroups : Optimizer
    {
        private ParameterGroups(NN.ParameterGroups core) : base(core) { }

        /// <summary>No groups yet: every parameter is updated by <paramref name="rest"/>.</summary>
        /// <param name="rest">The optimiser of parameters no group selects.</param>
        public ParameterGroups(Optimizer rest) : base(new NN.ParameterGroups((rest ?? throw new ArgumentNullException(nameof(rest))).Core)) { }

        /// <summary>A copy with one more group, tried after the others.</summary>
        /// <param name="names">The parameter names (or prefixes of sub-layers) the group selects.</param>
        /// <param name="optimizer">The group's optimiser, with its own learning rate and weight decay (or <see cref="Frozen"/>).</param>
        /// <returns>The groups.</returns>
        public ParameterGroups With(IEnumerable<string> names, Optimizer optimizer) =>
            new(((NN.ParameterGroups)Core).With(names ?? throw new ArgumentNullException(nameof(names)), (optimizer ?? throw new ArgumentNullException(nameof(optimizer))).Core));
    }

    /// <summary>Gradient clipping by global norm, as expressions.</summary>
    public static class Clip
    {
        /// <summary>sqrt of the sum of every gradient's squared elements.</summary>
        /// <param name="gradients">The gradients.</param>
        /// <returns>A scalar expression.</returns>
        public static Expr GlobalNorm(IReadOnlyList<Expr> gradients) => new(NN.Clip.globalNorm(Conversions.Exprs(gradients)));

        /// <summary>The gradients scaled by min(1, maxNorm / (norm + 1e-6)) (PyTorch's clip_grad_norm_).</summary>
        /// <param name="maxNorm">The largest global norm.</param>
        /// <param name="gradients">The gradients.</param>
        /// <returns>The clipped gradients, in order.</returns>
        public static Expr[] ByGlobalNorm(double maxNorm, IReadOnlyList<Expr> gradients) =>
            NN.Clip.byGlobalNorm(maxNorm, Conversions.Exprs(gradients)).Select(e => new Expr(e)).ToArray();
    }

    /// <summary>One training step's result, for <see cref="FitOptions.StepCallback"/>.</summary>
    public sealed class StepResult
    {
        internal StepResult(NN.StepResult core)
        {
            Epoch = core.Epoch;
            Batch = core.Batch;
            Step = core.Step;
            Loss = core.Loss;
        }

        /// <summary>The epoch number, from 1.</summary>
        public int Epoch { get; }

        /// <summary>The batch number within the epoch, from 1.</summary>
        public int Batch { get; }

        /// <summary>The number of steps taken in all, this one included.</summary>
        public int Step { get; }

        /// <summary>The batch's loss before the update.</summary>
        public double Loss { get; }
    }

    /// <summary>The validation metric early stopping watches (computed on <see cref="FitOptions.Test"/> after each epoch).</summary>
    public enum StoppingMetric
    {
        /// <summary>The test loss; lower is better.</summary>
        ValidationLoss,

        /// <summary>The test accuracy (classifiers); higher is better.</summary>
        ValidationAccuracy,
    }

    /// <summary>Early stopping: training ends once the metric has not improved by more than MinDelta for Patience epochs.</summary>
    /// <param name="Patience">How many epochs without improvement end training; at least 1.</param>
    /// <param name="MinDelta">The least change that counts as an improvement; 0 or more.</param>
    /// <param name="Metric">The metric watched.</param>
    public sealed record EarlyStopping(int Patience, double MinDelta = 0.0, StoppingMetric Metric = StoppingMetric.ValidationLoss);

    /// <summary>A model file loaded non-strictly: the model and what did not fit.</summary>
    public sealed class LoadReport
    {
        internal LoadReport(NN.LoadReport core, Layer layer)
        {
            Model = new Model(core.Model, layer);
            Unexpected = core.Unexpected.ToList().AsReadOnly();
            Missing = core.Missing.ToList().AsReadOnly();
            Mismatched = core.Mismatched.ToList().AsReadOnly();
            Architecture = Conversions.OrNull(core.Architecture);
        }

        /// <summary>The model with every value of the file that fits it.</summary>
        public Model Model { get; }

        /// <summary>Keys of the file the model has no parameter or buffer for (PyTorch's unexpected_keys).</summary>
        public IReadOnlyList<string> Unexpected { get; }

        /// <summary>Parameters and buffers the file has no value for; they keep their values (missing_keys).</summary>
        public IReadOnlyList<string> Missing { get; }

        /// <summary>Values of another shape than the model's, each with both shapes; they keep their values.</summary>
        public IReadOnlyList<string> Mismatched { get; }

        /// <summary>How the architecture recorded in the file differs from the model's, or null when it does not.</summary>
        public string? Architecture { get; }
    }

    /// <summary>A model's loss and, for classifiers, accuracy on a data set.</summary>
    public sealed class Evaluation
    {
        internal Evaluation(NN.Evaluation core)
        {
            Loss = core.Loss;
            Accuracy = Conversions.Nullable(core.Accuracy);
        }

        /// <summary>The mean loss.</summary>
        public double Loss { get; }

        /// <summary>The fraction of correct rows, or null for a regression loss.</summary>
        public double? Accuracy { get; }

        /// <inheritdoc />
        public override string ToString() => Accuracy is { } a ? $"loss {Loss:G6}, accuracy {a:F4}" : $"loss {Loss:G6}";
    }

    /// <summary>The result of one training epoch.</summary>
    public sealed class EpochResult
    {
        internal EpochResult(NN.EpochResult core)
        {
            Epoch = core.Epoch;
            Loss = core.Loss;
            Accuracy = Conversions.Nullable(core.Accuracy);
            Test = Conversions.OrNull(core.Test) is { } t ? new Evaluation(t) : null;
            Seconds = core.Seconds;
            SamplesPerSecond = core.SamplesPerSecond;
        }

        /// <summary>The epoch number, from 1.</summary>
        public int Epoch { get; }

        /// <summary>The mean training loss over the epoch.</summary>
        public double Loss { get; }

        /// <summary>The training accuracy, for classifiers; otherwise null.</summary>
        public double? Accuracy { get; }

        /// <summary>The loss and accuracy on the test data, when given; otherwise null.</summary>
        public Evaluation? Test { get; }

        /// <summary>Wall-clock seconds for the epoch's training steps.</summary>
        public double Seconds { get; }

        /// <summary>Training examples processed per second.</summary>
        public double SamplesPerSecond { get; }
    }

    /// <summary>Fitting's history: one result per epoch.</summary>
    public sealed class History
    {
        private readonly NN.History core;

        internal History(NN.History core)
        {
            this.core = core;
            Epochs = core.Epochs.Select(e => new EpochResult(e)).ToList().AsReadOnly();
        }

        /// <summary>The epochs, in order.</summary>
        public IReadOnlyList<EpochResult> Epochs { get; }

        /// <summary>True when early stopping ended training before the last epoch.</summary>
        public bool StoppedEarly => core.StoppedEarly;

        /// <summary>Writes the loss curve (and the accuracy curve for classifiers) as an SVG file.</summary>
        /// <param name="path">The file.</param>
        /// <param name="title">The plots' title.</param>
        public void SavePlot(string path, string title) => core.SavePlot(path, title);
    }

    /// <summary>Options for <see cref="Trainer.Fit"/>: set what differs from the defaults with an object initialiser; <c>options with { ... }</c> changes a copy.</summary>
    public sealed record FitOptions
    {
        /// <summary>Options with shuffled epochs, no test set, automatic progress and no plot.</summary>
        /// <param name="epochs">The number of epochs.</param>
        /// <param name="batchSize">The number of examples per step.</param>
        public FitOptions(int epochs, int batchSize)
        {
            Epochs = epochs;
            BatchSize = batchSize;
        }

        /// <summary>The number of epochs.</summary>
        public int Epochs { get; init; }

        /// <summary>The number of examples per step.</summary>
        public int BatchSize { get; init; }

        /// <summary>When set, each epoch is this many batches drawn with replacement (MiniFlow's resample); when null, every example once in a new order.</summary>
        public int? StepsWithReplacement { get; init; }

        /// <summary>With shuffled epochs, leave out a final smaller batch.</summary>
        public bool DropLast { get; init; }

        /// <summary>Data evaluated after each epoch, or null.</summary>
        public Dataset? Test { get; init; }

        /// <summary>A live progress bar (true) or plain lines (false); null shows a bar only in an interactive terminal.</summary>
        public bool? LiveProgress { get; init; }

        /// <summary>Print nothing at all.</summary>
        public bool Quiet { get; init; }

        /// <summary>Where to write the loss (and accuracy) curve as SVG, or null.</summary>
        public string? PlotPath { get; init; }

        /// <summary>Called after every step, or null.</summary>
        public Action<StepResult>? StepCallback { get; init; }

        /// <summary>Called after every epoch (after its test evaluation), or null.</summary>
        public Action<EpochResult>? EpochCallback { get; init; }

        /// <summary>When to stop before the last epoch (needs <see cref="Test"/>), or null for never.</summary>
        public EarlyStopping? EarlyStopping { get; init; }

        /// <summary>The file a checkpoint is written to every <see cref="CheckpointEvery"/> steps (see <see cref="Trainer.SaveCheckpoint"/>), or null.</summary>
        public string? CheckpointPath { get; init; }

        /// <summary>The number of steps between checkpoints, when <see cref="CheckpointPath"/> is set.</summary>
        public int CheckpointEvery { get; init; } = 100;

        internal NN.FitOptions ToCore()
        {
            var o = NN.FitOptions.Create(Epochs, BatchSize);
            if (StepsWithReplacement is { } steps) o = o.WithReplacement(steps);
            o = new NN.FitOptions(o.Epochs, o.BatchSize, o.Sampling, DropLast, Test is null ? null : FSharpOption<global::FuncFlow.Data.Dataset>.Some(Test.Core),
                Conversions.Option(LiveProgress), Quiet, Conversions.OptionOf(PlotPath), null, null, null, null);
            if (StepCallback is { } step) o = o.WithStepCallback(r => step(new StepResult(r)));
            if (EpochCallback is { } epoch) o = o.WithEpochCallback(r => epoch(new EpochResult(r)));
            if (EarlyStopping is { } stop)
                o = o.WithEarlyStopping(stop.Metric == StoppingMetric.ValidationAccuracy ? NN.StoppingMetric.ValidationAccuracy : NN.StoppingMetric.ValidationLoss, stop.Patience, stop.MinDelta);
            return CheckpointPath is null ? o : o.WithCheckpoints(CheckpointPath, CheckpointEvery);
        }
    }

    /// <summary>
    /// Trains a model: forward, loss, gradients and the optimiser's update run as one compiled plan per batch shape.
    /// </summary>
    public sealed class Trainer
    {
        private readonly NN.Trainer core;
        private readonly Layer layer;

        /// <summary>Creates the trainer.</summary>
        /// <param name="model">The model to train (its parameters are the starting point).</param>
        /// <param name="loss">The loss.</param>
        /// <param name="optimizer">The optimiser.</param>
        /// <param name="seed">Seeds the shuffling, sampling and noise (dropout).</param>
        public Trainer(Model model, Loss loss, Optimizer optimizer, int seed = 0)
        {
            ArgumentNullException.ThrowIfNull(model);
            ArgumentNullException.ThrowIfNull(loss);
            ArgumentNullException.ThrowIfNull(optimizer);
            core = new NN.Trainer(model.Core, loss.Core, optimizer.Core, seed);
            layer = model.Layer;
        }

        /// <summary>The model with its current (trained) parameters.</summary>
        public Model Model => new(core.Model, layer);

        /// <summary>The number of compiled step plans (one per batch shape seen).</summary>
        public int CompiledPlans => core.CompiledPlans;

        /// <summary>The number of steps taken (restored by <see cref="Resume"/>).</summary>
        public int StepsTaken => core.StepsTaken;

        /// <summary>
        /// Writes the whole training state to a safetensors file atomically: parameters, buffers, optimiser state, the
        /// step count, the generator's state and where <see cref="Fit"/> stands.
        /// </summary>
        /// <param name="path">The file.</param>
        /// <exception cref="InvalidOperationException">No step has been taken yet.</exception>
        public void SaveCheckpoint(string path) => core.SaveCheckpoint(path ?? throw new ArgumentNullException(nameof(path)));

        /// <summary>
        /// Restores a checkpoint of this trainer's model and optimiser: the next <see cref="Fit"/>, given the same data
        /// and options, goes on from the step after it and reaches what an uninterrupted run reaches, bit for bit.
        /// </summary>
        /// <param name="path">The checkpoint.</param>
        /// <exception cref="FuncFlow.Data.DataFormatException">The file is not a checkpoint of this architecture (the message names the key).</exception>
        public void Resume(string path) => core.Resume(path ?? throw new ArgumentNullException(nameof(path)));

        /// <summary>One step on a batch: forward, loss, gradients, update.</summary>
        /// <param name="features">The batch's inputs.</param>
        /// <param name="targets">The batch's targets.</param>
        /// <returns>The batch's loss before the update.</returns>
        public double Step(Tensor features, Tensor targets) =>
            core.Step((features ?? throw new ArgumentNullException(nameof(features))).Core, (targets ?? throw new ArgumentNullException(nameof(targets))).Core);

        /// <summary>The current model's loss and accuracy on a data set, in evaluation mode.</summary>
        /// <param name="data">The data.</param>
        /// <param name="batchSize">The examples per evaluation batch.</param>
        /// <returns>The evaluation.</returns>
        public Evaluation Evaluate(Dataset data, int batchSize = 1000) =>
            new(core.Evaluate((data ?? throw new ArgumentNullException(nameof(data))).Core, batchSize));

        /// <summary>Trains for the options' epochs, reporting progress, and returns the history.</summary>
        /// <param name="train">The training data.</param>
        /// <param name="options">The epochs, batch size and reporting.</param>
        /// <returns>One result per epoch.</returns>
        public History Fit(Dataset train, FitOptions options) =>
            new(core.Fit((train ?? throw new ArgumentNullException(nameof(train))).Core, (options ?? throw new ArgumentNullException(nameof(options))).ToCore()));
    }
}
