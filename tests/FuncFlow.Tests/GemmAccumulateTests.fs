/// c + A B runs as one GEMM with beta = 1 onto c's values (in c's own buffer when nothing else reads c), so a
/// recurrent step's input projection plus its recurrent product, or a bias plus a projection, needs no add pass.
module FuncFlow.Tests.GemmAccumulateTests

open Expecto
open FuncFlow
open FuncFlow.Tests.Support

/// Variables x [4; 3], w [3; 5], v [4; 5], bias [5] of a dtype, with random values.
let private setup (dtype: DType) =
    let x, w = Expr.varOf dtype "x" [| 4; 3 |], Expr.varOf dtype "w" [| 3; 5 |]
    let v, bias = Expr.varOf dtype "v" [| 4; 5 |], Expr.varOf dtype "bias" [| 5 |]
    let env =
        Eval.bindings
            [
                for i, e in List.indexed [ x; w; v; bias ] ->
                    (Expr.tryName e).Value, Tensor.cast dtype (Tensor.randNormal Float64 (i + 1) e.Shape 0.0 1.0)
            ]
    x, w, v, bias, env

/// How the rewrite lowers e, in a schedule of the roots.
let private kindOf (roots: Expr list) (e: Expr) =
    use s = Schedule.Build(Array.ofList roots)
    let lowered = PlanCompiler.rewrite s
    lowered.Kinds[s.Position e], (fun (n: Expr) -> s.Position n)

/// The plan's outputs, run twice (a plan that wrote over a variable would give other values the second time),
/// against one-shot evaluation.
let private agrees (tol: float) (values: System.Collections.Generic.IReadOnlyDictionary<string, Tensor>) (roots: Expr list) =
    let plan = Plan.compile roots
    let names = Graph.variables roots |> List.map (fun v -> (Expr.tryName v).Value) |> set
    let env =
        Eval.bindings
            [
                for kv in values do
                    if names.Contains kv.Key then kv.Key, kv.Value
            ]
    for _ in 1..2 do
        List.zip roots (Plan.run env plan)
        |> List.iter (fun (root, value) -> assertClose tol ((Eval.evaluate env root).ToArray()) (value.ToArray()))
    plan

[<Tests>]
let tests =
    moduleTests
        "GemmAccumulateTests"
        [
            testCase "a product plus a value read only there: one GEMM onto that value's buffer"
            <| fun () ->
                let x, w, v, _, env = setup Float64
                let c = Expr.exp v
                let product = Expr.matmul x w
                let sum = product + c
                let kind, pos = kindOf [ sum ] sum
                Expect.equal kind (GemmAccumulate(false, false, pos product, true)) "in place"
                let plan = agrees 1e-14 env [ sum ]
                Expect.equal plan.InstructionCount 2 "exp, then the GEMM"
            testCase "either order, with transposed operands read through the GEMM's flags, in both dtypes"
            <| fun () ->
                for dtype in [ Float64; Float32 ] do
                    let x, _, v, _, env = setup dtype
                    let wT = Expr.transpose (Expr.varOf dtype "wt" [| 5; 3 |])
                    let env =
                        Eval.bindings
                            [
                                yield! env |> Seq.map (fun kv -> kv.Key, kv.Value)
                                "wt", Tensor.cast dtype (Tensor.randNormal Float64 9 [| 5; 3 |] 0.0 1.0)
                            ]
                    let sum = Expr.tanh v + Expr.matmul x wT
                    let kind, _ = kindOf [ sum ] sum
                    match kind with
                    | GemmAccumulate(false, true, _, true) -> ()
                    | other -> failtestf "%A: %A" dtype other
                    agrees (if dtype = Float64 then 1e-14 else 1e-6) env [ sum ] |> ignore
            testCase "a variable, or a value read elsewhere too, is copied first and keeps its value"
            <| fun () ->
                let x, w, v, _, env = setup Float64
                let onVariable = Expr.matmul x w + v
                match kindOf [ onVariable ] onVariable with
                | GemmAccumulate(_, _, _, false), _ -> ()
                | other, _ -> failtestf "onto a variable: %A" other
                agrees 1e-14 env [ onVariable; v * 2.0 ] |> ignore
                let shared = Expr.exp v
                let sum = Expr.matmul x w + shared
                match kindOf [ sum; shared ] sum with
                | GemmAccumulate(_, _, _, false), _ -> ()
                | other, _ -> failtestf "onto an output: %A" other
                agrees 1e-14 env [ sum; shared ] |> ignore
            testCase "a bias broadcast over the rows of a reshaped product is copied to every row, then the GEMM adds"
            <| fun () ->
                let x, w, _, bias, env = setup Float64
                let product = Expr.matmul x w
                let sum = Expr.reshape [| 2; 2; 5 |] product + bias
                match kindOf [ sum ] sum with
                | GemmAccumulate(false, false, p, false), pos when p = pos product -> ()
                | other, _ -> failtestf "%A" other
                let plan = agrees 1e-14 env [ sum ]
                Expect.equal plan.InstructionCount 1 "one GEMM"
            testCase "batched products accumulate too; a product read elsewhere, or broadcast by the sum, is left as it was"
            <| fun () ->
                let a, b = Expr.var "a" [| 2; 4; 3 |], Expr.var "b" [| 2; 3; 5 |]
                let x, w, v, _, env = setup Float64
                let env =
                    Eval.bindings
                        [
                            yield! env |> Seq.map (fun kv -> kv.Key, kv.Value)
                            "a", Tensor.randNormal Float64 11 [| 2; 4; 3 |] 0.0 1.0
                            "b", Tensor.randNormal Float64 12 [| 2; 3; 5 |] 0.0 1.0
                        ]
                agrees 1e-14 env [ Expr.matmul a b + Expr.exp (Expr.matmul a b) ] |> ignore
                let product = Expr.matmul x w
                let twice = product + Expr.exp v
                Expect.equal (fst (kindOf [ twice; product ] twice)) Kernel "the product is an output too"
                agrees 1e-14 env [ twice; product ] |> ignore
                // [1; 5] broadcast by the sum to [4; 5]: a GEMM onto c would write one row.
                let row = Expr.matmul (Expr.var "r" [| 1; 3 |]) w
                let broadcast = row + v
                Expect.equal (fst (kindOf [ broadcast ] broadcast)) Kernel "a product broadcast by the sum"
        ]
