using FuncFlow.Autograd;
using Xunit;

namespace FacadeTests.Docs;

/// <summary>The docs' snippets of the Grokking-style eager facade (FuncFlow.Autograd), compiled and run.</summary>
public class AutogradSnippets
{
    [Fact]
    public void Eager()
    {
        // snippet: autograd
        var data = new Tensor(new double[,] { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } }, autograd: true);
        var target = new Tensor(new double[,] { { 0 }, { 1 }, { 0 }, { 1 } }, autograd: true);
        var rng = new Random(0);                          // He initialisation from a seedable generator
        var model = new Sequential(new Linear(2, 3, rng), new Tanh(), new Linear(3, 1, rng));
        var criterion = new MSELoss();
        var optimizer = new Adam(model.Parameters(), learningRate: 0.05);
        for (int i = 0; i < 50; i++)
        {
            var loss = criterion.Forward(model.Forward(data), target);
            loss.Backward();                              // one call to the core's gradient fold
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        model.Eval();                                     // evaluation mode (dropout off)
        model.Save("model.safetensors");                  // parameters by name: 0.weight, 0.bias, 2.weight, 2.bias
        // end snippet
        var final = criterion.Forward(model.Forward(data), target).ToArray()[0];
        Assert.True(final < 0.05, $"loss {final}");
        Assert.Equal(new[] { "0.weight", "0.bias", "2.weight", "2.bias" }, model.NamedParameters().Select(p => p.Key));
    }

    [Fact]
    public void EagerOperations()
    {
        // snippet: autograd-ops
        var images = Tensor.RandNormal(seed: 1, new[] { 8, 1, 12, 12 }, autograd: true);
        var conv = new Conv2d(1, 4, kernelSize: 3, padding: 1, random: new Random(1));
        var features = new Flatten().Forward(conv.Forward(images).Relu().MaxPool2d(2));   // [8, 144]
        var normalised = features.LayerNorm();
        var scores = (2.0 * normalised / normalised.Abs().Mean() - 1.0).Exp().Log().Softmax();
        scores.Sum(0).Sum(0).Backward();
        var check = GradCheck.Check(t => (t[0] / t[1]).Exp().Mean(0), new[] { new Tensor(new[] { 1.0, 2.0 }), new Tensor(new[] { 3.0, 4.0 }) });
        // end snippet
        Assert.Equal(new[] { 8, 144 }, features.Shape);
        Assert.Equal(new[] { 4, 1, 3, 3 }, conv.Weight.Grad!.Shape);
        Assert.True(check.Passed, check.ToString());
    }

    [Fact]
    public void DerivativesAndCustomOperations()
    {
        // snippet: autograd-functional
        var point = new Tensor(new[] { 0.3, -1.2, 0.7 });
        Tensor jvp = Functional.Jvp(t => t.Tanh(), point, new Tensor(new[] { 1.0, 0.0, 0.0 }));   // torch.autograd.functional.jvp
        Tensor jacobian = Functional.Jacobian(t => (t * t).Sigmoid(), point);                      // [3, 3]
        Tensor hessian = Functional.Hessian(t => (t * t * t).Sum(0), point);                       // [3, 3], diagonal 6 x
        var logSumExp = new CustomOperation(
            "logSumExp",
            shapes => new[] { shapes[0][0] },
            args =>
            {
                int columns = args.InputShape(0)[1];
                for (int r = 0; r < args.Output.Length; r++)
                {
                    double s = 0;
                    foreach (var v in args.Input(0).Slice(r * columns, columns)) s += Math.Exp(v);
                    args.Output[r] = Math.Log(s);
                }
            },
            (inputs, y, g) => new[] { g.Reshape(-1, 1) * (inputs[0] - y.Reshape(-1, 1)).Exp() });
        var scores = new Tensor(new double[,] { { 0.5, 1.0, -1.0 }, { 2.0, 0.0, 0.5 } }, autograd: true);
        logSumExp.Apply(scores).Sum(0).Backward();                                                 // softmax of each row
        var check = GradCheck.Check(t => logSumExp.Apply(t[0]), new[] { scores });
        // end snippet
        Assert.Equal(1 - Math.Tanh(0.3) * Math.Tanh(0.3), jvp.ToArray()[0], 12);
        Assert.Equal(6 * 0.7, hessian.ToArray()[8], 12);
        Assert.Equal(new[] { 3, 3 }, jacobian.Shape);
        double z = Math.Exp(0.5) + Math.Exp(1.0) + Math.Exp(-1.0);
        Assert.Equal(Math.Exp(0.5) / z, scores.Grad!.ToArray()[0], 12);
        Assert.True(check.Passed, check.Message);
    }
}
