using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using Microsoft.FSharp.Collections;
using CoreData = global::FuncFlow.Data;

namespace FuncFlow.CSharp
{
    /// <summary>Examples as two tensors whose first axis is the example: features and targets.</summary>
    public sealed class Dataset
    {
        internal Dataset(CoreData.Dataset core) => Core = core;

        internal CoreData.Dataset Core { get; }

        /// <summary>A data set of the given features and targets (the same number of rows).</summary>
        /// <param name="features">One row per example.</param>
        /// <param name="targets">One row (or label) per example.</param>
        public Dataset(Tensor features, Tensor targets) =>
            Core = CoreData.DatasetModule.create((features ?? throw new ArgumentNullException(nameof(features))).Core,
                (targets ?? throw new ArgumentNullException(nameof(targets))).Core);

        /// <summary>The inputs, one row per example.</summary>
        public Tensor Features => new(Core.Features);

        /// <summary>The targets, one row (or label) per example.</summary>
        public Tensor Targets => new(Core.Targets);

        /// <summary>The number of examples.</summary>
        public int Count => Core.Count;

        /// <summary>The examples at the given positions, in that order.</summary>
        /// <param name="indices">Positions, 0 to Count - 1.</param>
        /// <returns>The subset.</returns>
        public Dataset Take(params int[] indices) => new(CoreData.DatasetModule.take(indices, Core));

        /// <summary>The features as (x - mean) / std with one mean and standard deviation for all of them, as torchvision's Normalize((mean,), (std,)); targets unchanged.</summary>
        /// <param name="mean">The value subtracted (MNIST's is 0.1307).</param>
        /// <param name="std">The value divided by, finite and positive (MNIST's is 0.3081).</param>
        /// <returns>The normalised data set, in the features' dtype.</returns>
        public Dataset Normalize(double mean, double std) => new(CoreData.DatasetModule.normalize(mean, std, Core));

        /// <summary>A seeded random split into training and test examples.</summary>
        /// <param name="seed">The shuffle's seed.</param>
        /// <param name="testFraction">The fraction of examples held out, in (0, 1).</param>
        /// <returns>The two parts.</returns>
        public TrainTestSplit Split(int seed, double testFraction)
        {
            var parts = CoreData.Datasets.split(seed, testFraction, Core);
            return new(new Dataset(parts.Item1), new Dataset(parts.Item2));
        }

        /// <summary>Batches of consecutive examples, in order.</summary>
        /// <param name="batchSize">Examples per batch.</param>
        /// <param name="dropLast">Leave out a final smaller batch.</param>
        /// <returns>The batches.</returns>
        public IEnumerable<Dataset> Batches(int batchSize, bool dropLast = false) =>
            CoreData.Batches.sequentialWith(dropLast, batchSize, Core).Select(b => new Dataset(b));

        /// <summary>Batches of every example once, in a seeded random order.</summary>
        /// <param name="seed">The order's seed.</param>
        /// <param name="batchSize">Examples per batch.</param>
        /// <param name="dropLast">Leave out a final smaller batch.</param>
        /// <returns>The batches.</returns>
        public IEnumerable<Dataset> ShuffledBatches(int seed, int batchSize, bool dropLast = false) =>
            CoreData.Batches.shuffledWith(dropLast, seed, batchSize, Core).Select(b => new Dataset(b));

        /// <summary>One batch drawn with replacement (MiniFlow's resample).</summary>
        /// <param name="random">The generator.</param>
        /// <param name="batchSize">Examples in the batch.</param>
        /// <returns>The batch.</returns>
        public Dataset Sample(Random random, int batchSize) => new(CoreData.Batches.sampleWithReplacement(random, batchSize, Core));

        /// <inheritdoc />
        public override string ToString() => $"Dataset({Count} examples, features {Core.Features}, targets {Core.Targets})";
    }

    /// <summary>A data set's training and test parts; deconstructs as <c>var (train, test) = ...</c>.</summary>
    public sealed class TrainTestSplit
    {
        internal TrainTestSplit(Dataset train, Dataset test)
        {
            Train = train;
            Test = test;
        }

        /// <summary>The training examples.</summary>
        public Dataset Train { get; }

        /// <summary>The test examples.</summary>
        public Dataset Test { get; }

        /// <summary>The two parts, for deconstruction.</summary>
        /// <param name="train">The training examples.</param>
        /// <param name="test">The test examples.</param>
        public void Deconstruct(out Dataset train, out Dataset test)
        {
            train = Train;
            test = Test;
        }
    }

