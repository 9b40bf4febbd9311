namespace FuncFlow.NN

open System
open FuncFlow

/// Positional information for sequence models.
[<RequireQualifiedAccess>]
module Positional =
    /// The sinusoidal encoding of "Attention Is All You Need", [length; dim]: row p holds sin(p / 10000^(2i / dim))
    /// in column 2i and cos of the same angle in column 2i + 1.
    let sinusoidal (dtype: DType) (length: int) (dim: int) : Tensor =
        if length <= 0 || dim <= 0 then
            invalidArg "length" (sprintf "Positional.sinusoidal: length and dim must be positive, got %d and %d" length dim)
        Tensor.ofFloats
            dtype
            [| length; dim |]
            (Array.init (length * dim) (fun k ->
                let p, c = k / dim, k % dim
                let angle = float p / Math.Pow(10000.0, float (c - c % 2) / float dim)
                if c % 2 = 0 then sin angle else cos angle))

    let internal checkInput (layer: string) (maxLength: int) (dim: int) (x: Expr) =
        if isNull (box x) then raise (ArgumentNullException("input", sprintf "%s: the input is null" layer))
        if x.Rank <> 3 || x.ShapeRef[2] <> dim || x.ShapeRef[1] > maxLength then
            invalidArg
                "input"
                (sprintf "%s: expected an input [batch; length <= %d; %d], got shape %s" layer maxLength dim (Shape.show x.ShapeRef))

/// Adds the sinusoidal encoding (Positional.sinusoidal) of positions 0..length-1 to an input
/// [batch; length; dim]; no parameters.
[<Sealed>]
type SinusoidalPositionalEncoding(maxLength: int, dim: int) =
    inherit Layer()
    do
        if maxLength <= 0 || dim <= 0 then
            invalidArg "maxLength" (sprintf "SinusoidalPositionalEncoding: sizes must be positive, got %d and %d" maxLength dim)

    override _.Forward(_: Scope, x: Expr) =
        Positional.checkInput "SinusoidalPositionalEncoding" maxLength dim x
        x + Expr.constant (Positional.sinusoidal x.DType x.ShapeRef[1] dim)

    override _.Describe() = sprintf "SinusoidalPositionalEncoding(%d, %d)" maxLength dim

/// Adds a learned embedding of positions 0..length-1 (parameter "weight" [maxLength; dim], normal with
/// standard deviation 0.02 as GPT-2's) to an input [batch; length; dim].
[<Sealed>]
type LearnedPositionalEmbedding(maxLength: int, dim: int) =
    inherit Layer()
    do
        if maxLength <= 0 || dim <= 0 then
            invalidArg "maxLength" (sprintf "LearnedPositionalEmbedding: sizes must be positive, got %d and %d" maxLength dim)

    override _.Parameters(seed: int) = [ "weight", (Normal 0.02).Sample(seed, [| maxLength; dim |], maxLength, dim) ]

    override _.Forward(scope: Scope, x: Expr) =
        Positional.checkInput "LearnedPositionalEmbedding" maxLength dim x
        x + Expr.slice 0 0 x.ShapeRef[1] (scope.Param "weight")

    override _.Describe() = sprintf "LearnedPositionalEmbedding(%d, %d)" maxLength dim

/// The activation between a TransformerBlock's two linear layers.
[<RequireQualifiedAccess>]
type BlockActivation =
    /// x Phi(x) with the exact normal CDF (Expr.gelu; PyTorch's TransformerEncoderLayer(activation="gelu")).
    | Gelu
    /// GELU's tanh approximation, 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) (PyTorch's
    /// gelu(approximate="tanh"), GPT-2's): elementwise steps that plans fuse, much cheaper than erf.
    | GeluTanh

    /// The activation applied to an expression.
    member a.Apply(x: Expr) : Expr =
        match a with
        | Gelu -> Expr.gelu x
        | GeluTanh -> x * 0.5 * (1.0 + Expr.tanh ((x + x * x * x * 0.044715) * sqrt (2.0 / Math.PI)))

/// A pre-norm transformer block (GPT-2's, PyTorch's TransformerEncoderLayer with norm_first=True and no
/// dropout) over [batch; length; dim]: x + attention(norm1 x), then that plus linear2(activation(linear1(norm2
/// of it))). Sub-layers by PyTorch's names: norm1, self_attn (MultiheadAttention, causal when built so), norm2,
/// linear1 (dim -> hidden) and linear2 (hidden -> dim), the linear weights in FuncFlow's [in; out] layout.
[<Sealed>]
type TransformerBlock(dim: int, heads: int, hidden: int, causal: bool, activation: BlockActivation) =
    inherit Layer()
    do
        if hidden <= 0 then
            invalidArg "hidden" (sprintf "TransformerBlock: the hidden size must be positive, got %d" hidden)
    let norm1, attention, norm2 = LayerNorm dim, MultiheadAttention(dim, heads, causal), LayerNorm dim
    let linear1, linear2 = Linear(dim, hidden, Xavier), Linear(hidden, dim, Xavier)
    let parts: (string * Layer) list =
        [ "norm1", norm1; "self_attn", attention; "norm2", norm2; "linear1", linear1; "linear2", linear2 ]

    /// A block with the exact GELU (PyTorch's TransformerEncoderLayer with activation="gelu").
    new(dim, heads, hidden, causal) = TransformerBlock(dim, heads, hidden, causal, BlockActivation.Gelu)

    /// A block with a hidden size of 4 dim and the exact GELU.
    new(dim, heads, causal) = TransformerBlock(dim, heads, 4 * dim, causal, BlockActivation.Gelu)

    /// The embedding size.
    member _.Dim = dim
    /// The attention sub-layer.
    member _.Attention = attention

    override _.Parameters(seed: int) =
        let rng = Random(seed)
        parts
        |> List.collect (fun (name, layer) -> layer.Parameters(rng.Next()) |> List.map (fun (p, t) -> name + "." + p, t))

    override _.Forward(scope: Scope, x: Expr) =
        Positional.checkInput "TransformerBlock" Int32.MaxValue dim x
        let apply (layer: Layer) (name: string) (input: Expr) = layer.Forward(scope.Child name, input)
        let h = x + apply attention "self_attn" (apply norm1 "norm1" x)
        h + apply linear2 "linear2" (activation.Apply(apply linear1 "linear1" (apply norm2 "norm2" h)))

    override _.Describe() =
        sprintf
            "TransformerBlock(%d, heads=%d, hidden=%d%s%s)"
            dim
            heads
            hidden
            (if causal then ", causal" else "")
            (if activation = BlockActivation.GeluTanh then ", tanh GELU" else "")
