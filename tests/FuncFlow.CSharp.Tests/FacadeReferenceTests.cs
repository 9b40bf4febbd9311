using System.Text.Json;
using Xunit;
using static FacadeTests.Fixture;
using AG = FuncFlow.Autograd;
using CoreTensor = FuncFlow.CSharp.Tensor;
using N = FuncFlow.Nodes;

namespace FacadeTests;

/// <summary>
/// Each facade operation's value and gradients equal PyTorch's in float64: reference/facade_reference.json, written
/// by reference/make_facade_reference.py, holds the inputs, outputs and gradients. The reference is independent of
/// the core's rules, which the facade is built on and so cannot be checked against.
/// </summary>
public class FacadeReferenceTests
{
    private static readonly Lazy<JsonElement> Reference = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "reference", "facade_reference.json")));
        return doc.RootElement.Clone();
    });

    /// <summary>One case: inputs, which of them get gradients, torch's output and gradients, and the seed gradient (autograd).</summary>
    private sealed record Case(CoreTensor[] Inputs, bool[] Differentiable, CoreTensor Output, CoreTensor?[] Grads, CoreTensor? Seed);

    private static CoreTensor Read(JsonElement e) =>
        CoreTensor.Create(Vec(e.GetProperty("values")), e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray());

    private static Case Load(JsonElement c) => new(
        c.GetProperty("inputs").EnumerateArray().Select(Read).ToArray(),
        c.GetProperty("inputs").EnumerateArray().Select(i => i.GetProperty("differentiable").GetBoolean()).ToArray(),
        Read(c.GetProperty("output")),
        c.GetProperty("grads").EnumerateArray().Select(g => g.ValueKind == JsonValueKind.Null ? null : Read(g)).ToArray(),
        c.TryGetProperty("seed", out var seed) ? Read(seed) : null);

    /// <summary>Same shape, and values within rtol 1e-12 (atol 1e-14): float64 with another summation order.</summary>
    private static void Matches(string what, CoreTensor expected, CoreTensor actual)
    {
        Assert.True(expected.Shape.SequenceEqual(actual.Shape),
            $"{what}: torch's shape ({string.Join(", ", expected.Shape)}), FuncFlow's ({string.Join(", ", actual.Shape)})");
        Close(expected.ToArray(), actual.ToArray(), 1e-12, 1e-14);
    }

    public static TheoryData<string> AutogradOps => new()
    {
        "add", "sub", "mul", "neg", "sum0", "sum1", "expand0", "expand2", "transpose", "mm", "sigmoid", "tanh", "relu", "softmax", "index_select", "cross_entropy",
    };

    [Theory]
    [MemberData(nameof(AutogradOps))]
    public void AutogradValueAndGradientsEqualPyTorch(string op)
    {
        Func<AG.Tensor[], AG.Tensor> facade = op switch
        {
            "add" => t => t[0] + t[1],
            "sub" => t => t[0] - t[1],
            "mul" => t => t[0] * t[1],
            "neg" => t => -t[0],
            "sum0" => t => t[0].Sum(0),
            "sum1" => t => t[0].Sum(1),
            "expand0" => t => t[0].Expand(0, 5),
            "expand2" => t => t[0].Expand(2, 2),
            "transpose" => t => t[0].Transpose(),
            "mm" => t => t[0].MM(t[1]),
            "sigmoid" => t => t[0].Sigmoid(),
            "tanh" => t => t[0].Tanh(),
            "relu" => t => t[0].Relu(),
            "softmax" => t => t[0].Softmax(),
            "index_select" => t => t[0].IndexSelect(t[1]),
            "cross_entropy" => t => t[0].CrossEntropy(t[1]),
            _ => throw new ArgumentOutOfRangeException(nameof(op)),
        };
        var c = Load(Reference.Value.GetProperty("autograd").GetProperty(op));
        var inputs = c.Inputs.Select((v, i) => new AG.Tensor(v, autograd: c.Differentiable[i])).ToArray();
        var result = facade(inputs);
        result.Backward(new AG.Tensor(c.Seed!));
        Matches($"{op} value", c.Output, CoreTensor.Create(result.ToArray(), result.Shape));
        for (int i = 0; i < inputs.Length; i++)
        {
            if (c.Differentiable[i]) Matches($"{op} gradient of input {i}", c.Grads[i]!, CoreTensor.Create(inputs[i].Grad!.ToArray(), inputs[i].Shape));
            else Assert.Null(inputs[i].Grad);
        }
    }

    public static TheoryData<string> NodeOps => new()
    {
        "add", "mul", "linear", "sigmoid", "relu", "tanh", "softmax", "mse", "softmax_cross_entropy",
    };

    [Theory]
    [MemberData(nameof(NodeOps))]
    public void NodeValueAndGradientsEqualPyTorch(string op)
    {
        Func<N.Input[], N.Node> facade = op switch
        {
            "add" => i => new N.Add(i[0], i[1], i[2]),
            "mul" => i => new N.Mul(i[0], i[1]),
            "linear" => i => new N.Linear(i[0], i[1], i[2]),
            "sigmoid" => i => new N.Sigmoid(i[0]),
            "relu" => i => new N.Relu(i[0]),
            "tanh" => i => new N.Tanh(i[0]),
            // Weighted, since the ones seed alone gives softmax a zero gradient (its rows sum to 1).
            "softmax" => i => new N.Mul(new N.Softmax(i[0]), i[1]),
            "mse" => i => new N.MSE(i[0], i[1]),
            "softmax_cross_entropy" => i => new N.SoftmaxCrossEntropy(i[0], i[1]),
            _ => throw new ArgumentOutOfRangeException(nameof(op)),
        };
        var c = Load(Reference.Value.GetProperty("nodes").GetProperty(op));
        var inputs = c.Inputs.Select((_, i) => new N.Input("in" + i)).ToArray();
        var node = facade(inputs);
        RunNodes(op, c, inputs, node);
    }

    [Fact]
    public void AWholeNetworkEqualsPyTorch()
    {
        // MSE(y, Linear(Sigmoid(Linear(X, W1, b1)), W2, b2)): every input's gradient, the data's included.
        var c = Load(Reference.Value.GetProperty("network"));
        var (X, W1, B1, W2, B2, Y) = (new N.Input("X"), new N.Input("W1"), new N.Input("b1"), new N.Input("W2"), new N.Input("b2"), new N.Input("y"));
        var cost = new N.MSE(Y, new N.Linear(new N.Sigmoid(new N.Linear(X, W1, B1)), W2, B2));
        RunNodes("network", c, new[] { X, W1, B1, W2, B2, Y }, cost);
    }

    /// <summary>Feeds the case's inputs, runs the graph forward and backward, and compares the last node's value and
    /// every differentiable input's gradient, as the input holds it and, for the last node's own operands, as that node passes it back.</summary>
    private static void RunNodes(string op, Case c, N.Input[] inputs, N.Node last)
    {
        var feed = new Dictionary<N.Input, N.FeedValue>();
        for (int i = 0; i < inputs.Length; i++) feed[inputs[i]] = c.Inputs[i];
        var graph = N.Graph.TopologicalSort(feed);
        Assert.Same(last, graph[^1]);
        N.Graph.ForwardAndBackward(graph);
        Matches($"{op} value", c.Output, last.Value!);
        for (int i = 0; i < inputs.Length; i++)
        {
            if (!c.Differentiable[i]) continue; // labels get no gradient
            Matches($"{op} gradient of input {i}", c.Grads[i]!, inputs[i].Gradients[inputs[i]]);
            if (last.Gradients.TryGetValue(inputs[i], out var passed)) Matches($"{op} gradient the last node passes to input {i}", c.Grads[i]!, passed);
        }
    }
}
