using System.Reflection;
using Xunit;
using Lib = FuncFlow.CSharp;

namespace FacadeTests;

/// <summary>
/// The C# surface keeps up with the core: every expression builder, layer and optimiser of the F# core has its C#
/// counterpart, so an operation or layer added to the core without its one-line wrapper fails here, by name.
/// </summary>
public class CoverageTests
{
    /// <summary>Core builders whose C# counterpart has another name: an operator, an overload, or a member.</summary>
    private static readonly Dictionary<string, string> Renamed = new()
    {
        ["var"] = "Variable", ["var32"] = "Variable", ["varOf"] = "Variable", ["scalarOf"] = "Scalar",
        ["add"] = "op_Addition", ["sub"] = "op_Subtraction", ["mul"] = "op_Multiply", ["div"] = "op_Division",
        ["neg"] = "op_UnaryNegation", ["powScalar"] = "Pow", ["equal"] = "EqualTo", ["padWith"] = "Pad",
        ["reverseCumsum"] = "Cumsum", ["tryName"] = "Name", ["scalarLike"] = "op_Addition", ["matmul"] = "MatMul",
    };

    /// <summary>Core builders deliberately not on the C# surface, and why.</summary>
    private static readonly Dictionary<string, string> Absent = new()
    {
        ["unary"] = "takes the UnaryOp union; each unary operation is its own method",
        ["binary"] = "takes the BinaryOp union; each binary operation is its own method or operator",
        ["reduce"] = "takes the ReduceOp union; each reduction is its own method",
    };

    /// <summary>"sumAxisKeep" -> "Sum": the C# method takes the axis and keepDim as arguments.</summary>
    private static string Base(string name)
    {
        foreach (var suffix in new[] { "AxisKeep", "Axis", "Axes", "Keep" })
            if (name.EndsWith(suffix, StringComparison.Ordinal) && name.Length > suffix.Length) return Base(name[..^suffix.Length]);
        return char.ToUpperInvariant(name[0]) + name[1..];
    }

    [Fact]
    public void EveryExpressionBuilderHasACSharpCounterpart()
    {
        var csharp = typeof(Lib.Expr).GetMembers(BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance).Select(m => m.Name).ToHashSet();
        var builders = typeof(FuncFlow.ExprModule).GetMethods(BindingFlags.Public | BindingFlags.Static).Select(m => m.Name).Distinct().ToList();
        Assert.Contains("matmul", builders);
        var missing = builders.Where(b => !Absent.ContainsKey(b) && !csharp.Contains(Renamed.GetValueOrDefault(b, Base(b)))).ToList();
        Assert.True(missing.Count == 0, "core builders without a C# counterpart on FuncFlow.CSharp.Expr: " + string.Join(", ", missing));
    }

    [Fact]
    public void EveryLayerAndOptimiserHasACSharpCounterpart()
    {
        var csharp = typeof(Lib.Expr).Assembly.GetExportedTypes().Where(t => t.Namespace == "FuncFlow.CSharp").Select(t => t.Name).ToHashSet();
        var core = typeof(FuncFlow.NN.Layer).Assembly.GetExportedTypes()
            .Where(t => !t.IsAbstract && (t.IsSubclassOf(typeof(FuncFlow.NN.Layer)) || t.IsSubclassOf(typeof(FuncFlow.NN.Optimizer))))
            .Where(t => t.GetConstructors().Length > 0)
            .Select(t => t.Name)
            .Where(n => n != "Scheduled") // Optimizer.WithSchedule
            .Where(n => n != "RecurrentCell" && n != "RecurrentLayer") // bases taking the CellKind union: RNNCell, GRUCell, LSTMCell, RNN, GRU, LSTM
            .ToList();
        Assert.Contains("Conv2d", core);
        var missing = core.Where(n => !csharp.Contains(n)).ToList();
        Assert.True(missing.Count == 0, "core layers or optimisers without a C# class in FuncFlow.CSharp: " + string.Join(", ", missing));
    }

    /// <summary>Functions of the core's gradient and transform modules, and the C# member each one is.</summary>
    public static TheoryData<Type, string, Type, string> ModuleFunctions => new()
    {
        { typeof(FuncFlow.Grad), "vjp", typeof(Lib.Grad), "Vjp" },
        { typeof(FuncFlow.Grad), "wrt", typeof(Lib.Grad), "Wrt" },
        { typeof(FuncFlow.Grad), "ofExpr", typeof(Lib.Grad), "All" },
        { typeof(FuncFlow.Grad), "grad", typeof(Lib.Grad), "Of" },
        { typeof(FuncFlow.Grad), "hvp", typeof(Lib.Grad), "Hvp" },
        { typeof(FuncFlow.Grad), "jvp", typeof(Lib.Grad), "Jvp" },
        { typeof(FuncFlow.Grad), "jvpMany", typeof(Lib.Grad), "Jvp" },
        { typeof(FuncFlow.Grad), "jacobian", typeof(Lib.Grad), "Jacobian" },
        { typeof(FuncFlow.Grad), "hessian", typeof(Lib.Grad), "Hessian" },
        { typeof(FuncFlow.Vmap), "vmap", typeof(Lib.Vmap), "Map" },
        { typeof(FuncFlow.Vmap), "vmapAxis", typeof(Lib.Vmap), "Map" },
        { typeof(FuncFlow.Vmap), "vmapAxes", typeof(Lib.Vmap), "Map" },
    };

    [Theory]
    [MemberData(nameof(ModuleFunctions))]
    public void GradientAndTransformFunctionsHaveTheirCSharpMember(Type core, string function, Type csharp, string member)
    {
        Assert.NotNull(core.GetMethod(function, BindingFlags.Public | BindingFlags.Static));
        Assert.Contains(csharp.GetMethods(BindingFlags.Public | BindingFlags.Static), m => m.Name == member);
    }

    [Fact]
    public void EveryGradientAndTransformFunctionIsListed()
    {
        var listed = ModuleFunctions.Select(row => ((Type)row[0], (string)row[1])).ToHashSet();
        var functions = new[] { typeof(FuncFlow.Grad), typeof(FuncFlow.Vmap) }
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => m.DeclaringType == t).Select(m => (t, m.Name)))
            .Distinct()
            .ToList();
        var missing = functions.Where(f => !listed.Contains(f)).Select(f => f.Item1.Name + "." + f.Item2).ToList();
        Assert.True(missing.Count == 0, "core gradient or transform functions without a C# counterpart: " + string.Join(", ", missing));
    }
}
