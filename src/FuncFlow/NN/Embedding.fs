namespace FuncFlow.NN

open FuncFlow

/// A lookup table: integer-valued indices of any shape pick rows of a [count; dim] weight, giving
/// indices.shape @ [dim]. The weight starts normal with standard deviation 1 (PyTorch's default).
[<Sealed>]
type Embedding(count: int, dim: int, init: Init) =
    inherit Layer()
    do
        if count <= 0 || dim <= 0 then
            invalidArg "count" (sprintf "Embedding: sizes must be positive, got %d x %d" count dim)

    /// A table initialised normal with standard deviation 1.
    new(count, dim) = Embedding(count, dim, Normal 1.0)

    /// The number of rows (the vocabulary size).
    member _.Count = count
    /// The size of each row.
    member _.Dim = dim

    override _.Parameters(seed: int) = [ "weight", init.Sample(seed, [| count; dim |], count, dim) ]
    override _.Forward(scope: Scope, indices: Expr) = Expr.gather indices (scope.Param "weight")
    override _.Describe() = sprintf "Embedding(%d, %d)" count dim
