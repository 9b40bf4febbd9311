using FuncFlow.CSharp;
using Xunit;

namespace FacadeTests;

/// <summary>The full C# surface (FuncFlow.CSharp): expressions, gradients, plans, layers, training and files.</summary>
public class LibraryTests
{
    private static Dictionary<string, Tensor> At(params (string Name, Tensor Value)[] values) => values.ToDictionary(v => v.Name, v => v.Value);

    [Fact]
    public void GradientsAndGradOfGradMatchHandDerivatives()
    {
        var x = Expr.Variable("x");
        var f = x.Pow(3.0) + 2.0 * x.Tanh();
        var df = Grad.Of(f, x);
        var d2f = Grad.Of(df, x);
        foreach (var v in new[] { -1.3, 0.0, 0.5, 2.0 })
        {
            var env = At(("x", Tensor.Scalar(v)));
            var t = Math.Tanh(v);
            Assert.Equal(v * v * v + 2 * t, Eval.Evaluate(f, env).Item(), 12);
            Assert.Equal(3 * v * v + 2 * (1 - t * t), Eval.Evaluate(df, env).Item(), 12);
            Assert.Equal(6 * v - 4 * t * (1 - t * t), Eval.Evaluate(d2f, env).Item(), 12);
        }
    }

    [Fact]
    public void WrtVjpAndHvpGiveTheirDefinitions()
    {
        var x = Expr.Variable("x", 3);
        var y = Expr.Variable("y", 3);
        var xs = new[] { 0.5, -1.0, 2.0 };
        var ys = new[] { 3.0, 0.25, -2.0 };
        var env = At(("x", Tensor.Create(xs)), ("y", Tensor.Create(ys)));

        // d/dx sum(x^2 y) = 2 x y, d/dy = x^2.
        var grads = Grad.Wrt((x * x * y).Sum(), x, y);
        Assert.Equal(xs.Select((v, i) => 2 * v * ys[i]), Eval.Evaluate(grads[x], env).ToArray());
        Assert.Equal(xs.Select(v => v * v), Eval.Evaluate(grads[y], env).ToArray());

        // vjp of the elementwise x * y with seed s: s * y.
        var s = Expr.Constant(Tensor.Create(new[] { 1.0, 2.0, 3.0 }));
        Assert.Equal(new[] { 3.0, 0.5, -6.0 }, Eval.Evaluate(Grad.Vjp(x * y, s, x)[x], env).ToArray());

        // f = sum(x^3): H = diag(6 x), so H v = 6 x v.
        var v3 = Expr.Variable("v", 3);
        var hv = Grad.Hvp(x.Pow(3.0).Sum(), x, v3);
        var vs = new[] { 1.0, -2.0, 0.5 };
        env["v"] = Tensor.Create(vs);
        Assert.Equal(xs.Select((a, i) => 6 * a * vs[i]).ToArray(), Eval.Evaluate(hv, env).ToArray(), new Close(1e-12));
    }

    [Fact]
    public void APlanWithUpdatesTakesOneSgdStepAsComputedByHand()
    {
        var input = Expr.Variable("input", 2, 2);
        var w = Expr.Variable("w", 2, 1);
        var loss = (input.MatMul(w) - 1.0).Pow(2.0).Mean();
        var g = Grad.Wrt(loss, w)[w];
        var plan = Plan.Compile(new[] { loss }, new[] { new Update(w, w - 0.1 * g) });
        plan.Set("input", Tensor.Create(new double[,] { { 1, 2 }, { 3, 4 } }));
        plan.Set("w", Tensor.Create(new[] { 0.5, -0.5 }, 2, 1));
        plan.Execute();
        // Residuals r = X w - 1 = (-1.5, -1.5); loss = mean(r^2) = 2.25; grad = X^T (2 r / 2) = (-6, -9).
        Assert.Equal(2.25, plan.OutputScalar(0), 12);
        Assert.Equal(new[] { 0.5 + 0.6, -0.5 + 0.9 }, plan.Get("w").ToArray(), new Close(1e-12));
        Assert.Contains("w", plan.VariableNames);
    }

