using FuncFlow.Autograd;
using Xunit;
using Dense = FuncFlow.CSharp.Tensor;
using Expr = FuncFlow.CSharp.Expr;

namespace FacadeTests;

/// <summary>The eager facade's operations, optimisers, layers and files beyond the seed's.</summary>
public class AutogradTests
{
    private static Tensor Param(params double[] values) => new(values, autograd: true);

    /// <summary>Three steps on loss = sum(c p^2), whose gradient 2 c p changes every step, against a loop written here.</summary>
    [Theory]
    [InlineData("sgd")]
    [InlineData("momentum")]
    [InlineData("nesterov")]
    [InlineData("adam")]
    [InlineData("adamw")]
    public void OptimisersStepAsTheirTextbookFormulas(string kind)
    {
        double[] c = { 0.5, -3.0, 2.0 };
        double[] start = { 1.0, -2.0, 0.25 };
        var p = Param(start);
        Optimizer opt = kind switch
        {
            "sgd" => new SGD(new[] { p }, alpha: 0.1),
            "momentum" => new SGD(new[] { p }, alpha: 0.1, momentum: 0.9, weightDecay: 0.01),
            "nesterov" => new SGD(new[] { p }, alpha: 0.1, momentum: 0.9, nesterov: true),
            "adam" => new Adam(new[] { p }, learningRate: 0.05, weightDecay: 0.1),
            _ => new AdamW(new[] { p }, learningRate: 0.05, weightDecay: 0.1),
        };
        var expected = (double[])start.Clone();
        var m = new double[3];
        var v = new double[3];
        for (int t = 1; t <= 3; t++)
        {
            var loss = (p * p * new Tensor(c)).Sum(0);
            loss.Backward();
            opt.Step();
            opt.ZeroGrad();
            for (int i = 0; i < 3; i++)
            {
                double g = 2 * c[i] * expected[i];
                switch (kind)
                {
                    case "sgd":
                        expected[i] -= 0.1 * g;
                        break;
                    case "momentum":
                        g += 0.01 * expected[i];
                        m[i] = t == 1 ? g : 0.9 * m[i] + g;
                        expected[i] -= 0.1 * m[i];
                        break;
                    case "nesterov":
                        m[i] = t == 1 ? g : 0.9 * m[i] + g;
                        expected[i] -= 0.1 * (g + 0.9 * m[i]);
                        break;
                    default:
                        if (kind == "adam") g += 0.1 * expected[i];
                        else expected[i] *= 1 - 0.05 * 0.1;
                        m[i] = 0.9 * m[i] + 0.1 * g;
                        v[i] = 0.999 * v[i] + 0.001 * g * g;
                        var mHat = m[i] / (1 - Math.Pow(0.9, t));
                        var vHat = v[i] / (1 - Math.Pow(0.999, t));
                        expected[i] -= 0.05 * mHat / (Math.Sqrt(vHat) + 1e-8);
                        break;
                }
            }
            Assert.Equal(expected, p.ToArray(), new Close(1e-12));
        }
    }

    [Fact]
    public void OptimisersRefuseHyperParametersAsTheFSharpOnesDo()
    {
        var p = new[] { Param(1.0) };
        Assert.Contains("learningRate", Assert.Throws<ArgumentException>(() => new SGD(p, alpha: double.NaN)).Message);
        Assert.Contains("learningRate", Assert.Throws<ArgumentException>(() => new Adam(p, learningRate: 0)).Message);
        Assert.Contains("betas", Assert.Throws<ArgumentException>(() => new Adam(p, beta2: 1.0)).Message);
        Assert.Contains("Nesterov", Assert.Throws<ArgumentException>(() => new SGD(p, nesterov: true)).Message);
        var sgd = new SGD(p, alpha: 0.1);
        Assert.Throws<ArgumentException>(() => sgd.Alpha = double.PositiveInfinity);
        Assert.Equal(0.1, sgd.Alpha);
    }

    [Fact]
    public void AScheduleScalesEachStepAndChangingAlphaKeepsTheMomentum()
    {
        // Linear decay over 2 steps: factors 1, 1/2, then 0.
        var p = Param(1.0);
        var sgd = new SGD(new[] { p }, alpha: 0.1) { Schedule = FuncFlow.CSharp.Schedule.LinearDecay(2) };
        var expected = 1.0;
        foreach (var factor in new[] { 1.0, 0.5, 0.0 })
        {
            (p * p).Sum(0).Backward();
            sgd.Step();
            expected -= factor * 0.1 * 2 * expected;
            sgd.ZeroGrad();
            Assert.Equal(expected, p.ToArray()[0], 12);
        }

        var q = Param(1.0);
        var momentum = new SGD(new[] { q }, alpha: 0.1, momentum: 0.5);
        (q * new Tensor(new[] { 2.0 })).Sum(0).Backward();
        momentum.Step(); // v = 2, q = 1 - 0.2
        momentum.Alpha = 0.2;
        momentum.Step(); // v = 0.5 * 2 + 2 = 3, q = 0.8 - 0.6
        Assert.Equal(0.2, q.ToArray()[0], 12);
    }

