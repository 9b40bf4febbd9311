using FuncFlow.CSharp;
using Xunit;
using AG = FuncFlow.Autograd;

namespace FacadeTests;

/// <summary>User-defined operations from C#: delegates for the kernel and the gradient rule, on expressions and eager tensors.</summary>
public class CustomOperationTests
{
    private static void LogSumExpRows(KernelArgs<double> args)
    {
        var x = args.Input(0);
        int columns = args.InputShape(0)[1];
        var output = args.Output;
        for (int r = 0; r < output.Length; r++)
        {
            var row = x.Slice(r * columns, columns);
            double m = double.NegativeInfinity;
            foreach (var v in row) m = Math.Max(m, v);
            double s = 0.0;
            foreach (var v in row) s += Math.Exp(v - m);
            output[r] = m + Math.Log(s);
        }
    }

    private static int[] Rows(int[][] shapes) =>
        shapes.Length == 1 && shapes[0].Length == 2 ? new[] { shapes[0][0] } : throw new ArgumentException("expects one matrix [rows; columns]");

    private static Expr?[] LogSumExpGradient(IReadOnlyList<Expr> inputs, Expr y, Expr g) =>
        new[] { g.Reshape(-1, 1) * (inputs[0] - y.Reshape(-1, 1)).Exp() };

    private static readonly AG.CustomOperation LogSumExp = new("logSumExp", Rows, LogSumExpRows, LogSumExpGradient);

    private static double[] Softmax(double[] row)
    {
        double m = row.Max();
        var e = row.Select(v => Math.Exp(v - m)).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    [Fact]
    public void A_stable_log_sum_exp_has_the_hand_computed_value_and_softmax_gradient_where_exp_overflows()
    {
        var x = new AG.Tensor(new double[,] { { 1000, 999, 998 }, { -1, 0, 1 } }, autograd: true);
        var y = LogSumExp.Apply(x);
        double tail = Math.Log(1 + Math.Exp(-1) + Math.Exp(-2));
        Assert.Equal(new[] { 2 }, y.Shape);
        Assert.Equal(1000 + tail, y.ToArray()[0], 9);
        Assert.Equal(1 + tail, y.ToArray()[1], 12);
        y.Backward();
        var expected = Softmax(new double[] { 1000, 999, 998 }).Concat(Softmax(new double[] { -1, 0, 1 })).ToArray();
        var actual = x.Grad!.ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 12);
    }

    [Fact]
    public void On_expressions_the_operation_evaluates_differentiates_and_compiles_with_a_float32_kernel()
    {
        var op = LogSumExp.Operation;
        var x = Expr.Variable("x", 2, 3);
        var rows = new double[] { 0.3, -1.2, 0.7, 1.5, 0.2, -0.4 };
        var at = new Dictionary<string, Tensor> { ["x"] = Tensor.Create(rows, 2, 3) };
        var f = op.Apply(x).Sum();
        var expected = Enumerable.Range(0, 2).Sum(r => Math.Log(rows.Skip(3 * r).Take(3).Sum(Math.Exp)));
        Assert.Equal(expected, Eval.Evaluate(f, at).Item(), 12);
        var gradient = Eval.Evaluate(Grad.Of(f, x), at).ToArray();
        var softmax = Softmax(rows[..3]).Concat(Softmax(rows[3..])).ToArray();
        for (int i = 0; i < 6; i++) Assert.Equal(softmax[i], gradient[i], 12);
        Assert.Contains("logSumExp", Print.Formula(f));

        // float32 graphs need the float32 kernel, named in the error otherwise.
        var x32 = Expr.Variable("x", DType.Float32, 2, 3);
        var missing = Assert.Throws<ArgumentException>(() => op.Apply(x32));
        Assert.Contains("float32 forward kernel", missing.Message);
        var with32 = new CustomOperation("logSumExp32", Rows, LogSumExpRows, LogSumExpGradient, args =>
        {
            for (int r = 0; r < args.Output.Length; r++)
            {
                var row = args.Input(0).Slice(r * 3, 3);
                float s = 0;
                foreach (var v in row) s += MathF.Exp(v);
                args.Output[r] = MathF.Log(s);
            }
        });
        var plan = Plan.Compile(with32.Apply(x32));
        plan.Set("x", rows.Select(v => (float)v).ToArray());
        plan.Execute();
        Assert.Equal(Math.Log(rows[..3].Sum(Math.Exp)), plan.Output(0).ToArray()[0], 5);
    }

