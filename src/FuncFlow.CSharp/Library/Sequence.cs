using System;
using FuncFlow.Interop;
using Microsoft.FSharp.Core;
using NN = global::FuncFlow.NN;

namespace FuncFlow.CSharp
{
    /// <summary>The state a recurrence carries: the hidden state h and, for an LSTM, the cell state c.</summary>
    public sealed class RecurrentState
    {
        /// <summary>A state from its parts.</summary>
        /// <param name="hidden">h: [batch, hidden] for a cell, [layers x directions, batch, hidden] for a sequence layer.</param>
        /// <param name="cell">c, an LSTM's cell state of h's shape; null for RNN and GRU.</param>
        public RecurrentState(Expr hidden, Expr? cell = null)
        {
            Hidden = hidden ?? throw new ArgumentNullException(nameof(hidden));
            Cell = cell;
        }

        internal RecurrentState(NN.RecurrentState core)
            : this(new Expr(core.Hidden), Conversions.OrNull(core.Cell) is { } c ? new Expr(c) : null)
        {
        }

        /// <summary>The hidden state h.</summary>
        public Expr Hidden { get; }

        /// <summary>An LSTM's cell state c, or null.</summary>
        public Expr? Cell { get; }

        internal static FSharpOption<NN.RecurrentState>? ToCore(RecurrentState? state) =>
            state is null ? null : FSharpOption<NN.RecurrentState>.Some(new NN.RecurrentState(state.Hidden.Core, Conversions.OptionOf(state.Cell?.Core)));
    }

    /// <summary>A sequence layer's result: every step's output and the final state.</summary>
    /// <param name="Output">Every step's last-layer hidden state.</param>
    /// <param name="State">The final state of every layer and direction.</param>
    public readonly record struct RecurrentResult(Expr Output, RecurrentState State);

    /// <summary>
    /// PyTorch's RNNCell: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (relu instead of tanh when asked), from inputs
    /// [batch, inputs]; parameters weight_ih, weight_hh, bias_ih, bias_hh. As a layer its output is h after one step from zeros.
    /// </summary>
    public sealed class RNNCell : Layer
    {
        /// <summary>Creates the cell.</summary>
        /// <param name="inputSize">The input size.</param>
        /// <param name="hiddenSize">The hidden size.</param>
        /// <param name="relu">relu instead of tanh.</param>
        /// <param name="bias">Whether the cell has biases.</param>
        public RNNCell(int inputSize, int hiddenSize, bool relu = false, bool bias = true) : base(new NN.RNNCell(inputSize, hiddenSize, relu, bias)) { }

        /// <summary>One step from a state (zeros when null).</summary>
        /// <param name="scope">The scope the cell's parameters are read from.</param>
        /// <param name="input">The inputs [batch, inputs].</param>
        /// <param name="state">The state, or null for zeros.</param>
        /// <returns>The next state.</returns>
        public RecurrentState Step(Scope scope, Expr input, RecurrentState? state = null) => Cells.Step(Core, scope, input, state);
    }

    /// <summary>PyTorch's GRUCell (gates r, z, n); parameters weight_ih, weight_hh, bias_ih, bias_hh.</summary>
    public sealed class GRUCell : Layer
    {
        /// <summary>Creates the cell.</summary>
        /// <param name="inputSize">The input size.</param>
        /// <param name="hiddenSize">The hidden size.</param>
        /// <param name="bias">Whether the cell has biases.</param>
        public GRUCell(int inputSize, int hiddenSize, bool bias = true) : base(new NN.GRUCell(inputSize, hiddenSize, bias)) { }

        /// <summary>One step from a state (zeros when null).</summary>
        /// <param name="scope">The scope the cell's parameters are read from.</param>
        /// <param name="input">The inputs [batch, inputs].</param>
        /// <param name="state">The state, or null for zeros.</param>
        /// <returns>The next state.</returns>
        public RecurrentState Step(Scope scope, Expr input, RecurrentState? state = null) => Cells.Step(Core, scope, input, state);
    }

    /// <summary>PyTorch's LSTMCell (gates i, f, g, o); parameters weight_ih, weight_hh, bias_ih, bias_hh.</summary>
    public sealed class LSTMCell : Layer
    {
        /// <summary>Creates the cell.</summary>
        /// <param name="inputSize">The input size.</param>
        /// <param name="hiddenSize">The hidden size.</param>
        /// <param name="bias">Whether the cell has biases.</param>
        public LSTMCell(int inputSize, int hiddenSize, bool bias = true) : base(new NN.LSTMCell(inputSize, hiddenSize, bias)) { }

        /// <summary>One step from a state (zeros when null).</summary>
        /// <param name="scope">The scope the cell's parameters are read from.</param>
        /// <param name="input">The inputs [batch, inputs].</param>
        /// <param name="state">The state (h and c), or null for zeros.</param>
        /// <returns>The next state.</returns>
        public RecurrentState Step(Scope scope, Expr input, RecurrentState? state = null) => Cells.Step(Core, scope, input, state);
    }

