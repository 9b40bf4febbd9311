using FuncFlow.CSharp;
using Xunit;

namespace FacadeTests;

/// <summary>
/// The C# surface of the recurrent and attention layers, text data, schedules, clipping, vmap and plans' costs, each
/// against values computed by hand here.
/// </summary>
public class SequenceAndTransformTests
{
    private static readonly Dictionary<string, Tensor> Nothing = new();

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    private static void Close(double[] expected, double[] actual, double tolerance = 1e-12)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void TextGenerationSamplesFromTheSoftmaxOfTheLogits()
    {
        double[] logits = { 1.0, 0.0, 2.0, -1.0 };
        // A small temperature takes the largest logit; the same seed draws the same indices.
        Assert.Equal(2, TextGeneration.Sample(new System.Random(1), 1e-3, logits));
        int Draw(int seed) => TextGeneration.Sample(new System.Random(seed), 1.0, logits);
        Assert.Equal(Draw(7), Draw(7));
        var counts = new double[4];
        var random = new System.Random(3);
        for (int i = 0; i < 20000; i++) counts[TextGeneration.Sample(random, 1.0, logits)]++;
        double total = 0;
        foreach (var l in logits) total += System.Math.Exp(l);
        // Within four binomial standard deviations of softmax(logits).
        for (int i = 0; i < 4; i++)
        {
            double p = System.Math.Exp(logits[i]) / total;
            Assert.InRange(counts[i] / 20000, p - 4 * System.Math.Sqrt(p * (1 - p) / 20000), p + 4 * System.Math.Sqrt(p * (1 - p) / 20000));
        }
        var error = Assert.ThrowsAny<System.ArgumentException>(() => TextGeneration.Sample(new System.Random(1), 0.0, logits));
        Assert.Contains("temperature", error.Message);
    }

    [Fact]
    public void AnRNNCellStepIsTanhOfTheProjectedInput()
    {
        var cell = new RNNCell(2, 2);
        var model = Model.Create(cell, seed: 1).WithParameters(new Dictionary<string, Tensor>
        {
            ["weight_ih"] = Tensor.Create(new double[,] { { 0.5, -0.2 }, { 0.1, 0.3 } }),
            ["weight_hh"] = Tensor.Create(new double[,] { { 0.7, 0.0 }, { 0.0, 0.7 } }),
            ["bias_ih"] = Tensor.Create(new[] { 0.1, -0.1 }),
            ["bias_hh"] = Tensor.Create(new[] { 0.05, 0.0 }),
        });
        var h = model.Predict(Tensor.Create(new double[,] { { 1.0, -1.0 } })).ToArray();
        Close(new[] { Math.Tanh(0.5 + 0.2 + 0.1 + 0.05), Math.Tanh(0.1 - 0.3 - 0.1) }, h);
    }

    [Fact]
    public void AnLSTMLayerFollowsPyTorchsEquationsOverTwoSteps()
    {
        const int inputs = 2, hidden = 2;
        var model = Model.Create(new LSTM(inputs, hidden), seed: 3);
        Assert.Equal(new[] { "bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0" }, model.Parameters.Keys.OrderBy(k => k, StringComparer.Ordinal));
        var p = model.Parameters.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        var xs = new[] { new[] { 0.5, -1.0 }, new[] { 2.0, 0.25 } };
        // [time, batch, features] = [2, 1, 2].
        var output = model.Predict(Tensor.Create(xs.SelectMany(x => x).ToArray(), 2, 1, inputs)).ToArray();

        var h = new double[hidden];
        var c = new double[hidden];
        var expected = new List<double>();
        foreach (var x in xs)
        {
            // Gates i, f, g, o stacked along weight_ih's first axis.
            double Gate(int row) =>
                Enumerable.Range(0, inputs).Sum(j => p["weight_ih_l0"][row * inputs + j] * x[j]) + p["bias_ih_l0"][row]
                + Enumerable.Range(0, hidden).Sum(j => p["weight_hh_l0"][row * hidden + j] * h[j]) + p["bias_hh_l0"][row];
            var next = new double[hidden];
            for (int k = 0; k < hidden; k++)
            {
                double i = Sigmoid(Gate(k)), f = Sigmoid(Gate(hidden + k)), g = Math.Tanh(Gate(2 * hidden + k)), o = Sigmoid(Gate(3 * hidden + k));
                c[k] = f * c[k] + i * g;
                next[k] = o * Math.Tanh(c[k]);
            }
            h = next;
            expected.AddRange(h);
        }
        Close(expected.ToArray(), output);
    }

