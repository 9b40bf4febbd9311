using FuncFlow;
using Microsoft.FSharp.Collections;
using Xunit;
using static FacadeTests.Fixture;
using AG = FuncFlow.Autograd;
using CoreTensor = FuncFlow.Tensor;
using N = FuncFlow.Nodes;

namespace FacadeTests;

/// <summary>Each facade operation's gradients equal the core's gradients of the same expression.</summary>
public class CoreEquivalenceTests
{
    private static CoreTensor Random(int seed, params int[] shape) => TensorModule.randNormal(DType.Float64, seed, shape, 0.0, 1.0);

    /// <summary>The core's value and gradients of f(vars) with seed, computed directly with Grad.vjp and Eval.</summary>
    private static (CoreTensor Value, CoreTensor[] Grads) CoreReference(Func<Expr[], Expr> f, CoreTensor[] values, Func<int[], CoreTensor> seed)
    {
        var env = new Dictionary<string, CoreTensor>();
        var vars = values.Select((v, i) => { env["v" + i] = v; return ExprModule.var("v" + i, v.Shape); }).ToArray();
        var output = f(vars);
        var map = Grad.vjp(ExprModule.constant(seed(output.Shape)), ListModule.OfSeq(vars), output);
        var results = Eval.Many(env, new[] { output }.Concat(vars.Select(v => map[v])), EvalOptions.Default);
        return (results[0], results[1..]);
    }

    public static TheoryData<string> AutogradOps => new()
    {
        "add", "sub", "mul", "neg", "sum0", "sum1", "expand0", "expand2", "transpose", "mm", "sigmoid", "tanh", "relu", "softmax", "index_select", "cross_entropy",
    };

    [Theory]
    [MemberData(nameof(AutogradOps))]
    public void AutogradGradientEqualsCoreGradient(string op)
    {
        var a = Random(1, 3, 4);
        var b = Random(2, 3, 4);
        (Func<AG.Tensor[], AG.Tensor>, Func<Expr[], Expr>, CoreTensor[], bool[]) spec = op switch
        {
            "add" => (t => t[0] + t[1], v => ExprModule.add(v[0], v[1]), new[] { a, b }, new[] { true, true }),
            "sub" => (t => t[0] - t[1], v => ExprModule.sub(v[0], v[1]), new[] { a, b }, new[] { true, true }),
            "mul" => (t => t[0] * t[1], v => ExprModule.mul(v[0], v[1]), new[] { a, b }, new[] { true, true }),
            "neg" => (t => -t[0], v => ExprModule.neg(v[0]), new[] { a }, new[] { true }),
            "sum0" => (t => t[0].Sum(0), v => ExprModule.sumAxis(0, v[0]), new[] { a }, new[] { true }),
            "sum1" => (t => t[0].Sum(1), v => ExprModule.sumAxis(1, v[0]), new[] { a }, new[] { true }),
            "expand0" => (t => t[0].Expand(0, 5), v => ExprModule.expand(0, 5, v[0]), new[] { a }, new[] { true }),
            "expand2" => (t => t[0].Expand(2, 2), v => ExprModule.expand(2, 2, v[0]), new[] { a }, new[] { true }),
            "transpose" => (t => t[0].Transpose(), v => ExprModule.transpose(v[0]), new[] { a }, new[] { true }),
            "mm" => (t => t[0].MM(t[1]), v => ExprModule.matmul(v[0], v[1]), new[] { a, Random(3, 4, 2) }, new[] { true, true }),
            "sigmoid" => (t => t[0].Sigmoid(), v => ExprModule.sigmoid(v[0]), new[] { a }, new[] { true }),
            "tanh" => (t => t[0].Tanh(), v => ExprModule.tanh(v[0]), new[] { a }, new[] { true }),
            "relu" => (t => t[0].Relu(), v => ExprModule.relu(v[0]), new[] { a }, new[] { true }),
            "softmax" => (t => t[0].Softmax(), v => ExprModule.softmax(-1, v[0]), new[] { a }, new[] { true }),
            "index_select" => (t => t[0].IndexSelect(t[1]), v => ExprModule.gather(v[1], v[0]), new[] { a, TensorModule.ofArray(new double[] { 2, 0, 2, 1 }) }, new[] { true, false }),
            "cross_entropy" => (t => t[0].CrossEntropy(t[1]),
                v => ExprModule.mean(ExprModule.neg(ExprModule.sumAxis(-1, ExprModule.mul(ExprModule.oneHot(4, v[1]), ExprModule.logSoftmax(-1, v[0]))))),
                new[] { a, TensorModule.ofArray(new double[] { 3, 0, 1 }) }, new[] { true, false }),
            _ => throw new ArgumentOutOfRangeException(nameof(op)),
        };
        var (facade, core, values, differentiable) = spec;
        var inputs = values.Select((v, i) => new AG.Tensor(v, autograd: differentiable[i])).ToArray();
        var result = facade(inputs);
        var seed = Random(99, result.Shape);
        result.Backward(new AG.Tensor(seed));
        var (value, grads) = CoreReference(core, values, _ => seed);
        Close(value.ToArray(), result.ToArray(), 1e-14, 1e-15);
        for (int i = 0; i < inputs.Length; i++)
            if (differentiable[i]) Close(grads[i].ToArray(), inputs[i].Grad!.ToArray(), 1e-12, 1e-14);
    }

    public static TheoryData<string> NodeOps => new()
    {
        "add", "mul", "linear", "sigmoid", "relu", "tanh", "softmax", "mse", "softmax_cross_entropy",
    };