    [Fact]
    public void GradCheckOnACSharpFunctionPassesAndReportsTheWorstElement()
    {
        var report = GradCheck.Check(xs => (xs[0] * xs[1]).Sin().Sum() + xs[0].Exp().Mean(),
            Tensor.Create(new[] { 0.3, -0.7, 1.1 }), Tensor.Create(new[] { 2.0, 0.5, -1.0 }));
        Assert.True(report.Passed, report.Message);
        Assert.True(report.Error < 1e-6, report.Message);
        Assert.StartsWith("x", report.Variable);
        var second = GradCheck.CheckGradGrad(xs => xs[0].Tanh().Pow(2.0).Sum(), Tensor.Create(new[] { 0.2, -0.4 }));
        Assert.True(second.Passed, second.Message);
        // A tolerance no finite difference can meet fails, naming the variable.
        var strict = GradCheck.Check(new GradCheckOptions { Atol = 0, Rtol = 0 }, xs => xs[0].Exp().Sum(), Tensor.Create(new[] { 3.0 }));
        Assert.False(strict.Passed);
        Assert.Contains("x0", strict.Message);
    }

    [Fact]
    public void PrintShowsFormulasAndDot()
    {
        var x = Expr.Variable("x", 2);
        var f = (x * 2.0).Exp().Sum();
        Assert.Contains("x", Print.Formula(f));
        Assert.Contains("exp", Print.Formula(f));
        Assert.StartsWith("digraph", Print.Dot(f));
        Assert.Equal(Print.Formula(f), f.ToString());
    }

    [Fact]
    public void ExpressionsAreEqualWhenTheyWrapOneNode()
    {
        var x = Expr.Variable("x", 2);
        Assert.Equal(x, x.Operands.Count == 0 ? x : null);
        var y = x + 1.0;
        Assert.Equal(y.Operands[0], x);
        Assert.Equal("x", y.Operands[0].Name);
        Assert.Null(y.Name);
        Assert.NotEqual(x, Expr.Variable("x", 2));
    }

    [Fact]
    public void BuilderErrorsNameTheOperationAndShapes()
    {
        var e = Assert.Throws<ArgumentException>(() => Expr.Variable("a", 2, 3) + Expr.Variable("b", 4));
        Assert.Contains("(2, 3)", e.Message);
        Assert.Contains("(4,)", e.Message);
        Assert.Throws<ArgumentNullException>(() => Expr.Variable("a", 2) + (Expr)null!);
    }

    [Fact]
    public void OptimisersRefuseBadHyperParametersAsTheFSharpOnesDo()
    {
        Assert.Contains("learningRate", Assert.Throws<ArgumentException>(() => new SGD(double.NaN)).Message);
        Assert.Throws<ArgumentException>(() => new SGD(0.1, nesterov: true));
        Assert.Contains("betas", Assert.Throws<ArgumentException>(() => new Adam(1e-3, beta1: 1.0)).Message);
        Assert.Throws<ArgumentException>(() => new AdamW(1e-3, weightDecay: -1));
        // A schedule's parameter is checked when the training plan is built, as in F#.
        var trainer = new Trainer(Model.Create(new Linear(1, 1)), Loss.MSE, new SGD(0.1).WithSchedule(Schedule.ExponentialDecay(2.0)));
        Assert.Contains("gamma", Assert.Throws<ArgumentException>(() => trainer.Step(Tensor.Zeros(1, 1), Tensor.Zeros(1, 1))).Message);
        Assert.Throws<ArgumentNullException>(() => Model.Create(new Linear(1, 1)).WithParameters(null!));
    }

    /// <summary>y = x * scale + shift per feature: a layer of the user's own, with two parameters.</summary>
    private sealed class ScaleShift : Layer
    {
        private readonly int features;

        public ScaleShift(int features) => this.features = features;

        public override IReadOnlyList<KeyValuePair<string, Tensor>> Parameters(int seed) => new[]
        {
            new KeyValuePair<string, Tensor>("scale", Tensor.Ones(features)),
            new KeyValuePair<string, Tensor>("shift", Tensor.RandNormal(seed, new[] { features })),
        };

        public override Expr Forward(Scope scope, Expr input) => input * scope.Param("scale") + scope.Param("shift");

