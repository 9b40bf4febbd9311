using Xunit;
using AG = FuncFlow.Autograd;

namespace FacadeTests;

/// <summary>Gradient checking from C#: passes on correct gradients, reports the worst element when they disagree.</summary>
public class GradCheckTests
{
    private static readonly AG.Tensor X = new(new double[,] { { 0.3, -1.2, 0.7 }, { 1.5, 0.2, -0.4 } });
    private static readonly AG.Tensor W = new(new double[,] { { 0.5, -0.1 }, { 0.9, 0.4 }, { -0.6, 0.8 } });

    [Fact]
    public void A_network_passes_in_full_and_fast_mode()
    {
        static AG.Tensor Net(AG.Tensor[] t) => t[0].MM(t[1]).Tanh().Softmax().Sum(0);
        foreach (var fast in new[] { false, true })
        {
            var result = AG.GradCheck.Check(Net, new[] { X, W }, fast);
            Assert.True(result.Passed, result.Message);
            Assert.True(result.Error <= 1e-5 + 1e-3 * Math.Abs(result.Numeric));
        }
    }

    [Fact]
    public void Second_derivatives_pass()
    {
        var result = AG.GradCheck.CheckGradGrad(t => (t[0] * t[0] * t[0]).Sigmoid().Sum(1), new[] { X });
        Assert.True(result.Passed, result.Message);
    }

    [Fact]
    public void A_kink_is_reported_with_the_input_and_element()
    {
        // relu at exactly 0: backpropagation says 0, the central difference says 0.5.
        var atKink = new AG.Tensor(new double[] { 1.0, 0.0, 2.0 });
        var result = AG.GradCheck.Check(t => t[0].Relu(), new[] { atKink });
        Assert.False(result.Passed);
        Assert.Equal(0, result.InputIndex);
        Assert.Equal(new[] { 1 }, result.ElementIndex);
        Assert.Equal(0.0, result.Analytic);
        Assert.Equal(0.5, result.Numeric, 6);
        Assert.Contains("input 0", result.Message);
    }

    [Fact]
    public void Atol_and_rtol_each_apply_as_given()
    {
        // relu at exactly 0: the analytic 0 and the central difference 0.5 differ by exactly 0.5, so the element
        // passes when 0.5 <= atol + rtol * 0.5: atol alone must exceed 0.5, rtol alone 1.
        var atKink = new[] { new AG.Tensor(new double[] { 0.0 }) };
        static AG.Tensor Relu(AG.Tensor[] t) => t[0].Relu();
        Assert.True(AG.GradCheck.Check(Relu, atKink, atol: 0.51, rtol: 0.0).Passed);
        Assert.False(AG.GradCheck.Check(Relu, atKink, atol: 0.49, rtol: 0.0).Passed);
        Assert.True(AG.GradCheck.Check(Relu, atKink, atol: 0.0, rtol: 1.02).Passed);
        Assert.False(AG.GradCheck.Check(Relu, atKink, atol: 0.0, rtol: 0.98).Passed);
    }

    [Fact]
    public void Inputs_keep_their_values_and_flags()
    {
        var before = X.ToArray();
        AG.GradCheck.Check(t => t[0].Sigmoid(), new[] { X });
        Assert.Equal(before, X.ToArray());
        Assert.False(X.Autograd);
        Assert.Null(X.Grad);
    }
}
