namespace FuncFlow.NN

open System
open FuncFlow

/// What the convolution layers share: checks of their hyper-parameters and PyTorch's initialisation.
module internal Convolution =
    let show (values: int list) = Shape.show (Array.ofList values)

    /// Fails naming the layer unless every list has one entry per spatial axis and the values are in range.
    let check (layer: string) (inChannels: int) (outChannels: int) (kernel: int list) (spec: ConvSpec) =
        let spatial = kernel.Length
        if inChannels <= 0 || outChannels <= 0 then
            invalidArg "inChannels" (sprintf "%s: channel counts must be positive, got %d -> %d" layer inChannels outChannels)
        if spec.Groups <= 0 || inChannels % spec.Groups <> 0 || outChannels % spec.Groups <> 0 then
            invalidArg
                "groups"
                (sprintf
                    "%s: groups must be positive and divide both %d input and %d output channels, got %d"
                    layer
                    inChannels
                    outChannels
                    spec.Groups)
        for name, values, least in
            [
                "kernel size", kernel, 1
                "stride", spec.Stride, 1
                "dilation", spec.Dilation, 1
                "padding", spec.Padding, 0
            ] do
            if values.Length <> spatial || values |> List.exists (fun v -> v < least) then
                invalidArg
                    "spec"
                    (sprintf
                        "%s: %s must have %d entries, each %s, got %s"
                        layer
                        name
                        spatial
                        (if least = 1 then "positive" else "non-negative")
                        (show values))

    /// PyTorch's default for convolutions: the weight kaiming_uniform with a = sqrt 5 and the bias both
    /// uniform in +-1/sqrt(fanIn), fanIn = input channels per group x kernel taps.
    let parameters (seed: int) (weightShape: int[]) (useBias: bool) =
        let bound = 1.0 / sqrt (float (Shape.size weightShape[1..]))
        // One generator hands out both seeds, as Sequential does for its layers.
        let rng = Random seed
        let weightSeed, biasSeed = rng.Next(), rng.Next()
        [
            yield "weight", Tensor.randUniform Float64 weightSeed weightShape -bound bound
            if useBias then yield "bias", Tensor.randUniform Float64 biasSeed [| weightShape[0] |] -bound bound
        ]

/// A convolution layer over 1 or 2 spatial axes: weight [O; C / groups; kernel...] (PyTorch's layout and
/// initialisation), plus a bias [O] per output channel when `useBias`.
[<AbstractClass>]
type Conv
    internal
    (
        name: string,
        inChannels: int,
        outChannels: int,
        kernel: int list,
        spec: ConvSpec,
        useBias: bool,
        convolve: ConvSpec -> Expr -> Expr -> Expr
    ) =
    inherit Layer()
    do Convolution.check name inChannels outChannels kernel spec

    /// The number of input channels.
    member _.InChannels = inChannels
    /// The number of output channels.
    member _.OutChannels = outChannels
    /// The kernel's size along each spatial axis.
    member _.Kernel = kernel
    /// Stride, padding, dilation and groups.
    member _.Spec = spec
    /// Whether the layer adds a bias per output channel.
    member _.HasBias = useBias

    override _.Parameters(seed: int) =
        Convolution.parameters seed (Array.ofList (outChannels :: inChannels / spec.Groups :: kernel)) useBias

    override _.Forward(scope: Scope, x: Expr) =
        let y = convolve spec x (scope.Param "weight")
        if useBias then
            // [O] as [1; O; 1...], broadcast over the batch and the spatial axes.
            y
            + Expr.reshape (Array.append [| 1; outChannels |] (Array.create kernel.Length 1)) (scope.Param "bias")
        else
            y

    override _.Describe() =
        sprintf
            "%s(%d, %d, kernel=%s, stride=%s, padding=%s, dilation=%s, groups=%d, bias=%b)"
            name
            inChannels
            outChannels
            (Convolution.show kernel)
            (Convolution.show spec.Stride)
            (Convolution.show spec.Padding)
            (Convolution.show spec.Dilation)
            spec.Groups
            useBias

/// 1-D convolution (PyTorch's Conv1d): [N; C; L] -> [N; O; L'].
[<Sealed>]
type Conv1d(inChannels: int, outChannels: int, kernelSize: int, spec: ConvSpec, useBias: bool) =
    inherit Conv("Conv1d", inChannels, outChannels, [ kernelSize ], spec, useBias, Expr.conv1d)

    /// With stride, padding, dilation and groups as plain numbers.
    new(inChannels, outChannels, kernelSize, stride: int, padding: int, dilation: int, groups: int, useBias) =
        Conv1d(
            inChannels,
            outChannels,
            kernelSize,
            { Stride = [ stride ]; Padding = [ padding ]; Dilation = [ dilation ]; Groups = groups },
            useBias
        )

    /// With a stride and padding, dilation 1, one group and a bias.
    new(inChannels, outChannels, kernelSize, stride: int, padding: int) =
        Conv1d(inChannels, outChannels, kernelSize, stride, padding, 1, 1, true)

    /// Stride 1, no padding, dilation 1, one group, a bias (PyTorch's defaults).
    new(inChannels, outChannels, kernelSize) = Conv1d(inChannels, outChannels, kernelSize, ConvSpec.Default1d, true)

/// 2-D convolution (PyTorch's Conv2d): [N; C; H; W] -> [N; O; H'; W'].
[<Sealed>]
type Conv2d(inChannels: int, outChannels: int, kernel: int list, spec: ConvSpec, useBias: bool) =
    inherit Conv("Conv2d", inChannels, outChannels, kernel, spec, useBias, Expr.conv2d)

    /// A square kernel, with stride, padding and dilation the same along both axes.
    new(inChannels, outChannels, kernelSize: int, stride: int, padding: int, dilation: int, groups: int, useBias) =
        Conv2d(
            inChannels,
            outChannels,
            [ kernelSize; kernelSize ],
            {
                Stride = [ stride; stride ]
                Padding = [ padding; padding ]
                Dilation = [ dilation; dilation ]
                Groups = groups
            },
            useBias
        )

    /// A square kernel with a stride and padding, dilation 1, one group and a bias.
    new(inChannels, outChannels, kernelSize: int, stride: int, padding: int) =
        Conv2d(inChannels, outChannels, kernelSize, stride, padding, 1, 1, true)

    /// A square kernel, stride 1, no padding, dilation 1, one group, a bias (PyTorch's defaults).
    new(inChannels, outChannels, kernelSize: int) = Conv2d(inChannels, outChannels, kernelSize, 1, 0)
