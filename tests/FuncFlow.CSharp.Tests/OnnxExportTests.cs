using FuncFlow.CSharp;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit;
using Tensor = FuncFlow.CSharp.Tensor;

namespace FacadeTests;

/// <summary>Onnx.Export from C#: the files run in ONNX Runtime and give FuncFlow's values.</summary>
public class OnnxExportTests
{
    private static string TempFile(string name) =>
        Path.Combine(Path.GetTempPath(), $"funcflow-onnx-{name}-{Guid.NewGuid():N}.onnx");

    /// <summary>Runs a file in ONNX Runtime on float32 inputs; gives each output's values.</summary>
    private static Dictionary<string, float[]> Run(string path, params (string Name, Tensor Value)[] inputs)
    {
        using var session = new InferenceSession(path);
        var values = inputs
            .Select(i => NamedOnnxValue.CreateFromTensor(i.Name, new DenseTensor<float>(i.Value.ToArray32(), i.Value.Shape)))
            .ToList();
        using var results = session.Run(values);
        return results.ToDictionary(r => r.Name, r => r.AsTensor<float>().ToArray());
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * Math.Max(1.0, Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void AModelExportedAtOneBatchSizeRunsAtAnotherWithTheModelsOutputs()
    {
        var model = Model.Create(
            new Sequential(new Conv2d(1, 4, 3, padding: 1), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2), new Flatten(),
                new Linear(4 * 4 * 4, 8), new Tanh(), new Linear(8, 3), new Softmax()),
            seed: 5, dtype: DType.Float32);
        var path = TempFile("model");
        try
        {
            Onnx.Export(model, new[] { 2, 1, 8, 8 }, path);
            var x = Tensor.RandNormal(3, new[] { 5, 1, 8, 8 }, dtype: DType.Float32);
            var output = Run(path, ("input", x))["output"];
            AssertClose(model.Predict(x).ToArray32(), output);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ExpressionsExportWithTheirParametersAsInitializers()
    {
        var x = Expr.Variable("x", DType.Float32, 2, 3);
        var w = Expr.Variable("w", DType.Float32, 3, 2);
        var y = x.MatMul(w).Sigmoid();
        var wv = Tensor.Create(new[] { 0.5f, -1f, 2f, 0.25f, -0.75f, 1.5f }, 3, 2);
        var xv = Tensor.Create(new[] { 1f, 2f, 3f, -1f, 0f, 0.5f }, 2, 3);
        var path = TempFile("expr");
        try
        {
            Onnx.Export(new Dictionary<string, Expr> { ["x"] = x }, new Dictionary<string, Expr> { ["y"] = y },
                new Dictionary<string, Tensor> { ["w"] = wv }, path);
            // x w by hand: rows (1, 2, 3) and (-1, 0, 0.5) against columns (0.5, 2, -0.75) and (-1, 0.25, 1.5).
            var expected = new[] { 0.5 + 4 - 2.25, -1 + 0.5 + 4.5, -0.5 - 0.375, 1 + 0.75 }
                .Select(v => (float)(1 / (1 + Math.Exp(-v)))).ToArray();
            AssertClose(expected, Run(path, ("x", xv))["y"]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ASavedModelFileExportsFromTheArchitectureItRecords()
    {
        var model = Model.Create(new Sequential(new Linear(4, 6), new ReLU(), new Linear(6, 2)), seed: 9, dtype: DType.Float32);
        var saved = Path.Combine(Path.GetTempPath(), $"funcflow-onnx-{Guid.NewGuid():N}.safetensors");
        var path = TempFile("file");
        try
        {
            model.Save(saved);
            Onnx.ExportFile(saved, new[] { 1, 4 }, path);
            var x = Tensor.RandNormal(4, new[] { 3, 4 }, dtype: DType.Float32);
            AssertClose(model.Predict(x).ToArray32(), Run(path, ("input", x))["output"]);
        }
        finally
        {
            File.Delete(saved);
            File.Delete(path);
        }
    }

    [Fact]
    public void AnOperationWithNoOnnxMappingIsNamed()
    {
        var x = Expr.Variable("x", 1, 4, 2);
        var folded = x.Fold(new[] { 4 }, new[] { 2 }, stride: new[] { 2 });
        var e = Assert.Throws<NotSupportedException>(() =>
            Onnx.Export(new Dictionary<string, Expr> { ["x"] = x }, new Dictionary<string, Expr> { ["y"] = folded },
                new Dictionary<string, Tensor>(), TempFile("fold")));
        Assert.Contains("fold", e.Message);
        Assert.Contains("node 1 of 2", e.Message);
    }
}