    [Fact]
    public void NewOperationsHaveTheirValuesAndPassGradCheck()
    {
        var a = new Tensor(new double[,] { { 1, 2 }, { 3, 4 } });
        var b = new Tensor(new double[,] { { 2, 8 }, { 0.5, 1 } });
        Assert.Equal(new[] { 0.5, 0.25, 6, 4 }, (a / b).ToArray());
        Assert.Equal(new[] { 0.75, 1.25, 1.75, 2.25 }, ((a * 2.0 + 1.0 - 0.5) / 2.0 - 0.5 * a).ToArray());
        var s = Param(1.0, 2.0);
        (3.0 * s).Sum(0).Backward();
        Assert.Equal(new[] { 3.0, 3.0 }, s.Grad!.ToArray());
        Assert.Equal(new[] { 0.0, 0.0, 0.0 }, Tensor.Zeros(3).ToArray());
        Assert.Equal(Dense.RandNormal(5, new[] { 2 }).ToArray(), Tensor.RandNormal(5, new[] { 2 }).ToArray());
        Assert.Equal(new[] { 2.5 }, a.Mean().ToArray());
        Assert.Equal(new[] { 1.5, 3.5 }, a.Mean(1).ToArray());
        Assert.Equal(new[] { 4, 1 }, a.Reshape(4, 1).Shape);
        Assert.Equal(a.ToArray(), a.Reshape(4, 1).ToArray());
        Assert.Equal(new[] { Math.Log(1), Math.Log(2), Math.Log(3), Math.Log(4) }, a.Log().ToArray(), new Close(1e-15));
        Assert.Equal(new[] { 1.0, 1.0 }, a.Var(1).ToArray().Select(x => x * 4).ToArray());

        var x = new Tensor(new double[,] { { 0.3, -1.2, 0.8 }, { 2.0, 0.1, -0.4 } });
        var y = new Tensor(new double[,] { { 1.5, 0.7, 2.2 }, { 0.9, 1.1, 3.0 } });
        foreach (var (name, f) in new (string, Func<Tensor[], Tensor>)[]
        {
            ("div", t => t[0] / t[1]),
            ("exp log", t => t[0].Exp() + t[1].Log()),
            ("pow sqrt", t => t[0].Pow(3.0) * t[1].Sqrt()),
            ("mean var", t => t[0].Mean(1) + t[1].Var(0).Sum(0)),
            ("reshape permute", t => t[0].Reshape(3, 2).Permute(1, 0) * t[1]),
            ("layer norm", t => t[0].LayerNorm(t[1].Sum(0), null)),
            ("log softmax", t => t[0].LogSoftmax() * t[1]),
            ("gelu silu softplus", t => t[0].Gelu() + t[0].Silu() * t[1].Softplus()),
        })
        {
            var report = GradCheck.Check(f, new[] { x, y });
            Assert.True(report.Passed, $"{name}: {report}");
        }

        var image = new Tensor(Dense.RandNormal(1, new[] { 2, 2, 6, 6 }));
        var kernels = new Tensor(Dense.RandNormal(2, new[] { 3, 2, 3, 3 }));
        var bias = new Tensor(new[] { 0.1, -0.2, 0.3 });
        var conv = GradCheck.Check(t => t[0].Conv2d(t[1], t[2], padding: 1).MaxPool2d(2).Sum(0).Sum(0).Sum(0).Sum(0), new[] { image, kernels, bias });
        Assert.True(conv.Passed, conv.ToString());
        // One output of the convolution by hand: padding 1 puts the kernel's centre on (0, 0).
        var output = image.Conv2d(kernels, bias, padding: 1).ToArray();
        var img = image.ToArray();
        var w = kernels.ToArray();
        double expected = 0.1;
        for (int ch = 0; ch < 2; ch++)
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++)
                    expected += img[ch * 36 + dy * 6 + dx] * w[ch * 9 + (dy + 1) * 3 + (dx + 1)];
        Assert.Equal(expected, output[0], 12);
    }

    [Fact]
    public void ComputeRunsAnyLibraryExpressionEagerly()
    {
        var a = Param(0.5, -1.0);
        var b = Param(2.0, 3.0);
        var y = Tensor.Compute("sin_times", x => Expr.Concat(0, x[0].Sin() * x[1], x[1].Slice(0, 0, 1)), a, b);
        Assert.Equal("sin_times", y.CreationOp);
        Assert.Equal(new[] { Math.Sin(0.5) * 2, Math.Sin(-1.0) * 3, 2.0 }, y.ToArray(), new Close(1e-15));
        y.Sum(0).Backward();
        Assert.Equal(new[] { Math.Cos(0.5) * 2, Math.Cos(-1.0) * 3 }, a.Grad!.ToArray(), new Close(1e-15));
        Assert.Equal(new[] { Math.Sin(0.5) + 1, Math.Sin(-1.0) }, b.Grad!.ToArray(), new Close(1e-15));
    }

    [Fact]
    public void BackwardUsesTheValuesCachedWhenATensorWasUsed()
    {
        var x = Param(3.0);
        var first = x * x;   // d/dx = 2 * 3
        x.Data = Dense.Create(new[] { 10.0 });
        var second = x * x;  // d/dx = 2 * 10
        (first + second).Backward();
        Assert.Equal(new[] { 26.0 }, x.Grad!.ToArray());
        Assert.Equal(new[] { 109.0 }, (first + second).ToArray());
    }

    [Fact]
    public void LayersSaveAndLoadStrictlyByName()
    {
        var rng = new Random(0);
        var model = new Sequential(new Linear(3, 4, rng), new Relu(), new LayerNorm(4), new Linear(4, 2, rng));
        Assert.Equal(new[] { "0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias" }, model.NamedParameters().Select(p => p.Key));
        Assert.Equal(6, model.Parameters().Count);
        var path = Path.Combine(Path.GetTempPath(), $"funcflow-autograd-{Guid.NewGuid():N}.safetensors");
        try
        {
            model.Save(path);
            var copy = new Sequential(new Linear(3, 4, rng), new Relu(), new LayerNorm(4), new Linear(4, 2, rng));
            var input = new Tensor(new double[,] { { 1, 2, 3 } });
            Assert.NotEqual(model.Forward(input).ToArray(), copy.Forward(input).ToArray());
            copy.Load(path);
            Assert.Equal(model.Forward(input).ToArray(), copy.Forward(input).ToArray());

            // The file holds PyTorch's layout: a linear weight as [outputs, inputs].
            var saved = FuncFlow.CSharp.Safetensors.Load(path);
            Assert.Equal(new[] { 4, 3 }, saved["0.weight"].Shape);
            var inMemory = model.NamedParameters().First(p => p.Key == "0.weight").Value.ToArray();
            Assert.Equal(inMemory[1 * 4 + 2], saved["0.weight"].ToArray()[2 * 3 + 1]);

            var other = new Sequential(new Linear(3, 4, rng), new Relu(), new Linear(4, 2, rng));
            var e = Assert.Throws<FuncFlow.Data.DataFormatException>(() => other.Load(path));
            Assert.Contains("'2.weight' has shape (4,), expected (2, 4)", e.Message);
            Assert.Contains("'3.bias' is not a parameter", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void LoadReadsAPyTorchStateDictIntoTheSameArchitecture()
    {
        // reference/make_torch_state_dict.py wrote a torch.nn.Sequential's state dict and its output on a fixed input.
        var folder = Path.Combine(AppContext.BaseDirectory, "reference");
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "torch_state_dict.json")));
        double[,] Matrix(string key)
        {
            var rows = doc.RootElement.GetProperty(key).EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
            var m = new double[rows.Length, rows[0].Length];
            for (int i = 0; i < rows.Length; i++)
                for (int j = 0; j < rows[0].Length; j++) m[i, j] = rows[i][j];
            return m;
        }
        var model = new Sequential(new Linear(3, 4), new Relu(), new LayerNorm(4), new Linear(4, 2));
        model.Load(Path.Combine(folder, "torch_state_dict.safetensors"));
        var output = model.Forward(new Tensor(Matrix("input"))).ToArray();
        Assert.Equal(Matrix("output").Cast<double>().ToArray(), output, new Close(1e-12));
    }

    [Fact]
    public void DropoutIsActiveOnlyInTrainingMode()
    {
        var model = new Sequential(new Dropout(0.5, new Random(1)));
        var x = new Tensor(Dense.Ones(1000));
        var trained = model.Forward(x).ToArray();
        Assert.All(trained, v => Assert.True(v == 0.0 || v == 2.0));
        Assert.InRange(trained.Count(v => v == 0.0), 400, 600);
        model.Eval();
        Assert.False(model.Layers[0].Training);
        Assert.Equal(x.ToArray(), model.Forward(x).ToArray());
        model.Train();
        Assert.True(model.Layers[0].Training);
        Assert.Throws<ArgumentException>(() => new Dropout(1.0));
    }

    [Fact]
    public void CrossEntropyIsTheCoresAndReadsOneHotRows()
    {
        var logits = new Tensor(new double[,] { { 2, 0.5, -1 }, { 0.1, 0.2, 3 } });
        var byIndex = logits.CrossEntropy(new Tensor(new[] { 0.0, 2.0 })).ToArray()[0];
        var byOneHot = logits.CrossEntropy(new Tensor(new double[,] { { 1, 0, 0 }, { 0, 0, 1 } })).ToArray()[0];
        double Nll(double[] row, int k) => Math.Log(row.Sum(Math.Exp)) - row[k];
        var expected = (Nll(new[] { 2, 0.5, -1 }, 0) + Nll(new[] { 0.1, 0.2, 3 }, 2)) / 2;
        Assert.Equal(expected, byIndex, 12);
        Assert.Equal(expected, byOneHot, 12);
    }

    [Fact]
    public void BatchNormUsesBatchStatisticsInTrainingAndRunningOnesInEvaluation()
    {
        // Two channels over a batch of 3: channel 0 is (1, 2, 6), channel 1 is (0, 0, 3).
        var x = new Tensor(new double[,] { { 1, 0 }, { 2, 0 }, { 6, 3 } }, autograd: true);
        var bn = new BatchNorm1d(2);
        var y = bn.Forward(x).ToArray();
        double[] mean = { 3, 1 };
        double[] variance = { 14.0 / 3, 2 };
        double[] column0 = { 1, 2, 6 }, column1 = { 0, 0, 3 };
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal((column0[i] - mean[0]) / Math.Sqrt(variance[0] + 1e-5), y[2 * i], 12);
            Assert.Equal((column1[i] - mean[1]) / Math.Sqrt(variance[1] + 1e-5), y[2 * i + 1], 12);
        }
        var buffers = bn.NamedBuffers().ToDictionary(b => b.Key, b => b.Value.ToArray());
        Assert.Equal(new[] { 0.1 * 3, 0.1 * 1 }, buffers["running_mean"], new Close(1e-12));
        Assert.Equal(new[] { 0.9 + 0.1 * 7, 0.9 + 0.1 * 3 }, buffers["running_var"], new Close(1e-12)); // unbiased: 14/2, 6/2
        Assert.Equal(new[] { 1.0 }, buffers["num_batches_tracked"]);

        bn.Eval();
        var evaluated = bn.Forward(x).ToArray();
        Assert.Equal((1 - 0.3) / Math.Sqrt(1.6 + 1e-5), evaluated[0], 12);
        Assert.Equal(new[] { "weight", "bias" }, bn.NamedParameters().Select(p => p.Key));
        var report = GradCheck.Check(t => (new BatchNorm2d(2).Forward(t[0]) * t[0].Exp()).Sum(0).Sum(0).Sum(0).Sum(0),
            new[] { new Tensor(Dense.RandNormal(4, new[] { 3, 2, 2, 2 })) });
        Assert.True(report.Passed, report.ToString());
    }

    [Fact]
    public void CumulativeAverageBatchNormAveragesEveryBatchsStatistics()
    {
        // Channel means 2 and 3, then 6 and 1; unbiased variances 2 and 2, then 2 and 2: the averages of both batches.
        var bn = BatchNorm1d.CumulativeAverage(2);
        bn.Forward(new Tensor(new double[,] { { 1, 2 }, { 3, 4 } }));
        bn.Forward(new Tensor(new double[,] { { 5, 0 }, { 7, 2 } }));
        var buffers = bn.NamedBuffers().ToDictionary(b => b.Key, b => b.Value.ToArray());
        Assert.Equal(new[] { 4.0, 2.0 }, buffers["running_mean"], new Close(1e-12));
        Assert.Equal(new[] { 2.0, 2.0 }, buffers["running_var"], new Close(1e-12));
        Assert.Equal(new[] { 2.0 }, buffers["num_batches_tracked"]);
    }

    private sealed class Close(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tolerance;

        public int GetHashCode(double x) => 0;
    }
}
