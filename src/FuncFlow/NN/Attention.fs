namespace FuncFlow.NN

open System
open FuncFlow

/// Which keys each query may attend to. Masks are added to the attention scores as -infinity biases that
/// broadcast: a causal mask is one [queries; keys] constant and key padding one [batch; keys] tensor, never a
/// mask of the scores' full size. A query that may attend to no key gets NaN, as in PyTorch.
type AttentionMask =
    {
        /// Query i attends to keys 0..i only (PyTorch's is_causal: the lower triangle of ones(queries, keys)).
        Causal: bool
        /// [batch; keys], 1 for a real key and 0 for padding that no query attends to (the opposite of
        /// nn.MultiheadAttention's key_padding_mask, where True marks padding).
        KeyPadding: Expr option
    }

    /// Every query attends to every key.
    static member None = { Causal = false; KeyPadding = None }

    /// Query i attends to keys 0..i.
    static member CausalOnly = { Causal = true; KeyPadding = None }

/// Scaled dot-product attention and its masks.
[<RequireQualifiedAccess>]
module Attention =
    let private fail (op: string) (message: string) : 'a = invalidArg "input" (sprintf "%s: %s" op message)

    /// The causal bias [queries; keys]: 0 where key j <= query i, -infinity above the diagonal.
    let causalBias (dtype: DType) (queries: int) (keys: int) : Tensor =
        Tensor.ofFloats dtype [| queries; keys |] (Array.init (queries * keys) (fun p -> if p % keys <= p / keys then 0.0 else -infinity))

    /// softmax(q k^T / sqrt d + mask) v, PyTorch's F.scaled_dot_product_attention: q [...; queries; d],
    /// k [...; keys; d], v [...; keys; dv], the leading (batch, head) axes broadcasting as in matmul; gives
    /// [...; queries; dv]. The softmax subtracts each row's maximum, so large scores do not overflow. A key
    /// padding mask [batch; keys] applies along the first axis of q.
    let scaledDotProduct (mask: AttentionMask) (q: Expr) (k: Expr) (v: Expr) : Expr =
        let op = "Attention.scaledDotProduct"
        let show (e: Expr) = Shape.show e.ShapeRef
        let shapes () = sprintf "q %s, k %s, v %s" (show q) (show k) (show v)
        if isNull (box q) || isNull (box k) || isNull (box v) then
            raise (ArgumentNullException("input", sprintf "%s: q, k and v must all be expressions" op))
        if q.Rank < 2 || k.Rank < 2 || v.Rank < 2 then
            fail op (sprintf "q, k and v need rank 2 or more ([...; length; features]), got %s" (shapes ()))
        let d, queries, keys = q.ShapeRef[q.Rank - 1], q.ShapeRef[q.Rank - 2], k.ShapeRef[k.Rank - 2]
        if k.ShapeRef[k.Rank - 1] <> d then
            fail op (sprintf "q and k must have the same last axis (the dot product's), got %s" (shapes ()))
        if v.ShapeRef[v.Rank - 2] <> keys then
            fail op (sprintf "k and v must have the same number of keys (axis -2), got %s" (shapes ()))
        // The scale on q rather than on the scores: [queries; d] is no larger than [queries; keys] when d <= keys.
        let scores = Expr.matmul (q * (1.0 / sqrt (float d))) (Expr.transpose k)
        let causal = if mask.Causal then scores + Expr.constant (causalBias q.DType queries keys) else scores
        let masked =
            match mask.KeyPadding with
            | None -> causal
            | Some padding ->
                let batch = causal.ShapeRef[0]
                if causal.Rank < 3 || not (Shape.equal padding.ShapeRef [| batch; keys |]) then
                    fail
                        op
                        (sprintf
                            "the key padding mask must be [batch; keys] = %s for %s, got %s"
                            (Shape.show [| batch; keys |])
                            (shapes ())
                            (show padding))
                let bias = Expr.where padding (Expr.scalarLike q 0.0) (Expr.scalarLike q -infinity)
                // [batch; 1; ...; keys]: one row per batch entry, broadcast over heads and queries.
                causal
                + Expr.reshape
                    (Array.init causal.Rank (fun i ->
                        if i = 0 then batch
                        elif i = causal.Rank - 1 then keys
                        else 1))
                    bias
        Expr.matmul (Expr.softmax -1 masked) v

