using System.Text.Json;
using FuncFlow.CSharp;
using Xunit;

namespace FacadeTests;

/// <summary>Onnx.Import from C#: the PyTorch CNN fixture (tests/FuncFlow.Onnx.Tests/fixtures/make_torch_model.py).</summary>
public class OnnxImportTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "onnx");

    private static (Tensor Input, double[] Expected) Fixture()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "torch_cnn.json")));
        var input = doc.RootElement.GetProperty("input").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
        var shape = doc.RootElement.GetProperty("input_shape").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        var expected = doc.RootElement.GetProperty("output").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        return (Tensor.Create(input, shape), expected);
    }

    private static OnnxModel Load() =>
        Onnx.Import(Path.Combine(Folder, "torch_cnn.onnx"), new Dictionary<string, int> { ["batch"] = 2 });

    [Fact]
    public void ImportedModelGivesPyTorchsOutputs()
    {
        var (input, expected) = Fixture();
        var model = Load();
        Assert.Equal(new[] { "image" }, model.Inputs.Select(p => p.Key));
        Assert.Equal(new[] { 2, 1, 6, 6 }, model.Inputs[0].Value.Shape);
        Assert.Equal(new[] { "log_probs" }, model.Outputs.Select(p => p.Key));
        Assert.Equal(8, model.Parameters.Count);
        Assert.Equal(model.Parameters.Keys.OrderBy(k => k, StringComparer.Ordinal), model.ParameterVariables.Keys.OrderBy(k => k, StringComparer.Ordinal));
        var actual = model.Evaluate(new Dictionary<string, Tensor> { ["image"] = input })["log_probs"].ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5, $"element {i}: {actual[i]} vs {expected[i]}");
    }

    [Fact]
    public void GradientWithRespectToTheLastBiasIsTheBatchMinusThreeTimesTheProbabilities()
    {
        // d/db_c of the sum of all log-probabilities: each of the N rows gives 1 - K p_c (K = 3 classes).
        var (input, _) = Fixture();
        var model = Load();
        var logProbs = model.Outputs[0].Value;
        var bias = model.ParameterVariables["fc.bias"];
        var gradient = Grad.Wrt(logProbs.Sum(), bias)[bias];
        var bindings = new Dictionary<string, Tensor>(model.Parameters) { ["image"] = input };
        var g = Eval.Evaluate(gradient, bindings).ToArray();
        var p = Eval.Evaluate(logProbs.Exp(), bindings).ToArray();
        for (int c = 0; c < 3; c++)
        {
            var expected = 2 - 3 * (p[c] + p[3 + c]);
            Assert.True(Math.Abs(g[c] - expected) <= 1e-5, $"class {c}: {g[c]} vs {expected}");
        }
    }

    [Fact]
    public void InspectReadsTheDeclarations()
    {
        var info = Onnx.Inspect(Path.Combine(Folder, "torch_cnn.onnx"));
        Assert.StartsWith("pytorch", info.Producer);
        Assert.Contains(new KeyValuePair<string, long>("", 13), info.Opsets);
        var input = Assert.Single(info.Inputs);
        Assert.Equal("image", input.Name);
        Assert.Equal(DType.Float32, input.DType);
        Assert.Equal(new[] { "batch", "1", "6", "6" }, input.Dims.Select(d => d.ToString()));
        Assert.Null(input.Dims[0].Size);
        Assert.Equal(6, input.Dims[3].Size);
        Assert.Equal(new[] { 4, 1, 3, 3 }, info.Initializers.Single(i => i.Name == "conv.weight").Shape);
        Assert.Equal(new[] { "Conv", "BatchNormalization", "Relu", "MaxPool", "Flatten", "Gemm", "LogSoftmax" }, info.OperatorCounts.Select(o => o.Key));
        Assert.All(info.OperatorCounts, o => Assert.Equal(1, o.Value));
        Assert.Contains("LSTM", Onnx.ImportedOperators);
        Assert.Equal(info.Inputs[0].Name, Load().Info.Inputs[0].Name);
    }

    [Fact]
    public void MissingDimensionsAndFilesAreNamed()
    {
        var path = Path.Combine(Folder, "torch_cnn.onnx");
        var e = Assert.Throws<ArgumentException>(() => Onnx.Import(path));
        Assert.Contains("'batch'", e.Message);
        var absent = Path.Combine(Folder, "absent.onnx");
        var missing = Assert.Throws<FuncFlow.Data.DataFormatException>(() => Onnx.Import(absent));
        Assert.Contains(absent, missing.Message);
    }
}
