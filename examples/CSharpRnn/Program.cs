// Grokking Deep Learning, chapter 14, in C# with the eager facade (FuncFlow.Autograd): a character-level
// recurrent network (an embedding, then an RNN cell of three Linear layers, tanh) trained by truncated
// backpropagation through time on the fortunes corpus, the same text and split as examples/CharLstm.
//
//     dotnet run -c Release --project examples/CSharpRnn [-- --batches N --alpha A]
//
// As in the book: the training text is cut into 32 parallel streams, read 16 characters at a time; the hidden
// state is carried from one slice to the next but the gradient stops there (a fresh autograd tensor), and each
// slice's loss is the sum of its 16 steps' cross-entropies. Plain SGD, as the book's.

using System;
using System.Linq;
using FuncFlow.Autograd;

const int batchSize = 32, bptt = 16, embedSize = 32, hiddenSize = 128;
int batches = (int)Option(args, "batches", 600);
double alpha = Option(args, "alpha", 0.01);

// The same split by position as examples/CharLstm; the vocabulary comes from the training part only. Text data
// comes from the library's namespace, named in full since both namespaces have a Tensor.
var corpus = FuncFlow.CSharp.TextData.Corpus(FuncFlow.CSharp.TextData.Fortunes(), FuncFlow.CSharp.Tokenizer.Characters, seed: 1, validationFraction: 0.1, blockLength: 10_000);
int vocabSize = corpus.Tokenizer.VocabularySize;
int[] train = corpus.Train.SelectMany(run => run).ToArray();
int[] validation = corpus.Validation.SelectMany(run => run).ToArray();
Console.WriteLine($"{train.Length} training and {validation.Length} validation characters, {vocabSize} symbols");

var random = new Random(1);
var embed = new BookEmbedding(vocabSize, embedSize, random);
var model = new RNNCell(embedSize, hiddenSize, vocabSize, random);
var criterion = new CrossEntropyLoss();
var optim = new SGD(embed.Parameters().Concat(model.Parameters()), alpha);

// One slice of every stream: the loss summed over its steps, and the hidden state after the last step.
(Tensor Loss, Tensor Hidden) Slice(int[][] streams, int start, Tensor hidden)
{
    Tensor? loss = null;
    for (int t = 0; t < bptt; t++)
    {
        var input = new Tensor(streams.Select(s => (double)s[start + t]).ToArray());
        var target = new Tensor(streams.Select(s => (double)s[start + t + 1]).ToArray());
        Tensor output;
        (output, hidden) = model.Forward(embed.Forward(input), hidden);
        var stepLoss = criterion.Forward(output, target);
        loss = loss is null ? stepLoss : loss + stepLoss;
    }
    return (loss!, hidden);
}

var trainStreams = Streams(train);
var hidden = model.InitHidden(batchSize);
double total = 0;
int start = 0;
for (int i = 1; i <= batches; i++)
{
    if (start + bptt + 1 > trainStreams[0].Length) { start = 0; hidden = model.InitHidden(batchSize); }
    // Truncated backpropagation: the state goes on, its gradient stops here.
    hidden = new Tensor(hidden.Data, autograd: true);
    var (loss, next) = Slice(trainStreams, start, hidden);
    loss.Backward();
    optim.Step();
    optim.ZeroGrad();
    hidden = next;
    start += bptt;
    total += loss.ToArray()[0] / bptt;
    if (i % 100 == 0)
    {
        Console.WriteLine($"batch {i}: training perplexity {Math.Exp(total / 100):F2}");
        total = 0;
    }
}

// The validation text as streams too, from a zero state, every slice's mean cross-entropy.
var validationStreams = Streams(validation);
var state = model.InitHidden(batchSize);
double sum = 0;
int slices = 0;
for (int s = 0; s + bptt + 1 <= validationStreams[0].Length; s += bptt, slices++)
{
    var (loss, next) = Slice(validationStreams, s, new Tensor(state.Data));
    sum += loss.ToArray()[0] / bptt;
    state = new Tensor(next.Data);
}
Console.WriteLine($"validation perplexity: {Math.Exp(sum / slices):F2}");

// The ids cut into batchSize streams of equal length, as the book's batched_indices.
int[][] Streams(int[] ids)
{
    int length = ids.Length / batchSize;
    return Enumerable.Range(0, batchSize).Select(b => ids[(b * length)..((b + 1) * length)]).ToArray();
}

static double Option(string[] args, string name, double fallback)
{
    int i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
}

/// <summary>The book's Embedding: a table of vocabSize rows, one picked per input index.</summary>
sealed class BookEmbedding : Layer
{
    public BookEmbedding(int vocabSize, int dim, Random random)
    {
        // The book's initialisation: (rand - 0.5) / dim.
        var values = Enumerable.Range(0, vocabSize * dim).Select(_ => (random.NextDouble() - 0.5) / dim).ToArray();
        Weight = Register("weight", new Tensor(FuncFlow.CSharp.Tensor.Create(values, vocabSize, dim), autograd: true));
    }

    public Tensor Weight { get; }

    public override Tensor Forward(Tensor input) => Weight.IndexSelect(input);
}

/// <summary>The book's RNNCell: hidden' = tanh(input W_ih + hidden W_hh), output = hidden' W_ho.</summary>
sealed class RNNCell : Layer
{
    private readonly Linear wIh, wHh, wHo;
    private readonly int hiddenSize;

    public RNNCell(int inputSize, int hiddenSize, int outputSize, Random random)
    {
        this.hiddenSize = hiddenSize;
        wIh = new Linear(inputSize, hiddenSize, random);
        wHh = new Linear(hiddenSize, hiddenSize, random);
        wHo = new Linear(hiddenSize, outputSize, random);
        foreach (var (name, layer) in new[] { ("w_ih", wIh), ("w_hh", wHh), ("w_ho", wHo) })
            foreach (var p in layer.NamedParameters()) Register(name + "." + p.Key, p.Value);
    }

    public (Tensor Output, Tensor Hidden) Forward(Tensor input, Tensor hidden)
    {
        var next = (wIh.Forward(input) + wHh.Forward(hidden)).Tanh();
        return (wHo.Forward(next), next);
    }

    public override Tensor Forward(Tensor input) => Forward(input, InitHidden(input.Shape[0])).Output;

    public Tensor InitHidden(int batchSize) => new Tensor(Tensor.Zeros(batchSize, hiddenSize).Data, autograd: true);
}
