using FuncFlow.CSharp;
using Xunit;

namespace FacadeTests.Docs;

/// <summary>The docs' snippets of forward mode, vmap, checkpointed plans, user-defined operations, sequence models and training loops.</summary>
public class TransformSnippets
{
    [Fact]
    public void Transforms()
    {
        // snippet: transforms
        var x = Expr.Variable("x", 3);
        var f = (x * x.Sin()).Softmax();
        Expr jvp = Grad.Jvp(f, x, Expr.Constant(Tensor.Ones(3)));   // forward mode: of f's shape
        Expr jacobian = Grad.Jacobian(f, x);                         // [3, 3]: forward mode when x is the smaller
        Expr hessian = Grad.Hessian(x.Pow(3.0).Sum(), x);           // [3, 3]: forward over reverse
        var w = Expr.Variable("w", 3);
        var rows = Expr.Variable("rows", 8, 3);
        // Per-example gradients, one batched expression whatever the batch size: [8, 3].
        Expr perExample = Vmap.Map(row => Grad.Of(((row * w).Sum() - 1.0).Pow(2.0), w), rows);
        var at = new Dictionary<string, Tensor>
        {
            ["x"] = Tensor.Create(new[] { 0.1, 0.2, 0.3 }), ["w"] = Tensor.Ones(3), ["rows"] = Tensor.RandNormal(1, new[] { 8, 3 }),
        };
        Tensor[] values = Eval.Evaluate(new[] { jvp, jacobian, hessian, perExample }, at);
        // end snippet
        Assert.Equal(new[] { 3, 3 }, values[1].Shape);
        Assert.Equal(6 * 0.3, values[2].ToArray()[8], 12);
        var r = at["rows"].ToArray();
        double residual = r[0] + r[1] + r[2] - 1.0;
        Assert.Equal(2 * residual * r[0], values[3].ToArray()[0], 12);
    }

    [Fact]
    public void CheckpointedPlan()
    {
        // snippet: checkpointing
        var input = Expr.Variable("input", 64, 32);
        var w1 = Expr.Variable("w1", 32, 32);
        var w2 = Expr.Variable("w2", 32, 32);
        var hidden = input.MatMul(w1).Tanh();
        var loss = hidden.MatMul(w2).Tanh().Pow(2.0).Mean();
        var grads = Grad.Wrt(loss, w1, w2);
        var outputs = new[] { loss, grads[w1], grads[w2] };
        // The backward pass recomputes the activations instead of keeping them, except those kept.
        var plan = Plan.Compile(outputs, Array.Empty<Update>(), new Checkpointing(loss, keep: hidden));
        var plain = Plan.Compile(outputs, Array.Empty<Update>());
        Console.WriteLine($"{plan.BufferBytes} bytes (without checkpointing {plain.BufferBytes}), {plan.MatMulFlops} GEMM flops a run");
        foreach (var (name, shape) in new[] { ("input", new[] { 64, 32 }), ("w1", new[] { 32, 32 }), ("w2", new[] { 32, 32 }) })
            plan.Set(name, Tensor.RandNormal(name.Length, shape));
        foreach (ProfileEntry entry in plan.Profile(runs: 3).Take(3))
            Console.WriteLine($"{entry.Instruction}: {entry.Count} a run, {entry.Microseconds:F1} us");
        // end snippet
        // The same values as without checkpointing, for at least as many matrix products.
        Assert.True(plan.MatMulFlops >= plain.MatMulFlops);
        foreach (var name in new[] { "input", "w1", "w2" }) plain.Set(name, plan.Get(name));
        plain.Execute();
        for (int i = 0; i < 3; i++)
        {
            var expected = plain.Output(i).ToArray();
            var actual = plan.Output(i).ToArray();
            for (int k = 0; k < expected.Length; k++) Assert.Equal(expected[k], actual[k], 12);
        }
    }

    [Fact]
    public void CustomOperationSnippet()
    {
        // snippet: custom-operation
        var logSumExp = new CustomOperation(
            "logSumExp",
            shapes => new[] { shapes[0][0] },                    // [rows, columns] -> [rows]
            args =>
            {
                int columns = args.InputShape(0)[1];
                for (int r = 0; r < args.Output.Length; r++)
                {
                    var row = args.Input(0).Slice(r * columns, columns);
                    double m = double.NegativeInfinity, s = 0;
                    foreach (var v in row) m = Math.Max(m, v);
                    foreach (var v in row) s += Math.Exp(v - m);
                    args.Output[r] = m + Math.Log(s);
                }
            },
            (inputs, y, g) => new[] { g.Reshape(-1, 1) * (inputs[0] - y.Reshape(-1, 1)).Exp() });
        Expr total = logSumExp.Apply(Expr.Variable("scores", 2, 3)).Sum();
        GradCheckReport check = GradCheck.Check(xs => logSumExp.Apply(xs[0]).Sum(), Tensor.RandNormal(1, new[] { 2, 3 }));
        // end snippet
        Assert.True(check.Passed, check.Message);
        Assert.Empty(total.Shape);
    }

