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

/// Adaptive average pooling (PyTorch's AdaptiveAvgPool2d) to a fixed [N; C; height; width]: output row i
/// averages input rows floor(i H / height) to ceil((i + 1) H / height) - 1, and likewise for columns, so
/// windows may be uneven and overlap, as PyTorch's. 1 x 1 is the mean of each channel's plane (global average
/// pooling); sizes that divide the input's are an average pool with equal windows; other sizes are two
/// products with constant averaging matrices (a window's mean is the mean over its rows of the means over
/// its columns).
[<Sealed>]
type AdaptiveAvgPool2d(height: int, width: int) =
    inherit Layer()
    do
        if height <= 0 || width <= 0 then
            invalidArg "height" (sprintf "AdaptiveAvgPool2d: the output size must be positive, got %d x %d" height width)

    // [size; output]: column j averages the inputs of window j.
    static let averaging (dtype: DType) (size: int) (output: int) =
        let m = Array.zeroCreate (size * output)
        for j in 0 .. output - 1 do
            let first, last = j * size / output, ((j + 1) * size + output - 1) / output
            for i in first .. last - 1 do
                m[i * output + j] <- 1.0 / float (last - first)
        Expr.constant (Tensor.create [| size; output |] m |> Tensor.cast dtype)

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
            let columns = Expr.matmul x (averaging x.DType shape[3] width)
            Expr.matmul (Expr.transpose (averaging x.DType shape[2] height)) columns

    override _.Describe() = sprintf "AdaptiveAvgPool2d(%d, %d)" height width