/// Multi-head attention (PyTorch's nn.MultiheadAttention with batch_first=True, the same parameters by the same
/// names and layouts): the query, key and value projected by in_proj_weight [3 E; E] and in_proj_bias [3 E],
/// split into `heads` heads of E / heads features, scaled dot-product attention per head, the heads joined and
/// projected by out_proj.weight [E; E] and out_proj.bias [E]. Forward is self-attention of [batch; length; E]
/// (causal when built so); Attend takes a separate key and value and key padding.
[<Sealed>]
type MultiheadAttention(embedDim: int, heads: int, causal: bool) =
    inherit Layer()
    do
        if embedDim <= 0 || heads <= 0 || embedDim % heads <> 0 then
            invalidArg
                "heads"
                (sprintf
                    "MultiheadAttention: the embedding size must be a positive multiple of the positive number of heads, got %d and %d heads"
                    embedDim
                    heads)

    /// Self-attention without a causal mask.
    new(embedDim, heads) = MultiheadAttention(embedDim, heads, false)

    /// The embedding size E.
    member _.EmbedDim = embedDim
    /// The number of heads.
    member _.Heads = heads
    /// Whether Forward masks later positions.
    member _.Causal = causal

    /// PyTorch's initialisation: in_proj_weight Xavier-uniform, out_proj.weight uniform in +-1/sqrt E, biases zero.
    override _.Parameters(seed: int) =
        let rng = Random(seed)
        let xavier = sqrt (6.0 / float (embedDim + 3 * embedDim))
        let outBound = 1.0 / sqrt (float embedDim)
        [
            "in_proj_weight", Tensor.randUniform Float64 (rng.Next()) [| 3 * embedDim; embedDim |] -xavier xavier
            "in_proj_bias", Tensor.zeros Float64 [| 3 * embedDim |]
            "out_proj.weight", Tensor.randUniform Float64 (rng.Next()) [| embedDim; embedDim |] -outBound outBound
            "out_proj.bias", Tensor.zeros Float64 [| embedDim |]
        ]

    /// Attention of query [batch; queries; E] over key and value [batch; keys; E], with this layer's causal
    /// flag and an optional key padding mask [batch; keys] (1 real, 0 padding); gives [batch; queries; E].
    member _.Attend(scope: Scope, query: Expr, key: Expr, value: Expr, keyPadding: Expr option) : Expr =
        let name = sprintf "MultiheadAttention(%d, %d heads)" embedDim heads
        for x in [ query; key; value ] do
            if isNull (box x) then
                raise (ArgumentNullException("query", sprintf "%s: query, key and value must all be expressions" name))
            if x.Rank <> 3 || x.ShapeRef[2] <> embedDim then
                invalidArg
                    "query"
                    (sprintf
                        "%s: expected query, key and value [batch; length; %d], got %s, %s, %s"
                        name
                        embedDim
                        (Shape.show query.ShapeRef)
                        (Shape.show key.ShapeRef)
                        (Shape.show value.ShapeRef))
        let w, b = scope.Param "in_proj_weight", scope.Param "in_proj_bias"
        let size = embedDim / heads
        // Projection i of x (x W_i^T + b_i with torch's layout); the transpose is read through GEMM flags.
        let project (i: int) (x: Expr) =
            Expr.matmul x (Expr.transpose (Expr.slice 0 (i * embedDim) embedDim w))
            + Expr.slice 0 (i * embedDim) embedDim b
        let split (x: Expr) = Expr.reshape [| x.ShapeRef[0]; x.ShapeRef[1]; heads; size |] x |> Expr.permute [| 0; 2; 1; 3 |]
        let q, k, v = split (project 0 query), split (project 1 key), split (project 2 value)
        let attended = Attention.scaledDotProduct { Causal = causal; KeyPadding = keyPadding } q k v
        let joined =
            attended
            |> Expr.permute [| 0; 2; 1; 3 |]
            |> Expr.reshape [| query.ShapeRef[0]; query.ShapeRef[1]; embedDim |]
        Expr.matmul joined (Expr.transpose (scope.Param "out_proj.weight")) + scope.Param "out_proj.bias"

    override m.Forward(scope: Scope, x: Expr) = m.Attend(scope, x, x, x, None)

    override _.Describe() = sprintf "MultiheadAttention(%d, heads=%d%s)" embedDim heads (if causal then ", causal" else "")
