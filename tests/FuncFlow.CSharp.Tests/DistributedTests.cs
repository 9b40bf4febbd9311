using FuncFlow.CSharp;
using Xunit;

namespace FacadeTests;

/// <summary>DistributedTrainer from C#: without mpirun it is one rank, and trains as Trainer does.</summary>
public class DistributedTests
{
    [Fact]
    public void OneRankWithoutMpirunTrainsAsTrainerDoes()
    {
        var x = Tensor.RandNormal(1, new[] { 40, 3 });
        var y = Tensor.RandNormal(2, new[] { 40, 1 });
        var data = new Dataset(x, y);
        var options = new FitOptions(2, 8) { Quiet = true };
        var trainer = new Trainer(Model.Create(new Linear(3, 1)), Loss.MSE, new SGD(0.1), seed: 4);
        var distributed = new DistributedTrainer(Model.Create(new Linear(3, 1)), Loss.MSE, new SGD(0.1), seed: 4);
        Assert.Equal(0, distributed.Rank);
        Assert.Equal(1, distributed.Size);
        Assert.True(distributed.IsRoot);
        var expected = trainer.Fit(data, options);
        var actual = distributed.Fit(data, options);
        Assert.Equal(expected.Epochs.Count, actual.Epochs.Count);
        foreach (var name in trainer.Model.Parameters.Keys)
        {
            var a = trainer.Model.Parameters[name].ToArray();
            var b = distributed.Model.Parameters[name].ToArray();
            for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 12);
        }
        // One allreduce per step: 5 batches of 8 in each of 2 epochs.
        Assert.Equal(10, distributed.AllreduceCount);
        Assert.Equal(trainer.Evaluate(data).Loss, distributed.Evaluate(data).Loss, 12);
        Assert.Equal(7, DistributedTrainer.Run(() => 7));
    }
}