    /// <summary>PyTorch's nn.RNN over whole sequences; parameters weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 (and _reverse).</summary>
    public sealed class RNN : Layer
    {
        /// <summary>Creates the layer; its output is every step's last-layer hidden state from a zero state.</summary>
        /// <param name="inputSize">The input size.</param>
        /// <param name="hiddenSize">The hidden size.</param>
        /// <param name="relu">relu instead of tanh.</param>
        /// <param name="layers">Layers stacked, each reading the previous one's outputs.</param>
        /// <param name="bidirectional">Whether each layer also runs backwards, its outputs joined to the forward ones.</param>
        /// <param name="batchFirst">Inputs and outputs [batch, time, features] instead of [time, batch, features].</param>
        /// <param name="bias">Whether the cells have biases.</param>
        public RNN(int inputSize, int hiddenSize, bool relu = false, int layers = 1, bool bidirectional = false, bool batchFirst = false, bool bias = true)
            : base(new NN.RNN(inputSize, hiddenSize, relu, new NN.RecurrentOptions(layers, bidirectional, batchFirst, bias))) { }

        /// <summary>Runs the layer from an initial state [layers x directions, batch, hidden] (zeros when null).</summary>
        /// <param name="scope">The scope the parameters are read from.</param>
        /// <param name="input">The sequence.</param>
        /// <param name="initial">The initial state, or null.</param>
        /// <returns>Every step's output and the final state.</returns>
        public RecurrentResult Run(Scope scope, Expr input, RecurrentState? initial = null) => Cells.Run(Core, scope, input, initial);
    }

    /// <summary>PyTorch's nn.GRU over whole sequences (see <see cref="RNN"/> for the options and names).</summary>
    public sealed class GRU : Layer
    {
        /// <summary>Creates the layer; its output is every step's last-layer hidden state from a zero state.</summary>
        /// <param name="inputSize">The input size.</param>
        /// <param name="hiddenSize">The hidden size.</param>
        /// <param name="layers">Layers stacked.</param>
        /// <param name="bidirectional">Whether each layer also runs backwards.</param>
        /// <param name="batchFirst">Inputs and outputs [batch, time, features].</param>
        /// <param name="bias">Whether the cells have biases.</param>
        public GRU(int inputSize, int hiddenSize, int layers = 1, bool bidirectional = false, bool batchFirst = false, bool bias = true)
            : base(new NN.GRU(inputSize, hiddenSize, new NN.RecurrentOptions(layers, bidirectional, batchFirst, bias))) { }

        /// <summary>Runs the layer from an initial state (zeros when null).</summary>
        /// <param name="scope">The scope the parameters are read from.</param>
        /// <param name="input">The sequence.</param>
        /// <param name="initial">The initial state, or null.</param>
        /// <returns>Every step's output and the final state.</returns>
        public RecurrentResult Run(Scope scope, Expr input, RecurrentState? initial = null) => Cells.Run(Core, scope, input, initial);
    }

    /// <summary>PyTorch's nn.LSTM over whole sequences (see <see cref="RNN"/> for the options and names).</summary>
    public sealed class LSTM : Layer
    {
        /// <summary>Creates the layer; its output is every step's last-layer hidden state from a zero state.</summary>
        /// <param name="inputSize">The input size.</param>
        /// <param name="hiddenSize">The hidden size.</param>
        /// <param name="layers">Layers stacked.</param>
        /// <param name="bidirectional">Whether each layer also runs backwards.</param>
        /// <param name="batchFirst">Inputs and outputs [batch, time, features].</param>
        /// <param name="bias">Whether the cells have biases.</param>
        public LSTM(int inputSize, int hiddenSize, int layers = 1, bool bidirectional = false, bool batchFirst = false, bool bias = true)
            : base(new NN.LSTM(inputSize, hiddenSize, new NN.RecurrentOptions(layers, bidirectional, batchFirst, bias))) { }

        /// <summary>Runs the layer from an initial state (h and c; zeros when null).</summary>
        /// <param name="scope">The scope the parameters are read from.</param>
        /// <param name="input">The sequence.</param>
        /// <param name="initial">The initial state, or null.</param>
        /// <returns>Every step's output and the final state.</returns>
        public RecurrentResult Run(Scope scope, Expr input, RecurrentState? initial = null) => Cells.Run(Core, scope, input, initial);
    }

    /// <summary>The recurrent wrappers' one call each into the core.</summary>
    internal static class Cells
    {
        public static RecurrentState Step(NN.Layer cell, Scope scope, Expr input, RecurrentState? state) =>
            new(((NN.RecurrentCell)cell).Step((scope ?? throw new ArgumentNullException(nameof(scope))).Core,
                (input ?? throw new ArgumentNullException(nameof(input))).Core, RecurrentState.ToCore(state)));

