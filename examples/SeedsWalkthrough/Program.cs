// Walks through seed 000 (MiniFlow) and seed 002 (Grokking Deep Learning ch. 13) with the C# facade,
// printing each result next to the one the seed prints.
//
//     dotnet run --project examples/SeedsWalkthrough            (add --trace to see the seed's DEBUG output)

using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Nodes;
using AG = FuncFlow.Autograd;

bool trace = args.Contains("--trace");

static void Show(string what, object ours, string seed) =>
    Console.WriteLine($"  {what,-34} {ours,-48} seed: {seed}");

static void Title(string text)
{
    Console.WriteLine();
    Console.WriteLine(text);
    Console.WriteLine(new string('-', text.Length));
}

// ------------------------------------------------------------------------------------------------------
Title("Seed 000, MiniFlow: nodes, topological sort, forward and backward passes");

{
    var (x, y, z) = (new Input("x"), new Input("y"), new Input("z"));
    var f = new Add(x, y, z);
    var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [x] = 4, [y] = 5, [z] = 10 });
    Show("Add(x, y, z), x=4 y=5 z=10", Graph.ForwardPass(f, graph).ToArray()[0], "19");
    Show("sorted nodes", string.Join(", ", graph.Select(n => n.Name)), "z, y, x, Add_Op (a set's order)");
}
{
    var (x, y, z) = (new Input("x"), new Input("y"), new Input("z"));
    var f = new Mul(x, y, z);
    var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [x] = 4, [y] = 5, [z] = 10 });
    Show("Mul(x, y, z)", Graph.ForwardPass(f, graph).ToArray()[0], "200");
}
{
    var (X, W, b) = (new Input("X"), new Input("W"), new Input("b"));
    var f = new Linear(X, W, b);
    var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
    {
        [X] = new double[,] { { 1, 2 }, { 3, 4 } }, [W] = new double[,] { { 5, 6 }, { 7, 8 } }, [b] = new double[] { -1, -1 },
    });
    Graph.ForwardPass(f, graph);
    Show("Linear(X, W, b)", f, "[[ 18.  21.] [ 42.  49.]]");
}
{
    var (X, W, b) = (new Input("X"), new Input("W"), new Input("b"));
    var g = new Sigmoid(new Linear(X, W, b));
    var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
    {
        [X] = new double[,] { { -1, -2 }, { -1, -2 } }, [W] = new double[,] { { 2, -3 }, { 2, -3 } }, [b] = new double[] { -3, -5 },
    });
    Graph.ForwardPass(g, graph);
    Show("Sigmoid(Linear(X, W, b))", FormatRow(g.Value!.ToArray()), "[[1.23394576e-04 9.82013790e-01] x2]");
}
{
    var (y, a) = (new Input("y"), new Input("a"));
    var cost = new MSE(y, a);
    var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [y] = new double[] { 1, 2, 3 }, [a] = new double[] { 4.5, 5, 10 } });
    Graph.ForwardPass(cost, graph);
    Show("MSE(y, a)", cost.Value!.ToArray()[0], "23.416666666666668");
}
{
    Console.WriteLine();
    Console.WriteLine("  Backpropagation: cost = MSE(y, Sigmoid(Linear(X, W1, b)))");
    var (X, y, W1, b) = (new Input("X"), new Input("y"), new Input("W1"), new Input("b"));
    var linear = new Linear(X, W1, b);
    var sigmoid = new Sigmoid(linear);
    var cost = new MSE(y, sigmoid);
    var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
    {
        [X] = new double[,] { { -1, -2 }, { -1, -2 } }, [y] = new double[] { 1, 2 }, [W1] = new double[,] { { 2 }, { 3 } }, [b] = new double[] { -3 },
    });
    using (trace ? NodeTrace.Enable(Console.Out) : null)
    {
        Graph.ForwardAndBackward(graph);
    }
    Show("cost", cost.Value!.ToArray()[0], "2.4999498960133932");
    Show("cost.Gradients[sigmoid]", FormatRow(cost.Gradients[sigmoid].ToArray()), "[[-0.9999833] [-1.9999833]]");
    Show("sigmoid.Gradients[linear]", FormatRow(sigmoid.Gradients[linear].ToArray()), "[[-1.67008640e-05] [-3.34020069e-05]]");
    Show("X.Gradients[X]", FormatRow(X.Gradients[X].ToArray()), "[[-3.34017280e-05 -5.01025919e-05] [-6.68040138e-05 -1.00206021e-04]]");
    Show("y.Gradients[y]", FormatRow(y.Gradients[y].ToArray()), "[[0.9999833] [1.9999833]] (shape (2, 1) there, (2,) here)");
    Show("W1.Gradients[W1]", FormatRow(W1.Gradients[W1].ToArray()), "[[5.01028709e-05] [1.00205742e-04]]");
    Show("b.Gradients[b]", FormatRow(b.Gradients[b].ToArray()), "[-5.01028709e-05]");
}
{
    Console.WriteLine();
    Console.WriteLine("  Gradient descent on f(x) = x^4 - 3x^3 + 2 from x = 6, step 0.01 (the gradient comes from the core)");
    var x = new Input("x");
    var (minusThree, two) = (new Input("-3"), new Input("2"));
    var f = new Add(new Mul(x, x, x, x), new Mul(minusThree, x, x, x), two);
    var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue> { [x] = 6, [minusThree] = -3, [two] = 2 });
    double step = double.MaxValue;
    while (step > 1e-5)
    {
        var before = x.Value!.ToArray()[0];
        Graph.ForwardAndBackward(graph);
        Graph.SgdUpdate(new[] { x }, learningRate: 0.01);
        step = Math.Abs(x.Value!.ToArray()[0] - before);
    }
    Show("local minimum at", x.Value!.ToArray()[0].ToString("F6"), "2.249965");
}

