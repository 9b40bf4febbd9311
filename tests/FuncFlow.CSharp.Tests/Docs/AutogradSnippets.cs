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
}
