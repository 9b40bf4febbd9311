using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.Interop;
using Microsoft.FSharp.Core;
using CoreData = global::FuncFlow.Data;

namespace FuncFlow.CSharp
{
    /// <summary>
    /// A vocabulary of tokens with ids 0..VocabularySize-1, fitted on a training text; id 0 is the unknown token, which
    /// every piece outside the vocabulary encodes to.
    /// </summary>
    public sealed class Tokenizer
    {
        private Tokenizer(CoreData.Tokenizer core) => Core = core;

        internal CoreData.Tokenizer Core { get; }

        internal static Tokenizer Wrap(CoreData.Tokenizer core) => new(core);

        /// <summary>One token per character (Unicode scalar value) of the training text.</summary>
        /// <param name="trainingText">The text the vocabulary comes from.</param>
        /// <returns>The tokenizer.</returns>
        public static Tokenizer Characters(string trainingText) =>
            new(CoreData.TokenizerModule.characters(trainingText ?? throw new ArgumentNullException(nameof(trainingText))));

        /// <summary>
        /// Words (runs of letters and digits, with inner apostrophes), each whitespace character and each other character,
        /// kept when seen at least <paramref name="minCount"/> times in the training text.
        /// </summary>
        /// <param name="trainingText">The text the vocabulary comes from.</param>
        /// <param name="minCount">The fewest occurrences a piece needs to be in the vocabulary.</param>
        /// <returns>The tokenizer.</returns>
        /// <exception cref="ArgumentException"><paramref name="minCount"/> is below 1.</exception>
        public static Tokenizer Words(string trainingText, int minCount = 1) =>
            new(CoreData.TokenizerModule.words(minCount, trainingText ?? throw new ArgumentNullException(nameof(trainingText))));

        /// <summary>Whether tokens are words (else characters).</summary>
        public bool IsWordLevel => Core.Level.IsWords;

        /// <summary>The tokens by id; Tokens[0] is the unknown token.</summary>
        public IReadOnlyList<string> Tokens => Core.Tokens;

        /// <summary>The number of ids, the unknown token included.</summary>
        public int VocabularySize => Core.VocabularySize;

        /// <summary>The id of the unknown token (0).</summary>
        public int UnknownId => Core.UnknownId;

        /// <summary>The id of a token, or <see cref="UnknownId"/> when it is not in the vocabulary.</summary>
        /// <param name="token">The token.</param>
        /// <returns>Its id.</returns>
        public int Id(string token) => Core.Id(token ?? throw new ArgumentNullException(nameof(token)));

        /// <summary>The ids of a text's pieces.</summary>
        /// <param name="text">The text.</param>
        /// <returns>The ids.</returns>
        public int[] Encode(string text) => CoreData.TokenizerModule.encode(Core, text ?? throw new ArgumentNullException(nameof(text)));

        /// <summary>The text of a sequence of ids.</summary>
        /// <param name="ids">The ids.</param>
        /// <returns>The text.</returns>
        /// <exception cref="ArgumentOutOfRangeException">An id is outside [0, VocabularySize).</exception>
        public string Decode(IEnumerable<int> ids) => CoreData.TokenizerModule.decode(Core, ids ?? throw new ArgumentNullException(nameof(ids)));
    }

    /// <summary>A text cut into a training and a validation part by position, encoded by a tokenizer fitted on the training part.</summary>
    public sealed class TextCorpus
    {
        internal TextCorpus(CoreData.TextCorpus core)
        {
            Tokenizer = Tokenizer.Wrap(core.Tokenizer);
            Train = core.Train;
            Validation = core.Validation;
        }

        /// <summary>The tokenizer, fitted on the training part.</summary>
        public Tokenizer Tokenizer { get; }

        /// <summary>The training part: runs of consecutive text, encoded, in text order.</summary>
        public IReadOnlyList<int[]> Train { get; }

        /// <summary>The validation part: runs of consecutive text, encoded, in text order.</summary>
        public IReadOnlyList<int[]> Validation { get; }
    }

    /// <summary>A split of a text by position: the runs of each part, in text order.</summary>
    /// <param name="Train">The training runs.</param>
    /// <param name="Validation">The validation runs.</param>
    public readonly record struct TextSplit(IReadOnlyList<string> Train, IReadOnlyList<string> Validation);

