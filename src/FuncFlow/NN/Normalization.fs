namespace FuncFlow.NN

open System
open FuncFlow

/// What the normalisation layers share: statistics over some axes of a reshaped input, and the affine step.
module internal Normalization =
    /// The mean and the biased variance of x over the given axes, kept with length 1 (axes in any order).
    let moments (axes: int list) (x: Expr) =
        let meanOver (e: Expr) = axes |> List.fold (fun acc a -> Expr.meanAxisKeep a acc) e
        let mean = meanOver x
        let centered = x - mean
        mean, centered, meanOver (centered * centered)

    /// (x - mean) / sqrt(var + eps), from moments' centred values and variance.
    let normalize (eps: float) (centered: Expr) (variance: Expr) = centered / Expr.sqrt (variance + eps)

    /// y * weight + bias, each parameter of `features` elements reshaped to broadcast as `shape`, when affine.
    let affine (scope: Scope) (affine: bool) (shape: int[]) (y: Expr) =
        if affine then
            y * Expr.reshape shape (scope.Param "weight") + Expr.reshape shape (scope.Param "bias")
        else
            y

    /// PyTorch's initial weight (ones) and bias (zeros) of an affine normalisation, or none.
    let affineParameters (affine: bool) (shape: int[]) =
        if affine then [ "weight", Tensor.ones Float64 shape; "bias", Tensor.zeros Float64 shape ] else []

    let checkHyper (layer: string) (eps: float) =
        if not (eps > 0.0 && Double.IsFinite eps) then
            invalidArg "eps" (sprintf "%s: eps must be positive and finite, got %g" layer eps)

/// Batch normalisation over the channel axis 1 of [N; C; ...] inputs (PyTorch's BatchNorm1d/2d). In training,
/// each channel is normalised by the batch's mean and biased variance, and the buffers running_mean and
/// running_var move towards the batch's mean and unbiased variance by `momentum` (running = (1 - momentum)
/// running + momentum batch), or, with no momentum (PyTorch's momentum=None), are the cumulative average of
/// every batch's statistics (momentum 1 / num_batches_tracked); num_batches_tracked counts the steps. In evaluation the running statistics
/// normalise. The running statistics are the model's buffers, updated by the training step's plan with the
/// parameters. Then y * weight + bias per channel, when affine.
[<AbstractClass>]
type BatchNorm internal (name: string, ranks: int list, features: int, eps: float, momentum: float option, affine: bool) =
    inherit Layer()
    do
        if features <= 0 then
            invalidArg "features" (sprintf "%s: the number of features must be positive, got %d" name features)
        Normalization.checkHyper name eps
        match momentum with
        | Some m when not (m >= 0.0 && m <= 1.0) -> invalidArg "momentum" (sprintf "%s: momentum must be in [0, 1], got %g" name m)
        | _ -> ()

    /// The number of channels.
    member _.Features = features
    /// The constant added to the variance.
    member _.Eps = eps
    /// The weight of a batch's statistics in the running ones; None for the cumulative average.
    member _.Momentum = momentum
    /// Whether the layer has a weight and bias.
    member _.Affine = affine

    override _.Parameters(_: int) = Normalization.affineParameters affine [| features |]

    override _.Buffers() =
        [
            "running_mean", Tensor.zeros Float64 [| features |]
            "running_var", Tensor.ones Float64 [| features |]
            "num_batches_tracked", Tensor.scalar 0.0
        ]

    override _.Forward(scope: Scope, x: Expr) =
        let shape = x.Shape
        if not (List.contains shape.Length ranks) || shape[1] <> features then
            invalidArg
                "input"
                (sprintf
                    "%s(%d): expected an input of rank %s with %d channels on axis 1, got shape %s"
                    name
                    features
                    (String.Join(" or ", ranks))
                    features
                    (Shape.show shape))
        // [N; C; S]: the statistics are over axes 0 and 2, one per channel.
        let perChannel = [| 1; features; 1 |]
        let x3 = Expr.reshape [| shape[0]; features; -1 |] x
        let y =
            if scope.Training then
                let count = shape[0] * x3.Shape[2]
                if count < 2 then
                    invalidArg
                        "input"
                        (sprintf
                            "%s(%d): training needs more than one value per channel, got input shape %s"
                            name
                            features
                            (Shape.show shape))
                let mean, centered, variance = Normalization.moments [ 2; 0 ] x3
                let tracked = scope.Buffer "num_batches_tracked"
                let running (buffer: string) (batch: Expr) =
                    let r = scope.Buffer buffer
                    let batch = Expr.reshape [| features |] batch
                    match momentum with
                    | Some m -> scope.UpdateBuffer(buffer, (1.0 - m) * r + m * batch)
                    // PyTorch's form: running + (batch - running) / (tracked + 1), tracked counted before this step.
                    | None -> scope.UpdateBuffer(buffer, r + (batch - r) / (tracked + 1.0))
                running "running_mean" mean
                // PyTorch's running variance is the unbiased one; normalising uses the biased one.
                running "running_var" (variance * (float count / float (count - 1)))
                scope.UpdateBuffer("num_batches_tracked", tracked + 1.0)
                Normalization.normalize eps centered variance
            else
                let mean = Expr.reshape perChannel (scope.Buffer "running_mean")
                Normalization.normalize eps (x3 - mean) (Expr.reshape perChannel (scope.Buffer "running_var"))
        Normalization.affine scope affine perChannel y |> Expr.reshape shape

    override _.Describe() =
        let m = momentum |> Option.map (sprintf "%g") |> Option.defaultValue "None"
        sprintf "%s(%d, eps=%g, momentum=%s, affine=%b)" name features eps m affine

