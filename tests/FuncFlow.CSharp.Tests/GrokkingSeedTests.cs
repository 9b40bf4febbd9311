using FuncFlow.Autograd;
using Xunit;
using static FacadeTests.Fixture;
namespace FacadeTests;

using Tensor = FuncFlow.Autograd.Tensor;

/// <summary>Seed 002's worked examples, through FuncFlow.Autograd.</summary>
public class GrokkingSeedTests
{
    private static Tensor T(params double[] v) => new(v, autograd: true);

    [Fact]
    public void AdditionPassesTheGradientToBothCreators()
    {
        var x = T(1, 2, 3, 4, 5);
        var y = T(2, 2, 2, 2, 2);
        var z = x + y;
        Assert.Equal(new double[] { 3, 4, 5, 6, 7 }, z.ToArray());
        z.Backward(new Tensor(new double[] { 1, 1, 1, 1, 1 }));
        Assert.Equal(new double[] { 1, 1, 1, 1, 1 }, x.Grad!.ToArray());
        Assert.Equal(new double[] { 1, 1, 1, 1, 1 }, y.Grad!.ToArray());
        Assert.Equal("add", z.CreationOp);
        Assert.Equal(new[] { x, y }, z.Creators);
    }

    [Fact]
    public void RecursiveBackward()
    {
        var (a, b, c, d) = (T(1, 2, 3, 4, 5), T(2, 2, 2, 2, 2), T(5, 4, 3, 2, 1), T(-1, -2, -3, -4, -5));
        var g = (a + b) + (c + d);
        g.Backward(new Tensor(new double[] { 1, 1, 1, 1, 1 }));
        Assert.Equal(new double[] { 1, 1, 1, 1, 1 }, a.Grad!.ToArray());
    }

    [Fact]
    public void ATensorUsedTwiceGetsTheSumOfItsGradients()
    {
        var (a, b, c) = (T(1, 2, 3, 4, 5), T(2, 2, 2, 2, 2), T(5, 4, 3, 2, 1));
        var d = a + b;
        var e = b + c;
        var f = d + e;
        f.Backward(new Tensor(new double[] { 1, 1, 1, 1, 1 }));
        Assert.Equal(new double[] { 2, 2, 2, 2, 2 }, b.Grad!.ToArray());
    }

    [Fact]
    public void NegationFlipsTheGradient()
    {
        var (a, b, c) = (T(1, 2, 3, 4, 5), T(2, 2, 2, 2, 2), T(5, 4, 3, 2, 1));
        var d = a + (-b);
        var e = (-b) + c;
        var f = d + e;
        f.Backward(new Tensor(new double[] { 1, 1, 1, 1, 1 }));
        Assert.Equal(new double[] { -2, -2, -2, -2, -2 }, b.Grad!.ToArray());
    }

