namespace FuncFlow.NN

open System
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

/// max(x, 0) + slope min(x, 0), elementwise (PyTorch's default slope is 0.01).
[<Sealed>]
type LeakyReLU(slope: float) =
    inherit Activation(sprintf "LeakyReLU(%g)" slope, Expr.leakyRelu slope)
    do
        if not (Double.IsFinite slope) then
            invalidArg "slope" (sprintf "LeakyReLU: the slope must be finite, got %g" slope)
    /// The slope 0.01, PyTorch's default.
    new() = LeakyReLU(0.01)

/// x for x > 0, alpha (e^x - 1) otherwise, elementwise.
[<Sealed>]
type ELU(alpha: float) =
    inherit Activation(sprintf "ELU(%g)" alpha, Expr.elu alpha)
    do
        if not (Double.IsFinite alpha) then
            invalidArg "alpha" (sprintf "ELU: alpha must be finite, got %g" alpha)
    /// alpha = 1, PyTorch's default.
    new() = ELU(1.0)

/// x Φ(x) with the exact normal CDF (erf), elementwise.
[<Sealed>]
type GELU() =
    inherit Activation("GELU", Expr.gelu)

/// x sigmoid(x) (swish), elementwise.
[<Sealed>]
type SiLU() =
    inherit Activation("SiLU", Expr.silu)

/// log(sigmoid(x)), computed stably, elementwise.
[<Sealed>]
type LogSigmoid() =
    inherit Activation("LogSigmoid", Expr.logSigmoid)

/// log(1 + e^x), computed stably, elementwise.
[<Sealed>]
type Softplus() =
    inherit Activation("Softplus", Expr.softplus)