    [Fact]
    public void A_forward_mode_rule_gives_Jvp_and_a_missing_one_is_named()
    {
        var x = Expr.Variable("x", 2, 3);
        var rows = new double[] { 0.3, -1.2, 0.7, 1.5, 0.2, -0.4 };
        var tangent = new double[] { 1, 0, -1, 0.5, 2, 0 };
        var at = new Dictionary<string, Tensor> { ["x"] = Tensor.Create(rows, 2, 3) };
        var v = Expr.Constant(Tensor.Create(tangent, 2, 3));
        var missing = Assert.ThrowsAny<Exception>(() => Grad.Jvp(LogSumExp.Operation.Apply(x), x, v));
        Assert.Contains("logSumExp", missing.Message);
        // d logsumexp = sum(softmax * dx) per row.
        var withJvp = LogSumExp.Operation.WithJvp((inputs, y, tangents) => ((inputs[0] - y.Reshape(-1, 1)).Exp() * tangents[0]!).Sum(1));
        var jvp = Eval.Evaluate(Grad.Jvp(withJvp.Apply(x), x, v), at).ToArray();
        for (int r = 0; r < 2; r++)
        {
            var s = Softmax(rows[(3 * r)..(3 * r + 3)]);
            Assert.Equal(s.Select((p, i) => p * tangent[3 * r + i]).Sum(), jvp[r], 12);
        }
    }

    [Fact]
    public void A_correct_rule_passes_GradCheck_in_first_and_second_order()
    {
        var x = new AG.Tensor(new double[,] { { 0.3, -1.2, 0.7 }, { 1.5, 0.2, -0.4 } });
        var w = new AG.Tensor(new double[,] { { 0.5, -0.1, 0.2 }, { 0.9, 0.4, -0.3 }, { -0.6, 0.8, 0.1 } });
        var first = AG.GradCheck.Check(t => LogSumExp.Apply(t[0].MM(t[1]).Tanh()), new[] { x, w });
        Assert.True(first.Passed, first.Message);
        var second = AG.GradCheck.CheckGradGrad(t => LogSumExp.Apply(t[0]), new[] { x });
        Assert.True(second.Passed, second.Message);
    }

    [Fact]
    public void A_wrong_rule_fails_GradCheck_with_a_report_naming_the_operation()
    {
        var wrong = new AG.CustomOperation("wrongLogSumExp", Rows, LogSumExpRows, (inputs, y, g) => new[] { g.Reshape(-1, 1).BroadcastTo(inputs[0].Shape) });
        var x = new AG.Tensor(new double[,] { { 0.3, -1.2, 0.7 }, { 1.5, 0.2, -0.4 } });
        var result = AG.GradCheck.Check(t => wrong.Apply(t[0]), new[] { x });
        Assert.False(result.Passed);
        Assert.Contains("wrongLogSumExp", result.Message);
    }

    [Fact]
    public void Operands_the_shape_rule_rejects_and_a_failing_forward_are_errors_naming_the_operation()
    {
        var e = Assert.Throws<ArgumentException>(() => LogSumExp.Apply(new AG.Tensor(new double[] { 1, 2 })));
        Assert.Contains("logSumExp", e.Message);
        Assert.Contains("expects one matrix", e.Message);
        var failing = new AG.CustomOperation("failing", Rows, args => throw new NotImplementedException("no kernel yet"), (inputs, y, g) => new Expr?[] { null });
        var f = Assert.Throws<InvalidOperationException>(() => failing.Apply(new AG.Tensor(new double[,] { { 1, 2 } })));
        Assert.Contains("failing (user-defined operation, output shape (1,)): the forward kernel failed: no kernel yet", f.Message);
        Assert.Throws<ArgumentException>(() => new AG.CustomOperation(" ", Rows, LogSumExpRows, (inputs, y, g) => new Expr?[] { null }));
    }
}
