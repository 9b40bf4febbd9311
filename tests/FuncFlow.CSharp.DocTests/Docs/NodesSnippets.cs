using FuncFlow.Nodes;
using Xunit;

namespace FacadeTests.Docs;

/// <summary>The docs' snippets of the MiniFlow-style facade (FuncFlow.Nodes), compiled and run.</summary>
public class NodesSnippets
{
    [Fact]
    public void Graphs()
    {
        // snippet: nodes
        var (X, y, W, b) = (new Input("X"), new Input("y"), new Input("W"), new Input("b"));
        var cost = new MSE(y, new Sigmoid(new Linear(X, W, b)));
        var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
        {
            [X] = new double[,] { { -1, -2 }, { -1, -2 } },
            [y] = new double[] { 1, 2 },
            [W] = new double[,] { { 2 }, { 3 } },
            [b] = new double[] { -3 },
        });
        Graph.ForwardAndBackward(graph);                 // NodeTrace.Enable(Console.Out) shows every step
        Console.WriteLine(cost);                          // MSE_Op: 2.499949896
        Console.WriteLine(string.Join(" ", W.Gradients[W].ToArray()));   // 5.010287086614411E-05 0.00010020574173228821
        Graph.SgdUpdate(new[] { W, b }, learningRate: 0.01);
        // end snippet
        Assert.Equal("MSE_Op: 2.499949896", cost.ToString());
        Assert.Equal(new[] { 2 - 0.01 * 5.010287086614411E-05, 3 - 0.01 * 0.00010020574173228821 }, W.Value!.ToArray(), new Close(1e-15));
    }
}
