/// Bad inputs to every public core entry point, as data: each must fail with an argument, key or
/// invalid-operation error whose message names the operation and the shapes or values involved,
/// never with IndexOutOfRange or NullReference. Also: empty tensors work where they mean something.
module FuncFlow.Tests.BadInputTests

open System
open System.Collections.Generic
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private x23 = Expr.var "x" [| 2; 3 |]
let private v2 = Expr.var "x" [| 2 |]
let private env (pairs: (string * Tensor) list) = Eval.bindings pairs
let private ones (shape: int[]) = Tensor.ones Float64 shape
let private planOf (outputs: Expr list) = Plan.compile outputs
let private buildLayer (layer: NN.Layer) (shape: int[]) = NN.Model.Create(layer, 0).Build(Expr.var "input" shape, true) |> ignore

/// A layer with a buffer of 2 elements that it sets to its input `times` times.
let private bufferWriter (times: int) =
    { new NN.Layer() with
        member _.Buffers() = [ "count", Tensor.zeros Float64 [| 2 |] ]
        member _.Forward(scope, x) =
            for _ in 1..times do
                scope.UpdateBuffer("count", x)
            x
        member _.Describe() = "writes its buffer"
    }

/// (description, action, fragments its message must contain).
let private cases: (string * (unit -> unit) * string list) list =
    [
        // Tensors.
        "create: too few values",
        (fun () -> Tensor.create [| 2; 3 |] [| 1.0; 2.0; 3.0; 4.0; 5.0 |] |> ignore),
        [ "Tensor.create"; "5 values"; "(2, 3)"; "6 expected" ]
        "create32: too many values",
        (fun () -> Tensor.create32 [| 4 |] (Array.zeroCreate 5) |> ignore),
        [ "Tensor.create32"; "5 values"; "(4,)" ]
        "create: negative dimension", (fun () -> Tensor.create [| 2; -1 |] [||] |> ignore), [ "Tensor.create"; "(2, -1)"; "negative" ]
        "zeros: more elements than an array holds",
        (fun () -> Tensor.zeros Float64 [| 100000; 100000 |] |> ignore),
        [ "Tensor.full"; "(100000, 100000)"; "10000000000 elements" ]
        "ofRows: ragged rows",
        (fun () -> Tensor.ofRows [| [| 1.0; 2.0 |]; [| 3.0 |] |] |> ignore),
        [ "Tensor.ofRows"; "row 1 has 1 values"; "row 0 has 2" ]
        "reshape: wrong size",
        (fun () -> Tensor.reshape [| 4; 2 |] (ones [| 2; 3 |]) |> ignore),
        [ "Tensor.reshape"; "(2, 3)"; "(4, 2)"; "6 elements" ]
        "reshape: two -1",
        (fun () -> Tensor.reshape [| -1; -1 |] (ones [| 2; 3 |]) |> ignore),
        [ "Tensor.reshape"; "(-1, -1)"; "only one dimension can be -1" ]
        "reshape: negative dimensions whose product fits",
        (fun () -> Tensor.reshape [| -2; -3 |] (ones [| 6 |]) |> ignore),
        [ "Tensor.reshape"; "(-2, -3)"; "non-negative" ]
        "reshape: -1 cannot be inferred",
        (fun () -> Tensor.reshape [| -1; 4 |] (ones [| 6 |]) |> ignore),
        [ "Tensor.reshape"; "(-1, 4)"; "no dimension" ]
        "item: many elements", (fun () -> Tensor.item (ones [| 2; 2 |]) |> ignore), [ "Tensor.item"; "(2, 2)" ]
        "toArray2D: a 3-D tensor", (fun () -> Tensor.toArray2D (ones [| 1; 2; 3 |]) |> ignore), [ "Tensor.toArray2D"; "(1, 2, 3)" ]
        "range: zero step", (fun () -> Tensor.range Float64 0.0 1.0 0.0 |> ignore), [ "Tensor.range"; "step"; "got 0" ]
        "range: infinite stop", (fun () -> Tensor.range Float64 0.0 infinity 1.0 |> ignore), [ "Tensor.range"; "finite" ]
        "range: too many values",
        (fun () -> Tensor.range Float64 0.0 1e12 1.0 |> ignore),
        [ "Tensor.range"; "more than one tensor can hold" ]
        "arange: negative length", (fun () -> Tensor.arange Float64 -3 |> ignore), [ "Tensor.arange"; "-3" ]
        "randUniform: negative dimension",
        (fun () -> Tensor.randUniform Float64 1 [| -1; 2 |] 0.0 1.0 |> ignore),
        [ "Tensor.randUniform"; "(-1, 2)" ]
        "randUniform: NaN bound", (fun () -> Tensor.randUniform Float64 1 [| 2 |] nan 1.0 |> ignore), [ "Tensor.randUniform"; "low=NaN" ]
        "randUniform: low above high",
        (fun () -> Tensor.randUniform Float32 1 [| 2 |] 2.0 1.0 |> ignore),
        [ "Tensor.randUniform"; "low=2"; "high=1" ]
        "randNormal: negative std", (fun () -> Tensor.randNormal Float64 1 [| 2 |] 0.0 -1.0 |> ignore), [ "Tensor.randNormal"; "std=-1" ]
        "randNormal: NaN mean", (fun () -> Tensor.randNormal Float64 1 [| 2 |] nan 1.0 |> ignore), [ "Tensor.randNormal"; "mean=NaN" ]
        // Expression builders.
        "var: empty name", (fun () -> Expr.var "" [| 2 |] |> ignore), [ "Expr.var"; "name" ]
        "var: negative dimension", (fun () -> Expr.var "w" [| 3; -2 |] |> ignore), [ "Expr.var w"; "(3, -2)"; "negative" ]
        "binary: shapes that do not broadcast",
        (fun () -> x23 + Expr.var "y" [| 4 |] |> ignore),
        [ "binary +"; "(2, 3)"; "(4,)"; "axis 1 has 3 and 4" ]
        "binary: mixed dtypes", (fun () -> x23 * Expr.var32 "y" [| 2; 3 |] |> ignore), [ "binary *"; "float64"; "float32" ]
        "matmul: inner sizes differ", (fun () -> Expr.matmul x23 (Expr.var "y" [| 4; 5 |]) |> ignore), [ "matmul"; "(2, 3)"; "(4, 5)" ]
        "matmul: a scalar",
        (fun () -> Expr.matmul (Expr.scalar 2.0) (Expr.var "y" [| 3; 2 |]) |> ignore),
        [ "matmul"; "()"; "(3, 2)"; "at least 1 axis" ]
        "matmul: batch axes differ",
        (fun () -> Expr.matmul (Expr.var "a" [| 2; 2; 3 |]) (Expr.var "b" [| 3; 3; 2 |]) |> ignore),
        [ "matmul"; "(2, 2, 3)"; "(3, 3, 2)" ]
        "matmul: mixed dtypes", (fun () -> Expr.matmul x23 (Expr.var32 "y" [| 3; 2 |]) |> ignore), [ "matmul"; "float64"; "float32" ]
        "Expr.reshape: wrong size", (fun () -> Expr.reshape [| 5 |] x23 |> ignore), [ "reshape"; "(2, 3)"; "(5,)" ]
        "permute: not a permutation", (fun () -> Expr.permute [| 0; 0 |] x23 |> ignore), [ "permute"; "[0, 0]"; "(2, 3)" ]
        "permute: wrong length", (fun () -> Expr.permute [| 1; 0; 2 |] x23 |> ignore), [ "permute"; "[1, 0, 2]"; "(2, 3)" ]
        "sumAxis: axis too large", (fun () -> Expr.sumAxis 2 x23 |> ignore), [ "sum"; "axis 2"; "(2, 3)"; "expected -2..1" ]
        "meanAxisKeep: axis too negative", (fun () -> Expr.meanAxisKeep -3 x23 |> ignore), [ "mean"; "axis -3"; "(2, 3)" ]
        "maxAxis: a scalar", (fun () -> Expr.maxAxis 0 (Expr.scalar 1.0) |> ignore), [ "max"; "axis 0"; "()"; "a scalar has no axes" ]
        "max: empty tensor", (fun () -> Expr.max (Expr.var "e" [| 0 |]) |> ignore), [ "max"; "(0,)"; "empty" ]
        "maxAxis: empty axis", (fun () -> Expr.maxAxis 1 (Expr.var "e" [| 2; 0 |]) |> ignore), [ "max"; "axis 1"; "(2, 0)"; "empty" ]
        "softmax: axis out of range", (fun () -> Expr.softmax 1 v2 |> ignore), [ "softmax"; "axis 1"; "(2,)" ]
        "logSoftmax: axis out of range", (fun () -> Expr.logSoftmax -3 x23 |> ignore), [ "logSoftmax"; "axis -3"; "(2, 3)" ]
        "concat: axis out of range", (fun () -> Expr.concat 3 [ x23; x23 ] |> ignore), [ "concat"; "axis 3"; "(2, 3)" ]
        "concat: other axes differ",
        (fun () -> Expr.concat 0 [ x23; Expr.var "y" [| 2; 4 |] ] |> ignore),
        [ "concat"; "(2, 3)"; "(2, 4)"; "outside axis 0" ]
        "concat: ranks differ", (fun () -> Expr.concat 0 [ x23; Expr.var "y" [| 2 |] ] |> ignore), [ "concat"; "(2, 3)"; "(2,)" ]
        "concat: nothing", (fun () -> Expr.concat 0 [] |> ignore), [ "concat"; "at least one" ]
        "slice: past the end", (fun () -> Expr.slice 1 2 3 x23 |> ignore), [ "slice"; "[2, 5)"; "axis 1"; "(2, 3)" ]
        "slice: one past the end", (fun () -> Expr.slice 1 1 3 x23 |> ignore), [ "slice"; "[1, 4)"; "axis 1"; "(2, 3)" ]
        "slice: negative start", (fun () -> Expr.slice 0 -1 1 x23 |> ignore), [ "slice"; "[-1, 0)"; "(2, 3)" ]
        "slice: axis out of range", (fun () -> Expr.slice 2 0 1 x23 |> ignore), [ "slice"; "axis 2"; "(2, 3)" ]
        "pad: negative", (fun () -> Expr.pad 0 -1 2 x23 |> ignore), [ "pad"; "-1" ]
        "gather: from a scalar", (fun () -> Expr.gather (Expr.var "i" [| 2 |]) (Expr.scalar 1.0) |> ignore), [ "gather"; "scalar"; "()" ]
        "scatterAdd: negative rows", (fun () -> Expr.scatterAdd -1 (Expr.var "i" [| 2 |]) x23 |> ignore), [ "scatterAdd"; "-1" ]
        "oneHot: no classes", (fun () -> Expr.oneHot 0 v2 |> ignore), [ "oneHot"; "got 0" ]
        "expand: dim out of range", (fun () -> Expr.expand 3 2 v2 |> ignore), [ "expand"; "dim 3"; "(2,)"; "0..1" ]
        "expand: negative copies", (fun () -> Expr.expand 0 -2 v2 |> ignore), [ "expand"; "-2" ]
        "broadcastTo: impossible",
        (fun () -> Expr.broadcastTo [| 2; 4 |] (Expr.var "v" [| 3 |]) |> ignore),
        [ "broadcastTo"; "(3,)"; "(2, 4)" ]
        "broadcastTo: negative target",
        (fun () -> Expr.broadcastTo [| -1 |] (Expr.var "v" [| 1 |]) |> ignore),
        [ "broadcastTo"; "(-1,)"; "negative" ]
        "powScalar: NaN exponent", (fun () -> Expr.powScalar nan v2 |> ignore), [ "powScalar"; "NaN"; "(2,)" ]
        "addN: shapes differ", (fun () -> Expr.addN [ v2; v2; Expr.var "y" [| 3 |] ] |> ignore), [ "addN"; "(2,)"; "(3,)" ]
        // Convolution and pooling (the conv group).
        "conv2d: input of rank 3",
        (fun () ->
            Expr.conv2d ConvSpec.Default2d (Expr.var "x" [| 2; 3; 4 |]) (Expr.var "w" [| 4; 3; 1; 1 |])
            |> ignore),
        [ "conv2d"; "input [N; C; H; W]"; "(2, 3, 4)" ]
        "conv2d: weight of rank 3",
        (fun () ->
            Expr.conv2d ConvSpec.Default2d (Expr.var "x" [| 2; 3; 4; 4 |]) (Expr.var "w" [| 4; 3; 3 |])
            |> ignore),
        [ "conv2d"; "weight [O; C / groups; h; w]"; "(4, 3, 3)" ]
        "conv2d: groups do not divide the input channels",
        (fun () ->
            Expr.conv2d { ConvSpec.Default2d with Groups = 2 } (Expr.var "x" [| 1; 3; 4; 4 |]) (Expr.var "w" [| 4; 1; 1; 1 |])
            |> ignore),
        [ "conv2d"; "groups 2"; "3 channels"; "(1, 3, 4, 4)" ]
        "conv2d: groups do not divide the output channels",
        (fun () ->
            Expr.conv2d { ConvSpec.Default2d with Groups = 2 } (Expr.var "x" [| 1; 4; 4; 4 |]) (Expr.var "w" [| 3; 2; 1; 1 |])
            |> ignore),
        [ "conv2d"; "groups 2"; "3 output channels"; "(3, 2, 1, 1)" ]
        "conv2d: zero groups",
        (fun () ->
            Expr.conv2d { ConvSpec.Default2d with Groups = 0 } (Expr.var "x" [| 1; 4; 4; 4 |]) (Expr.var "w" [| 4; 4; 1; 1 |])
            |> ignore),
        [ "conv2d"; "groups"; "got 0" ]
        "conv2d: weight channels do not match the input's per group",
        (fun () ->
            Expr.conv2d { ConvSpec.Default2d with Groups = 2 } (Expr.var "x" [| 1; 6; 4; 4 |]) (Expr.var "w" [| 4; 2; 3; 3 |])
            |> ignore),
        [ "conv2d"; "(4, 2, 3, 3)"; "2 input channels per group, expected 3"; "(1, 6, 4, 4)" ]
        "conv2d: kernel larger than the padded input (output size below 1)",
        (fun () ->
            Expr.conv2d { ConvSpec.Default2d with Padding = [ 1; 0 ] } (Expr.var "x" [| 1; 1; 2; 8 |]) (Expr.var "w" [| 1; 1; 5; 3 |])
            |> ignore),
        [ "conv2d"; "spatial axis 0"; "(1, 1, 2, 8)"; "extent 5"; "padded input 4"; "below 1" ]
        "conv2d: dilated kernel larger than the input",
        (fun () ->
            Expr.conv2d { ConvSpec.Default2d with Dilation = [ 1; 3 ] } (Expr.var "x" [| 1; 1; 5; 5 |]) (Expr.var "w" [| 1; 1; 3; 3 |])
            |> ignore),
        [ "conv2d"; "spatial axis 1"; "extent 7"; "dilation 3"; "padded input 5" ]
        "conv2d: zero stride",
        (fun () ->
            Expr.conv2d { ConvSpec.Default2d with Stride = [ 0; 1 ] } (Expr.var "x" [| 1; 1; 4; 4 |]) (Expr.var "w" [| 1; 1; 3; 3 |])
            |> ignore),
        [ "conv2d"; "stride must be positive"; "[0, 1]" ]
        "conv2d: negative dilation",
        (fun () ->
            Expr.conv2d { ConvSpec.Default2d with Dilation = [ 1; -1 ] } (Expr.var "x" [| 1; 1; 4; 4 |]) (Expr.var "w" [| 1; 1; 3; 3 |])
            |> ignore),
        [ "conv2d"; "dilation must be positive"; "[1, -1]" ]
        "conv2d: negative padding",
        (fun () ->
            Expr.conv2d { ConvSpec.Default2d with Padding = [ -1; 0 ] } (Expr.var "x" [| 1; 1; 4; 4 |]) (Expr.var "w" [| 1; 1; 3; 3 |])
            |> ignore),
        [ "conv2d"; "padding must be non-negative"; "[-1, 0]" ]
        "conv2d: an empty kernel",
        (fun () ->
            Expr.conv2d ConvSpec.Default2d (Expr.var "x" [| 1; 1; 4; 4 |]) (Expr.var "w" [| 1; 1; 0; 3 |])
            |> ignore),
        [ "conv2d"; "kernel size must be positive"; "[0, 3]" ]
        "conv2d: mixed dtypes",
        (fun () ->
            Expr.conv2d ConvSpec.Default2d (Expr.var "x" [| 1; 1; 4; 4 |]) (Expr.var32 "w" [| 1; 1; 3; 3 |])
            |> ignore),
        [ "conv2d"; "float64"; "float32" ]
        "conv2d: a null weight",
        (fun () -> Expr.conv2d ConvSpec.Default2d (Expr.var "x" [| 1; 1; 4; 4 |]) (Unchecked.defaultof<Expr>) |> ignore),
        [ "conv2d"; "operand is null" ]
        "conv1d: a 2-D spec",
        (fun () -> Expr.conv1d ConvSpec.Default2d (Expr.var "x" [| 1; 2; 6 |]) (Expr.var "w" [| 3; 2; 3 |]) |> ignore),
        [ "conv1d"; "stride [1, 1] has 2 entries, expected 1" ]
        "maxPool2d: padding over half the kernel",
        (fun () ->
            Expr.maxPool2d { PoolSpec.Create [ 2; 2 ] with Padding = [ 0; 2 ] } (Expr.var "x" [| 1; 1; 4; 4 |])
            |> ignore),
        [ "maxPool2d"; "padding [0, 2]"; "half the kernel [2, 2]" ]
        "maxPool2d: input of rank 3",
        (fun () -> Expr.maxPool2d (PoolSpec.Create [ 2; 2 ]) (Expr.var "x" [| 1; 4; 4 |]) |> ignore),
        [ "maxPool2d"; "[N; C; H; W]"; "(1, 4, 4)" ]
        "maxPool2d: kernel larger than the input",
        (fun () -> Expr.maxPool2d (PoolSpec.Create [ 3; 3 ]) (Expr.var "x" [| 1; 1; 2; 4 |]) |> ignore),
        [ "maxPool2d"; "spatial axis 0"; "(1, 1, 2, 4)"; "extent 3"; "padded input 2" ]
        "maxPool2d: a kernel of one axis",
        (fun () -> Expr.maxPool2d (PoolSpec.Create [ 2 ]) (Expr.var "x" [| 1; 1; 4; 4 |]) |> ignore),
        [ "maxPool2d"; "kernel [2]"; "expected 2" ]
        "avgPool2d: zero stride",
        (fun () ->
            Expr.avgPool2d { PoolSpec.Create [ 2; 2 ] with Stride = [ 2; 0 ] } (Expr.var "x" [| 1; 1; 4; 4 |])
            |> ignore),
        [ "avgPool2d"; "stride must be positive"; "[2, 0]" ]
        "globalAvgPool2d: input of rank 2", (fun () -> Expr.globalAvgPool2d x23 |> ignore), [ "globalAvgPool2d"; "[N; C; H; W]"; "(2, 3)" ]
        "unfold: a kernel of three axes",
        (fun () ->
            Expr.unfold
                { Kernel = [ 1; 1; 1 ]; Stride = [ 1; 1; 1 ]; Padding = [ 0; 0; 0 ]; Dilation = [ 1; 1; 1 ] }
                (Expr.var "x" [| 1; 1; 2; 2; 2 |])
            |> ignore),
        [ "unfold"; "[1, 1, 1]"; "1 or 2 spatial axes" ]
        "fold: columns not a multiple of the kernel's taps",
        (fun () ->
            Expr.fold
                [ 4; 4 ]
                { Kernel = [ 2; 2 ]; Stride = [ 1; 1 ]; Padding = [ 0; 0 ]; Dilation = [ 1; 1 ] }
                (Expr.var "c" [| 1; 6; 9 |])
            |> ignore),
        [ "fold"; "(1, 6, 9)"; "4 taps" ]
        "fold: the wrong number of windows",
        (fun () ->
            Expr.fold
                [ 4; 4 ]
                { Kernel = [ 2; 2 ]; Stride = [ 1; 1 ]; Padding = [ 0; 0 ]; Dilation = [ 1; 1 ] }
                (Expr.var "c" [| 1; 8; 10 |])
            |> ignore),
        [ "fold"; "(1, 8, 10)"; "10 windows"; "makes 9" ]
        "matmul: leading axes that differ at the front",
        (fun () -> Expr.matmul (Expr.var "a" [| 2; 3; 4 |]) (Expr.var "b" [| 2; 3; 4; 5 |]) |> ignore),
        [ "matmul"; "(2, 3, 4)"; "(2, 3, 4, 5)"; "missing at the front" ]
        // ops group: elementwise.
        "clamp: no bound", (fun () -> Expr.clamp None None x23 |> ignore), [ "clamp"; "at least one bound"; "(2, 3)" ]
        "clamp: min above max",
        (fun () -> Expr.clamp (Some 2.0) (Some 1.0) x23 |> ignore),
        [ "clamp"; "min=2"; "max=1"; "(2, 3)"; "min <= max" ]
        "clamp: NaN bound", (fun () -> Expr.clamp (Some nan) None v2 |> ignore), [ "clamp"; "min=NaN"; "(2,)" ]
        "leakyRelu: NaN slope", (fun () -> Expr.leakyRelu nan v2 |> ignore), [ "leakyRelu"; "slope"; "NaN"; "(2,)" ]
        "elu: infinite alpha", (fun () -> Expr.elu infinity x23 |> ignore), [ "elu"; "alpha"; "Infinity"; "(2, 3)" ]
        "maximum: shapes that do not broadcast",
        (fun () -> Expr.maximum x23 (Expr.var "y" [| 4 |]) |> ignore),
        [ "binary maximum"; "(2, 3)"; "(4,)" ]
        "where: shapes that do not broadcast",
        (fun () -> Expr.where (Expr.var "c" [| 2; 1 |]) x23 (Expr.var "y" [| 4 |]) |> ignore),
        [ "where"; "(2, 3)"; "(4,)"; "cannot be broadcast" ]
        "where: condition shape", (fun () -> Expr.where (Expr.var "c" [| 3; 3 |]) x23 x23 |> ignore), [ "where"; "(3, 3)"; "(2, 3)" ]
        "where: mixed dtypes", (fun () -> Expr.where v2 v2 (Expr.var32 "y" [| 2 |]) |> ignore), [ "where"; "float64"; "float32" ]
        // ops group: reductions.
        "sumAxes: a repeated axis", (fun () -> Expr.sumAxes [ 1; -1 ] false x23 |> ignore), [ "sum"; "[1, -1]"; "(2, 3)"; "repeat" ]
        "meanAxes: no axes", (fun () -> Expr.meanAxes [] true x23 |> ignore), [ "mean"; "at least one axis"; "(2, 3)" ]
        "sumAxes: axis out of range", (fun () -> Expr.sumAxes [ 0; 2 ] false x23 |> ignore), [ "sum"; "axis 2"; "(2, 3)" ]
        "variance: unbiased of one element",
        (fun () -> Expr.varianceAxes true [ 0 ] false (Expr.var "x" [| 1; 3 |]) |> ignore),
        [ "variance"; "unbiased"; "(1, 3)"; "hold 1" ]
        "std: unbiased of a scalar", (fun () -> Expr.std true (Expr.scalar 1.0) |> ignore), [ "std"; "unbiased"; "()" ]
        "logSumExp: axis out of range", (fun () -> Expr.logSumExpAxis 2 x23 |> ignore), [ "logSumExp"; "axis 2"; "(2, 3)" ]
        "where: a null operand", (fun () -> Expr.where v2 (Unchecked.defaultof<Expr>) v2 |> ignore), [ "where"; "operand is null" ]
        // shapeops group.
        "matmul: a vector whose length is not the matrix's rows",
        (fun () -> Expr.matmul (Expr.var "v" [| 3 |]) (Expr.var "y" [| 4; 2 |]) |> ignore),
        [ "matmul"; "(3,)"; "(4, 2)"; "its only axis if 1-D" ]
        "matmul: a matrix against a vector of another length",
        (fun () -> Expr.matmul x23 (Expr.var "v" [| 2 |]) |> ignore),
        [ "matmul"; "(2, 3)"; "(2,)"; "second-to-last" ]
        "matmul: batch axes that do not broadcast",
        (fun () -> Expr.matmul (Expr.var "a" [| 2; 1; 3; 4 |]) (Expr.var "b" [| 3; 3; 4; 5 |]) |> ignore),
        [ "matmul"; "(2, 1, 3, 4)"; "(3, 3, 4, 5)"; "must broadcast" ]
        "indexSelect: axis out of range",
        (fun () -> Expr.indexSelect 2 (Expr.var "i" [| 2 |]) x23 |> ignore),
        [ "indexSelect"; "axis 2"; "(2, 3)"; "-2..1" ]
        "indexSelect: from a scalar",
        (fun () -> Expr.indexSelect 0 (Expr.var "i" [| 2 |]) (Expr.scalar 1.0) |> ignore),
        [ "indexSelect"; "scalar"; "()" ]
        "indexSelect: mixed dtypes",
        (fun () -> Expr.indexSelect 1 (Expr.var32 "i" [| 2 |]) x23 |> ignore),
        [ "indexSelect"; "float64"; "float32" ]
        "evaluate: indexSelect index out of range along axis 1",
        (fun () ->
            Eval.evaluate
                (env [ "i", Tensor.ofArray [| 0.0; 3.0 |] ])
                (Expr.indexSelect 1 (Expr.var "i" [| 2 |]) (Expr.constant (ones [| 2; 3 |])))
            |> ignore),
        [ "gather"; "index 3"; "[0, 3)" ]
        "indexAdd: values without the indices' shape at the axis",
        (fun () -> Expr.indexAdd 1 4 (Expr.var "i" [| 2 |]) x23 |> ignore),
        [ "indexAdd"; "(2, 3)"; "(2,)"; "axis 1" ]
        "indexAdd: axis out of range",
        (fun () -> Expr.indexAdd 2 4 (Expr.var "i" [| 3 |]) x23 |> ignore),
        [ "indexAdd"; "(2, 3)"; "(3,)"; "axis 2" ]
        "indexAdd: negative rows", (fun () -> Expr.indexAdd 1 -2 (Expr.var "i" [| 3 |]) x23 |> ignore), [ "indexAdd"; "-2" ]
        "flip: a repeated axis", (fun () -> Expr.flip [ 1; -1 ] x23 |> ignore), [ "flip"; "[1, -1]"; "(2, 3)"; "repeat" ]
        "flip: axis out of range", (fun () -> Expr.flip [ 2 ] x23 |> ignore), [ "flip"; "axis 2"; "(2, 3)" ]
        "cumsum: axis out of range", (fun () -> Expr.cumsum 2 x23 |> ignore), [ "cumsum"; "axis 2"; "(2, 3)" ]
        "reverseCumsum: a scalar", (fun () -> Expr.reverseCumsum 0 (Expr.scalar 1.0) |> ignore), [ "reverseCumsum"; "axis 0"; "()" ]
        "padWith: negative width", (fun () -> Expr.padWith 1.0 1 2 -1 x23 |> ignore), [ "pad"; "after -1"; "(2, 3)"; "non-negative" ]
        "padWith: axis out of range", (fun () -> Expr.padWith 1.0 -3 1 1 x23 |> ignore), [ "pad"; "axis -3"; "(2, 3)" ]
        "stridedSlice: step 0",
        (fun () -> Expr.stridedSlice 1 None None 0 x23 |> ignore),
        [ "stridedSlice"; "step must not be 0"; "[None:None:0]"; "(2, 3)" ]
        "stridedSlice: stop past the end",
        (fun () -> Expr.stridedSlice 1 (Some 1) (Some 5) 2 x23 |> ignore),
        [ "stridedSlice"; "[1:5:2]"; "axis 1"; "(2, 3)"; "0 <= start <= stop <= length"; "not clipped" ]
        "stridedSlice: stop before start for a positive step",
        (fun () -> Expr.stridedSlice 1 (Some 2) (Some 1) 1 x23 |> ignore),
        [ "stridedSlice"; "[2:1:1]"; "(2, 3)" ]
        "stridedSlice: a backward slice from past the end",
        (fun () -> Expr.stridedSlice 0 (Some 2) None -1 x23 |> ignore),
        [ "stridedSlice"; "[2:None:-1]"; "axis 0"; "(2, 3)"; "-1 <= stop <= start < length" ]
        "stridedSlice: a negative start before the front",
        (fun () -> Expr.stridedSlice 1 (Some -4) None 1 x23 |> ignore),
        [ "stridedSlice"; "[-4:None:1]"; "(2, 3)" ]
        // One-shot evaluation.
        "evaluate: unbound variable", (fun () -> Eval.evaluate (env []) (v2 * 2.0) |> ignore), [ "evaluate"; "'x'"; "not bound"; "(2,)" ]
        "evaluate: wrong shape bound",
        (fun () -> Eval.evaluate (env [ "x", ones [| 3 |] ]) v2 |> ignore),
        [ "evaluate"; "'x'"; "(2,)"; "(3,)" ]
        "evaluate: wrong dtype bound",
        (fun () -> Eval.evaluate (env [ "x", Tensor.ones Float32 [| 2 |] ]) v2 |> ignore),
        [ "evaluate"; "'x'"; "float64"; "float32" ]
        "evaluate: gather index out of range",
        (fun () ->
            Eval.evaluate
                (env [ "i", Tensor.ofArray [| 0.0; 5.0 |] ])
                (Expr.gather (Expr.var "i" [| 2 |]) (Expr.constant (ones [| 3; 2 |])))
            |> ignore),
        [ "gather"; "index 5"; "[0, 3)" ]
        "evaluate: gather index not whole",
        (fun () ->
            Eval.evaluate (env [ "i", Tensor.ofArray [| 1.5 |] ]) (Expr.gather (Expr.var "i" [| 1 |]) (Expr.constant (ones [| 3; 2 |])))
            |> ignore),
        [ "gather"; "index 1.5" ]
        "add: a null operand (from C#)", (fun () -> Expr.add (Unchecked.defaultof<Expr>) v2 |> ignore), [ "binary +"; "operand is null" ]
        "matmul: a null operand", (fun () -> Expr.matmul v2 (Unchecked.defaultof<Expr>) |> ignore), [ "matmul"; "operand is null" ]
        "softmax: a null operand", (fun () -> Expr.softmax 0 (Unchecked.defaultof<Expr>) |> ignore), [ "softmax"; "operand is null" ]
        "concat: a null in the list", (fun () -> Expr.concat 0 [ v2; Unchecked.defaultof<Expr> ] |> ignore), [ "concat"; "operand is null" ]
        "evaluate: oneHot label out of range",
        (fun () -> Eval.evaluate (env [ "x", Tensor.ofArray [| 1.0; 4.0 |] ]) (Expr.oneHot 3 v2) |> ignore),
        [ "oneHot"; "label 4"; "[0, 3)" ]
        "evaluate: oneHot NaN label",
        (fun () -> Eval.evaluate (env [ "x", Tensor.ofArray [| nan; 0.0 |] ]) (Expr.oneHot 3 v2) |> ignore),
        [ "oneHot"; "label NaN" ]
        "evaluate: outputs mix dtypes",
        (fun () -> Eval.many (env []) [ Expr.scalar 1.0; Expr.scalarOf Float32 1.0 ] |> ignore),
        [ "evaluate"; "mix dtypes"; "float64"; "float32" ]
        "evaluate: no bindings object", (fun () -> Eval.evaluate null v2 |> ignore), [ "env" ]
        // Compiled plans.
        "Plan.Set: unknown variable", (fun () -> (planOf [ v2 * 2.0 ]).Set("y", ones [| 2 |])), [ "Plan.Set"; "'y'"; "it has x" ]
        "Plan.Set: wrong shape", (fun () -> (planOf [ v2 * 2.0 ]).Set("x", ones [| 3 |])), [ "Plan.Set"; "'x'"; "(2,)"; "(3,)" ]
        "Plan.Set: wrong dtype",
        (fun () -> (planOf [ v2 * 2.0 ]).Set("x", Tensor.ones Float32 [| 2 |])),
        [ "Plan.Set"; "'x'"; "float64"; "float32" ]
        "Plan.Set: wrong number of raw values",
        (fun () -> (planOf [ v2 * 2.0 ]).Set("x", [| 1.0; 2.0; 3.0 |])),
        [ "Plan.Set"; "'x'"; "(2,)"; "needs 2 values, got 3" ]
        "Plan.Set: raw values of the wrong dtype",
        (fun () -> (planOf [ v2 * 2.0 ]).Set("x", [| 1.0f; 2.0f |])),
        [ "Plan.Set"; "'x'"; "float64" ]
        "Plan.Execute: unset variable", (fun () -> (planOf [ v2 * 2.0 ]).Execute()), [ "Plan.Execute"; "x"; "no value" ]
        "Plan.Run: unset variable",
        (fun () -> (planOf [ v2 + Expr.var "y" [| 2 |] ]).Run(env [ "x", ones [| 2 |] ]) |> ignore),
        [ "Plan.Execute"; "y" ]
        "Plan.OutputScalar: not a scalar",
        (fun () -> (planOf [ v2 * 2.0 ]).OutputScalar 0 |> ignore),
        [ "Plan.OutputScalar"; "output 0"; "(2,)" ]
        "Plan.Output: index out of range", (fun () -> (planOf [ v2 * 2.0 ]).Output 3 |> ignore), [ "Plan.Output"; "output 3"; "1 outputs" ]
        "Plan.compile: nothing", (fun () -> Plan.compile [] |> ignore), [ "Plan.compile"; "nothing to compute" ]
        "Plan.compile: update of a non-variable",
        (fun () -> Plan.compileWithUpdates [] [ v2 * 2.0, v2 ] |> ignore),
        [ "Plan.compile"; "only variables"; "binary *" ]
        "Plan.compile: update of the wrong shape",
        (fun () -> Plan.compileWithUpdates [] [ v2, Expr.var "y" [| 3 |] ] |> ignore),
        [ "Plan.compile"; "'x'"; "(2,)"; "(3,)" ]
        "Plan.compile: mixed dtypes", (fun () -> Plan.compile [ v2; Expr.var32 "y" [| 2 |] ] |> ignore), [ "Plan.compile"; "mixes dtypes" ]
        "Plan.compile: one name, two shapes",
        (fun () -> Plan.compile [ Expr.sum v2 + Expr.sum (Expr.var "x" [| 3 |]) ] |> ignore),
        [ "Plan.compile"; "'x'"; "(2,)"; "(3,)" ]
        // Gradients.
        "Grad.wrt: non-scalar output", (fun () -> Grad.wrt [ x23 ] (Expr.tanh x23) |> ignore), [ "Grad.wrt"; "(2, 3)"; "seed" ]
        "Grad.vjp: seed of the wrong shape",
        (fun () -> Grad.vjp (Expr.var "s" [| 3 |]) [ v2 ] (v2 * 2.0) |> ignore),
        [ "Grad.vjp"; "(3,)"; "(2,)" ]
        "Grad.vjp: seed of the wrong dtype",
        (fun () -> Grad.vjp (Expr.var32 "s" [| 2 |]) [ v2 ] (v2 * 2.0) |> ignore),
        [ "Grad.vjp"; "float32"; "float64" ]
        // GEMM.
        "Blas.dgemm: a too small",
        (fun () ->
            Blas.dgemm (false, false, 2, 2, 3, 1.0, Array.zeroCreate 5, 0, 3, Array.zeroCreate 6, 0, 2, 0.0, Array.zeroCreate 4, 0, 2)),
        [ "Blas.dgemm"; "operand a"; "2x3"; "5 values" ]
        "Blas.dgemm: leading dimension below the row length",
        (fun () ->
            Blas.dgemm (false, false, 2, 2, 2, 1.0, Array.zeroCreate 4, 0, 1, Array.zeroCreate 4, 0, 2, 0.0, Array.zeroCreate 4, 0, 2)),
        [ "Blas.dgemm"; "operand a"; "leading dimension 1" ]
        "Blas.dgemm: c at an offset past the end",
        (fun () -> Blas.dgemm (false, false, 1, 1, 1, 1.0, [| 1.0 |], 0, 1, [| 1.0 |], 0, 1, 0.0, [| 0.0 |], 1, 1)),
        [ "Blas.dgemm"; "operand c"; "offset 1" ]
        "Blas.sgemm: negative size",
        (fun () ->
            Blas.sgemm (false, false, -1, 2, 2, 1.0f, Array.zeroCreate 4, 0, 2, Array.zeroCreate 4, 0, 2, 0.0f, Array.zeroCreate 4, 0, 2)),
        [ "Blas.sgemm"; "m=-1" ]
        "Blas.sgemm: null operand",
        (fun () -> Blas.sgemm (false, false, 1, 1, 1, 1.0f, null, 0, 1, [| 1.0f |], 0, 1, 0.0f, [| 0.0f |], 0, 1)),
        [ "a" ]
        // Layers (cnn group): hyper-parameters when a layer is made, input shapes when its graph is built.
        "BatchNorm2d: input of rank 2", (fun () -> buildLayer (NN.BatchNorm2d 3) [| 4; 3 |]), [ "BatchNorm2d(3)"; "rank 4"; "(4, 3)" ]
        "BatchNorm2d: wrong channel count",
        (fun () -> buildLayer (NN.BatchNorm2d 3) [| 4; 5; 2; 2 |]),
        [ "BatchNorm2d(3)"; "3 channels"; "(4, 5, 2, 2)" ]
        "BatchNorm1d: one value per channel in training",
        (fun () -> buildLayer (NN.BatchNorm1d 3) [| 1; 3 |]),
        [ "BatchNorm1d(3)"; "more than one value per channel"; "(1, 3)" ]
        "BatchNorm1d: momentum above 1", (fun () -> NN.BatchNorm1d(3, 1e-5, 1.5, true) |> ignore), [ "BatchNorm1d"; "momentum"; "1.5" ]
        "BatchNorm2d: zero eps", (fun () -> NN.BatchNorm2d(3, 0.0, 0.1, true) |> ignore), [ "BatchNorm2d"; "eps"; "got 0" ]
        "LayerNorm: trailing axes differ",
        (fun () -> buildLayer (NN.LayerNorm [| 3; 4 |]) [| 2; 4; 3 |]),
        [ "LayerNorm(3, 4)"; "(2, 4, 3)" ]
        "GroupNorm: channels not a multiple of groups", (fun () -> NN.GroupNorm(4, 6) |> ignore), [ "GroupNorm"; "6 channels in 4 groups" ]
        "GroupNorm: wrong channel count", (fun () -> buildLayer (NN.GroupNorm(2, 6)) [| 2; 4; 3 |]), [ "GroupNorm(2, 6)"; "(2, 4, 3)" ]
        "Flatten: start axis beyond the input", (fun () -> buildLayer (NN.Flatten 2) [| 4; 3 |]), [ "Flatten(2)"; "(4, 3)" ]
        "Model.WithBuffers: a buffer missing",
        (fun () -> NN.Model.Create(NN.BatchNorm1d 3, 0).WithBuffers(Map.empty) |> ignore),
        [ "Model.WithBuffers"; "no value for buffer 'num_batches_tracked'" ]
        "Scope.Buffer: no such buffer",
        (fun () ->
            buildLayer
                { new NN.Layer() with
                    member _.Forward(scope, _) = scope.Buffer "missing"
                    member _.Describe() = "reads a buffer it does not declare"
                }
                [| 2; 3 |]),
        [ "Scope.Buffer"; "no buffer 'missing'"; "it has none" ]
        "Scope.UpdateBuffer: a new value of another shape",
        (fun () -> buildLayer (bufferWriter 1) [| 2; 3 |]),
        [ "Scope.UpdateBuffer"; "buffer 'count'"; "float64 (2,)"; "float64 (2, 3)" ]
        "Scope.UpdateBuffer: one buffer updated twice",
        (fun () -> buildLayer (bufferWriter 2) [| 2 |]),
        [ "Scope.UpdateBuffer"; "buffer 'count'"; "updated twice" ]
        "Conv2d: groups that do not divide the channels",
        (fun () -> NN.Conv2d(3, 6, 3, 1, 0, 1, 2, true) |> ignore),
        [ "Conv2d"; "groups"; "3 input and 6 output"; "got 2" ]
        "Conv2d: an input with other channels than the weight's",
        (fun () -> buildLayer (NN.Conv2d(3, 6, 3)) [| 2; 4; 8; 8 |]),
        [ "conv2d"; "(6, 3, 3, 3)"; "(2, 4, 8, 8)" ]
        "Conv1d: negative padding", (fun () -> NN.Conv1d(2, 2, 3, 1, -1) |> ignore), [ "Conv1d"; "padding"; "(-1,)" ]
        "MaxPool2d: zero kernel", (fun () -> NN.MaxPool2d 0 |> ignore), [ "MaxPool2d"; "kernel (0, 0)" ]
        "MaxPool2d: input of rank 3", (fun () -> buildLayer (NN.MaxPool2d 2) [| 1; 4; 4 |]), [ "maxPool2d"; "(1, 4, 4)" ]
        "AdaptiveAvgPool2d: input of rank 3",
        (fun () -> buildLayer (NN.AdaptiveAvgPool2d(2, 3)) [| 1; 5; 6 |]),
        [ "AdaptiveAvgPool2d(2, 3)"; "rank 4"; "(1, 5, 6)" ]
    ]

