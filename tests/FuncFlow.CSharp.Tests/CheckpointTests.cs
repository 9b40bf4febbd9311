using FuncFlow.CSharp;
using Xunit;

namespace FacadeTests;

/// <summary>Checkpoints, callbacks, early stopping and parameter groups through the C# surface.</summary>
public class CheckpointTests
{
    private static readonly Dataset Iris = Standardizer.Fit(Datasets.Iris().Features).Apply(Datasets.Iris());

    private static Trainer NewTrainer() => new(
        Model.Create(new Sequential(new Linear(4, 8), new Tanh(), new Dropout(0.2), new Linear(8, 3)), seed: 4),
        Loss.CrossEntropy,
        new Adam(1e-2).WithSchedule(Schedule.Cosine(40, 0.1)),
        seed: 5);

    private static long[] Bits(Trainer t) =>
        t.Model.Parameters.SelectMany(p => p.Value.ToArray().Select(BitConverter.DoubleToInt64Bits)).ToArray();

    [Fact]
    public void ATrainingStoppedMidEpochResumesToTheUninterruptedRunsBits()
    {
        // 150 rows in batches of 32: 5 steps an epoch, 20 in all.
        var options = new FitOptions(epochs: 4, batchSize: 32) { Quiet = true };
        var reference = NewTrainer();
        reference.Fit(Iris, options);

        var path = Path.Combine(Path.GetTempPath(), $"funcflow-cs-{Guid.NewGuid():N}.ckpt");
        try
        {
            var steps = new List<int>();
            var first = NewTrainer();
            // Checkpoints at steps 4 and 8; stopped at step 11 (epoch 3, batch 1).
            Assert.Throws<OperationCanceledException>(() => first.Fit(Iris, options with
            {
                CheckpointPath = path,
                CheckpointEvery = 4,
                StepCallback = s =>
                {
                    steps.Add(s.Step);
                    if (s.Step == 11) throw new OperationCanceledException();
                },
            }));
            Assert.Equal(Enumerable.Range(1, 11), steps);

            var resumed = NewTrainer();
            resumed.Resume(path);
            Assert.Equal(8, resumed.StepsTaken);
            var epochs = new List<int>();
            var history = resumed.Fit(Iris, options with { EpochCallback = e => epochs.Add(e.Epoch) });
            Assert.Equal(new[] { 2, 3, 4 }, epochs);
            Assert.Equal(3, history.Epochs.Count);
            Assert.Equal(Bits(reference), Bits(resumed));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ParameterGroupsGiveEachGroupItsRateAndFreezeTheRest()
    {
        // One SGD step on y = x W^T + b with MSE: the weight moves by lr * gradient, the frozen bias not at all.
        var model = Model.Create(new Linear(2, 1), seed: 3);
        var groups = new ParameterGroups(new Frozen()).With(new[] { "weight" }, new SGD(0.5));
        var trainer = new Trainer(model, Loss.MSE, groups);
        var w = model.Parameters["weight"].ToArray();
        var b = model.Parameters["bias"].ToArray()[0];
        trainer.Step(Tensor.Create(new double[,] { { 1.0, 2.0 } }), Tensor.Create(new double[,] { { 0.0 } }));
        double y = w[0] * 1.0 + w[1] * 2.0 + b;
        // d/dW (y - 0)^2 = 2 y x.
        var trained = trainer.Model.Parameters;
        Assert.Equal(w[0] - 0.5 * 2 * y * 1.0, trained["weight"].ToArray()[0], 12);
        Assert.Equal(w[1] - 0.5 * 2 * y * 2.0, trained["weight"].ToArray()[1], 12);
        Assert.Equal(b, trained["bias"].ToArray()[0]);
    }

    [Fact]
    public void ClipGradNormScalesTheStepToTheMaximumNorm()
    {
        // SGD(1) on y = x W^T + b: the gradient (2 y x, 2 y) has norm 2 |y| sqrt(1 + |x|^2); clipped to 0.1.
        var model = Model.Create(new Linear(2, 1), seed: 3);
        var trainer = new Trainer(model, Loss.MSE, new ClipGradNorm(new SGD(1.0), 0.1));
        var w = model.Parameters["weight"].ToArray();
        var b = model.Parameters["bias"].ToArray()[0];
        trainer.Step(Tensor.Create(new double[,] { { 1.0, 2.0 } }), Tensor.Create(new double[,] { { 10.0 } }));
        double y = w[0] + 2 * w[1] + b - 10.0;
        var gradient = new[] { 2 * y, 4 * y, 2 * y };
        double norm = Math.Sqrt(gradient.Sum(g => g * g));
        double factor = Math.Min(1.0, 0.1 / (norm + 1e-6));
        var trained = trainer.Model.Parameters;
        Assert.Equal(w[0] - factor * gradient[0], trained["weight"].ToArray()[0], 12);
        Assert.Equal(w[1] - factor * gradient[1], trained["weight"].ToArray()[1], 12);
        Assert.Equal(b - factor * gradient[2], trained["bias"].ToArray()[0], 12);
        Assert.Throws<ArgumentException>(() => new ClipGradNorm(new SGD(1.0), 0.0));
    }

    [Fact]
    public void EarlyStoppingNeedsTestDataAndValidHyperParameters()
    {
        var options = new FitOptions(epochs: 3, batchSize: 32) { Quiet = true };
        Assert.Throws<ArgumentException>(() => NewTrainer().Fit(Iris, options with { Test = Iris, EarlyStopping = new EarlyStopping(0) }));
        Assert.Throws<ArgumentException>(() => NewTrainer().Fit(Iris, options with { Test = Iris, EarlyStopping = new EarlyStopping(2, double.NaN) }));
        Assert.Throws<ArgumentException>(() => NewTrainer().Fit(Iris, options with { CheckpointPath = "x.ckpt", CheckpointEvery = 0 }));
        var ex = Assert.Throws<ArgumentException>(() => NewTrainer().Fit(Iris, options with { EarlyStopping = new EarlyStopping(2) }));
        Assert.Contains("FitOptions.Test", ex.Message);
        var history = NewTrainer().Fit(Iris, options with { Test = Iris, EarlyStopping = new EarlyStopping(5, 0.0, StoppingMetric.ValidationAccuracy) });
        Assert.Equal(3, history.Epochs.Count);
        Assert.False(history.StoppedEarly);
    }

    [Fact]
    public void AModelLoadsStrictlyOrReportsWhatDidNotFit()
    {
        var path = Path.Combine(Path.GetTempPath(), $"funcflow-cs-{Guid.NewGuid():N}.safetensors");
        try
        {
            var saved = Model.Create(new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2)), seed: 1);
            saved.Save(path);
            var same = Model.Create(new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2)), seed: 2).Load(path);
            Assert.Equal(saved.Parameters["2.weight"].ToArray(), same.Parameters["2.weight"].ToArray());

            var other = Model.Create(new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 5)), seed: 2);
            var strict = Assert.ThrowsAny<Exception>(() => other.Load(path));
            Assert.Contains("2.weight", strict.Message);
            var report = other.LoadNonStrict(path);
            Assert.Equal(2, report.Mismatched.Count);
            Assert.Contains(report.Mismatched, m => m.StartsWith("'2.weight' has shape (2, 3)", StringComparison.Ordinal));
            Assert.Contains(report.Mismatched, m => m.StartsWith("'2.bias' has shape (2,)", StringComparison.Ordinal));
            Assert.Empty(report.Unexpected);
            Assert.Empty(report.Missing);
            Assert.NotNull(report.Architecture);
            Assert.Equal(saved.Parameters["0.weight"].ToArray(), report.Model.Parameters["0.weight"].ToArray());
            Assert.Equal(other.Parameters["2.weight"].ToArray(), report.Model.Parameters["2.weight"].ToArray());
            Assert.True(Model.FormatVersion >= 1);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
