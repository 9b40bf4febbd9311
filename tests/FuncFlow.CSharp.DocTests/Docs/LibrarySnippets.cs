using FuncFlow.CSharp;
using Xunit;

namespace FacadeTests.Docs;

/// <summary>
/// The C# snippets of README.md and docs/csharp.md that use FuncFlow.CSharp, each between <c>// snippet: name</c> and
/// <c>// end snippet</c>: DocsTests checks that each document's block is the region's text, so every snippet
/// compiles, and each runs here with its results asserted.
/// </summary>
public class LibrarySnippets
{
    [Fact]
    public void Expressions()
    {
        // snippet: expressions
        var x = Expr.Variable("x");                  // a scalar variable; Expr.Variable("w", 13, 1) has a shape
        var f = x.Pow(3.0) + 2.0 * x.Tanh();
        var df = Grad.Of(f, x);                       // an expression: 3x^2 + 2(1 - tanh^2 x)
        var d2f = Grad.Of(df, x);                     // differentiate the gradient again
        var at = new Dictionary<string, Tensor> { ["x"] = Tensor.Scalar(0.5) };
        Console.WriteLine($"{Eval.Evaluate(df, at).Item()} {Eval.Evaluate(d2f, at).Item()}");
        Console.WriteLine(Print.Formula(df));         // the gradient as a formula
        File.WriteAllText("f.dot", Print.Dot(f, df)); // Graphviz: dot -Tsvg f.dot
        // end snippet
        var t = Math.Tanh(0.5);
        Assert.Equal(0.75 + 2 * (1 - t * t), Eval.Evaluate(df, at).Item(), 12);
        Assert.Equal(3 - 4 * t * (1 - t * t), Eval.Evaluate(d2f, at).Item(), 12);
        Assert.StartsWith("digraph", File.ReadAllText("f.dot"));
    }

    [Fact]
    public void Gradients()
    {
        // snippet: gradients
        var w = Expr.Variable("w", 3);
        var v = Expr.Variable("v", 3);
        var loss = (w * w * w).Sum() + (w.Sin() * 2.0).Mean();
        IReadOnlyDictionary<Expr, Expr> grads = Grad.Wrt(loss, w);      // with respect to several variables
        var seed = Expr.Constant(Tensor.Create(new[] { 1.0, 0.0, -1.0 }));
        var jvpT = Grad.Vjp(w.Exp(), seed, w)[w];                         // seed^T J for a non-scalar output
        var hv = Grad.Hvp(loss, w, v);                                    // Hessian-vector product
        var values = Eval.Evaluate(new[] { grads[w], jvpT, hv }, new Dictionary<string, Tensor>
        {
            ["w"] = Tensor.Create(new[] { 0.5, -1.0, 2.0 }),
            ["v"] = Tensor.Create(new[] { 1.0, 1.0, 0.0 }),
        });
        // end snippet
        double[] ws = { 0.5, -1.0, 2.0 };
        Assert.Equal(ws.Select(a => 3 * a * a + 2 * Math.Cos(a) / 3).ToArray(), values[0].ToArray(), new Close(1e-12));
        Assert.Equal(new[] { Math.Exp(0.5), 0, -Math.Exp(2.0) }, values[1].ToArray(), new Close(1e-12));
        Assert.Equal(new[] { 6 * 0.5 - 2 * Math.Sin(0.5) / 3, 6 * -1.0 - 2 * Math.Sin(-1.0) / 3, 0 }, values[2].ToArray(), new Close(1e-12));
    }

    [Fact]
    public void Plans()
    {
        // snippet: plans
        var input = Expr.Variable("input", 11, 13);
        var target = Expr.Variable("target", 11, 1);
        var w = Expr.Variable("w", 13, 1);
        var b = Expr.Variable("b", 1);
        var loss = (input.MatMul(w) + b - target).Pow(2.0).Mean();
        var g = Grad.Wrt(loss, w, b);
        // A run computes the loss and the new values from the values before it, then writes them.
        var step = Plan.Compile(new[] { loss }, new[] { new Update(w, w - 0.01 * g[w]), new Update(b, b - 0.01 * g[b]) });
        foreach (var (name, shape) in new[] { ("input", new[] { 11, 13 }), ("target", new[] { 11, 1 }), ("w", new[] { 13, 1 }), ("b", new[] { 1 }) })
            step.Set(name, Tensor.RandNormal(name.Length, shape));
        for (int i = 0; i < 3; i++)
        {
            step.Execute();                            // one SGD step; allocates nothing
            Console.WriteLine($"loss {step.OutputScalar(0):F6}");
        }
        Tensor trained = step.Get("w");
        // end snippet
        Assert.Equal(new[] { 13, 1 }, trained.Shape);
        Assert.NotEqual(Tensor.RandNormal(1, new[] { 13, 1 }).ToArray(), trained.ToArray());
    }

