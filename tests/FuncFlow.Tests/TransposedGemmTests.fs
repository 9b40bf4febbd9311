/// The transpose of a matrix product runs as one GEMM of the swapped operands (B^T A^T), so Linear's weight
/// gradient with the weight stored [out, in] costs no transpose copy.
module FuncFlow.Tests.TransposedGemmTests

open Expecto
open FuncFlow
open FuncFlow.NN
open FuncFlow.Tests.Support

/// A (or A^T stored as [k; m]) times B (or B^T stored as [n; k]), as expressions over variables.
let private operands (dtype: DType) (transA: bool) (transB: bool) =
    let m, k, n = 3, 5, 4
    let a = Expr.varOf dtype "a" (if transA then [| k; m |] else [| m; k |])
    let b = Expr.varOf dtype "b" (if transB then [| n; k |] else [| k; n |])
    let env =
        Eval.bindings
            [
                "a", Tensor.cast dtype (Tensor.randNormal Float64 1 a.Shape 0.0 1.0)
                "b", Tensor.cast dtype (Tensor.randNormal Float64 2 b.Shape 0.0 1.0)
            ]
    (if transA then Expr.transpose a else a), (if transB then Expr.transpose b else b), a, b, env

[<Tests>]
let tests =
    moduleTests
        "TransposedGemmTests"
        [
            testCase "rewrite makes the transpose of a product read only there one GEMM of the swapped operands"
            <| fun () ->
                let x, g = Expr.var "x" [| 6; 3 |], Expr.var "g" [| 6; 2 |]
                let product = Expr.matmul (Expr.transpose x) g
                let gradient = Expr.transpose product
                use s = Schedule.Build [| gradient |]
                let pos (e: Expr) = s.Position e
                let rewritten = PlanCompiler.rewrite s
                Expect.equal rewritten.Kinds[pos gradient] (TransposedGemm(true, false)) "g^T x"
                Expect.equal rewritten.Reads[pos gradient] [| pos g; pos x |] "reads [g; x]"
                Expect.equal rewritten.Kinds[pos product] Folded "the product"
                Expect.equal (Plan.compile [ gradient ]).InstructionCount 1 "one instruction"
            testCase "Linear's weight gradient, with the weight stored [out, in], is one GEMM with no transpose copy"
            <| fun () ->
                let model = Model.Create(Linear(3, 2), 0)
                let graph = model.Build(Expr.var "input" [| 5; 3 |], true)
                let loss = Losses.mse graph.Output (Expr.var "target" [| 5; 2 |])
                let w = graph.Parameters["weight"]
                let gradient = (Grad.wrt [ w ] loss)[w]
                use s = Schedule.Build [| gradient |]
                let lowered = PlanCompiler.rewrite s
                let kinds = lowered.Kinds
                // g^T x: Grad builds (x^T g)^T as g^T x^T^T for a product's gradient, which the flags read; a
                // transposed product left in the graph would be a TransposedGemm.
                match kinds[s.Position gradient] with
                | TransposedGemm _
                | Gemm _ -> ()
                | kind -> failtestf "the weight's gradient runs as %A" kind
                // What runs: a transpose read only through a GEMM flag is in the schedule but never runs.
                for k in (PlanCompiler.liveness lowered).Running do
                    match s.Order[k].Op, kinds[k] with
                    | Op.Permute _, Kernel -> failtestf "a transpose is copied: %s" (Shape.show s.Order[k].ShapeRef)
                    | _ -> ()
            testCase "every flag combination gives the transpose evaluation gives, in both dtypes"
            <| fun () ->
                for dtype in [ Float64; Float32 ] do
                    for transA in [ false; true ] do
                        for transB in [ false; true ] do
                            let a, b, _, _, env = operands dtype transA transB
                            let y = Expr.transpose (Expr.matmul a b)
                            let plan = Plan.compile [ y ]
                            Expect.equal plan.InstructionCount 1 (sprintf "%A %b %b: one GEMM" dtype transA transB)
                            let expected = (Eval.evaluate env y).ToArray()
                            assertClose (if dtype = Float64 then 1e-14 else 1e-6) expected ((List.head (Plan.run env plan)).ToArray())
            testCase "a product read elsewhere too (as an output, or through another transpose's flag) is left as it was"
            <| fun () ->
                let a, b, _, _, env = operands Float64 false true
                let product = Expr.matmul a b
                let y = Expr.transpose product
                let both = Plan.compile [ y; product ]
                match Plan.run env both with
                | [ yValue; productValue ] ->
                    assertClose 1e-14 ((Eval.evaluate env y).ToArray()) (yValue.ToArray())
                    assertClose 1e-14 ((Eval.evaluate env product).ToArray()) (productValue.ToArray())
                | values -> failtestf "two outputs expected, got %d" values.Length
                let c = Expr.var "c" [| 3; 2 |]
                let env =
                    Eval.bindings
                        [
                            yield! env |> Seq.map (fun kv -> kv.Key, kv.Value)
                            "c", Tensor.randNormal Float64 3 [| 3; 2 |] 0.0 1.0
                        ]
                // y c reads the product through y's flag: the product must still run.
                let z = Expr.matmul y c
                assertClose 1e-14 ((Eval.evaluate env z).ToArray()) ((List.head (Plan.run env (Plan.compile [ z ]))).ToArray())
        ]
