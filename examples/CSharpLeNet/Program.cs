// examples/LeNet from C#: LeNet-5 built from the C# surface's layers (Conv2d, MaxPool2d, Flatten, Linear),
// trained on MNIST by the Trainer with Adam, in float32.
//
//     dotnet run -c Release --project examples/CSharpLeNet [-- --epochs N --train N]
//
// Two epochs by default (the F# example trains eight); --train N takes the first N training images.

using System;
using System.IO;
using System.Linq;
using System.Runtime;
using System.Runtime.CompilerServices;
using FuncFlow.CSharp;

// Multicore JIT: the methods the last run compiled (recorded in output/) are compiled again on the idle core while
// the data loads, so that from the second run on the first epoch is hardly slower than the others.
ProfileOptimization.SetProfileRoot(Directory.CreateDirectory(Path.Combine(SourceDirectory(), "output")).FullName);
ProfileOptimization.StartProfile("lenet.jitprofile");

int epochs = Option(args, "epochs", 2);
var (train, test) = Datasets.Mnist();
train = train.Take(Enumerable.Range(0, Math.Min(train.Count, Option(args, "train", train.Count))).ToArray());
(train, test) = (Images(train), Images(test));

var lenet = new Sequential(
    new Conv2d(1, 6, 5, stride: 1, padding: 2), new ReLU(), new MaxPool2d(2),
    new Conv2d(6, 16, 5), new ReLU(), new MaxPool2d(2),
    new Flatten(),
    new Linear(400, 120), new ReLU(),
    new Linear(120, 84), new ReLU(),
    new Linear(84, 10));
var model = Model.Create(lenet, seed: 1, DType.Float32);
Console.WriteLine($"{model}, trained on {train.Count} images, tested on {test.Count}");

const int batchSize = 64;
int steps = epochs * ((train.Count + batchSize - 1) / batchSize);
var trainer = new Trainer(model, Loss.CrossEntropy, new Adam(1e-3).WithSchedule(Schedule.LinearDecay(steps)), seed: 1);
var plot = Path.Combine(SourceDirectory(), "output", "lenet.svg");
var history = trainer.Fit(train, new FitOptions(epochs, batchSize) { Test = test, PlotPath = plot });
Console.WriteLine($"time per epoch: {history.Epochs.Average(e => e.Seconds):F1} s (mean of {epochs})");
Console.WriteLine($"plot: {plot}");
Console.WriteLine($"test accuracy: {trainer.Evaluate(test).Accuracy:F4}");

// The value after --name on the command line, or the default.
static int Option(string[] args, string name, int fallback)
{
    int i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
}

// Rows of 784 pixels as [n, 1, 28, 28] images (one channel), scaled as MNIST is usually: (x - 0.1307) / 0.3081.
static Dataset Images(Dataset data)
{
    var scaled = data.Normalize(0.1307, 0.3081);
    return new Dataset(scaled.Features.Reshape(data.Count, 1, 28, 28), data.Targets);
}

// This file's folder, so the plot lands in examples/CSharpLeNet/output wherever the program runs from.
static string SourceDirectory([CallerFilePath] string file = "") => Path.GetDirectoryName(file)!;
