// The seeds' experiments from C#, on the shipped data: seed 000 (Boston housing) and seed 001 (softmax
// regression on MNIST) in the MiniFlow style of FuncFlow.Nodes, then an MLP on MNIST through the F# NN
// layer's Trainer.
//
//     dotnet run -c Release --project examples/CSharpTraining

using System;
using System.Diagnostics;
using CSharpTraining;

Run("Seed 000 (MiniFlow, FuncFlow.Nodes): Boston housing, 13-10-1 sigmoid network, SGD on batches of 11", BostonNodes.Run);
Run("Seed 001 (lecture, FuncFlow.Nodes): softmax regression 784-10 on MNIST, SGD lr 0.1, batch 64", MnistSoftmaxNodes.Run);
Run("FuncFlow.NN from C#: MLP 784-128-10, ReLU, Adam 2e-3 decaying linearly, 5 epochs of batch 64", MnistMlpTrainer.Run);

// Each experiment prints its own headline last, so the program ends with the MLP's test accuracy.
static void Run(string title, Func<string> experiment)
{
    Console.WriteLine();
    Console.WriteLine(title);
    Console.WriteLine(new string('-', title.Length));
    var clock = Stopwatch.StartNew();
    var headline = experiment();
    Console.WriteLine($"({clock.Elapsed.TotalSeconds:F1} s)");
    Console.WriteLine(headline);
}