    [Fact]
    public void Sequences()
    {
        // snippet: sequences
        var corpus = TextData.Corpus(TextData.Fortunes(), Tokenizer.Characters, seed: 1, validationFraction: 0.1, blockLength: 10_000);
        int symbols = corpus.Tokenizer.VocabularySize;
        Dataset windows = TextData.Windows(corpus.Train, length: 16);    // ids [n, 16], targets shifted by one
        var lstm = new Sequential(new Embedding(symbols, 32), new LSTM(32, 64, batchFirst: true), new Linear(64, symbols));
        var gpt = new Sequential(new Embedding(symbols, 32), new LearnedPositionalEmbedding(16, 32),
            new TransformerBlock(32, heads: 4, causal: true, activation: BlockActivation.GeluTanh), new LayerNorm(32), new Linear(32, symbols));
        var optimizer = new ClipGradNorm(new Adam(3e-3).WithSchedule(Schedule.Warmup(100, 0.1, Schedule.Cosine(1000))), maxNorm: 1.0);
        var trainer = new Trainer(Model.Create(gpt, seed: 1, DType.Float32), Loss.SequenceCrossEntropy(), optimizer, seed: 1);
        Dataset batch = windows.Take(0, 1, 2, 3);
        double loss = trainer.Step(batch.Features, batch.Targets);
        string text = corpus.Tokenizer.Decode(corpus.Validation[0].Take(40));
        // end snippet
        Assert.True(loss > 0 && loss < 2 * Math.Log(symbols), $"loss {loss} vs log {symbols}");
        Assert.Equal(40, text.EnumerateRunes().Count());
        Assert.Equal(symbols * 32 + 32 * 64 * 4 + 64 * 64 * 4 + 2 * 4 * 64 + 64 * symbols + symbols, Model.Create(lstm).ParameterCount);
    }

    [Fact]
    public void TrainingLoop()
    {
        var dir = Directory.CreateTempSubdirectory("funcflow-docs").FullName;
        try
        {
            var checkpoint = Path.Combine(dir, "iris.ckpt");
            var (train, test) = Datasets.Iris().Split(seed: 0, testFraction: 0.2);
            var scaler = Standardizer.Fit(train.Features);
            (train, test) = (scaler.Apply(train), scaler.Apply(test));
            // snippet: training-loop
            var model = Model.Create(new Sequential(new Linear(4, 16), new ReLU(), new Linear(16, 3)), seed: 1);
            // The first layer at a tenth of the rate, the last one frozen.
            var optimizer = new ParameterGroups(new Adam(1e-2)).With(new[] { "0" }, new Adam(1e-3)).With(new[] { "2" }, new Frozen());
            var trainer = new Trainer(model, Loss.CrossEntropy, optimizer, seed: 1);
            var options = new FitOptions(epochs: 50, batchSize: 16)
            {
                Test = test,
                Quiet = true,
                EarlyStopping = new EarlyStopping(Patience: 3, MinDelta: 1e-4),
                StepCallback = step => { if (step.Step % 100 == 0) Console.WriteLine($"step {step.Step}: loss {step.Loss:F4}"); },
                EpochCallback = epoch => Console.WriteLine($"epoch {epoch.Epoch}: test loss {epoch.Test?.Loss:F4}"),
                CheckpointPath = checkpoint,                   // the whole training state, every 20 steps
                CheckpointEvery = 20,
            };
            History history = trainer.Fit(train, options);
            var again = new Trainer(Model.Create(model.Layer, seed: 1), Loss.CrossEntropy, optimizer, seed: 1);
            again.Resume(checkpoint);                          // goes on from the last checkpoint, bit for bit
            Console.WriteLine($"stopped early: {history.StoppedEarly}, resumed at step {again.StepsTaken}");
            // end snippet
            Assert.Equal(model.Parameters["2.weight"].ToArray(), trainer.Model.Parameters["2.weight"].ToArray());
            Assert.NotEqual(model.Parameters["0.weight"].ToArray(), trainer.Model.Parameters["0.weight"].ToArray());
            Assert.Equal(20 * (again.StepsTaken / 20), again.StepsTaken);
            Assert.True(again.StepsTaken > 0);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