        public static RecurrentResult Run(NN.Layer layer, Scope scope, Expr input, RecurrentState? initial)
        {
            var result = ((NN.RecurrentLayer)layer).Run((scope ?? throw new ArgumentNullException(nameof(scope))).Core,
                (input ?? throw new ArgumentNullException(nameof(input))).Core, RecurrentState.ToCore(initial));
            return new(new Expr(result.Item1), new RecurrentState(result.Item2));
        }
    }

    /// <summary>
    /// Multi-head self-attention over [batch, length, embedDim] (PyTorch's nn.MultiheadAttention with batch_first and
    /// its parameter names in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias), causal when built so.
    /// </summary>
    public sealed class MultiheadAttention : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="embedDim">The embedding size, a multiple of <paramref name="heads"/>.</param>
        /// <param name="heads">The number of heads.</param>
        /// <param name="causal">Whether each position attends only to itself and earlier ones.</param>
        public MultiheadAttention(int embedDim, int heads, bool causal = false) : base(new NN.MultiheadAttention(embedDim, heads, causal)) { }

        /// <summary>softmax(q k^T / sqrt d + mask) v (PyTorch's scaled_dot_product_attention), the leading axes broadcasting.</summary>
        /// <param name="q">Queries [..., queries, d].</param>
        /// <param name="k">Keys [..., keys, d].</param>
        /// <param name="v">Values [..., keys, dv].</param>
        /// <param name="causal">Whether query i attends only to keys j &lt;= i.</param>
        /// <param name="keyPadding">A [batch, keys] mask, 1 for a real key and 0 for padding no query attends to (the opposite of PyTorch's key_padding_mask), or null.</param>
        /// <returns>[..., queries, dv].</returns>
        public static Expr ScaledDotProduct(Expr q, Expr k, Expr v, bool causal = false, Expr? keyPadding = null) =>
            new(NN.Attention.scaledDotProduct(new NN.AttentionMask(causal, Conversions.OptionOf(keyPadding?.Core)),
                (q ?? throw new ArgumentNullException(nameof(q))).Core, (k ?? throw new ArgumentNullException(nameof(k))).Core,
                (v ?? throw new ArgumentNullException(nameof(v))).Core));
    }

    /// <summary>The activation between a <see cref="TransformerBlock"/>'s two linear layers.</summary>
    public enum BlockActivation
    {
        /// <summary>GELU with the exact normal CDF.</summary>
        Gelu,

        /// <summary>GELU's tanh approximation (GPT-2's), cheaper than erf.</summary>
        GeluTanh,
    }

    /// <summary>
    /// A pre-norm transformer block over [batch, length, dim]: x + attention(norm1 x), then that plus
    /// linear2(activation(linear1(norm2 of it)))); sub-layers norm1, self_attn, norm2, linear1, linear2.
    /// </summary>
    public sealed class TransformerBlock : Layer
    {
        /// <summary>Creates the block.</summary>
        /// <param name="dim">The embedding size.</param>
        /// <param name="heads">The number of attention heads.</param>
        /// <param name="hidden">The MLP's hidden size; 4 dim when null.</param>
        /// <param name="causal">Whether the attention is causal.</param>
        /// <param name="activation">The MLP's activation.</param>
        public TransformerBlock(int dim, int heads, int? hidden = null, bool causal = false, BlockActivation activation = BlockActivation.Gelu)
            : base(new NN.TransformerBlock(dim, heads, hidden ?? 4 * dim, causal,
                activation == BlockActivation.GeluTanh ? NN.BlockActivation.GeluTanh : NN.BlockActivation.Gelu)) { }
    }

    /// <summary>Adds the sinusoidal encoding of positions 0..length-1 ("Attention Is All You Need") to [batch, length, dim]; no parameters.</summary>
    public sealed class SinusoidalPositionalEncoding : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="maxLength">The longest sequence accepted.</param>
        /// <param name="dim">The embedding size.</param>
        public SinusoidalPositionalEncoding(int maxLength, int dim) : base(new NN.SinusoidalPositionalEncoding(maxLength, dim)) { }

        /// <summary>The encoding itself, [length, dim]: sin(p / 10000^(2i / dim)) in column 2i, cos in column 2i + 1.</summary>
        /// <param name="length">The number of positions.</param>
        /// <param name="dim">The embedding size.</param>
        /// <param name="dtype">The element type.</param>
        /// <returns>The table.</returns>
        public static Tensor Table(int length, int dim, DType dtype = DType.Float64) =>
            new(NN.Positional.sinusoidal(Conversions.ToCore(dtype), length, dim));
    }

    /// <summary>Adds a learned embedding of positions (parameter "weight" [maxLength, dim]) to [batch, length, dim].</summary>
    public sealed class LearnedPositionalEmbedding : Layer
    {
        /// <summary>Creates the layer.</summary>
        /// <param name="maxLength">The longest sequence accepted.</param>
        /// <param name="dim">The embedding size.</param>
        public LearnedPositionalEmbedding(int maxLength, int dim) : base(new NN.LearnedPositionalEmbedding(maxLength, dim)) { }
    }
}