        public override string Describe() => $"ScaleShift({features})";
    }

    [Fact]
    public void ACustomLayerComputesItsForwardAndGradientsInsideSequential()
    {
        var model = Model.Create(new Sequential(new Linear(2, 2, bias: false), new ScaleShift(2)), seed: 3);
        Assert.Equal(new[] { "0.weight", "1.scale", "1.shift" }, model.Parameters.Keys.ToArray());
        Assert.Equal("Sequential(Linear(2, 2, He, bias=false), ScaleShift(2))", model.Layer.Describe());
        var set = model.WithParameters(new Dictionary<string, Tensor>
        {
            ["0.weight"] = Tensor.Create(new double[,] { { 1, 2 }, { 3, 4 } }),
            ["1.scale"] = Tensor.Create(new[] { 10.0, -1.0 }),
            ["1.shift"] = Tensor.Create(new[] { 0.5, 0.25 }),
        });
        // Weights are [outputs, inputs] (PyTorch's layout): [1, 1] W^T = [3, 7]; times scale plus shift = [30.5, -6.75].
        Assert.Equal(new[] { 30.5, -6.75 }, set.Predict(Tensor.Create(new double[,] { { 1, 1 } })).ToArray());

        // The custom parameters' gradients through the model's expression agree with finite differences.
        var x = Expr.Variable("input", 3, 2);
        var loss = set.Forward(x).Tanh().Sum();
        var at = new Dictionary<string, Tensor>(set.Parameters) { ["input"] = Tensor.RandUniform(1, new[] { 3, 2 }, -0.2, 0.2) };
        // The model's variables are its own nodes: differentiate through them, by name.
        var grads = Grad.All(loss);
        Assert.Equal(4, grads.Count);
        var report = GradCheck.Check(loss, at, grads.Keys.ToList());
        Assert.True(report.Passed, report.Message);
    }