// ------------------------------------------------------------------------------------------------------
Title("Seed 002, Grokking ch. 13: tensors with autograd");

{
    var x = new AG.Tensor(new double[] { 1, 2, 3, 4, 5 }, autograd: true);
    var y = new AG.Tensor(new double[] { 2, 2, 2, 2, 2 }, autograd: true);
    var z = x + y;
    z.Backward(new AG.Tensor(new double[] { 1, 1, 1, 1, 1 }));
    Show("z = x + y", z, "[3 4 5 6 7]");
    Show("x.Grad, y.Grad", $"{x.Grad} {y.Grad}", "[1 1 1 1 1] [1 1 1 1 1]");
    Show("z.Creators, z.CreationOp", $"{string.Join(" ", z.Creators)} {z.CreationOp}", "[array([1, 2, 3, 4, 5]), array([2, 2, 2, 2, 2])] add");
}
{
    var a = new AG.Tensor(new double[] { 1, 2, 3, 4, 5 }, autograd: true);
    var b = new AG.Tensor(new double[] { 2, 2, 2, 2, 2 }, autograd: true);
    var c = new AG.Tensor(new double[] { 5, 4, 3, 2, 1 }, autograd: true);
    var f = (a + b) + (b + c);
    f.Backward(new AG.Tensor(new double[] { 1, 1, 1, 1, 1 }));
    Show("b used twice: b.Grad", b.Grad!, "[2 2 2 2 2] (b.grad.data == [2,2,2,2,2]: all True)");

    var a2 = new AG.Tensor(new double[] { 1, 2, 3, 4, 5 }, autograd: true);
    var b2 = new AG.Tensor(new double[] { 2, 2, 2, 2, 2 }, autograd: true);
    var c2 = new AG.Tensor(new double[] { 5, 4, 3, 2, 1 }, autograd: true);
    var f2 = (a2 + (-b2)) + ((-b2) + c2);
    f2.Backward(new AG.Tensor(new double[] { 1, 1, 1, 1, 1 }));
    Show("through negation: b.Grad", b2.Grad!, "[-2 -2 -2 -2 -2]");
}
{
    var x = new AG.Tensor(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } });
    Show("x.Sum(0)", x.Sum(0), "[5 7 9]");
    Show("x.Sum(1)", x.Sum(1), "[ 6 15]");
    Show("x.Expand(0, 4) shape", string.Join("x", x.Expand(0, 4).Shape), "4x2x3");
    Show("x.Expand(2, 4)", x.Expand(2, 4), "[[[1 1 1 1] [2 2 2 2] [3 3 3 3]] [[4 4 4 4] ...]]");
    Show("x.Expand(1, 4)", x.Expand(1, 4), "[[[1 2 3] [1 2 3] [1 2 3] [1 2 3]] [[4 5 6] ...]]");
}