    [Fact]
    public void CausalScaledDotProductAttentionHasTheHandComputedValues()
    {
        var q = Expr.Constant(Tensor.Create(new[] { 1.0, 0.0, 0.5, 1.0 }, 1, 2, 2));
        var k = Expr.Constant(Tensor.Create(new[] { 1.0, 1.0, -1.0, 2.0 }, 1, 2, 2));
        var v = Expr.Constant(Tensor.Create(new[] { 3.0, -2.0 }, 1, 2, 1));
        var result = Eval.Evaluate(MultiheadAttention.ScaledDotProduct(q, k, v, causal: true), Nothing).ToArray();
        // Query 0 sees key 0 only; query 1 sees both with scores q1 . k / sqrt 2.
        double s0 = (0.5 + 1.0) / Math.Sqrt(2), s1 = (-0.5 + 2.0) / Math.Sqrt(2);
        double w0 = Math.Exp(s0) / (Math.Exp(s0) + Math.Exp(s1));
        Close(new[] { 3.0, w0 * 3.0 + (1 - w0) * -2.0 }, result);
    }

    [Fact]
    public void PositionalLayersAddTheirTables()
    {
        var table = SinusoidalPositionalEncoding.Table(3, 4).ToArray();
        Assert.Equal(Math.Sin(2.0), table[2 * 4 + 0], 12);
        Assert.Equal(Math.Cos(2.0), table[2 * 4 + 1], 12);
        Assert.Equal(Math.Cos(2.0 / 100.0), table[2 * 4 + 3], 12);
        var ones = Tensor.Ones(1, 3, 4);
        Close(table.Select(t => t + 1).ToArray(), Model.Create(new SinusoidalPositionalEncoding(8, 4)).Predict(ones).ToArray());

        var learned = Model.Create(new LearnedPositionalEmbedding(5, 4), seed: 2);
        var weight = learned.Parameters["weight"].ToArray();
        Close(weight.Take(2 * 4).ToArray(), learned.Predict(Tensor.Zeros(1, 2, 4)).ToArray());
        Assert.ThrowsAny<ArgumentException>(() => learned.Predict(Tensor.Zeros(1, 6, 4)));
    }

    [Fact]
    public void ATransformerBlockWithZeroedOutputProjectionsIsTheIdentity()
    {
        var model = Model.Create(new TransformerBlock(4, heads: 2, hidden: 8, causal: true, activation: BlockActivation.GeluTanh), seed: 1);
        Assert.Contains("self_attn.in_proj_weight", model.Parameters.Keys);
        Assert.Equal(new[] { 4, 8 }.Aggregate(1, (a, b) => a * b), model.Parameters["linear1.weight"].ToArray().Length);
        static bool Output(string name) => name.StartsWith("self_attn.out_proj", StringComparison.Ordinal) || name.StartsWith("linear2", StringComparison.Ordinal);
        var zeroed = model.WithParameters(model.Parameters.ToDictionary(kv => kv.Key, kv => Output(kv.Key) ? Tensor.Zeros(kv.Value.Shape) : kv.Value));
        var x = Tensor.RandNormal(seed: 7, new[] { 2, 3, 4 });
        Close(x.ToArray(), zeroed.Predict(x).ToArray());
        Assert.NotEqual(x.ToArray(), model.Predict(x).ToArray());
    }

    [Fact]
    public void CumulativeAverageBatchNormAveragesEveryBatchsMean()
    {
        var model = Model.Create(BatchNorm1d.CumulativeAverage(2), seed: 0);
        var trainer = new Trainer(model, Loss.MSE, new SGD(1e-3));
        trainer.Step(Tensor.Create(new double[,] { { 1, 2 }, { 3, 4 } }), Tensor.Zeros(2, 2));
        trainer.Step(Tensor.Create(new double[,] { { 5, 0 }, { 7, 2 } }), Tensor.Zeros(2, 2));
        Close(new[] { 4.0, 2.0 }, trainer.Model.Buffers["running_mean"].ToArray());
    }

    [Fact]
    public void SequenceCrossEntropyLeavesIgnoredPositionsOut()
    {
        var logits = new[] { 0.5, 1.0, -1.0, 3.0, 0.0, 0.0 };
        var loss = Loss.SequenceCrossEntropy().Compute(
            Expr.Constant(Tensor.Create(logits, 1, 2, 3)), Expr.Constant(Tensor.Create(new[] { 2.0, -100.0 }, 1, 2)));
        double logSum = Math.Log(Math.Exp(0.5) + Math.Exp(1.0) + Math.Exp(-1.0));
        Assert.Equal(logSum + 1.0, Eval.Evaluate(loss, Nothing).Item(), 12);
    }