    [Fact]
    public void TrainerFitsIrisFromCSharpAndModelsRoundTripThroughSafetensors()
    {
        var iris = Datasets.Iris();
        var scaled = Standardizer.Fit(iris.Features).Apply(iris);
        var columns = scaled.Features.ToArray2D();
        Assert.Equal(0.0, Enumerable.Range(0, 150).Average(i => columns[i, 2]), 10);
        var (train, test) = scaled.Split(seed: 0, testFraction: 0.2);
        Assert.Equal(150, train.Count + test.Count);

        var model = Model.Create(new Sequential(new Linear(4, 16), new ReLU(), new Linear(16, 3)), seed: 0);
        var trainer = new Trainer(model, Loss.CrossEntropy, new Adam(1e-2).WithSchedule(Schedule.LinearDecay(200)), seed: 0);
        var before = trainer.Evaluate(test);
        var history = trainer.Fit(train, new FitOptions(20, 16) { Test = test, Quiet = true });
        Assert.Equal(20, history.Epochs.Count);
        Assert.NotNull(history.Epochs[^1].Test);
        var after = trainer.Evaluate(test);
        Assert.True(after.Loss < 0.5 * before.Loss, $"{before} -> {after}");
        Assert.True(after.Accuracy > 0.8, after.ToString());

        var path = Path.Combine(Path.GetTempPath(), $"funcflow-csharp-{Guid.NewGuid():N}.safetensors");
        try
        {
            trainer.Model.Save(path);
            var loaded = model.Load(path);
            var input = test.Features;
            Assert.Equal(trainer.Model.Predict(input).ToArray(), loaded.Predict(input).ToArray());
            Assert.Equal(trainer.Model.Parameters.Keys, Safetensors.Load(path).Keys);
            Assert.Equal(Metrics.Accuracy(loaded.Predict(input), test.Targets), after.Accuracy!.Value, 12);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void DatasetsBatchAndSample()
    {
        var boston = Datasets.Boston();
        Assert.Equal(506, boston.Count);
        Assert.Equal(new[] { 506, 13 }, boston.Features.Shape);
        Assert.Equal(new[] { 100, 100, 100, 100, 100, 6 }, boston.Batches(100).Select(b => b.Count));
        Assert.Equal(5, boston.ShuffledBatches(1, 100, dropLast: true).Count());
        Assert.Equal(11, boston.Sample(new Random(0), 11).Count);
        var firstTwo = boston.Take(0, 1);
        Assert.Equal(boston.Features.ToArray().Take(26), firstTwo.Features.ToArray());
    }

    [Fact]
    public void NormalizeScalesEveryFeatureInItsDType()
    {
        var data = new Dataset(Tensor.Create(new[] { 0f, 255f, 1f, 0.5f }, 2, 2), Tensor.Create(new[] { 3.0, 7.0 }, 2));
        var normalized = data.Normalize(0.1307, 0.3081);
        Assert.Equal(DType.Float32, normalized.Features.DType);
        Assert.Equal(new[] { 0f, 255f, 1f, 0.5f }.Select(v => (v - 0.1307f) / 0.3081f), normalized.Features.ToArray32());
        Assert.Equal(new[] { 3.0, 7.0 }, normalized.Targets.ToArray());
        var e = Assert.Throws<ArgumentException>(() => data.Normalize(0, 0));
        Assert.Contains("Dataset.normalize", e.Message);
    }

    [Fact]
    public void SafetensorsKeepValuesAndMetadata()
    {
        var path = Path.Combine(Path.GetTempPath(), $"funcflow-csharp-{Guid.NewGuid():N}.safetensors");
        try
        {
            Safetensors.Save(path, new Dictionary<string, Tensor> { ["a"] = Tensor.Create(new[] { 1.5f, -2f }, 2, 1), ["b"] = Tensor.Arange(3) },
                new Dictionary<string, string> { ["note"] = "hi" });
            var back = Safetensors.Load(path);
            Assert.Equal(DType.Float32, back["a"].DType);
            Assert.Equal(new[] { 2, 1 }, back["a"].Shape);
            Assert.Equal(new[] { 0.0, 1.0, 2.0 }, back["b"].ToArray());
            Assert.Equal("hi", Safetensors.LoadMetadata(path)["note"]);
            var entries = Safetensors.Inspect(path);
            Assert.Equal(new[] { "a:F32:2x1:8", "b:F64:3:24" },
                entries.Select(e => $"{e.Name}:{e.DType}:{string.Join("x", e.Shape)}:{e.Bytes}").OrderBy(s => s, StringComparer.Ordinal));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void EveryBuiltInLayerBuildsWithTheCoresNamesAndShapes()
    {
        var images = Tensor.RandNormal(1, new[] { 2, 4, 6, 6 });
        (Layer Layer, Tensor Input, int[] Output, string[] Names)[] cases =
        {
            (new Conv2d(4, 6, 3, padding: 1), images, new[] { 2, 6, 6, 6 }, new[] { "bias", "weight" }),
            (new Conv2d(4, 6, new[] { 3, 1 }, new[] { 1, 1 }, new[] { 0, 0 }, new[] { 1, 1 }, bias: false), images, new[] { 2, 6, 4, 6 }, new[] { "weight" }),
            (new Conv1d(4, 2, 3, stride: 2), Tensor.RandNormal(2, new[] { 2, 4, 9 }), new[] { 2, 2, 4 }, new[] { "bias", "weight" }),
            (new MaxPool2d(2), images, new[] { 2, 4, 3, 3 }, Array.Empty<string>()),
            (new AvgPool2d(3, stride: 3), images, new[] { 2, 4, 2, 2 }, Array.Empty<string>()),
            (new AdaptiveAvgPool2d(1), images, new[] { 2, 4, 1, 1 }, Array.Empty<string>()),
            (new BatchNorm2d(4), images, new[] { 2, 4, 6, 6 }, new[] { "bias", "weight" }),
            (new BatchNorm1d(3), Tensor.RandNormal(3, new[] { 5, 3 }), new[] { 5, 3 }, new[] { "bias", "weight" }),
            (new GroupNorm(2, 4), images, new[] { 2, 4, 6, 6 }, new[] { "bias", "weight" }),
            (new LayerNorm(6), images, new[] { 2, 4, 6, 6 }, new[] { "bias", "weight" }),
            (new Flatten(), images, new[] { 2, 144 }, Array.Empty<string>()),
            (new Embedding(10, 3), Tensor.Create(new[] { 1.0, 9.0, 0.0 }), new[] { 3, 3 }, new[] { "weight" }),
            (new Dropout(0.5), images, new[] { 2, 4, 6, 6 }, Array.Empty<string>()),
            (new Softmax(), images, new[] { 2, 4, 6, 6 }, Array.Empty<string>()),
        };
        foreach (var (layer, input, output, names) in cases)
        {
            var model = Model.Create(layer, seed: 0);
            Assert.Equal(names, model.Parameters.Keys.OrderBy(k => k, StringComparer.Ordinal));
            Assert.Equal(output, model.Predict(input).Shape);
        }
        Assert.Equal(new[] { "num_batches_tracked", "running_mean", "running_var" }, Model.Create(new BatchNorm2d(4)).Buffers.Keys);
    }

    [Fact]
    public void ALayerParsedFromItsDescriptionIsTheSameLayer()
    {
        var layer = new Sequential(new Conv2d(1, 2, 3, padding: 1), new BatchNorm2d(2), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(18, 4), new Dropout(0.25));
        var parsed = Layer.Parse(layer.Describe());
        Assert.Equal(layer.Describe(), parsed.Describe());
        var input = Tensor.RandNormal(3, new[] { 2, 1, 6, 6 });
        Assert.Equal(Model.Create(layer, seed: 5).Predict(input).ToArray(), Model.Create(parsed, seed: 5).Predict(input).ToArray());
        var e = Assert.Throws<ArgumentException>(() => Layer.Parse($"Sequential({new Linear(2, 3).Describe()}, Frobnicate)"));
        Assert.Contains("unknown layer 'Frobnicate'", e.Message);
    }

    [Fact]
    public void LeNet5HasItsParametersAndShapes()
    {
        var model = Model.Create(Models.LeNet5(), seed: 1);
        // 6*25+6 + 16*6*25+16 + 400*120+120 + 120*84+84 + 84*10+10 parameters, as LeNet-5 has.
        Assert.Equal(61706, model.Parameters.Values.Sum(t => t.Shape.Aggregate(1, (a, b) => a * b)));
        Assert.Equal(new[] { 3, 10 }, model.Predict(Tensor.RandNormal(2, new[] { 3, 1, 28, 28 })).Shape);
    }

    [Fact]
    public void ActivationsComputeTheirFormulas()
    {
        var x = Tensor.Create(new[] { -2.0, -0.5, 0.0, 1.5 });
        (Layer Layer, Func<double, double> F)[] cases =
        {
            (new ReLU(), v => Math.Max(v, 0)),
            (new LeakyReLU(0.1), v => v > 0 ? v : 0.1 * v),
            (new ELU(2.0), v => v > 0 ? v : 2.0 * (Math.Exp(v) - 1)),
            (new Sigmoid(), v => 1 / (1 + Math.Exp(-v))),
            (new Tanh(), Math.Tanh),
            (new SiLU(), v => v / (1 + Math.Exp(-v))),
            (new Softplus(), v => Math.Log(1 + Math.Exp(v))),
            (new LogSigmoid(), v => -Math.Log(1 + Math.Exp(-v))),
            (new Activation("cube", e => e.Pow(3.0)), v => v * v * v),
        };
        foreach (var (layer, f) in cases)
            Assert.Equal(x.ToArray().Select(f).ToArray(), Model.Create(layer).Predict(x).ToArray(), new Close(1e-12));
        Assert.Equal("cube", new Activation("cube", e => e).Describe());
    }

    [Fact]
    public void UnfoldFoldValueAndGradRangeAndCreationSites()
    {
        // A 2x2 kernel with stride 2 tiles a 4x4 image exactly: fold undoes unfold.
        var image = Tensor.Arange(16).Reshape(1, 1, 4, 4);
        var x = Expr.Variable("x", 1, 1, 4, 4);
        var columns = x.Unfold(new[] { 2, 2 }, stride: new[] { 2, 2 });
        Assert.Equal(new[] { 1, 4, 4 }, columns.Shape);
        var at = new Dictionary<string, Tensor> { ["x"] = image };
        // The first window's taps, channel-major: (0, 1, 4, 5) in the rows of column 0.
        var c = Eval.Evaluate(columns, at).ToArray();
        Assert.Equal(new[] { 0.0, 1, 4, 5 }, new[] { c[0], c[4], c[8], c[12] });
        Assert.Equal(image.ToArray(), Eval.Evaluate(columns.Fold(new[] { 4, 4 }, new[] { 2, 2 }, stride: new[] { 2, 2 }), at).ToArray());

        var w = Expr.Variable("w", 2);
        var both = Eval.ValueAndGrad((w * w).Sum() * 3.0, new Dictionary<string, Tensor> { ["w"] = Tensor.Create(new[] { 1.0, -2.0 }) }, w);
        Assert.Equal(15.0, both.Value.Item());
        Assert.Equal(new[] { 6.0, -12.0 }, both.Gradients[w].ToArray());

        Assert.Equal(new[] { 1.0, 1.5, 2.0, 2.5 }, Tensor.Range(1, 3, 0.5).ToArray());

        var before = Expr.CaptureCreationSites;
        try
        {
            Expr.CaptureCreationSites = true;
            var y = Expr.Variable("y", 1);
            var bad = y.Log();
            var e = Assert.Throws<ArithmeticException>(() => Eval.EvaluateChecked(bad, new Dictionary<string, Tensor> { ["y"] = Tensor.Create(new[] { -1.0 }) }));
            Assert.Contains("log", e.Message);
            Assert.Contains("built at", e.Message);
        }
        finally
        {
            Expr.CaptureCreationSites = before;
        }
    }

    /// <summary>Counts training steps in a buffer and adds per-step noise: the adapter's buffers and noise from C#.</summary>
    private sealed class CountingNoise : Layer
    {
        public override IReadOnlyList<KeyValuePair<string, Tensor>> Buffers() => new[] { new KeyValuePair<string, Tensor>("steps", Tensor.Scalar(0.0)) };

        public override Expr Forward(Scope scope, Expr input)
        {
            if (!scope.Training) return input;
            scope.UpdateBuffer("steps", scope.Buffer("steps") + 1.0);
            // Noise of exactly zero keeps the loss checkable while the variable is still refilled every step.
            return input + scope.Noise("noise", input.Shape, _ => 0.0);
        }
    }

    [Fact]
    public void ACustomLossAndACustomLayersBufferAndNoiseTrain()
    {
        var mae = Loss.Custom("mae", (p, t) => (p - t).Abs().Mean());
        var model = Model.Create(new Sequential(new Linear(1, 1), new CountingNoise()), seed: 0)
            .WithParameters(new Dictionary<string, Tensor> { ["0.weight"] = Tensor.Create(new[] { 2.0 }, 1, 1), ["0.bias"] = Tensor.Create(new[] { 0.5 }) });
        var trainer = new Trainer(model, mae, new SGD(0.1));
        var x = Tensor.Create(new[] { 1.0, -1.0 }, 2, 1);
        var y = Tensor.Create(new[] { 0.0, 0.0 }, 2, 1);
        // Predictions 2.5 and -1.5: mean |p - t| = 2; d/dw = mean(sign(p) x) = 1, d/db = mean(sign(p)) = 0.
        Assert.Equal(2.0, trainer.Step(x, y), 12);
        Assert.Equal(new[] { 1.9 }, trainer.Model.Parameters["0.weight"].ToArray(), new Close(1e-12));
        Assert.Equal(new[] { 0.5 }, trainer.Model.Parameters["0.bias"].ToArray(), new Close(1e-12));
        trainer.Step(x, y);
        trainer.Step(x, y);
        Assert.Equal(3.0, trainer.Model.Buffers["1.steps"].Item());
        Assert.Equal("mae", mae.Name);
        Assert.Equal(2.0, Eval.Evaluate(mae.Compute(Expr.Constant(Tensor.Create(new[] { 1.0, -3.0 })), Expr.Constant(Tensor.Zeros(2))), new Dictionary<string, Tensor>()).Item());
    }

    private sealed class Close(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tolerance;

        public int GetHashCode(double x) => 0;
    }
}
