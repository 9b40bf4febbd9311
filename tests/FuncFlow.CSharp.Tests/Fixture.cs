using System.Text.Json;
using Xunit;

namespace FacadeTests;

/// <summary>The seeds' worked examples (seed-examples.json, copied from shared/conformance).</summary>
internal static class Fixture
{
    private static readonly Lazy<JsonElement> Root = new(() =>
    {
        var path = Path.Combine(AppContext.BaseDirectory, "seed-examples.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    });

    public static JsonElement Get(params string[] path)
    {
        var e = Root.Value;
        foreach (var p in path) e = e.GetProperty(p);
        return e;
    }

    public static double Num(params string[] path) => Get(path).GetDouble();

    public static double[] Vec(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    public static double[,] Mat(JsonElement e)
    {
        var rows = e.EnumerateArray().Select(Vec).ToArray();
        var m = new double[rows.Length, rows[0].Length];
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < rows[0].Length; j++) m[i, j] = rows[i][j];
        return m;
    }

    /// <summary>All numbers of a nested array, row-major.</summary>
    public static double[] Flat(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().SelectMany(Flat).ToArray() : new[] { e.GetDouble() };

    public static void Close(double[] expected, double[] actual, double rtol, double atol = 0.0)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            var tol = atol + rtol * Math.Abs(expected[i]);
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol,
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tol:G3}); expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
        }
    }

    public static void Close(double expected, double actual, double rtol) => Close(new[] { expected }, new[] { actual }, rtol);
}