    [Fact]
    public void SchedulesAndClippingHaveTheirFormulas()
    {
        double Factor(Schedule s, double t) => Eval.Evaluate(s.Factor(Expr.Scalar(t)), Nothing).Item();
        Assert.Equal(0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * 3 / 10)), Factor(Schedule.Cosine(10, 0.1), 3), 12);
        Assert.Equal(0.1, Factor(Schedule.Cosine(10, 0.1), 25), 12);
        var warm = Schedule.Warmup(4, 0.25, Schedule.LinearDecay(8));
        Assert.Equal(0.625, Factor(warm, 2), 12);
        Assert.Equal(0.75, Factor(warm, 6), 12);

        var g = new[] { Expr.Constant(Tensor.Create(new[] { 3.0 })), Expr.Constant(Tensor.Create(new[] { 4.0 })) };
        Assert.Equal(5.0, Eval.Evaluate(Clip.GlobalNorm(g), Nothing).Item(), 12);
        var clipped = Clip.ByGlobalNorm(1.0, g).Select(e => Eval.Evaluate(e, Nothing).ToArray()[0]).ToArray();
        Close(new[] { 3.0 / (5.0 + 1e-6), 4.0 / (5.0 + 1e-6) }, clipped);
    }

    [Fact]
    public void TokenizersAndWindowsEncodeTheText()
    {
        var chars = Tokenizer.Characters("abca");
        Assert.Equal(4, chars.VocabularySize);
        Assert.Equal(new[] { 3, 1, 2, 0 }, chars.Encode("cabz"));
        Assert.Equal("cab\uFFFD", chars.Decode(new[] { 3, 1, 2, 0 }));
        var words = Tokenizer.Words("the cat and the hat", minCount: 2);
        Assert.True(words.IsWordLevel);
        Assert.Equal(new[] { "<unk>", " ", "the" }, words.Tokens);

        var windows = TextData.Windows(new[] { new[] { 1, 2, 3, 4, 5 }, new[] { 9 } }, 2);
        Assert.Equal(new[] { 1.0, 2, 3, 4 }, windows.Features.ToArray());
        Assert.Equal(new[] { 2.0, 3, 4, 5 }, windows.Targets.ToArray());

        var text = string.Concat(Enumerable.Repeat("abcdefghij", 10));
        var corpus = TextData.Corpus(text, Tokenizer.Characters, seed: 1, validationFraction: 0.2, blockLength: 10);
        Assert.Equal(20, corpus.Validation.Sum(r => r.Length));
        Assert.Equal(80, corpus.Train.Sum(r => r.Length));
        var split = TextData.Split(text, seed: 1, validationFraction: 0.2, blockLength: 10);
        Assert.Equal(text.Length, split.Train.Sum(r => r.Length) + split.Validation.Sum(r => r.Length));
    }

    [Fact]
    public void VmapMapsOverRowsAndAxes()
    {
        var xs = Expr.Variable("xs", 3, 2);
        var w = Expr.Variable("w", 2);
        var at = new Dictionary<string, Tensor> { ["xs"] = Tensor.Create(new[] { 1.0, 2, 3, 4, 5, 6 }, 3, 2), ["w"] = Tensor.Create(new[] { 0.5, -1.0 }) };
        Close(new[] { -1.5, -2.5, -3.5 }, Eval.Evaluate(Vmap.Map(x => (x * w).Sum(), xs), at).ToArray());
        // Columns of xs, each times w's first element plus w's second.
        var columns = Vmap.Map(e => e[0] * e[1].Slice(0, 0, 1) + e[1].Slice(0, 1, 1), new[] { xs, w }, new int?[] { 1, null });
        Close(new[] { -0.5, 0.5, 1.5, 0.0, 1.0, 2.0 }, Eval.Evaluate(columns, at).ToArray());
    }

    [Fact]
    public void PlansReportTheirCostAndCheckpointingKeepsTheValues()
    {
        var a = Expr.Variable("a", 2, 3);
        var b = Expr.Variable("b", 3, 4);
        var plan = Plan.Compile(a.MatMul(b).Tanh().Sum());
        Assert.Equal(2L * 2 * 3 * 4, plan.MatMulFlops);
        Assert.True(plan.BufferBytes >= 8L * (6 + 12), $"{plan.BufferBytes} bytes");
        plan.Set("a", Tensor.RandNormal(1, new[] { 2, 3 }));
        plan.Set("b", Tensor.RandNormal(2, new[] { 3, 4 }));
        var profile = plan.Profile(2);
        Assert.NotEmpty(profile);
        Assert.All(profile, e => Assert.True(e.Count > 0 && e.Microseconds >= 0, e.ToString()));

        var x = Expr.Variable("x", 4);
        var h1 = (x * 2.0).Tanh();
        var loss = (h1 * h1).Tanh().Sum();
        var grad = Grad.Of(loss, x);
        var plain = Plan.Compile(new[] { loss, grad }, Array.Empty<Update>());
        var checkpointed = Plan.Compile(new[] { loss, grad }, Array.Empty<Update>(), new Checkpointing(loss));
        var bindings = new Dictionary<string, Tensor> { ["x"] = Tensor.Create(new[] { 0.1, -0.7, 1.3, 0.4 }) };
        var expected = plain.Run(bindings);
        var actual = checkpointed.Run(bindings);
        Assert.Equal(expected[0].ToArray(), actual[0].ToArray());
        Close(expected[1].ToArray(), actual[1].ToArray());
    }
}