let private byName = dict [ for (name, action, fragments) in cases -> name, (action, fragments) ]

// Empty tensors: a 0-length axis flows through every operation. Following NumPy, the sum of nothing is 0
// and the mean of nothing is NaN (0/0); the maximum of nothing has no value and is refused when built.

let private empty (shape: int[]) = Tensor.zeros Float64 shape

[<Tests>]
let tests =
    moduleTests
        "BadInputTests"
        [
            testCase "at least 40 bad inputs are listed, with distinct descriptions"
            <| fun () ->
                Expect.isTrue (cases.Length >= 40) (sprintf "%d cases" cases.Length)
                Expect.equal byName.Count cases.Length "byName.Count"
            yield!
                [
                    for name, action, fragments in cases ->
                        testCase (sprintf "a bad input fails with a clear message %s" name)
                        <| fun () ->
                            let error =
                                try
                                    action ()
                                    None
                                with e ->
                                    Some e
                            match error with
                            | None -> failtestf "%s: no exception" name
                            | Some e ->
                                match e with
                                | :? ArgumentException
                                | :? KeyNotFoundException
                                | :? InvalidOperationException -> ()
                                | _ ->
                                    failtestf
                                        "%s: %s is not an argument, key or invalid-operation error: %s"
                                        name
                                        (e.GetType().Name)
                                        e.Message
                                for fragment in fragments do
                                    Expect.isTrue
                                        (e.Message.Contains(fragment, StringComparison.Ordinal))
                                        (sprintf "%s: message lacks \"%s\": %s" name fragment e.Message)
                ]
            testCase "sum of an empty tensor is 0 and its mean is NaN"
            <| fun () ->
                let e = Expr.var "e" [| 0 |]
                let values = Eval.many (env [ "e", empty [| 0 |] ]) [ Expr.sum e; Expr.mean e ]
                Expect.equal (Tensor.item values[0]) 0.0 "Tensor.item values[0]"
                Expect.isTrue (Double.IsNaN(Tensor.item values[1])) "Double.IsNaN(Tensor.item values[1])"
            testCase "reductions over and along empty axes give the documented shapes and values"
            <| fun () ->
                let e = Expr.var "e" [| 2; 0 |]
                let values =
                    Eval.many
                        (env [ "e", empty [| 2; 0 |] ])
                        [ Expr.sumAxis 1 e; Expr.meanAxis 1 e; Expr.sumAxis 0 e; Expr.meanAxisKeep 0 e ]
                Expect.equal (values[0].ToArray()) ([| 0.0; 0.0 |]) "values[0].ToArray()"
                Expect.isTrue (values[1].ToArray() |> Array.forall Double.IsNaN) "values[1].ToArray() |> Array.forall Double.IsNaN"
                Expect.equal (values[2].Shape) ([| 0 |]) "values[2].Shape"
                Expect.equal (values[3].Shape) ([| 1; 0 |]) "values[3].Shape"
            testCase "elementwise, softmax, matmul, concat, gather and permute accept empty tensors"
            <| fun () ->
                let e = Expr.var "e" [| 0; 3 |]
                let m = Expr.var "m" [| 3; 0 |]
                let bindings = env [ "e", empty [| 0; 3 |]; "m", empty [| 3; 0 |] ]
                let outputs =
                    [
                        Expr.tanh e + Expr.constant (Tensor.ofArray [| 1.0; 2.0; 3.0 |])
                        Expr.softmax 1 e
                        Expr.logSoftmax 0 m
                        Expr.matmul e (Expr.constant (ones [| 3; 2 |]))
                        Expr.matmul m (Expr.constant (ones [| 0; 4 |]))
                        Expr.concat 0 [ e; Expr.constant (ones [| 1; 3 |]) ]
                        Expr.gather (Expr.constant (empty [| 0 |])) (Expr.constant (ones [| 4; 2 |]))
                        Expr.transpose e
                        Expr.pad 0 1 0 e
                    ]
                let values = Eval.many bindings outputs
                for (o, v) in List.zip outputs values do
                    Expect.equal v.Shape o.Shape "v.Shape"
                // (3, 0) x (0, 4) has no terms to add: zeros.
                Expect.equal (values[4].ToArray()) (Array.zeroCreate 12) "values[4].ToArray()"
                Expect.equal (values[5].ToArray()) ([| 1.0; 1.0; 1.0 |]) "values[5].ToArray()"
                Expect.equal (values[8].ToArray()) ([| 0.0; 0.0; 0.0 |]) "values[8].ToArray()"
            testCase "every elementwise operation accepts empty tensors"
            <| fun () ->
                let e = Expr.var "e" [| 0; 2 |]
                let row = Expr.constant (Tensor.ofArray [| 1.0; 2.0 |])
                let outputs =
                    [ for op in everyUnaryOp -> Expr.unary op e ]
                    @ [ for op in everyBinaryOp -> Expr.binary op e row ]
                    @ [ Expr.where e e row ]
                    @ [ Expr.powScalar 3.0 e; Expr.powScalar 2.0 e; Expr.addN [ e; e; e ] ]
                for v in Eval.many (env [ "e", empty [| 0; 2 |] ]) outputs do
                    Expect.equal v.Shape ([| 0; 2 |]) "v.Shape"
            testCase "gradients and plans work through empty tensors"
            <| fun () ->
                let e = Expr.var "e" [| 0; 3 |]
                let w = Expr.var "w" [| 3 |]
                let f = Expr.sum (Expr.sigmoid (e * w))
                let bindings = env [ "e", empty [| 0; 3 |]; "w", ones [| 3 |] ]
                let value, grads = Eval.valueAndGrad bindings [ e; w ] f
                Expect.equal (Tensor.item value) 0.0 "Tensor.item value"
                Expect.equal (grads[e].Shape) ([| 0; 3 |]) "grads[e].Shape"
                Expect.equal (grads[w].ToArray()) ([| 0.0; 0.0; 0.0 |]) "grads[w].ToArray()"
                let plan = Plan.compile [ f; (Grad.wrt [ w ] f)[w] ]
                let out = plan.Run bindings
                Expect.equal (Tensor.item out[0]) 0.0 "Tensor.item out[0]"
                Expect.equal (out[1].ToArray()) ([| 0.0; 0.0; 0.0 |]) "out[1].ToArray()"
            testCase "empty tensors print and convert"
            <| fun () ->
                Expect.equal (string (empty [| 0 |])) "tensor([], shape=(0,), dtype=float64)" "string (empty [| 0 |])"
                Expect.equal (string (empty [| 2; 0 |])) "tensor([[], []], shape=(2, 0), dtype=float64)" "string (empty [| 2; 0 |])"
                Expect.equal ((Tensor.toArray2D (empty [| 0; 5 |])).Length) 0 "(Tensor.toArray2D (empty [| 0; 5 |])).Length"
                Expect.equal
                    ((Tensor.reshape [| -1; 7 |] (empty [| 0 |])).Shape)
                    ([| 0; 7 |])
                    "(Tensor.reshape [| -1; 7 |] (empty [| 0 |])).Shape"
            // shapeops group.
            testCase "cumsum, flip, strided slices, padWith, indexSelect and indexAdd accept empty tensors, with gradients"
            <| fun () ->
                let e = Expr.var "e" [| 2; 0 |]
                let picks = Expr.constant (empty [| 0 |])
                let outputs =
                    [
                        Expr.cumsum 1 e
                        Expr.reverseCumsum 0 e
                        Expr.flip [ 0; 1 ] e
                        Expr.stridedSlice 1 None None -1 e
                        Expr.stridedSlice 0 (Some 1) (Some 1) 1 e
                        Expr.padWith 7.0 1 1 2 e
                        Expr.indexSelect 0 picks e
                        Expr.indexAdd 0 3 picks (Expr.indexSelect 0 picks e)
                    ]
                let bindings = env [ "e", empty [| 2; 0 |] ]
                let values = Eval.many bindings outputs
                Expect.equal
                    (values |> List.map (fun v -> v.Shape))
                    [ [| 2; 0 |]; [| 2; 0 |]; [| 2; 0 |]; [| 2; 0 |]; [| 0; 0 |]; [| 2; 3 |]; [| 0; 0 |]; [| 3; 0 |] ]
                    "shapes"
                Expect.equal (values[5].ToArray()) (Array.create 6 7.0) "the padding value"
                let gradient = Eval.evaluate bindings (Grad.grad e (Expr.sum (Expr.addN (List.map Expr.sum outputs))))
                Expect.equal gradient.Shape [| 2; 0 |] "the gradient's shape"
        ]
