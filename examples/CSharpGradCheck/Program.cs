// GradCheck on C# functions: the analytic gradients FuncFlow derives for a function written with expressions are
// compared with central finite differences (PyTorch's gradcheck and gradgradcheck). A function with a kink at the
// point checked (relu at 0) fails, and the report names the input, the element and both values.
//
//     dotnet run -c Release --project examples/CSharpGradCheck

using System;
using FuncFlow.CSharp;

var q = Tensor.RandNormal(1, new[] { 2, 4 });
var k = Tensor.RandNormal(2, new[] { 5, 4 });
var v = Tensor.RandNormal(3, new[] { 5, 3 });
var first = GradCheck.Check(Attention, q, k, v);
Console.WriteLine($"gradcheck:     {first.Message}");
var second = GradCheck.CheckGradGrad(Attention, q, k, v);
Console.WriteLine($"gradgradcheck: {second.Message}");

// At 0, relu's derivative is taken as 0 (PyTorch's choice) but the central difference sees a slope of 1/2.
var kink = GradCheck.Check(xs => (xs[0].Relu() * 3.0).Sum(), Tensor.Create(new[] { 1.0, 0.0, -2.0 }));
Console.WriteLine($"relu at 0:     {kink.Message}");
Console.WriteLine(first.Passed && second.Passed && !kink.Passed ? "checks as expected" : "unexpected result");

// softmax(q k^T / sqrt(d)) v, weighted and summed to a scalar.
static Expr Attention(Expr[] inputs)
{
    var (q, k, v) = (inputs[0], inputs[1], inputs[2]);
    var scores = q.MatMul(k.Transpose()) / Math.Sqrt(q.Shape[1]);
    return (scores.Softmax().MatMul(v) * Expr.Constant(Tensor.Arange(6).Reshape(2, 3))).Sum();
}
