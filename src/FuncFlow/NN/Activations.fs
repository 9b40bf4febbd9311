namespace FuncFlow.NN

open FuncFlow

/// A parameter-free layer applying an elementwise (or per-row) function.
[<AbstractClass>]
type Activation(name: string, f: Expr -> Expr) =
    inherit Layer()
    override _.Forward(_: Scope, x: Expr) = f x
    override _.Describe() = name

/// The logistic function 1 / (1 + e^-x), elementwise.
[<Sealed>]
type Sigmoid() =
    inherit Activation("Sigmoid", Expr.sigmoid)

/// The hyperbolic tangent, elementwise.
[<Sealed>]
type Tanh() =
    inherit Activation("Tanh", Expr.tanh)

/// max(x, 0), elementwise.
[<Sealed>]
type ReLU() =
    inherit Activation("ReLU", Expr.relu)

/// Softmax along an axis (the last by default), computed stably. For training, prefer feeding logits to
/// the cross-entropy loss, which folds the softmax in.
[<Sealed>]
type Softmax(axis: int) =
    inherit Activation(sprintf "Softmax(%d)" axis, Expr.softmax axis)
    /// Softmax over the last axis.
    new() = Softmax(-1)