    [Fact]
    public void GradCheckSnippet()
    {
        // snippet: gradcheck
        var report = GradCheck.Check(xs => (xs[0].MatMul(xs[1]).Tanh() * xs[0].Sum()).Sum(),
            Tensor.RandNormal(1, new[] { 2, 3 }), Tensor.RandNormal(2, new[] { 3, 4 }));
        Console.WriteLine(report.Message);             // passed; worst is variable 'x1' at element [...]: ...
        var second = GradCheck.CheckGradGrad(xs => xs[0].Softmax().Log().Sum(), Tensor.RandNormal(3, new[] { 5 }));
        // end snippet
        Assert.True(report.Passed, report.Message);
        Assert.True(second.Passed, second.Message);
    }

    [Fact]
    public void Training()
    {
        // snippet: training
        var (train, test) = Datasets.Iris().Split(seed: 0, testFraction: 0.2);
        var scaler = Standardizer.Fit(train.Features);
        (train, test) = (scaler.Apply(train), scaler.Apply(test));
        var model = Model.Create(new Sequential(new Linear(4, 16), new ReLU(), new Dropout(0.1), new Linear(16, 3)), seed: 1);
        var optimizer = new AdamW(1e-2, weightDecay: 1e-4).WithSchedule(Schedule.LinearDecay(200));
        var trainer = new Trainer(model, Loss.CrossEntropy, optimizer, seed: 1);
        History history = trainer.Fit(train, new FitOptions(epochs: 20, batchSize: 16) { Test = test, Quiet = true });
        Evaluation result = trainer.Evaluate(test);
        Console.WriteLine($"test loss {result.Loss:F4}, accuracy {result.Accuracy:F4}, last epoch {history.Epochs[^1].Seconds:F2} s");
        Tensor scores = trainer.Model.Predict(test.Features);
        // end snippet
        Assert.True(result.Accuracy > 0.85, result.ToString());
        Assert.Equal(result.Accuracy!.Value, Metrics.Accuracy(scores, test.Targets), 12);
    }

    // snippet: custom-layer
    /// <summary>y = x * scale + shift, per feature.</summary>
    public sealed class ScaleShift : Layer
    {
        private readonly int features;

        public ScaleShift(int features) => this.features = features;

        public override IReadOnlyList<KeyValuePair<string, Tensor>> Parameters(int seed) => new[]
        {
            new KeyValuePair<string, Tensor>("scale", Tensor.Ones(features)),
            new KeyValuePair<string, Tensor>("shift", Tensor.Zeros(features)),
        };

        public override Expr Forward(Scope scope, Expr input) => input * scope.Param("scale") + scope.Param("shift");
    }
    // end snippet

    [Fact]
    public void CustomLayer()
    {
        // snippet: custom-layer-use
        var model = Model.Create(new Sequential(new Linear(2, 2), new ScaleShift(2)), seed: 0);
        Console.WriteLine(string.Join(", ", model.Parameters.Keys));   // 0.weight, 0.bias, 1.scale, 1.shift
        Expr output = model.Forward(Expr.Variable("input", 5, 2));      // the model as an expression
        // end snippet
        Assert.Equal(new[] { "0.bias", "0.weight", "1.scale", "1.shift" }, model.Parameters.Keys.OrderBy(k => k, StringComparer.Ordinal));
        Assert.Equal(new[] { 5, 2 }, output.Shape);
    }

    [Fact]
    public void DataAndFiles()
    {
        var dir = Directory.CreateTempSubdirectory("funcflow-docs").FullName;
        try
        {
            var path = Path.Combine(dir, "model.safetensors");
            var model = Model.Create(new Sequential(new Conv2d(1, 4, 3, padding: 1), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(4 * 14 * 14, 10)), seed: 0, DType.Float32);
            // snippet: data
            var boston = Datasets.Boston();                          // also Mnist(), FashionMnist(), Iris(), Wine(), BreastCancer(), Digits()
            foreach (Dataset batch in boston.ShuffledBatches(seed: 1, batchSize: 64, dropLast: true))
                Console.WriteLine($"{batch.Count} rows of {batch.Features.Shape[1]} features");
            var mine = new Dataset(Tensor.Create(new double[,] { { 1, 2 }, { 3, 4 } }), Tensor.Create(new[] { 0.0, 1.0 }));
            model.Save(path);                                         // safetensors, with the architecture as metadata
            var restored = model.Load(path);
            Safetensors.Save(Path.Combine(dir, "two.safetensors"), new Dictionary<string, Tensor> { ["a"] = mine.Features });
            IReadOnlyDictionary<string, Tensor> read = Safetensors.Load(Path.Combine(dir, "two.safetensors"));
            // end snippet
            Assert.Equal(mine.Features.ToArray(), read["a"].ToArray());
            Assert.Equal(model.Parameters["4.weight"].ToArray32(), restored.Parameters["4.weight"].ToArray32());
            Assert.Equal(506 / 64, boston.ShuffledBatches(1, 64, dropLast: true).Count());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