    /// <summary>Text for language models: a split by position, windows with targets shifted by one, and the shipped corpus.</summary>
    public static class TextData
    {
        /// <summary>
        /// A seeded split by position: the text is cut into blocks of <paramref name="blockLength"/> characters,
        /// ceil(validationFraction x blocks) of them chosen for validation, and neighbouring blocks of one part joined.
        /// </summary>
        /// <param name="text">The text.</param>
        /// <param name="seed">The seed of the choice.</param>
        /// <param name="validationFraction">The validation part's share, strictly between 0 and 1.</param>
        /// <param name="blockLength">The blocks' length.</param>
        /// <returns>Both parts' runs.</returns>
        public static TextSplit Split(string text, int seed, double validationFraction, int blockLength)
        {
            var parts = CoreData.TextData.split(seed, validationFraction, blockLength, text ?? throw new ArgumentNullException(nameof(text)));
            return new(parts.Item1, parts.Item2);
        }

        /// <summary>Splits a text by position (see <see cref="Split"/>), fits a tokenizer on the training part, and encodes both parts.</summary>
        /// <param name="text">The text.</param>
        /// <param name="fit">Fits a tokenizer on the training text (<see cref="Tokenizer.Characters"/>, for instance).</param>
        /// <param name="seed">The seed of the split.</param>
        /// <param name="validationFraction">The validation part's share.</param>
        /// <param name="blockLength">The blocks' length.</param>
        /// <returns>The corpus.</returns>
        public static TextCorpus Corpus(string text, Func<string, Tokenizer> fit, int seed, double validationFraction, int blockLength)
        {
            ArgumentNullException.ThrowIfNull(fit);
            return new(CoreData.TextData.corpus(
                FuncConvert.FromFunc<string, CoreData.Tokenizer>(t => (fit(t) ?? throw new InvalidOperationException("TextData.Corpus: fit returned null.")).Core),
                seed, validationFraction, blockLength, text ?? throw new ArgumentNullException(nameof(text))));
        }

        /// <summary>
        /// Every window of <paramref name="length"/> ids within a run: features [n, length] are the ids at p..p+length-1
        /// and targets [n, length] those at p+1..p+length, float32; no window spans two runs.
        /// </summary>
        /// <param name="runs">Encoded runs.</param>
        /// <param name="length">The window length.</param>
        /// <returns>The windows as a data set.</returns>
        public static Dataset Windows(IReadOnlyList<int[]> runs, int length) =>
            new(CoreData.TextData.windows(length, (runs ?? throw new ArgumentNullException(nameof(runs))).ToArray()));

        /// <summary>Reads a UTF-8 text file.</summary>
        /// <param name="path">The file.</param>
        /// <returns>The text.</returns>
        public static string Read(string path) => CoreData.TextData.read(path ?? throw new ArgumentNullException(nameof(path)));

        /// <summary>The English collections of Debian's fortunes package (about 2.6 million characters) from the default data folder.</summary>
        /// <returns>The text.</returns>
        public static string Fortunes() => CoreData.TextData.fortunesDefault();
    }

    /// <summary>Text from a trained language model (token ids [1, T] to next-token logits [1, T, vocabulary]).</summary>
    public static class TextGeneration
    {
        /// <summary>An index drawn from softmax(logits / temperature).</summary>
        /// <param name="random">The generator to draw from.</param>
        /// <param name="temperature">Positive and finite; below 1 sharpens the distribution.</param>
        /// <param name="logits">One logit per token.</param>
        /// <returns>The index drawn.</returns>
        /// <exception cref="ArgumentException">The temperature is not positive and finite, or there are no logits.</exception>
        public static int Sample(Random random, double temperature, double[] logits) =>
            global::FuncFlow.NN.TextGeneration.sample(
                random ?? throw new ArgumentNullException(nameof(random)),
                temperature,
                logits ?? throw new ArgumentNullException(nameof(logits)));

        /// <summary>The prompt extended by <paramref name="count"/> tokens, each sampled from the model run on the last
        /// <paramref name="window"/> tokens, decoded to text.</summary>
        /// <param name="model">The language model.</param>
        /// <param name="tokenizer">The tokenizer it was trained with.</param>
        /// <param name="window">The most tokens the model reads at once (at least 1).</param>
        /// <param name="temperature">The sampling temperature (positive and finite).</param>
        /// <param name="seed">Seeds the sampling.</param>
        /// <param name="count">How many tokens to add.</param>
        /// <param name="prompt">The text to extend (at least one token).</param>
        /// <returns>The prompt and the generated text.</returns>
        /// <exception cref="ArgumentException">A window below 1, a bad temperature or an empty prompt.</exception>
        public static string Generate(Model model, Tokenizer tokenizer, int window, double temperature, int seed, int count, string prompt) =>
            global::FuncFlow.NN.TextGeneration.generate(
                (model ?? throw new ArgumentNullException(nameof(model))).Core,
                (tokenizer ?? throw new ArgumentNullException(nameof(tokenizer))).Core,
                window,
                temperature,
                seed,
                count,
                prompt ?? throw new ArgumentNullException(nameof(prompt)));
    }
}
