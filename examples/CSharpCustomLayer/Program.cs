// A layer of your own from C#: a gated residual block y = x + sigmoid(x Wg + bg) * tanh(x W + b), with its
// own four parameters, inside a Sequential with the built-in layers, trained on the wine data set by the
// Trainer (every step one compiled plan, gradients of the custom layer included).
//
//     dotnet run -c Release --project examples/CSharpCustomLayer [-- --epochs N]

using System;
using System.Collections.Generic;
using FuncFlow.CSharp;

int epochs = args.Length == 2 && args[0] == "--epochs" ? int.Parse(args[1]) : 30;
var (train, test) = Datasets.Wine().Split(seed: 0, testFraction: 0.25);
var scaler = Standardizer.Fit(train.Features);
(train, test) = (scaler.Apply(train), scaler.Apply(test));

var network = new Sequential(new Linear(13, 16), new GatedResidual(16), new ReLU(), new Linear(16, 3));
var model = Model.Create(network, seed: 1);
Console.WriteLine(model);
Console.WriteLine("parameters: " + string.Join(", ", model.Parameters.Keys));

var trainer = new Trainer(model, Loss.CrossEntropy, new Adam(1e-2), seed: 1);
trainer.Fit(train, new FitOptions(epochs, 16) { Test = test, LiveProgress = false });
Console.WriteLine($"test accuracy: {trainer.Evaluate(test).Accuracy:F4}");

/// <summary>y = x + sigmoid(x Wg + bg) * tanh(x W + b): a gate decides how much of the transform to add.</summary>
internal sealed class GatedResidual : Layer
{
    private readonly int features;

    public GatedResidual(int features) => this.features = features;

    // Parameters by local name with their initial values; the model prefixes them ("1.weight").
    public override IReadOnlyList<KeyValuePair<string, Tensor>> Parameters(int seed)
    {
        var scale = Math.Sqrt(1.0 / features);
        return new[]
        {
            new KeyValuePair<string, Tensor>("weight", Tensor.RandNormal(seed, new[] { features, features }, 0.0, scale)),
            new KeyValuePair<string, Tensor>("bias", Tensor.Zeros(features)),
            new KeyValuePair<string, Tensor>("gate_weight", Tensor.RandNormal(seed + 1, new[] { features, features }, 0.0, scale)),
            // A negative bias starts the gate mostly closed, so the block starts close to the identity.
            new KeyValuePair<string, Tensor>("gate_bias", Tensor.Full(DType.Float64, -1.0, features)),
        };
    }

    public override Expr Forward(Scope scope, Expr x)
    {
        var transform = (x.MatMul(scope.Param("weight")) + scope.Param("bias")).Tanh();
        var gate = (x.MatMul(scope.Param("gate_weight")) + scope.Param("gate_bias")).Sigmoid();
        return x + gate * transform;
    }

    public override string Describe() => $"GatedResidual({features})";
}