    /// <summary>
    /// The shipped data sets and readers for their formats. A path or directory of null reads the copy under the
    /// default data directory (<see cref="DefaultDataDirectory"/>).
    /// </summary>
    public static class Datasets
    {
        /// <summary>The folder the loaders read by default (the repository's <c>data/</c>, or <c>FUNCFLOW_DATA</c>).</summary>
        public static string DefaultDataDirectory => CoreData.Datasets.defaultDataDir();

        private static TrainTestSplit Pair(Tuple<CoreData.Dataset, CoreData.Dataset> parts) => new(new Dataset(parts.Item1), new Dataset(parts.Item2));

        /// <summary>MNIST: 60,000 training and 10,000 test images as 784 float32 pixels in [0, 1], labels 0-9.</summary>
        /// <param name="directory">The folder of the IDX files, or null.</param>
        /// <returns>The training and test sets.</returns>
        public static TrainTestSplit Mnist(string? directory = null) =>
            Pair(directory is null ? CoreData.Datasets.mnistDefault() : CoreData.Datasets.mnist(directory));

        /// <summary>Fashion-MNIST, in MNIST's format.</summary>
        /// <param name="directory">The folder of the IDX files, or null.</param>
        /// <returns>The training and test sets.</returns>
        public static TrainTestSplit FashionMnist(string? directory = null) =>
            Pair(directory is null ? CoreData.Datasets.fashionMnistDefault() : CoreData.Datasets.fashionMnist(directory));

        /// <summary>Boston house prices: 506 rows of 13 features, the price as a [n, 1] target.</summary>
        /// <param name="path">The CSV file, or null.</param>
        /// <returns>The data set.</returns>
        public static Dataset Boston(string? path = null) => new(path is null ? CoreData.Datasets.bostonDefault() : CoreData.Datasets.boston(path));

        /// <summary>Iris: 150 rows of 4 features, labels 0-2.</summary>
        /// <param name="path">The CSV file, or null.</param>
        /// <returns>The data set.</returns>
        public static Dataset Iris(string? path = null) => new(path is null ? CoreData.Datasets.irisDefault() : CoreData.Datasets.iris(path));

        /// <summary>Wine: 178 rows of 13 features, labels 0-2.</summary>
        /// <param name="path">The CSV file, or null.</param>
        /// <returns>The data set.</returns>
        public static Dataset Wine(string? path = null) => new(path is null ? CoreData.Datasets.wineDefault() : CoreData.Datasets.wine(path));

        /// <summary>Breast cancer (Wisconsin): 569 rows of 30 features, labels 0-1.</summary>
        /// <param name="path">The CSV file, or null.</param>
        /// <returns>The data set.</returns>
        public static Dataset BreastCancer(string? path = null) =>
            new(path is null ? CoreData.Datasets.breastCancerDefault() : CoreData.Datasets.breastCancer(path));

        /// <summary>Digits: 1,797 8x8 images as 64 features, labels 0-9.</summary>
        /// <param name="path">The CSV file, or null.</param>
        /// <returns>The data set.</returns>
        public static Dataset Digits(string? path = null) => new(path is null ? CoreData.Datasets.digitsDefault() : CoreData.Datasets.digits(path));

        /// <summary>A CSV file of numbers (gzipped or not) as rows.</summary>
        /// <param name="path">The file.</param>
        /// <param name="skipLines">Header lines to skip.</param>
        /// <returns>The rows.</returns>
        public static double[][] ReadCsv(string path, int skipLines = 0) => CoreData.Csv.read(path, skipLines);

        /// <summary>An IDX file (MNIST's format, gzipped or not) as a tensor.</summary>
        /// <param name="path">The file.</param>
        /// <returns>The tensor.</returns>
        public static Tensor ReadIdx(string path) => new(CoreData.Idx.read(path));
    }

    /// <summary>Per-column standardisation, (x - mean) / std, fitted on training features.</summary>
    public sealed class Standardizer
    {
        private readonly CoreData.Standardizer core;

        private Standardizer(CoreData.Standardizer core) => this.core = core;

        /// <summary>Fits the columns' means and standard deviations.</summary>
        /// <param name="features">A matrix, one row per example.</param>
        /// <returns>The standardizer.</returns>
        public static Standardizer Fit(Tensor features) => new(CoreData.StandardizerModule.fit((features ?? throw new ArgumentNullException(nameof(features))).Core));