var data = new AG.Tensor(new double[,] { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } }, autograd: true);
var target = new AG.Tensor(new double[,] { { 0 }, { 1 }, { 0 }, { 1 } }, autograd: true);
{
    Console.WriteLine();
    Console.WriteLine("  Training pred = data.MM(w0).MM(w1) with SGD(alpha 0.1), from np.random.seed(42)'s weights");
    var w = new List<AG.Tensor>
    {
        new(new[,] { { 0.1834347898661638, 0.7796910002727693, 0.596850157946487 }, { 0.44583275285359114, 0.09997491581800289, 0.45924889196586716 } }, autograd: true),
        new(new[,] { { 0.14286681792194078 }, { 0.6508884729488529 }, { 0.056411579027100256 } }, autograd: true),
    };
    var sgd = new AG.SGD(w, alpha: 0.1);
    double[] expected = { 1.1137426700075137, 0.8024816026389939, 0.6186113964132699, 0.48313342951283894, 0.3764769512213657, 0.2899460734702178, 0.21924765752838937, 0.16199873053509972, 0.11657429797650735, 0.0815384144991861 };
    for (int i = 0; i < 10; i++)
    {
        var pred = data.MM(w[0]).MM(w[1]);
        var loss = ((pred - target) * (pred - target)).Sum(0);
        loss.Backward();
        sgd.Step();
        sgd.ZeroGrad();
        Show($"step {i} loss", loss, $"{expected[i]:R}{(i == 0 ? " (the seed prints 1.11374267)" : "")}");
    }
    Console.WriteLine("  (the seed's printed 0.62255894, 0.3880155, ... came from its earlier, buggy Tensor class; the numbers");
    Console.WriteLine("   on the right are its final class's, from the conformance fixture)");
}
{
    Console.WriteLine();
    Console.WriteLine("  Sequential([Linear(2,3), Linear(3,1)]) with MSELoss and SGD(alpha 0.05), from the seed's initial weights");
    var l0 = new AG.Linear(2, 3, new Random(0));
    var l1 = new AG.Linear(3, 1, new Random(1));
    var model = new AG.Sequential(l0, l1);
    l0.Weight.Data = FuncFlow.CSharp.Tensor.Create(new[,] { { 0.5437431604812986, -0.615429769598336, -1.1978064265539556 }, { 2.1416584322166123, -0.09462100189797196, -0.9288281000339327 } });
    l1.Weight.Data = FuncFlow.CSharp.Tensor.Create(new[,] { { -0.4742850103658774 }, { -0.4287993519674308 }, { -0.4665299517481739 } });
    var criterion = new AG.MSELoss();
    var sgd = new AG.SGD(model.GetParameters(), alpha: 0.05);
    string[] printed = { "3.65094627", "5.24649682", "7.49768079", "2.58132095", "0.82653187", "0.26937059", "0.2301955", "0.19896456", "0.17283695", "0.15067618" };
    for (int i = 0; i < 10; i++)
    {
        var loss = criterion.Forward(model.Forward(data), target);
        loss.Backward();
        sgd.Step();
        sgd.ZeroGrad();
        Show($"step {i} loss", loss, $"[{printed[i]}]");
    }
}

static string FormatRow(double[] values) => "[" + string.Join(" ", values.Select(v => v.ToString("G9", System.Globalization.CultureInfo.InvariantCulture))) + "]";