/// Batch normalisation of [N; C] or [N; C; L] inputs per channel (PyTorch's BatchNorm1d; see BatchNorm).
[<Sealed>]
type BatchNorm1d private (features: int, eps: float, momentum: float option, affine: bool) =
    inherit BatchNorm("BatchNorm1d", [ 2; 3 ], features, eps, momentum, affine)
    /// Running statistics that move by `momentum` each step.
    new(features, eps, momentum: float, affine) = BatchNorm1d(features, eps, Some momentum, affine)
    /// PyTorch's defaults: eps 1e-5, momentum 0.1, affine.
    new(features) = BatchNorm1d(features, 1e-5, Some 0.1, true)
    /// Running statistics that are the cumulative average of every batch's (PyTorch's momentum=None).
    static member CumulativeAverage(features, eps, affine) = BatchNorm1d(features, eps, None, affine)

/// Batch normalisation of [N; C; H; W] inputs per channel (PyTorch's BatchNorm2d; see BatchNorm).
[<Sealed>]
type BatchNorm2d private (features: int, eps: float, momentum: float option, affine: bool) =
    inherit BatchNorm("BatchNorm2d", [ 4 ], features, eps, momentum, affine)
    /// Running statistics that move by `momentum` each step.
    new(features, eps, momentum: float, affine) = BatchNorm2d(features, eps, Some momentum, affine)
    /// PyTorch's defaults: eps 1e-5, momentum 0.1, affine.
    new(features) = BatchNorm2d(features, 1e-5, Some 0.1, true)
    /// Running statistics that are the cumulative average of every batch's (PyTorch's momentum=None).
    static member CumulativeAverage(features, eps, affine) = BatchNorm2d(features, eps, None, affine)

/// Layer normalisation (PyTorch's LayerNorm): each example is normalised over its last axes, whose shape is
/// `normalizedShape`, by its own mean and biased variance, in training and evaluation alike; then
/// y * weight + bias elementwise (parameters of shape normalizedShape), when affine.
[<Sealed>]
type LayerNorm(normalizedShape: int[], eps: float, affine: bool) =
    inherit Layer()
    let normalizedShape = Array.copy normalizedShape
    do
        if normalizedShape.Length = 0 || normalizedShape |> Array.exists (fun d -> d <= 0) then
            invalidArg
                "normalizedShape"
                (sprintf "LayerNorm: the normalised shape must have positive sizes, got %s" (Shape.show normalizedShape))
        Normalization.checkHyper "LayerNorm" eps

    /// Normalises over the last axis of size `features` (eps 1e-5, affine).
    new(features: int) = LayerNorm([| features |], 1e-5, true)
    /// Normalises over the last axes of the given shape (eps 1e-5, affine).
    new(normalizedShape: int[]) = LayerNorm(normalizedShape, 1e-5, true)

    /// The shape of the normalised trailing axes.
    member _.NormalizedShape = Array.copy normalizedShape

    override _.Parameters(_: int) = Normalization.affineParameters affine normalizedShape

    override _.Forward(scope: Scope, x: Expr) =
        let shape = x.Shape
        let k = normalizedShape.Length
        if shape.Length < k || not (Shape.equal shape[shape.Length - k ..] normalizedShape) then
            invalidArg
                "input"
                (sprintf
                    "LayerNorm%s: expected an input whose last axes are %s, got shape %s"
                    (Shape.show normalizedShape)
                    (Shape.show normalizedShape)
                    (Shape.show shape))
        let _, centered, variance =
            Normalization.moments [ 1 ] (Expr.reshape [| -1; Shape.size normalizedShape |] x)
        Normalization.normalize eps centered variance
        |> Expr.reshape shape
        |> Normalization.affine scope affine normalizedShape

    override _.Describe() = sprintf "LayerNorm(%s, eps=%g, affine=%b)" (Shape.show normalizedShape) eps affine

/// Group normalisation (PyTorch's GroupNorm) of [N; C; ...] inputs: the C channels form `groups` groups of
/// consecutive channels, and each example's group is normalised by its mean and biased variance, in training
/// and evaluation alike; then y * weight + bias per channel, when affine.
[<Sealed>]
type GroupNorm(groups: int, channels: int, eps: float, affine: bool) =
    inherit Layer()
    do
        if groups <= 0 || channels <= 0 || channels % groups <> 0 then
            invalidArg
                "groups"
                (sprintf
                    "GroupNorm: channels must be a positive multiple of the positive number of groups, got %d channels in %d groups"
                    channels
                    groups)
        Normalization.checkHyper "GroupNorm" eps

    /// PyTorch's defaults: eps 1e-5, affine.
    new(groups, channels) = GroupNorm(groups, channels, 1e-5, true)

    /// The number of groups.
    member _.Groups = groups
    /// The number of channels.
    member _.Channels = channels

    override _.Parameters(_: int) = Normalization.affineParameters affine [| channels |]

    override _.Forward(scope: Scope, x: Expr) =
        let shape = x.Shape
        if shape.Length < 2 || shape[1] <> channels then
            invalidArg
                "input"
                (sprintf "GroupNorm(%d, %d): expected an input (N, %d, ...), got shape %s" groups channels channels (Shape.show shape))
        let _, centered, variance = Normalization.moments [ 2 ] (Expr.reshape [| shape[0]; groups; -1 |] x)
        Normalization.normalize eps centered variance
        |> Expr.reshape [| shape[0]; channels; -1 |]
        |> Normalization.affine scope affine [| 1; channels; 1 |]
        |> Expr.reshape shape

    override _.Describe() = sprintf "GroupNorm(%d, %d, eps=%g, affine=%b)" groups channels eps affine
