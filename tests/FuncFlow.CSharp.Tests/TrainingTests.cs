using FuncFlow.Data;
using FuncFlow.Nodes;
using Microsoft.FSharp.Core;
using Xunit;
using DType = FuncFlow.DType;
using NN = FuncFlow.NN;

namespace FacadeTests;

/// <summary>Training from C#: the fluent FitOptions, the F# Trainer, and a MiniFlow-style SGD loop on real data.</summary>
public class TrainingTests
{
    private static Dataset Standardised(Dataset data) => StandardizerModule.applyTo(StandardizerModule.fit(data.Features), data);

    [Fact]
    public void FluentFitOptionsBuildTheSameRecordAsFSharpCopyAndUpdate()
    {
        var test = Datasets.irisDefault();
        var start = NN.FitOptions.Create(3, 8);
        var options = start.WithTest(test).WithPlot("loss.svg").WithProgress(false).Quietly().WithReplacement(5);
        var expected = new NN.FitOptions(
            3, 8, NN.Sampling.NewWithReplacement(5), false, FSharpOption<Dataset>.Some(test),
            FSharpOption<bool>.Some(false), true, FSharpOption<string>.Some("loss.svg"), null, null, null, null);
        Assert.Equal(expected, options);
        Assert.True(start.DroppingLast().DropLast);
        // Each member returns a copy: the record it started from is unchanged.
        Assert.Equal(new NN.FitOptions(3, 8, NN.Sampling.Shuffled, false, null, null, false, null, null, null, null, null), start);
        Assert.Throws<ArgumentException>(() => start.WithReplacement(0));
        Assert.Throws<ArgumentNullException>(() => start.WithTest(null!));
    }

    [Fact]
    public void TrainerFitFromCSharpLowersTheLoss()
    {
        var iris = Standardised(Datasets.irisDefault());
        var model = NN.Model.Create(new NN.Sequential(new NN.Linear(4, 16), new NN.ReLU(), new NN.Linear(16, 3)), 0);
        var trainer = new NN.Trainer(model, NN.Loss.CrossEntropy, new NN.Adam(1e-2), 0);
        var before = trainer.Evaluate(iris);
        var history = trainer.Fit(iris, NN.FitOptions.Create(5, 16).WithReplacement(10).Quietly());
        var after = trainer.Evaluate(iris);
        Assert.Equal(5, history.Epochs.Length);
        Assert.True(after.Loss < 0.5 * before.Loss, $"loss {before.Loss} -> {after.Loss}");
        Assert.True(after.AccuracyOrNull > 0.8, $"accuracy {after.AccuracyOrNull}");
        Assert.Null(new NN.Evaluation(1.0, null).AccuracyOrNull);
    }

    [Fact]
    public void NodesSgdOnBostonLowersTheLoss()
    {
        var raw = FuncFlow.CSharp.Datasets.Boston();
        var boston = FuncFlow.CSharp.Standardizer.Fit(raw.Features).Apply(raw);
        var (X, y, W1, b1, W2, b2) = (new Input("X"), new Input("y"), new Input("W1"), new Input("b1"), new Input("W2"), new Input("b2"));
        var cost = new MSE(y, new Linear(new Sigmoid(new Linear(X, W1, b1)), W2, b2));
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
        {
            [X] = boston.Features,
            [y] = boston.Targets,
            [W1] = FuncFlow.CSharp.Tensor.RandNormal(1, new[] { 13, 10 }),
            [b1] = new double[10],
            [W2] = FuncFlow.CSharp.Tensor.RandNormal(2, new[] { 10, 1 }),
            [b2] = new double[1],
        });
        double FullLoss()
        {
            X.Forward(boston.Features);
            y.Forward(boston.Targets);
            return Graph.ForwardPass(cost, graph).ToArray().Single();
        }

        var before = FullLoss();
        var rng = new Random(0);
        for (int step = 0; step < 3 * (boston.Count / 11); step++)
        {
            var batch = boston.Sample(rng, 11);
            X.Forward(batch.Features);
            y.Forward(batch.Targets);
            Graph.ForwardAndBackward(graph);
            Graph.SgdUpdate(new[] { W1, b1, W2, b2 }, 1e-2);
        }
        var after = FullLoss();
        Assert.True(after < 0.5 * before, $"mse {before} -> {after}");
    }
}
