namespace FuncFlow.NN

open FuncFlow

/// A pooling layer over [N; C; H; W] inputs, with no parameters.
[<AbstractClass>]
type Pool2d internal (name: string, spec: PoolSpec, pool: PoolSpec -> Expr -> Expr) =
    inherit Layer()
    do
        let ok (least: int) (values: int list) = values.Length = 2 && values |> List.forall (fun v -> v >= least)
        if not (ok 1 spec.Kernel && ok 1 spec.Stride && ok 0 spec.Padding) then
            invalidArg
                "spec"
                (sprintf
                    "%s: kernel and stride need 2 positive entries and padding 2 non-negative ones, got kernel %s, stride %s, padding %s"
                    name
                    (Convolution.show spec.Kernel)
                    (Convolution.show spec.Stride)
                    (Convolution.show spec.Padding))

    /// Kernel, stride and padding.
    member _.Spec = spec

    override _.Forward(_: Scope, x: Expr) = pool spec x

    override _.Describe() =
        sprintf
            "%s(kernel=%s, stride=%s, padding=%s)"
            name
            (Convolution.show spec.Kernel)
            (Convolution.show spec.Stride)
            (Convolution.show spec.Padding)

/// A square window's spec: kernel, stride and padding the same along both axes.
module internal PoolSpecs =
    let square (kernel: int) (stride: int) (padding: int) =
        { Kernel = [ kernel; kernel ]; Stride = [ stride; stride ]; Padding = [ padding; padding ] }

/// Max pooling (PyTorch's MaxPool2d): the largest value of each window; output sizes rounded down.
[<Sealed>]
type MaxPool2d(spec: PoolSpec) =
    inherit Pool2d("MaxPool2d", spec, Expr.maxPool2d)
    /// A square window with a stride and padding.
    new(kernelSize: int, stride: int, padding: int) = MaxPool2d(PoolSpecs.square kernelSize stride padding)
    /// A square window whose stride is its size, no padding (PyTorch's defaults).
    new(kernelSize: int) = MaxPool2d(kernelSize, kernelSize, 0)

/// Average pooling (PyTorch's AvgPool2d, count_include_pad true): the mean of each window, padded zeros
/// included.
[<Sealed>]
type AvgPool2d(spec: PoolSpec) =
    inherit Pool2d("AvgPool2d", spec, Expr.avgPool2d)
    /// A square window with a stride and padding.
    new(kernelSize: int, stride: int, padding: int) = AvgPool2d(PoolSpecs.square kernelSize stride padding)
    /// A square window whose stride is its size, no padding (PyTorch's defaults).
    new(kernelSize: int) = AvgPool2d(kernelSize, kernelSize, 0)

/// Adaptive average pooling (PyTorch's AdaptiveAvgPool2d) to a fixed [N; C; height; width]: 1 x 1 is the
/// mean of each channel's plane (global average pooling); other sizes must divide the input's, when the
/// windows are equal and do not overlap (PyTorch's windows of uneven sizes are not supported).
[<Sealed>]
type AdaptiveAvgPool2d(height: int, width: int) =
    inherit Layer()
    do
        if height <= 0 || width <= 0 then
            invalidArg "height" (sprintf "AdaptiveAvgPool2d: the output size must be positive, got %d x %d" height width)

    /// A square output size.
    new(size: int) = AdaptiveAvgPool2d(size, size)

    /// The output's height.
    member _.Height = height
    /// The output's width.
    member _.Width = width

    override _.Forward(_: Scope, x: Expr) =
        let shape = x.Shape
        if shape.Length <> 4 then
            invalidArg
                "input"
                (sprintf "AdaptiveAvgPool2d(%d, %d): expected an input [N; C; H; W] of rank 4, got shape %s" height width (Shape.show shape))
        if height = 1 && width = 1 then
            Expr.globalAvgPool2d x
        elif shape[2] % height = 0 && shape[3] % width = 0 then
            let kh, kw = shape[2] / height, shape[3] / width
            Expr.avgPool2d { Kernel = [ kh; kw ]; Stride = [ kh; kw ]; Padding = [ 0; 0 ] } x
        else
            invalidArg
                "input"
                (sprintf
                    "AdaptiveAvgPool2d(%d, %d): the input's spatial size %d x %d (shape %s) is not a multiple of the output's; only equal windows are supported"
                    height
                    width
                    shape[2]
                    shape[3]
                    (Shape.show shape))

    override _.Describe() = sprintf "AdaptiveAvgPool2d(%d, %d)" height width