        /// <summary>Each column's mean.</summary>
        public IReadOnlyList<double> Mean => core.Mean;

        /// <summary>Each column's standard deviation (1 where a column is constant).</summary>
        public IReadOnlyList<double> Std => core.Std;

        /// <summary>Standardises features with the fitted statistics.</summary>
        /// <param name="features">A matrix with the fitted number of columns.</param>
        /// <returns>The standardised features.</returns>
        public Tensor Apply(Tensor features) => new(CoreData.StandardizerModule.apply(core, (features ?? throw new ArgumentNullException(nameof(features))).Core));

        /// <summary>A data set with standardised features and the same targets.</summary>
        /// <param name="data">The data set.</param>
        /// <returns>The standardised data set.</returns>
        public Dataset Apply(Dataset data) => new(CoreData.StandardizerModule.applyTo(core, (data ?? throw new ArgumentNullException(nameof(data))).Core));
    }

    /// <summary>The safetensors file format (Hugging Face's), for named tensors.</summary>
    public static class Safetensors
    {
        /// <summary>Writes tensors to a file atomically (a temporary file renamed into place).</summary>
        /// <param name="path">The file.</param>
        /// <param name="tensors">The tensors, by name.</param>
        /// <param name="metadata">Text metadata for the header, or null.</param>
        public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        {
            ArgumentNullException.ThrowIfNull(tensors);
            var meta = MapModule.OfSeq((metadata ?? new Dictionary<string, string>()).Select(kv => Tuple.Create(kv.Key, kv.Value)));
            CoreData.Safetensors.saveWithMetadata(path, meta, Conversions.Tensors(tensors).Select(kv => Tuple.Create(kv.Key, kv.Value)));
        }

        /// <summary>Reads every tensor of a file.</summary>
        /// <param name="path">The file.</param>
        /// <returns>The tensors, by name.</returns>
        public static IReadOnlyDictionary<string, Tensor> Load(string path) => Conversions.Wrap(CoreData.Safetensors.load(path));

        /// <summary>Reads a file's text metadata.</summary>
        /// <param name="path">The file.</param>
        /// <returns>The metadata.</returns>
        public static IReadOnlyDictionary<string, string> LoadMetadata(string path) =>
            CoreData.Safetensors.loadMetadata(path).ToDictionary(kv => kv.Key, kv => kv.Value);

        /// <summary>Lists a file's tensors (name, dtype as the file names it, shape, size) from its header alone, without reading their data.</summary>
        /// <param name="path">The file.</param>
        /// <returns>The tensors in file order.</returns>
        public static IReadOnlyList<SafetensorsEntry> Inspect(string path) =>
            CoreData.Safetensors.inspect(path).Tensors.Select(e => new SafetensorsEntry(e.Name, e.DType, e.Shape.ToArray(), e.Bytes)).ToList();
    }

    /// <summary>One tensor of a safetensors file as its header declares it.</summary>
    /// <param name="Name">The tensor's name.</param>
    /// <param name="DType">The dtype as the file names it: "F64", "F32", "F16", "BF16", "I64", ..., "BOOL".</param>
    /// <param name="Shape">The shape.</param>
    /// <param name="Bytes">The size of its data in bytes.</param>
    public sealed record SafetensorsEntry(string Name, string DType, IReadOnlyList<int> Shape, long Bytes);

    /// <summary>Classification metrics on score matrices.</summary>
    public static class Metrics
    {
        /// <summary>Each row's first largest score's column.</summary>
        /// <param name="scores">A matrix [n, classes].</param>
        /// <returns>The predicted classes.</returns>
        public static int[] Argmax(Tensor scores) => global::FuncFlow.NN.Metrics.argmax((scores ?? throw new ArgumentNullException(nameof(scores))).Core);

        /// <summary>The fraction of rows whose argmax is the label.</summary>
        /// <param name="scores">A matrix [n, classes].</param>
        /// <param name="labels">The labels [n].</param>
        /// <returns>The accuracy.</returns>
        public static double Accuracy(Tensor scores, Tensor labels) =>
            global::FuncFlow.NN.Metrics.accuracy((scores ?? throw new ArgumentNullException(nameof(scores))).Core, (labels ?? throw new ArgumentNullException(nameof(labels))).Core);
    }
}