    [Fact]
    public void SumAndExpandOfTheTwoByThreeExample()
    {
        var x = new Tensor(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        Assert.Equal(new double[] { 5, 7, 9 }, x.Sum(0).ToArray());
        Assert.Equal(new double[] { 6, 15 }, x.Sum(1).ToArray());

        var e0 = x.Expand(0, 4);
        Assert.Equal(new[] { 4, 2, 3 }, e0.Shape);
        Assert.Equal(Enumerable.Repeat(new double[] { 1, 2, 3, 4, 5, 6 }, 4).SelectMany(r => r).ToArray(), e0.ToArray());

        var e2 = x.Expand(2, 4);
        Assert.Equal(new[] { 2, 3, 4 }, e2.Shape);
        Assert.Equal(new double[] { 1, 2, 3, 4, 5, 6 }.SelectMany(v => Enumerable.Repeat(v, 4)).ToArray(), e2.ToArray());

        var e1 = x.Expand(1, 4);
        Assert.Equal(new[] { 2, 4, 3 }, e1.Shape);
        Assert.Equal(new[] { new double[] { 1, 2, 3 }, new double[] { 4, 5, 6 } }.SelectMany(r => Enumerable.Repeat(r, 4).SelectMany(q => q)).ToArray(), e1.ToArray());
    }

    [Fact]
    public void SumAndExpandAreEachOthersGradient()
    {
        var x = new Tensor(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } }, autograd: true);
        x.Sum(1).Backward(new Tensor(new double[] { 10, 20 }));
        Assert.Equal(new double[] { 10, 10, 10, 20, 20, 20 }, x.Grad!.ToArray());
        x.Grad = null;
        x.Expand(1, 4).Backward();
        Assert.Equal(Enumerable.Repeat(4.0, 6).ToArray(), x.Grad!.ToArray());
    }

    private static Tensor Data() => new(Mat(Get("grokking", "data")), autograd: true);
    private static Tensor Target() => new(Mat(Get("grokking", "target")), autograd: true);

    [Fact]
    public void TwoMatmulTrainingRunMatchesTheListedLosses()
    {
        var c = Get("grokking", "two_matmul_sgd");
        var weights = c.GetProperty("weights").EnumerateArray().Select(w => new Tensor(Mat(w), autograd: true)).ToList();
        var data = Data();
        var target = Target();
        var sgd = new SGD(weights, c.GetProperty("alpha").GetDouble());
        var losses = new List<double>();
        for (int i = 0; i < c.GetProperty("steps").GetInt32(); i++)
        {
            var pred = data.MM(weights[0]).MM(weights[1]);
            var loss = ((pred - target) * (pred - target)).Sum(0);
            loss.Backward(new Tensor(Core1(loss.Shape)));
            sgd.Step();
            sgd.ZeroGrad();
            losses.Add(loss.ToArray().Single());
        }
        Close(Vec(c.GetProperty("losses")), losses.ToArray(), 1e-9);
    }

    private static FuncFlow.CSharp.Tensor Core1(int[] shape) => FuncFlow.CSharp.Tensor.Ones(shape);

    [Fact]
    public void SequentialLinearMseTrainingRunMatchesTheListedLosses()
    {
        var c = Get("grokking", "sequential_linear_mse");
        var l0 = new Linear(2, 3, new Random(42));
        var l1 = new Linear(3, 1, new Random(43));
        var model = new Sequential(l0);
        model.Add(l1);
        var parameters = c.GetProperty("parameters").EnumerateArray().ToArray();
        l0.Weight.Data = FuncFlow.CSharp.Tensor.Create(Mat(parameters[0]));
        l0.Bias.Data = FuncFlow.CSharp.Tensor.Create(Vec(parameters[1]));
        l1.Weight.Data = FuncFlow.CSharp.Tensor.Create(Mat(parameters[2]));
        l1.Bias.Data = FuncFlow.CSharp.Tensor.Create(Vec(parameters[3]));
        Assert.Equal(new[] { l0.Weight, l0.Bias, l1.Weight, l1.Bias }, model.GetParameters());

        var data = Data();
        var target = Target();
        var criterion = new MSELoss();
        var sgd = new SGD(model.GetParameters(), c.GetProperty("alpha").GetDouble());
        var losses = new List<double>();
        for (int i = 0; i < c.GetProperty("steps").GetInt32(); i++)
        {
            var pred = model.Forward(data);
            var loss = criterion.Forward(pred, target);
            loss.Backward();
            sgd.Step();
            sgd.ZeroGrad();
            losses.Add(loss.ToArray().Single());
        }
        Close(Vec(c.GetProperty("losses")), losses.ToArray(), 1e-9);
    }

    [Fact]
    public void HeInitialisationIsSeedableAndScaled()
    {
        var a = new Linear(200, 50, new Random(7));
        var b = new Linear(200, 50, new Random(7));
        Assert.Equal(a.Weight.ToArray(), b.Weight.ToArray());
        Assert.Equal(new[] { 200, 50 }, a.Weight.Shape);
        Assert.Equal(new double[50], a.Bias.ToArray());
        Assert.True(a.Weight.Autograd && a.Bias.Autograd);
        var w = a.Weight.ToArray();
        var std = Math.Sqrt(w.Select(v => v * v).Average());
        Assert.InRange(std, 0.9 * Math.Sqrt(2.0 / 200), 1.1 * Math.Sqrt(2.0 / 200));
    }

    [Fact]
    public void GradientsAccumulateAcrossCallsUntilCleared()
    {
        var x = T(1, 2, 3);
        var y = x * x;
        y.Backward();
        Assert.Equal(new double[] { 2, 4, 6 }, x.Grad!.ToArray());
        var held = x.Grad;
        y.Backward();
        Assert.Equal(new double[] { 4, 8, 12 }, x.Grad!.ToArray());
        Assert.Same(held, x.Grad);
        var sgd = new SGD(new[] { x });
        sgd.ZeroGrad();
        Assert.Equal(new double[] { 0, 0, 0 }, x.Grad!.ToArray());
        x.Grad = null;
        (x + x).Backward();
        Assert.Equal(new double[] { 2, 2, 2 }, x.Grad!.ToArray());
    }

    [Fact]
    public void BackwardUsesTheValuesCachedAtForwardTime()
    {
        var x = T(1, 2, 3);
        var y = x * x;
        x.Data = FuncFlow.CSharp.Tensor.Create(new double[] { 100, 100, 100 });
        y.Backward();
        Assert.Equal(new double[] { 2, 4, 6 }, x.Grad!.ToArray());
    }

    [Fact]
    public void TensorsWithoutAutogradAreConstants()
    {
        var x = T(1, 2, 3);
        var c = new Tensor(new double[] { 4, 5, 6 });
        var y = x * c;
        Assert.True(y.Autograd);
        y.Backward();
        Assert.Equal(new double[] { 4, 5, 6 }, x.Grad!.ToArray());
        Assert.Null(c.Grad);
        Assert.False((c + c).Autograd);
        Assert.Empty((c + c).Creators);
    }

    [Fact]
    public void SgdStepIsDataMinusAlphaTimesGrad()
    {
        var w = T(1, 2, 3);
        (w * w).Backward();
        new SGD(new[] { w }, alpha: 0.1).Step();
        Close(new[] { 1 - 0.2, 2 - 0.4, 3 - 0.6 }, w.ToArray(), 1e-15);
    }

    [Fact]
    public void LayersAndCrossEntropyTrainAClassifier()
    {
        var rng = new Random(1);
        var model = new Sequential(new Linear(2, 8, rng), new Tanh(), new Linear(8, 8, rng), new Relu(), new Linear(8, 2, rng), new Sigmoid());
        var data = new Tensor(new double[,] { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } });
        var target = new Tensor(new double[] { 0, 1, 1, 0 });
        var criterion = new CrossEntropyLoss();
        var sgd = new SGD(model.GetParameters(), alpha: 0.5);
        Assert.Empty(criterion.GetParameters());
        double first = 0, last = 0;
        for (int i = 0; i < 300; i++)
        {
            var loss = criterion.Forward(model.Forward(data), target);
            loss.Backward();
            sgd.Step();
            sgd.ZeroGrad();
            if (i == 0) first = loss.ToArray()[0];
            last = loss.ToArray()[0];
        }
        Assert.True(last < first, $"loss went from {first} to {last}");
    }

    [Fact]
    public void IndexSelectPicksRowsAndScattersGradients()
    {
        var embeddings = new Tensor(new double[,] { { 1, 2 }, { 3, 4 }, { 5, 6 } }, autograd: true);
        var picked = embeddings.IndexSelect(new Tensor(new double[] { 2, 0, 2 }));
        Assert.Equal(new[] { 3, 2 }, picked.Shape);
        Assert.Equal(new double[] { 5, 6, 1, 2, 5, 6 }, picked.ToArray());
        picked.Backward();
        Assert.Equal(new double[] { 1, 1, 0, 0, 2, 2 }, embeddings.Grad!.ToArray());
    }

    [Fact]
    public void SoftmaxRowsSumToOne()
    {
        var s = new Tensor(new double[,] { { 1, 2, 3, 4 }, { 0, 0, 0, 0 } }).Softmax();
        Close(Flat(Get("lecture", "softmax", "value")), s.ToArray()[..4], 1e-12);
        Close(new[] { 0.25, 0.25, 0.25, 0.25 }, s.ToArray()[4..], 1e-15);
    }
}
