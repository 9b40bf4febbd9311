using FuncFlow.Data;
using Xunit;
using NN = FuncFlow.NN;

namespace FacadeTests;

/// <summary>Checkpoints, callbacks and early stopping through the fluent FitOptions, from C#.</summary>
public class CheckpointTests
{
    private static readonly Dataset Iris = StandardizerModule.applyTo(StandardizerModule.fit(Datasets.irisDefault().Features), Datasets.irisDefault());

    private static NN.Trainer NewTrainer() => new(
        NN.Model.Create(new NN.Sequential(new NN.Linear(4, 8), new NN.Tanh(), new NN.Dropout(0.2), new NN.Linear(8, 3)), 4),
        NN.Loss.CrossEntropy,
        new NN.Scheduled(new NN.Adam(1e-2), NN.Schedule.NewCosine(40, 0.1)),
        5);

    private static long[] Bits(NN.Trainer t) =>
        t.Model.Parameters.SelectMany(p => p.Value.ToArray().Select(BitConverter.DoubleToInt64Bits)).ToArray();

    [Fact]
    public void ATrainingStoppedMidEpochResumesToTheUninterruptedRunsBits()
    {
        // 150 rows in batches of 32: 5 steps an epoch, 20 in all.
        var options = NN.FitOptions.Create(4, 32).Quietly();
        var reference = NewTrainer();
        reference.Fit(Iris, options);

        var path = Path.Combine(Path.GetTempPath(), $"funcflow-cs-{Guid.NewGuid():N}.ckpt");
        try
        {
            var steps = new List<int>();
            var first = NewTrainer();
            // Checkpoints at steps 4 and 8; stopped at step 11 (epoch 3, batch 1).
            Assert.Throws<OperationCanceledException>(() => first.Fit(Iris, options.WithCheckpoints(path, 4).WithStepCallback(s =>
            {
                steps.Add(s.Step);
                if (s.Step == 11) throw new OperationCanceledException();
            })));
            Assert.Equal(Enumerable.Range(1, 11), steps);

            var resumed = NewTrainer();
            resumed.Resume(path);
            Assert.Equal(8, resumed.StepsTaken);
            var epochs = new List<int>();
            var history = resumed.Fit(Iris, options.WithEpochCallback(e => epochs.Add(e.Epoch)));
            Assert.Equal(new[] { 2, 3, 4 }, epochs);
            Assert.Equal(3, history.Epochs.Length);
            Assert.Equal(Bits(reference), Bits(resumed));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ParameterGroupsFromCSharpGiveEachGroupItsRateAndFreezeTheRest()
    {
        // One SGD step on y = x W^T + b with MSE: the weight moves by lr * gradient, the frozen bias not at all.
        var model = NN.Model.Create(new NN.Linear(2, 1), 3);
        var groups = new NN.ParameterGroups(new NN.Frozen()).With(new[] { "weight" }, new NN.SGD(0.5));
        var x = FuncFlow.TensorModule.ofRows(new[] { new[] { 1.0, 2.0 } });
        var target = FuncFlow.TensorModule.ofRows(new[] { new[] { 0.0 } });
        var step = NN.TrainStep.Compile(model, NN.Loss.MSE, groups, x.Shape, target.Shape);
        step.Run(x, target);
        var w = model.Parameters["weight"].ToArray();
        var b = model.Parameters["bias"].ToArray()[0];
        double y = w[0] * 1.0 + w[1] * 2.0 + b;
        // d/dW (y - 0)^2 = 2 y x.
        var expected = new[] { w[0] - 0.5 * 2 * y * 1.0, w[1] - 0.5 * 2 * y * 2.0 };
        var trained = step.Model.Parameters;
        Assert.Equal(expected[0], trained["weight"].ToArray()[0], 12);
        Assert.Equal(expected[1], trained["weight"].ToArray()[1], 12);
        Assert.Equal(b, trained["bias"].ToArray()[0]);
    }

    [Fact]
    public void EarlyStoppingNeedsTestDataAndValidHyperParameters()
    {
        var options = NN.FitOptions.Create(3, 32);
        Assert.Throws<ArgumentException>(() => options.WithEarlyStopping(0, 0.0));
        Assert.Throws<ArgumentException>(() => options.WithEarlyStopping(2, double.NaN));
        Assert.Throws<ArgumentException>(() => options.WithCheckpoints("x.ckpt", 0));
        var ex = Assert.Throws<ArgumentException>(() => NewTrainer().Fit(Iris, options.Quietly().WithEarlyStopping(2, 0.0)));
        Assert.Contains("FitOptions.Test", ex.Message);
        var history = NewTrainer().Fit(Iris, options.Quietly().WithTest(Iris).WithEarlyStopping(NN.StoppingMetric.ValidationAccuracy, 5, 0.0));
        Assert.Equal(3, history.Epochs.Length);
        Assert.False(history.StoppedEarly);
    }
}
