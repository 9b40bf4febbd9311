/// Gradients of random expression DAGs (shared sub-expressions, broadcasting, matmul, reductions, shape
/// operations, softmax) against central finite differences.
module FuncFlow.Tests.RandomDagTests

open FuncFlow
open FuncFlow.Tests.Support
open Xunit

[<Fact>]
let ``random DAGs: full Jacobian against central differences`` () =
    property 300 (ExprGen.genCase 12) (fun case -> gradcheck case.Variables case.Output)

[<Fact>]
let ``random DAGs: fast mode agrees`` () =
    let options = { GradCheckOptions.Default with Fast = true }
    property 100 (ExprGen.genCase 16) (fun case -> gradOk options case.Variables case.Output)

[<Fact>]
let ``random DAGs: second derivatives against central differences of the gradient`` () =
    property 100 (ExprGen.genCase 8) (fun case -> gradgradcheck case.Variables case.Output)

[<Fact>]
let ``random DAGs share sub-expressions`` () =
    // The generator must exercise sharing: some node has more than one user in most cases.
    let shared (case: ExprGen.Case) =
        let order = Graph.topoSort [ case.Output ]
        let users = order |> Array.collect (fun n -> n.Inputs) |> Array.countBy (fun n -> n.Id)
        users |> Array.exists (fun (_, uses) -> uses > 1)
    let cases = FsCheck.FSharp.Gen.sample 200 (ExprGen.genCase 8)
    Assert.True((cases |> Array.filter shared).Length > 100)
