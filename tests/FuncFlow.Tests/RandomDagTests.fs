/// Gradients of random expression DAGs (shared sub-expressions, broadcasting, matmul, reductions, shape
/// operations, softmax) against central finite differences.
module FuncFlow.Tests.RandomDagTests

open FuncFlow
open FuncFlow.Tests.Support
open Expecto

/// 200 generated cases from a fixed seed: the counts the tests below check are of one sample, not a flaky draw
/// (an unseeded sample of 200 shares sub-expressions in 100-125 cases).
let private sampleCases maxNodes = FsCheck.FSharp.Gen.sampleWithSeed (FsCheck.Rnd 20250101UL) 50 200 (ExprGen.genCase maxNodes)

let private uses (case: ExprGen.Case) (wanted: Op -> bool) = Graph.topoSort [ case.Output ] |> Array.exists (fun n -> wanted n.Op)

[<Tests>]
let tests =
    moduleTests
        "RandomDagTests"
        [
            testPropertyFrom "random DAGs: full Jacobian against central differences" 300 (ExprGen.genCase 12) (fun case ->
                gradcheck case.Variables case.Output)
            testPropertyFrom "random DAGs: fast mode agrees" 100 (ExprGen.genCase 16) (fun case ->
                gradOk { GradCheckOptions.Default with Fast = true } case.Variables case.Output)
            testPropertyFrom
                "random DAGs: second derivatives against central differences of the gradient"
                100
                (ExprGen.genCase 8)
                (fun case -> gradgradcheck case.Variables case.Output)
            testCase "random DAGs share sub-expressions"
            <| fun () ->
                // The generator must exercise sharing: some node has more than one user in most cases.
                let shared (case: ExprGen.Case) =
                    let order = Graph.topoSort [ case.Output ]
                    let users = order |> Array.collect (fun n -> n.Inputs) |> Array.countBy (fun n -> n.Id)
                    users |> Array.exists (fun (_, uses) -> uses > 1)
                let sharing = (sampleCases 8 |> Array.filter shared).Length
                Expect.isGreaterThan sharing 100 "cases of 200 with a shared sub-expression"
            testCase "random DAGs include convolution and pooling"
            <| fun () ->
                let cases = sampleCases 12
                let count wanted = (cases |> Array.filter (fun c -> uses c wanted)).Length
                let unfolds = count (fun op -> op.IsUnfold)
                let pools = count (fun op -> op.IsMaxPoolPick)
                Expect.isTrue (unfolds > 20 && pools > 3) (sprintf "%d cases with an unfold, %d with a max pool" unfolds pools)
            // shapeops group.
            testCase "random DAGs include running sums, backward slices, constant padding and picks along later axes"
            <| fun () ->
                let cases = sampleCases 12
                let count wanted = (cases |> Array.filter (fun c -> uses c wanted)).Length
                let counts =
                    [
                        "cumsum", count (fun op -> op.IsCumsum)
                        "backward slice",
                        count (fun op ->
                            match op with
                            | Op.Slice(_, _, _, step) -> step < 0
                            | _ -> false)
                        "constant padding",
                        count (fun op ->
                            match op with
                            | Op.Pad(_, _, _, _, value) -> value <> 0.0
                            | _ -> false)
                        "gather along a later axis",
                        count (fun op ->
                            match op with
                            | Op.Gather axis -> axis > 0
                            | _ -> false)
                    ]
                for what, n in counts do
                    Expect.isTrue (n >= 3) (sprintf "%d of 200 cases with a %s" n what)
        ]
