using System;
using System.IO;
using System.Runtime.CompilerServices;
using FuncFlow.CSharp;

namespace CSharpTraining
{
    /// <summary>examples/MnistMlp from C#: the F# NN layer's model, optimiser, schedule and Trainer.</summary>
    internal static class MnistMlpTrainer
    {
        /// <summary>Trains for 5 epochs and returns the headline, <c>test accuracy: X</c>.</summary>
        public static string Run()
        {
            var (train, test) = Datasets.Mnist();
            // MNIST's usual normalisation, (x - 0.1307) / 0.3081, which centres the pixels and helps the first layer.
            (train, test) = (train.Normalize(0.1307, 0.3081), test.Normalize(0.1307, 0.3081));
            var model = Model.Create(new Sequential(new Linear(784, 128), new ReLU(), new Linear(128, 10)), seed: 1, DType.Float32);
            Console.WriteLine($"{model}, trained on {train.Count} images, tested on {test.Count}");

            const int epochs = 5, batchSize = 64;
            // A decaying rate lets the last epoch settle into a minimum instead of hopping around it.
            int steps = epochs * ((train.Count + batchSize - 1) / batchSize);
            var trainer = new Trainer(model, Loss.CrossEntropy, new Adam(2e-3).WithSchedule(Schedule.LinearDecay(steps)), seed: 1);
            var plot = Path.Combine(SourceDirectory(), "output", "mnist-mlp.svg");
            trainer.Fit(train, new FitOptions(epochs, batchSize) { Test = test, PlotPath = plot });
            Console.WriteLine($"plot: {plot}");
            return $"test accuracy: {trainer.Evaluate(test).Accuracy:F4}";
        }

        /// <summary>This file's folder, so the plot lands in examples/CSharpTraining/output wherever the program runs from.</summary>
        private static string SourceDirectory([CallerFilePath] string file = "") => Path.GetDirectoryName(file)!;
    }
}
