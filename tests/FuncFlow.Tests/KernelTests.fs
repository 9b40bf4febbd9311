/// Fast paths of the kernels against their definitions, written out here element by element.
module FuncFlow.Tests.KernelTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open FuncFlow
open FuncFlow.Tests.Support

/// permute by its definition: output element at index i is the source element at index i with its axes put back.
let private permuteByDefinition (src: float[]) (srcShape: int[]) (perm: int[]) : float[] =
    let srcStrides = Shape.strides srcShape
    let outShape = perm |> Array.map (fun p -> srcShape[p])
    let outStrides = Shape.strides outShape
    Array.init src.Length (fun k ->
        perm
        |> Array.mapi (fun i p -> (k / outStrides[i]) % outShape[i] * srcStrides[p])
        |> Array.sum
        |> fun off -> src[off])

/// A shape of rank 1-5 (dimensions 1-6, so size-1 axes are common) and a permutation of its axes.
let private genPermuteCase: Gen<int[] * int[]> =
    gen {
        let! rank = Gen.choose (1, 5)
        let! shape = genShape rank 6
        let! keys = Gen.arrayOfLength rank (Gen.choose (0, 1000))
        let perm = Array.init rank id |> Array.sortBy (fun i -> keys[i], i)
        return shape, perm
    }

/// softmax (or log-softmax) by its definition, in float64, over the middle axis of [outer; n; inner].
let private softmaxByDefinition (log: bool) (src: float[]) (outer: int) (n: int) (inner: int) : float[] =
    let dst = Array.zeroCreate src.Length
    for o in 0 .. outer - 1 do
        for j in 0 .. inner - 1 do
            let at k = (o * n + k) * inner + j
            let m = Seq.init n (fun k -> src[at k]) |> Seq.max
            let s = Seq.init n (fun k -> exp (src[at k] - m)) |> Seq.sum
            for k in 0 .. n - 1 do
                dst[at k] <- if log then src[at k] - m - Math.Log s else exp (src[at k] - m) / s
    dst

/// [outer; n; inner] with outer and n 1-7 and inner 1 (the last axis) half the time, and logits up to +-40.
let private genSoftmaxCase: Gen<bool * int * int * int * float[]> =
    gen {
        let! log = Gen.elements [ false; true ]
        let! outer = Gen.choose (1, 7)
        let! n = Gen.choose (1, 7)
        let! inner = Gen.oneof [ Gen.constant 1; Gen.choose (2, 9) ]
        let! values = Gen.arrayOfLength (outer * n * inner) (genFloat -40.0 40.0)
        return log, outer, n, inner, values
    }

[<Tests>]
let tests =
    moduleTests
        "KernelTests"
        [
            testCase "collapsing a permutation drops size-1 axes and merges axes that stay adjacent and in order"
            <| fun () ->
                let collapse shape perm = Kernels<float>.CollapsePermutation(shape, perm)
                Expect.equal (collapse [| 2; 3; 4 |] [| 1; 2; 0 |]) ([| 2; 12 |], [| 1; 0 |]) "[2;3;4] by [1;2;0]"
                Expect.equal (collapse [| 32; 64; 256 |] [| 1; 0; 2 |]) ([| 32; 64; 256 |], [| 1; 0; 2 |]) "batch-first to time-first"
                Expect.equal
                    (collapse [| 2; 1; 3; 5 |] [| 1; 3; 0; 2 |])
                    ([| 6; 5 |], [| 1; 0 |])
                    "axes 0 and 2 adjacent once axis 1 (size 1) is dropped"
                Expect.equal (collapse [| 2; 3; 5; 7 |] [| 3; 1; 0; 2 |]) ([| 2; 3; 5; 7 |], [| 3; 1; 0; 2 |]) "nothing to merge"
                Expect.equal (collapse [| 4; 5; 6 |] [| 0; 1; 2 |]) ([| 120 |], [| 0 |]) "the identity"
                Expect.equal (collapse [| 1; 1 |] [| 1; 0 |]) ([||], [||]) "only size-1 axes"
            testPropertyFrom
                "permute equals its definition for random shapes and permutations (float64)"
                300
                genPermuteCase
                (fun (shape, perm) ->
                    let src = Array.init (Shape.size shape) (fun i -> float i * 0.5 - 3.0)
                    let dst = Array.create src.Length nan
                    Kernels<float>.Permute(src, shape, perm, dst)
                    Expect.equal dst (permuteByDefinition src shape perm) (sprintf "shape %A perm %A" shape perm))
            testPropertyFrom
                "permute equals its definition for random shapes and permutations (float32)"
                100
                genPermuteCase
                (fun (shape, perm) ->
                    let src = Array.init (Shape.size shape) float32
                    let dst = Array.create src.Length nanf
                    Kernels<float32>.Permute(src, shape, perm, dst)
                    Expect.equal
                        (Array.map float dst)
                        (permuteByDefinition (Array.map float src) shape perm)
                        (sprintf "shape %A perm %A" shape perm))
            testCase "permute: larger cases of each path (runs of a row, a blocked transpose, a batch of transposes)"
            <| fun () ->
                for shape, perm in
                    [
                        [| 33; 17; 40 |], [| 1; 0; 2 |]
                        [| 70; 45 |], [| 1; 0 |]
                        [| 3; 35; 66 |], [| 0; 2; 1 |]
                        [| 5; 1; 7; 3; 2 |], [| 3; 0; 4; 2; 1 |]
                    ] do
                    let src = Array.init (Shape.size shape) (fun i -> float i + 0.25)
                    let dst = Array.zeroCreate src.Length
                    Kernels<float>.Permute(src, shape, perm, dst)
                    Expect.equal dst (permuteByDefinition src shape perm) (sprintf "shape %A perm %A" shape perm)
            testPropertyFrom
                "softmax and log-softmax equal their definition along the last and a middle axis (float64)"
                200
                genSoftmaxCase
                (fun (log, outer, n, inner, src) ->
                    let dst = Array.zeroCreate src.Length
                    Kernels<float>.Softmax(log, src, outer, n, inner, dst)
                    assertClose 1e-13 (softmaxByDefinition log src outer n inner) dst)
            testPropertyFrom
                "softmax and log-softmax equal their definition along the last and a middle axis (float32)"
                100
                genSoftmaxCase
                (fun (log, outer, n, inner, src) ->
                    let src32 = Array.map float32 src
                    let dst = Array.zeroCreate src.Length
                    Kernels<float32>.Softmax(log, src32, outer, n, inner, dst)
                    // float32 rounding of logits up to 40 in magnitude: the log-softmax's absolute error grows with them.
                    assertClose 1e-5 (softmaxByDefinition log (Array.map float src32) outer n inner) (Array.map float dst))
            testCase "softmax of large logits does not overflow, along either axis"
            <| fun () ->
                let src = [| 1000.0; 999.0; -1000.0; 1001.0; 1000.0; 998.0 |]
                for log in [ false; true ] do
                    for outer, n, inner in [ (2, 3, 1); (1, 3, 2); (1, 2, 3) ] do
                        let dst = Array.zeroCreate src.Length
                        Kernels<float>.Softmax(log, src, outer, n, inner, dst)
                        assertClose 1e-13 (softmaxByDefinition log src outer n inner) dst
        ]
