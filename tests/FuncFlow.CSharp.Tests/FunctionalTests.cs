using Xunit;
using AG = FuncFlow.Autograd;
using Lib = FuncFlow.CSharp;

namespace FacadeTests;

/// <summary>Jvp, Jacobian and Hessian from C# (eager tensors and library expressions), against derivatives by hand.</summary>
public class FunctionalTests
{
    private static readonly double[] Point = { 0.3, -1.2, 0.7 };

    private static void Close(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-12, $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void Jvp_is_the_derivative_along_the_tangent()
    {
        var v = new double[] { 1.0, -0.5, 2.0 };
        var result = AG.Functional.Jvp(t => t.Tanh(), new AG.Tensor(Point), new AG.Tensor(v));
        Close(Point.Select((x, i) => v[i] * (1 - Math.Tanh(x) * Math.Tanh(x))).ToArray(), result.ToArray());
    }

    [Fact]
    public void Jacobian_has_the_output_shape_then_the_input_shape()
    {
        // f(x) = sigmoid(x * x): diagonal, 2 x sigmoid'(x^2).
        var result = AG.Functional.Jacobian(t => (t * t).Sigmoid(), new AG.Tensor(Point));
        Assert.Equal(new[] { 3, 3 }, result.Shape);
        var expected = new double[9];
        for (int i = 0; i < 3; i++)
        {
            var s = 1 / (1 + Math.Exp(-Point[i] * Point[i]));
            expected[i * 3 + i] = 2 * Point[i] * s * (1 - s);
        }
        Close(expected, result.ToArray());
    }

    [Fact]
    public void Hessian_of_a_sum_of_cubes_is_diagonal_six_x()
    {
        var result = AG.Functional.Hessian(t => (t * t * t).Sum(0), new AG.Tensor(Point));
        Assert.Equal(new[] { 3, 3 }, result.Shape);
        var expected = new double[9];
        for (int i = 0; i < 3; i++) expected[i * 3 + i] = 6 * Point[i];
        Close(expected, result.ToArray());
    }

    [Fact]
    public void Misuse_is_named()
    {
        var x = new AG.Tensor(Point);
        var hessian = Assert.Throws<ArgumentException>(() => AG.Functional.Hessian(t => t.Tanh(), x));
        Assert.Contains("Grad.hessian: the output has shape (3,)", hessian.Message);
        var jvp = Assert.Throws<ArgumentException>(() => AG.Functional.Jvp(t => t.Tanh(), x, new AG.Tensor(new double[] { 1.0 })));
        Assert.Contains("Grad.jvp: the tangent has shape (1,) but the input has shape (3,)", jvp.Message);
        Assert.Throws<InvalidOperationException>(() => AG.Functional.Jacobian(_ => null!, x));
    }

    [Fact]
    public void On_expressions_Jvp_Jacobian_and_Hessian_are_expressions_with_the_hand_derived_values()
    {
        var x = Lib.Expr.Variable("x", 3);
        var at = new Dictionary<string, Lib.Tensor> { ["x"] = Lib.Tensor.Create(Point) };
        var v = new double[] { 1.0, -0.5, 2.0 };
        var jvp = Lib.Eval.Evaluate(Lib.Grad.Jvp(x.Tanh(), x, Lib.Expr.Constant(Lib.Tensor.Create(v))), at);
        Close(Point.Select((p, i) => v[i] * (1 - Math.Tanh(p) * Math.Tanh(p))).ToArray(), jvp.ToArray());

        // f(x) = x * x[0]: df_i/dx_j = x[0] [i = j] + x_i [j = 0].
        var f = x * x.Slice(0, 0, 1);
        var jacobian = Lib.Eval.Evaluate(Lib.Grad.Jacobian(f, x), at);
        Assert.Equal(new[] { 3, 3 }, jacobian.Shape);
        var expected = new double[9];
        for (int i = 0; i < 3; i++)
        {
            expected[i * 3 + i] += Point[0];
            expected[i * 3] += Point[i];
        }
        Close(expected, jacobian.ToArray());

        // Two variables' tangents at once: d(x . y) = v . y + x . u.
        var y = Lib.Expr.Variable("y", 3);
        var u = new double[] { 0.5, 0.5, -1.0 };
        var ys = new double[] { 2.0, -1.0, 0.5 };
        var both = Lib.Grad.Jvp((x * y).Sum(), new Dictionary<Lib.Expr, Lib.Expr>
        {
            [x] = Lib.Expr.Constant(Lib.Tensor.Create(v)), [y] = Lib.Expr.Constant(Lib.Tensor.Create(u)),
        });
        var atBoth = new Dictionary<string, Lib.Tensor>(at) { ["y"] = Lib.Tensor.Create(ys) };
        Assert.Equal(v.Select((vi, i) => vi * ys[i] + Point[i] * u[i]).Sum(), Lib.Eval.Evaluate(both, atBoth).Item(), 12);

        var hessian = Lib.Eval.Evaluate(Lib.Grad.Hessian(x.Pow(3.0).Sum(), x), at);
        var diagonal = new double[9];
        for (int i = 0; i < 3; i++) diagonal[i * 3 + i] = 6 * Point[i];
        Close(diagonal, hessian.ToArray());
    }
}
