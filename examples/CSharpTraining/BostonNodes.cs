using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Nodes;

namespace CSharpTraining
{
    /// <summary>Seed 000's last experiment, line for line in MiniFlow's style, with a held-out test fifth.</summary>
    internal static class BostonNodes
    {
        /// <summary>Trains for 100 epochs and returns the headline, <c>test mse: X</c>.</summary>
        public static string Run()
        {
            var (train, test) = FuncFlow.CSharp.Datasets.Boston().Split(seed: 0, testFraction: 0.2);
            // Standardise with the training rows' statistics only, so the test fifth stays unseen.
            var scaler = FuncFlow.CSharp.Standardizer.Fit(train.Features);
            (train, test) = (scaler.Apply(train), scaler.Apply(test));

            const int hidden = 10, epochs = 100, batchSize = 11;
            const double learningRate = 1e-2;
            int features = train.Features.Shape[1];
            int stepsPerEpoch = train.Count / batchSize;
            Console.WriteLine($"Total number of examples = {train.Count + test.Count} (train {train.Count}, test {test.Count}), {stepsPerEpoch} steps per epoch");

            var (X, y) = (new Input("X"), new Input("y"));
            var (W1, b1, W2, b2) = (new Input("W1"), new Input("b1"), new Input("W2"), new Input("b2"));
            var cost = new MSE(y, new Linear(new Sigmoid(new Linear(X, W1, b1)), W2, b2));
            // The seed draws its weights with np.random.randn (normal, std 1) and starts the biases at zero.
            var graph = Graph.TopologicalSort(new Dictionary<Input, FeedValue>
            {
                [X] = train.Features,
                [y] = train.Targets,
                [W1] = FuncFlow.CSharp.Tensor.RandNormal(1, new[] { features, hidden }),
                [b1] = new double[hidden],
                [W2] = FuncFlow.CSharp.Tensor.RandNormal(2, new[] { hidden, 1 }),
                [b2] = new double[1],
            });
            var trainables = new[] { W1, b1, W2, b2 };

            var rng = new Random(0);
            for (int epoch = 1; epoch <= epochs; epoch++)
            {
                double loss = 0;
                for (int step = 0; step < stepsPerEpoch; step++)
                {
                    var batch = train.Sample(rng, batchSize);
                    X.Forward(batch.Features);
                    y.Forward(batch.Targets);
                    Graph.ForwardAndBackward(graph);
                    Graph.SgdUpdate(trainables, learningRate);
                    loss += cost.Value!.ToArray()[0];
                }
                if (epoch % 10 == 0) Console.WriteLine($"epoch {epoch,3}: loss {loss / stepsPerEpoch:F4}");
            }

            X.Forward(test.Features);
            y.Forward(test.Targets);
            return $"test mse: {Graph.ForwardPass(cost, graph).ToArray().Single():F4}";
        }
    }
}
