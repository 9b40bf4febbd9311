using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Nodes;

namespace CSharpTraining
{
    /// <summary>Seed 001's gradient-descent training: softmax regression on MNIST, as a MiniFlow graph.</summary>
    internal static class MnistSoftmaxNodes
    {
        /// <summary>Trains for two epochs and returns the headline, <c>test accuracy: X</c>.</summary>
        public static string Run()
        {
            var (train, test) = FuncFlow.CSharp.Datasets.Mnist();
            const int classes = 10, epochs = 2, batchSize = 64;
            const double learningRate = 0.1;
            int pixels = train.Features.Shape[1];

            var (X, y, W, b) = (new Input("X"), new Input("y"), new Input("W"), new Input("b"));
            var logits = new Linear(X, W, b);
            var cost = new SoftmaxCrossEntropy(logits, y);
            // Fed with the test set first, to show the untrained accuracy as the lecture does.
            var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
            {
                [X] = test.Features,
                [y] = test.Targets,
                [W] = FuncFlow.CSharp.Tensor.RandNormal(1, new[] { pixels, classes }, 0.0, 0.01),
                [b] = new double[classes],
            });
            var trainables = new[] { W, b };
            Console.WriteLine($"untrained test accuracy: {Accuracy(X, y, logits, graph, test):F4}");

            for (int epoch = 1; epoch <= epochs; epoch++)
            {
                double loss = 0;
                int seen = 0;
                foreach (var batch in train.ShuffledBatches(epoch, batchSize))
                {
                    // Forward (not Value =) converts the float32 pixels and labels to the graph's float64.
                    X.Forward(batch.Features);
                    y.Forward(batch.Targets);
                    Graph.ForwardAndBackward(graph);
                    Graph.SgdUpdate(trainables, learningRate);
                    loss += cost.Value!.ToArray()[0] * batch.Count;
                    seen += batch.Count;
                }
                Console.WriteLine($"epoch {epoch}: loss {loss / seen:F4}");
            }
            return $"test accuracy: {Accuracy(X, y, logits, graph, test):F4}";
        }

        /// <summary>The fraction of rows whose largest logit is at the label.</summary>
        private static double Accuracy(Input X, Input y, Node logits, IReadOnlyList<Node> graph, FuncFlow.CSharp.Dataset data)
        {
            X.Forward(data.Features);
            y.Forward(data.Targets);
            var scores = Graph.ForwardPass(logits, graph).ToArray();
            var labels = data.Targets.ToArray();
            int classes = scores.Length / labels.Length;
            int correct = 0;
            for (int row = 0; row < labels.Length; row++)
            {
                var rowScores = scores.AsSpan(row * classes, classes);
                int best = 0;
                for (int k = 1; k < classes; k++)
                    if (rowScores[k] > rowScores[best]) best = k;
                if (best == (int)labels[row]) correct++;
            }
            return (double)correct / labels.Length;
        }
    }
}
