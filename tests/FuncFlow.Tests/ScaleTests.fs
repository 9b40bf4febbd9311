/// Scale: deep chains and wide fan-ins build, evaluate and differentiate without recursion and in bounded
/// memory; a 10-million-element tensor goes through a forward and a backward pass.
module FuncFlow.Tests.ScaleTests

open System
open System.Threading
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private mib = 1024L * 1024L

/// Runs f while sampling the managed heap, and returns f's result and the largest growth seen.
let private peakGrowth (f: unit -> 'a) : 'a * int64 =
    let baseline = GC.GetTotalMemory true
    let mutable peak = baseline
    use stop = new ManualResetEventSlim(false)
    let sampler =
        Thread(fun () ->
            while not (stop.Wait 5) do
                peak <- max peak (GC.GetTotalMemory false))
    sampler.Start()
    let result =
        try
            f ()
        finally
            stop.Set()
            sampler.Join()
    result, peak - baseline

let private steps = 100_000
let private width = 2_000

[<Tests>]
let tests =
    moduleTests
        "ScaleTests"
        [
            testCase "a chain of 100000 operations builds, evaluates and differentiates in bounded memory"
            <| fun () ->
                let x = Expr.var "x" [| width |]
                let mutable y = x
                for i in 1..steps do
                    y <- if i % 2 = 0 then y * 1.00001 else y + 0.5
                let f = Expr.sum y
                let g = Grad.grad x f
                let input = Tensor.arange Float64 width
                // Each of the 200000 forward and backward values holds 16 KB: kept alive, they would need over 3 GB.
                let values, growth = peakGrowth (fun () -> Eval.many (Eval.bindings [ "x", input ]) [ f; g ])
                Expect.isTrue (growth < 1024L * mib) (sprintf "the heap grew by %d MiB" (growth / mib))
                let mutable expected = 0.0
                let mutable slope = 1.0
                for i in 1..steps do
                    if i % 2 = 0 then
                        expected <- expected * 1.00001
                        slope <- slope * 1.00001
                    else
                        expected <- expected + 0.5
                // The chain is affine with slope `slope`; `expected` is its value at 0.
                let sumInputs = float (width * (width - 1) / 2)
                expectWithin
                    (1e-6 * abs (float width * expected))
                    (float width * expected + slope * sumInputs)
                    (Tensor.item values[0])
                    "the chain's sum"
                for d in values[1].ToArray() do
                    expectWithin 1e-9 slope d "the chain's gradient"
                let plan = Plan.compile [ f; g ]
                let planned = plan.Run(Eval.bindings [ "x", input ])
                Expect.equal (Tensor.item planned[0]) (Tensor.item values[0]) "Tensor.item planned[0]"
            testCase "a fan-in of 100000 uses of one variable builds, evaluates and differentiates"
            <| fun () ->
                let x = Expr.var "x" [| 4 |]
                let f = Expr.sum (Expr.addN [ for i in 1..steps -> x * float (i % 7) ])
                let g = Grad.grad x f
                let values = Eval.many (Eval.bindings [ "x", Tensor.ofArray [| 1.0; 2.0; 3.0; 4.0 |] ]) [ f; g ]
                let weight = Seq.sum (seq { for i in 1..steps -> float (i % 7) })
                Expect.equal (Tensor.item values[0]) (weight * 10.0) "Tensor.item values[0]"
                Expect.equal (values[1].ToArray()) (Array.create 4 weight) "values[1].ToArray()"
                // The same fan-in folded into a chain of additions.
                let folded =
                    Seq.fold (fun acc i -> acc + x * float (i % 7)) (Expr.scalar 0.0) (seq { 1..steps }) |> Expr.sum
                let gf = Grad.grad x folded
                Expect.equal
                    ((Eval.evaluate (Eval.bindings [ "x", Tensor.zeros Float64 [| 4 |] ]) gf).ToArray())
                    (Array.create 4 weight)
                    "(Eval.evaluate (Eval.bindings [ \"x\", Tensor.zeros Float64 [| 4 |] ]) gf).ToArray()"
            testCase "ten million float32 elements go forward and backward"
            <| fun () ->
                let n = 10_000_000
                let x = Expr.var32 "x" [| n |]
                let w = Expr.var32 "w" [||]
                let f = Expr.sum (Expr.sigmoid (x * w))
                let grads = Grad.wrt [ x; w ] f
                let xs = Tensor.randNormal Float32 42 [| n |] 0.0 1.0
                let wv = 0.7
                let values =
                    Eval.many (Eval.bindings [ "x", xs; "w", Tensor.scalarOf Float32 wv ]) [ f; grads[x]; grads[w] ]
                let xv = xs.ToArray32()
                let w32 = float32 wv
                let sigmoid (i: int) = 1.0 / (1.0 + Math.Exp(-(float (xv[i] * w32))))
                let mutable sum = 0.0
                let mutable dw = 0.0
                for i in 0 .. n - 1 do
                    let s = sigmoid i
                    sum <- sum + s
                    dw <- dw + float xv[i] * s * (1.0 - s)
                expectWithin (1e-4 * sum) sum (Tensor.item values[0]) "sum of sigmoid(x * w)"
                expectWithin (1e-3 * abs dw + 1.0) dw (Tensor.item values[2]) "gradient with respect to w"
                let dx = values[1].ToArray32()
                for i in [ 0; 1; 12345; n / 2; n - 1 ] do
                    let s = sigmoid i
                    expectWithin 1e-6 (wv * s * (1.0 - s)) (float dx[i]) (sprintf "gradient with respect to x[%d]" i)
        ]
