using FuncFlow.Nodes;
using Xunit;
using AG = FuncFlow.Autograd;

namespace FacadeTests;

/// <summary>Misuse gets an exception that says what is wrong and what to do.</summary>
public class MisuseTests
{
    [Fact]
    public void AFeedMissingAnInputNamesIt()
    {
        var (X, W, b) = (new Input("X"), new Input("W"), new Input("b"));
        var f = new Linear(X, W, b);
        var ex = Assert.Throws<ArgumentException>(() => Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [X] = new double[,] { { 1 } }, [b] = new double[] { 1 } }));
        Assert.Contains("'W'", ex.Message);
        Assert.Contains("Linear_OP", ex.Message);
        Assert.Contains("feed", ex.Message);
    }

    [Fact]
    public void AFeedMissingAnInputBehindAnotherNodeNamesIt()
    {
        var (x, y, z) = (new Input("x"), new Input("y"), new Input("z"));
        var cost = new Add(x, new Mul(y, z));
        var ex = Assert.Throws<ArgumentException>(() => Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [x] = 1.0, [y] = 2.0 }));
        Assert.Contains("'z'", ex.Message);
    }

    [Fact]
    public void ANodeShapeMismatchNamesBothShapes()
    {
        var (X, W, b) = (new Input("X"), new Input("W"), new Input("b"));
        var f = new Linear(X, W, b);
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
        {
            [X] = new double[,] { { 1, 2, 3 }, { 4, 5, 6 } }, [W] = new double[,] { { 1 }, { 2 } }, [b] = new double[] { 0 },
        });
        var ex = Assert.Throws<ArgumentException>(() => Graph.ForwardPass(f, graph));
        Assert.Contains("(2, 3)", ex.Message);
        Assert.Contains("(2, 1)", ex.Message);
        Assert.Contains("Linear_OP", ex.Message);
    }

    [Fact]
    public void AnMseOfMismatchedSizesNamesBothShapes()
    {
        var (y, a) = (new Input("y"), new Input("a"));
        var cost = new MSE(y, a);
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [y] = new double[] { 1, 2, 3 }, [a] = new double[] { 1, 2 } });
        var ex = Assert.Throws<ArgumentException>(() => Graph.ForwardPass(cost, graph));
        Assert.Contains("(3,)", ex.Message);
        Assert.Contains("(2,)", ex.Message);
    }

    [Fact]
    public void ATensorShapeMismatchNamesBothShapes()
    {
        var a = new AG.Tensor(new double[] { 1, 2, 3 });
        var b = new AG.Tensor(new double[] { 1, 2 });
        var ex = Assert.Throws<ArgumentException>(() => a + b);
        Assert.Contains("(3,)", ex.Message);
        Assert.Contains("(2,)", ex.Message);
        var m = new AG.Tensor(new double[,] { { 1, 2, 3 } });
        ex = Assert.Throws<ArgumentException>(() => m.MM(m));
        Assert.Contains("(1, 3)", ex.Message);
    }

    [Fact]
    public void DataSetToAnotherShapeIsRefused()
    {
        var t = new AG.Tensor(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } }, autograd: true);
        var ex = Assert.Throws<ArgumentException>(() => t.Data = FuncFlow.CSharp.Tensor.Create(new double[] { 1, 2 }));
        Assert.Contains("(2, 3)", ex.Message);
        Assert.Contains("(2,)", ex.Message);
        Assert.Equal(new[] { 2, 3 }, t.Shape);
    }

    [Fact]
    public void BackwardWithoutAutogradIsRefused()
    {
        var t = new AG.Tensor(new double[] { 1, 2, 3 });
        var ex = Assert.Throws<InvalidOperationException>(() => (t + t).Backward());
        Assert.Contains("autograd", ex.Message);
    }

    [Fact]
    public void BackwardWithAGradientOfAnotherShapeIsRefused()
    {
        var t = new AG.Tensor(new double[] { 1, 2, 3 }, autograd: true);
        var ex = Assert.Throws<ArgumentException>(() => (t + t).Backward(new AG.Tensor(new double[] { 1, 1 })));
        Assert.Contains("(2,)", ex.Message);
        Assert.Contains("(3,)", ex.Message);
    }

    [Fact]
    public void SgdUpdateBeforeBackwardIsRefused()
    {
        var (x, w) = (new Input("x"), new Input("w"));
        var f = new Mul(x, w);
        Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [x] = 1.0, [w] = 2.0 });
        var ex = Assert.Throws<InvalidOperationException>(() => Graph.SgdUpdate(new[] { w }));
        Assert.Contains("ForwardAndBackward", ex.Message);
    }

    [Fact]
    public void ForwardBeforeFeedingIsRefused()
    {
        var (x, w) = (new Input("x"), new Input("w"));
        var f = new Mul(x, w);
        var ex = Assert.Throws<InvalidOperationException>(() => f.Forward());
        Assert.Contains("'x'", ex.Message);
    }

    [Fact]
    public void IndexSelectOutOfRangeIsRefused()
    {
        var t = new AG.Tensor(new double[,] { { 1, 2 }, { 3, 4 } });
        var ex = Assert.Throws<ArgumentException>(() => t.IndexSelect(new AG.Tensor(new double[] { 2 })));
        Assert.Contains("0..1", ex.Message);
    }
}
