using FuncFlow.Nodes;
using Xunit;
using static FacadeTests.Fixture;

namespace FacadeTests;

/// <summary>Seed 000's worked examples, through FuncFlow.Nodes.</summary>
public class MiniFlowSeedTests
{
    [Fact]
    public void AddOfThreeInputs()
    {
        var (x, y, z) = (new Input("x"), new Input("y"), new Input("z"));
        var f = new Add(x, y, z);
        var feed = new Dictionary<Input, FeedValue> { [x] = 4, [y] = 5, [z] = 10 };
        var graph = Graph.TopologicalSort(feed);
        var result = Graph.ForwardPass(f, graph);
        Assert.Equal(Num("miniflow", "add", "value"), result.ToArray().Single());
        Assert.Same(f, graph[^1]);
        Assert.Equal(4, graph.Count);
    }

    [Fact]
    public void MulOfThreeInputs()
    {
        var (x, y, z) = (new Input("x"), new Input("y"), new Input("z"));
        var f = new Mul(x, y, z);
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [x] = 4, [y] = 5, [z] = 10 });
        Assert.Equal(Num("miniflow", "mul", "value"), Graph.ForwardPass(f, graph).ToArray().Single());
    }

    [Fact]
    public void LinearTransform()
    {
        var c = Get("miniflow", "linear");
        var (X, W, b) = (new Input("X"), new Input("W"), new Input("b"));
        var f = new Linear(X, W, b);
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
        {
            [X] = Mat(c.GetProperty("X")), [W] = Mat(c.GetProperty("W")), [b] = Vec(c.GetProperty("b")),
        });
        var output = Graph.ForwardPass(f, graph);
        Assert.Equal(new[] { 2, 2 }, output.Shape);
        Close(Flat(c.GetProperty("value")), output.ToArray(), 1e-12);
    }

    [Fact]
    public void LinearThenSigmoid()
    {
        var c = Get("miniflow", "linear_sigmoid");
        var (X, W, b) = (new Input("X"), new Input("W"), new Input("b"));
        var g = new Sigmoid(new Linear(X, W, b));
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
        {
            [X] = Mat(c.GetProperty("X")), [W] = Mat(c.GetProperty("W")), [b] = Vec(c.GetProperty("b")),
        });
        Close(Flat(c.GetProperty("value")), Graph.ForwardPass(g, graph).ToArray(), 1e-6);
    }

    [Fact]
    public void MeanSquaredError()
    {
        var c = Get("miniflow", "mse");
        var (y, a) = (new Input("y"), new Input("a"));
        var cost = new MSE(y, a);
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [y] = Vec(c.GetProperty("y")), [a] = Vec(c.GetProperty("a")) });
        Graph.ForwardPass(cost, graph);
        Close(c.GetProperty("value").GetDouble(), cost.Value!.ToArray().Single(), 1e-12);
    }

    [Fact]
    public void GradientsOfMseOfSigmoidOfLinear()
    {
        var c = Get("miniflow", "linear_sigmoid_mse_gradients");
        var (X, y, W1, b) = (new Input("X"), new Input("y"), new Input("W1"), new Input("b"));
        var cost = new MSE(y, new Sigmoid(new Linear(X, W1, b)));
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
        {
            [X] = Mat(c.GetProperty("X")), [y] = Vec(c.GetProperty("y")), [W1] = Mat(c.GetProperty("W1")), [b] = Vec(c.GetProperty("b")),
        });
        Graph.ForwardAndBackward(graph);
        Assert.Same(cost, graph[^1]);
        var expected = c.GetProperty("gradients");
        foreach (var (node, key) in new[] { (X, "X"), (y, "y"), (W1, "W1"), (b, "b") })
        {
            var grad = node.Gradients[node];
            Assert.Equal(node.Value!.Shape, grad.Shape); // a gradient has its input's shape (the seed's y gradient is (2, 1))
            Close(Flat(expected.GetProperty(key)), grad.ToArray(), 1e-6);
        }
    }

    [Fact]
    public void IntermediateNodesHoldGradientsForTheirInbound()
    {
        var c = Get("miniflow", "linear_sigmoid_mse_gradients");
        var (X, y, W1, b) = (new Input("X"), new Input("y"), new Input("W1"), new Input("b"));
        var linear = new Linear(X, W1, b);
        var sigmoid = new Sigmoid(linear);
        var cost = new MSE(y, sigmoid);
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
        {
            [X] = Mat(c.GetProperty("X")), [y] = Vec(c.GetProperty("y")), [W1] = Mat(c.GetProperty("W1")), [b] = Vec(c.GetProperty("b")),
        });
        Graph.ForwardAndBackward(graph);
        // The seed's trace: w.r.t Sigmoid_Op [[-0.9999833], [-1.9999833]], w.r.t Linear_OP [[-1.67008640e-05], [-3.34020069e-05]].
        Close(new[] { -0.9999833, -1.9999833 }, cost.Gradients[sigmoid].ToArray(), 1e-6);
        Close(new[] { -1.67008640e-05, -3.34020069e-05 }, sigmoid.Gradients[linear].ToArray(), 1e-6);
        Close(Flat(c.GetProperty("gradients").GetProperty("W1")), linear.Gradients[W1].ToArray(), 1e-6);
    }

    [Fact]
    public void GradientDescentFindsTheMinimumOfAQuartic()
    {
        var c = Get("miniflow", "gradient_descent_1d");
        // f(x) = x^4 - 3x^3 + 2 as nodes; its gradient comes from the core, not from the seed's hand-written df.
        var x = new Input("x");
        var minusThree = new Input("-3");
        var two = new Input("2");
        var f = new Add(new Mul(x, x, x, x), new Mul(minusThree, x, x, x), two);
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [x] = c.GetProperty("start").GetDouble(), [minusThree] = -3.0, [two] = 2.0 });
        var step = c.GetProperty("step").GetDouble();
        var precision = c.GetProperty("stop_when_step_below").GetDouble();
        double previousStep = double.MaxValue;
        int iterations = 0;
        while (previousStep > precision && iterations++ < 100_000)
        {
            var before = x.Value!.ToArray()[0];
            Graph.ForwardAndBackward(graph);
            Graph.SgdUpdate(new[] { x }, step);
            previousStep = Math.Abs(x.Value!.ToArray()[0] - before);
        }
        Assert.InRange(x.Value!.ToArray()[0], c.GetProperty("minimum_printed").GetDouble() - 5e-7, c.GetProperty("minimum_printed").GetDouble() + 5e-7);
    }

    [Fact]
    public void SgdUpdateMovesAgainstTheGradient()
    {
        var (X, y, W, b) = (new Input("X"), new Input("y"), new Input("W"), new Input("b"));
        var cost = new MSE(y, new Linear(X, W, b));
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
        {
            [X] = new double[,] { { 1, 2 }, { 3, 4 }, { 5, 6 } }, [y] = new double[] { 1, 2, 3 }, [W] = new double[,] { { 0.1 }, { -0.2 } }, [b] = new double[] { 0.0 },
        });
        Graph.ForwardAndBackward(graph);
        var first = cost.Value!.ToArray()[0];
        var w0 = W.Value!.ToArray();
        var gw = W.Gradients[W].ToArray();
        Graph.SgdUpdate(new[] { W, b }, 0.01);
        Close(w0.Zip(gw, (w, g) => w - 0.01 * g).ToArray(), W.Value!.ToArray(), 1e-15);
        for (int i = 0; i < 50; i++)
        {
            Graph.ForwardAndBackward(graph);
            Graph.SgdUpdate(new[] { W, b }, 0.01);
        }
        Assert.True(cost.Value!.ToArray()[0] < first);
    }

    [Fact]
    public void LectureSoftmaxAndCrossEntropy()
    {
        var s = Get("lecture", "softmax");
        var x = new Input("x");
        var softmax = new Softmax(x);
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [x] = Vec(s.GetProperty("x")) });
        Close(Flat(s.GetProperty("value")), Graph.ForwardPass(softmax, graph).ToArray(), 1e-12);

        var ce = Get("lecture", "cross_entropy");
        var logits = new Input("logits");
        var label = new Input("label");
        var cost = new SoftmaxCrossEntropy(logits, label);
        graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [logits] = Vec(ce.GetProperty("logits")), [label] = ce.GetProperty("label").GetDouble() });
        Graph.ForwardAndBackward(graph);
        Close(ce.GetProperty("value").GetDouble(), cost.Value!.ToArray().Single(), 1e-12);
        // d/dlogits = softmax - onehot(label)
        var p = Flat(s.GetProperty("value"));
        p[3] -= 1;
        Close(p, logits.Gradients[logits].ToArray(), 1e-12, 1e-15);
        Assert.All(label.Gradients[label].ToArray(), v => Assert.Equal(0.0, v));
    }

    [Fact]
    public void LectureNetworkTrainsInNodeStyle()
    {
        // A small softmax-regression network in this style: X (4x2), labels 0/1, W (2x2), b (2).
        var (X, labels, W, b) = (new Input("X"), new Input("labels"), new Input("W"), new Input("b"));
        var logits = new Linear(X, W, b);
        var prediction = new Softmax(logits);
        var cost = new SoftmaxCrossEntropy(logits, labels);
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
        {
            [X] = new double[,] { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } }, [labels] = new double[] { 0, 1, 0, 1 },
            [W] = new double[,] { { 0.1, -0.1 }, { 0.05, 0.02 } }, [b] = new double[] { 0, 0 },
        });
        Assert.Same(cost, graph[^1]);
        Graph.ForwardAndBackward(graph);
        var first = cost.Value!.ToArray()[0];
        for (int i = 0; i < 200; i++)
        {
            Graph.ForwardAndBackward(graph);
            Graph.SgdUpdate(new[] { W, b }, 0.5);
        }
        Graph.ForwardAndBackward(graph);
        Assert.True(cost.Value!.ToArray()[0] < first / 4);
        var p = prediction.Value!.ToArray();
        Assert.True(p[0] > 0.5 && p[3] > 0.5 && p[4] > 0.5 && p[7] > 0.5);
    }
}
