using FuncFlow.Nodes;
using Xunit;

namespace FacadeTests;

[CollectionDefinition("trace", DisableParallelization = true)]
public class TraceCollection
{
}

/// <summary>The seed's DEBUG mode: the passes report node by node.</summary>
[Collection("trace")]
public class TraceTests
{
    [Fact]
    public void ForwardAndBackwardReportValuesAndGradientsNodeByNode()
    {
        var (X, y, W1, b) = (new Input("X"), new Input("y"), new Input("W1"), new Input("b"));
        var cost = new MSE(y, new Sigmoid(new Linear(X, W1, b)));
        var lines = new List<string>();
        using (NodeTrace.Enable(lines.Add))
        {
            Assert.True(NodeTrace.IsEnabled);
            var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
            {
                [X] = new double[,] { { -1, -2 }, { -1, -2 } }, [y] = new double[] { 1, 2 }, [W1] = new double[,] { { 2 }, { 3 } }, [b] = new double[] { -3 },
            });
            Graph.ForwardAndBackward(graph);
        }
        Assert.False(NodeTrace.IsEnabled);
        var text = string.Join("\n", lines);
        Assert.Contains("Forward pass @ Linear_OP", text);
        Assert.Contains("---> Linear_OP:\n[[-11], [-11]]", text);
        Assert.Contains("Forward pass @ MSE_Op", text);
        Assert.Contains("BP @ MSE_Op", text);
        Assert.Contains("BP @ Sigmoid_Op", text);
        Assert.Contains("Getting MSE_Op gradient", text);
        Assert.Contains("W.r.t W1", text);
        Assert.Contains("BP @ W1", text);
        Assert.True(text.IndexOf("BP @ MSE_Op", StringComparison.Ordinal) < text.IndexOf("BP @ Linear_OP", StringComparison.Ordinal));
        Assert.Contains("0.0001002057", text); // the W1 gradient, as the seed prints it (1.00205742e-04)
    }

    [Fact]
    public void TracingToATextWriterAndOff()
    {
        var x = new Input("x");
        var f = new Add(x, x);
        var writer = new StringWriter();
        using (NodeTrace.Enable(writer))
        {
            Graph.ForwardPass(f, Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [x] = 4 }));
        }
        Assert.Contains("x:\n4\nx:\n4\n---> Add_Op:\n8", writer.ToString().ReplaceLineEndings("\n"));
        var before = writer.ToString().Length;
        Graph.ForwardPass(f, Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [x] = 4 }));
        Assert.Equal(before, writer.ToString().Length);
    }
}