    [Theory]
    [MemberData(nameof(NodeOps))]
    public void NodeGradientEqualsCoreGradient(string op)
    {
        var a = Random(1, 3, 4);
        var b = Random(2, 3, 4);
        (Func<N.Input[], N.Node>, Func<Expr[], Expr>, CoreTensor[]) spec = op switch
        {
            "add" => (i => new N.Add(i[0], i[1], i[2]), v => ExprModule.add(ExprModule.add(v[0], v[1]), v[2]), new[] { a, b, Random(4, 4) }),
            "mul" => (i => new N.Mul(i[0], i[1]), v => ExprModule.mul(v[0], v[1]), new[] { a, b }),
            "linear" => (i => new N.Linear(i[0], i[1], i[2]), v => ExprModule.add(ExprModule.matmul(v[0], v[1]), v[2]), new[] { a, Random(3, 4, 2), Random(4, 2) }),
            "sigmoid" => (i => new N.Sigmoid(i[0]), v => ExprModule.sigmoid(v[0]), new[] { a }),
            "relu" => (i => new N.Relu(i[0]), v => ExprModule.relu(v[0]), new[] { a }),
            "tanh" => (i => new N.Tanh(i[0]), v => ExprModule.tanh(v[0]), new[] { a }),
            "softmax" => (i => new N.Softmax(i[0]), v => ExprModule.softmax(-1, v[0]), new[] { a }),
            "mse" => (i => new N.MSE(i[0], i[1]), v => ExprModule.mean(ExprModule.powScalar(2.0, ExprModule.sub(ExprModule.reshape(new[] { -1, 1 }, v[0]), ExprModule.reshape(new[] { -1, 1 }, v[1])))),
                new[] { Random(5, 6), Random(6, 6, 1) }),
            "softmax_cross_entropy" => (i => new N.SoftmaxCrossEntropy(i[0], i[1]),
                v => ExprModule.mean(ExprModule.neg(ExprModule.sumAxis(-1, ExprModule.mul(v[1], ExprModule.logSoftmax(-1, v[0]))))),
                new[] { a, TensorModule.ofArray2D(new double[,] { { 0, 1, 0, 0 }, { 0, 0, 0, 1 }, { 1, 0, 0, 0 } }) }),
            _ => throw new ArgumentOutOfRangeException(nameof(op)),
        };
        var (facade, core, values) = spec;
        var inputs = values.Select((_, i) => new N.Input("in" + i)).ToArray();
        var node = facade(inputs);
        var feed = new Dictionary<N.Input, N.FeedValue>();
        for (int i = 0; i < inputs.Length; i++) feed[inputs[i]] = values[i];
        var graph = N.Graph.TopologicalSort(feed);
        Assert.Same(node, graph[^1]);
        N.Graph.ForwardAndBackward(graph);
        var (value, grads) = CoreReference(core, values, shape => TensorModule.ones(DType.Float64, shape));
        Close(value.ToArray(), node.Value!.ToArray(), 1e-14, 1e-15);
        for (int i = 0; i < inputs.Length; i++)
        {
            if (op == "softmax_cross_entropy" && i == 1) continue; // labels get no gradient
            Close(grads[i].ToArray(), inputs[i].Gradients[inputs[i]].ToArray(), 1e-12, 1e-14);
            Close(grads[i].ToArray(), node.Gradients[inputs[i]].ToArray(), 1e-12, 1e-14);
        }
    }

    [Fact]
    public void AWholeNetworkMatchesTheCoreGradientOfTheComposedExpression()
    {
        // Node style and tensor style on the same two-layer network give the core's gradients of one expression.
        var x = Random(10, 5, 3);
        var w1 = Random(11, 3, 4);
        var b1 = Random(12, 4);
        var w2 = Random(13, 4, 1);
        var b2 = Random(14, 1);
        var y = Random(15, 5);
        Func<Expr[], Expr> core = v =>
        {
            var l2 = ExprModule.add(ExprModule.matmul(ExprModule.sigmoid(ExprModule.add(ExprModule.matmul(v[0], v[1]), v[2])), v[3]), v[4]);
            var d = ExprModule.sub(ExprModule.reshape(new[] { -1, 1 }, v[5]), ExprModule.reshape(new[] { -1, 1 }, l2));
            return ExprModule.mean(ExprModule.mul(d, d));
        };
        var (value, grads) = CoreReference(core, new[] { x, w1, b1, w2, b2, y }, s => TensorModule.ones(DType.Float64, s));

        var (X, W1, B1, W2, B2, Y) = (new N.Input("X"), new N.Input("W1"), new N.Input("b1"), new N.Input("W2"), new N.Input("b2"), new N.Input("y"));
        var cost = new N.MSE(Y, new N.Linear(new N.Sigmoid(new N.Linear(X, W1, B1)), W2, B2));
        var graph = N.Graph.TopologicalSort(new Dictionary<N.Input, N.FeedValue> { [X] = x, [W1] = w1, [B1] = b1, [W2] = w2, [B2] = b2, [Y] = y });
        N.Graph.ForwardAndBackward(graph);
        Close(value.ToArray(), cost.Value!.ToArray(), 1e-13);
        var inputs = new[] { X, W1, B1, W2, B2, Y };
        for (int i = 0; i < inputs.Length; i++) Close(grads[i].ToArray(), inputs[i].Gradients[inputs[i]].ToArray(), 1e-11, 1e-14);
    }
}
