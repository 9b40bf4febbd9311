using FuncFlow;
using Xunit;
using AG = FuncFlow.Autograd;

namespace FacadeTests;

/// <summary>User-defined operations from C#: delegates for the forward and the gradient rule.</summary>
public class CustomOperationTests
{
    private static void LogSumExpRows(CustomArgs<double> args)
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

    private static Expr Column(Expr e) => ExprModule.reshape(new[] { -1, 1 }, e);

    private static readonly AG.CustomOperation LogSumExp = new(
        "logSumExp", Rows, LogSumExpRows, (inputs, y, g) => new Expr?[] { Column(g) * ExprModule.exp(inputs[0] - Column(y)) });

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
        var wrong = new AG.CustomOperation(
            "wrongLogSumExp", Rows, LogSumExpRows, (inputs, y, g) => new Expr?[] { ExprModule.broadcastTo(inputs[0].Shape, Column(g)) });
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
        var failing = new AG.CustomOperation(
            "failing", Rows, args => throw new NotImplementedException("no kernel yet"), (inputs, y, g) => new Expr?[] { null });
        var f = Assert.Throws<InvalidOperationException>(() => failing.Apply(new AG.Tensor(new double[,] { { 1, 2 } })));
        Assert.Contains("failing (user-defined operation, output shape (1,)): the forward kernel failed: no kernel yet", f.Message);
        Assert.Throws<ArgumentException>(() => new AG.CustomOperation(" ", Rows, LogSumExpRows, (inputs, y, g) => new Expr?[] { null }));
    }
}
