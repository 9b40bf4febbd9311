/// The specialised convolution and pooling kernels (stride-1 im2col/col2im rows as block copies and vector adds,
/// 2x2 stride-2 max pooling in vectors) against the general kernels they stand in for, bit for bit, on random
/// geometries with odd sizes, padding, dilation, ties, NaN and infinities, run whole and in two halves.
module FuncFlow.Tests.KernelFastPathTests

open System
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

// Bits of each element, so that NaNs (and their payloads) and signed zeros compare exactly.
let private bits (xs: 'T[]) : int64[] =
    xs
    |> Array.map (fun x ->
        match box x with
        | :? float32 as f -> int64 (BitConverter.SingleToInt32Bits f)
        | :? float as d -> BitConverter.DoubleToInt64Bits d
        | _ -> failwith "bits: float or float32 only")

// Values from a small set, so that windows hold ties, NaNs, infinities and zeros of both signs.
let private awkward = [| nan; -infinity; infinity; -0.0; 0.0; 1.0; 2.0; -1.0; 0.5 |]

// Runs a job over [0, planes): the reference whole, the fast path as [split, planes) then [0, split), two pieces as
// Halves may run them (the second first, so that a half writing outside its planes is overwritten wrongly).
let private over (planes: int) (fast: bool) (run: int -> int -> unit) =
    if fast then
        run (planes / 2) planes
        run 0 (planes / 2)
    else
        run 0 planes

let private im2colAgrees<'T when 'T :> Numerics.IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType>
    (rnd: Random)
    =
    let spatial = rnd.Next(1, 3)
    let pick lo hi = List.init spatial (fun _ -> rnd.Next(lo, hi + 1))
    let kernel, padding, dilation = pick 1 5, pick 0 2, pick 1 2
    // Stride 1 along the width (the fast path's case); any stride along the height.
    let stride = if spatial = 2 then [ rnd.Next(1, 3); 1 ] else [ 1 ]
    let size =
        List.init spatial (fun i -> max 1 (dilation[i] * (kernel[i] - 1) + 1 - 2 * padding[i]) + rnd.Next(0, 25))
    let window = { Kernel = kernel; Stride = stride; Padding = padding; Dilation = dilation }
    let image = Array.ofList ([ rnd.Next(1, 3); rnd.Next(1, 4) ] @ size)
    let g = Window2d.Of(image, window)
    let imageValues =
        Array.init (Shape.size image) (fun _ -> 'T.CreateTruncating(rnd.NextDouble() * 4.0 - 2.0))
    let colsLength = g.Planes * g.KH * g.KW * g.OH * g.OW
    let colValues = Array.init colsLength (fun _ -> 'T.CreateTruncating(rnd.NextDouble() * 4.0 - 2.0))
    let what = sprintf "%s image %A window %A" typeof<'T>.Name image window
    Expect.equal g.SW 1 (what + ": a stride-1 row")
    for fold in [ false; true ] do
        let run (contiguous: bool) =
            // Stale values in the outputs, so that a fast path that skips an element is caught.
            let image = if fold then Array.create imageValues.Length 'T.NaN else Array.copy imageValues
            let cols = if fold then Array.copy colValues else Array.create colsLength 'T.NaN
            let args = { Fold = fold; Image = image; Cols = cols; Window = g }
            over g.Planes contiguous (fun first stop -> Kernels<'T>.Im2ColRows(args, first, stop, contiguous))
            if fold then image else cols
        let expected, actual = run false, run true
        Expect.isFalse (Array.exists 'T.IsNaN expected) (what + ": the reference writes every element")
        Expect.equal (bits actual) (bits expected) (sprintf "%s, fold %b: block rows give the element loop's bits" what fold)

let private poolAgrees (rnd: Random) (direct: bool) =
    let lanes = Numerics.Vector<float32>.Count
    let h = 2 * rnd.Next(1, 8)
    let w = 2 * rnd.Next(lanes / 2, lanes + 3)
    let image = [| rnd.Next(1, 3); rnd.Next(1, 4); h; w |]
    let window = { Kernel = [ 2; 2 ]; Stride = [ 2; 2 ]; Padding = [ 0; 0 ]; Dilation = [ 1; 1 ] }
    let g = Window2d.Of(image, window)
    let what = sprintf "image %A" image
    Expect.isTrue (Kernels<float32>.TilesInPairs g) (what + ": the 2x2 fast path's case")
    let pooled = g.Planes * g.OH * g.OW
    let draw n = Array.init n (fun _ -> float32 awkward[rnd.Next awkward.Length])
    let keys = draw (Shape.size image)
    let imageValues = if direct then keys else draw keys.Length
    let grads = Array.init pooled (fun i -> float32 (i + 1) * 0.25f)
    for scatter in [ false; true ] do
        let run (fast: bool) =
            let dst = Array.create (if scatter then keys.Length else pooled) Single.NaN
            let args =
                {
                    Scatter = scatter
                    Keys = keys
                    Values = (if scatter then grads else imageValues)
                    Dst = dst
                    Window = g
                }
            over g.Planes fast (fun first stop ->
                if fast then
                    Kernels<float32>.MaxPoolPlanes(args, first, stop)
                else
                    Kernels<float32>.MaxPoolGeneral(args, first, stop))
            dst
        let expected, actual = run false, run true
        Expect.equal (bits actual) (bits expected) (sprintf "%s, scatter %b, keys as values %b: as the general kernel" what scatter direct)
        if scatter then
            // Every window's gradient lands once (the pooled values are distinct and nonzero).
            Expect.equal (actual |> Array.filter (fun v -> v <> 0.0f) |> Array.sort) grads (what + ": one pick per window")

[<Tests>]
let tests =
    moduleTests
        "KernelFastPathTests"
        [
            testCase "im2col and col2im: stride-1 rows as block copies and vector adds give the element loop's bits"
            <| fun () ->
                let rnd = Random 31
                for _ in 1..150 do
                    im2colAgrees<float32> rnd
                    im2colAgrees<float> rnd
            testCase "max pooling 2x2 stride 2 in vectors: the general kernel's picks and gradients, with NaN, infinities, ±0 and ties"
            <| fun () ->
                let rnd = Random 32
                for _ in 1..150 do
                    poolAgrees rnd true
                    poolAgrees rnd false
            testCase "relu's gradient step(x) * g in one pass equals Eval bit for bit, with NaN, infinities and signed zeros"
            <| fun () ->
                let rnd = Random 33
                let special = [| nan; infinity; -infinity; 0.0; -0.0; 1e-30; -2.5 |]
                let draw n =
                    Array.init n (fun _ -> if rnd.Next 3 = 0 then special[rnd.Next special.Length] else rnd.NextDouble() * 4.0 - 2.0)
                // One block, several blocks with a short last one, and a length below a vector.
                for dtype in [ Float64; Float32 ] do
                    for n in [ 5; 1024; 2053; 70001 ] do
                        let x, g = Expr.varOf dtype "x" [| n |], Expr.varOf dtype "g" [| n |]
                        let values =
                            [
                                "x", Tensor.cast dtype (Tensor.create [| n |] (draw n))
                                "g", Tensor.cast dtype (Tensor.create [| n |] (draw n))
                            ]
                        for name, f in [ "step x * g", Expr.step x * g; "g * step x", g * Expr.step x ] do
                            let plan = Plan.compile [ f ]
                            Expect.equal plan.InstructionCount 1 (name + ": one fused instruction")
                            for (v, t) in values do
                                plan.Set(v, t)
                            plan.Execute()
                            let expected = Eval.evaluate (Eval.bindings values) f
                            let what = sprintf "%s, %s, %d elements" name dtype.Name n
                            Expect.equal (bits ((plan.Output 0).ToArray())) (bits (expected.ToArray())) what
            testCase "the 2x2 fast path is not taken where its tiling does not hold"
            <| fun () ->
                let lanes = Numerics.Vector<float32>.Count
                let window k s p = { Kernel = [ k; k ]; Stride = [ s; s ]; Padding = [ p; p ]; Dilation = [ 1; 1 ] }
                let tiles (image: int[]) w = Kernels<float32>.TilesInPairs(Window2d.Of(image, w))
                Expect.isTrue (tiles [| 1; 1; 4; 2 * lanes |] (window 2 2 0)) "2x2 stride 2 over an even image"
                Expect.isFalse (tiles [| 1; 1; 5; 2 * lanes |] (window 2 2 0)) "an odd height"
                Expect.isFalse (tiles [| 1; 1; 4; 2 * lanes + 1 |] (window 2 2 0)) "an odd width"
                Expect.isFalse (tiles [| 1; 1; 4; 2 * lanes |] (window 2 2 1)) "padding"
                Expect.isFalse (tiles [| 1; 1; 4; 2 * lanes |] (window 3 2 0)) "a 3x3 window"
                Expect.isFalse (tiles [| 1; 1; 4; 2 * lanes |] (window 2 1 0)) "stride 1"
                Expect.isFalse (Kernels<float>.TilesInPairs(Window2d.Of([| 1; 1; 4; 2 * lanes |], window 2 2 0))) "float64"
        ]
