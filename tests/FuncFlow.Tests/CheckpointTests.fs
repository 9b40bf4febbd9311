/// Gradient checkpointing: the rewritten gradients' values are those of the originals, the backward pass reads
/// no activation that is not kept, and a deep MLP's plan holds fewer buffer bytes with it.
module FuncFlow.Tests.CheckpointTests

open System
open System.Collections.Generic
open FuncFlow
open FuncFlow.Tests.Support
open Expecto

// A deep tanh MLP: 8 layers of width 8 over a batch of 1024, so that activations outweigh the weights.
let private layers, width, batch = 8, 8, 1024
let private x = Expr.var "x" [| batch; width |]
let private weights = List.init layers (fun i -> Expr.var (sprintf "w%d" i) [| width; width |])
let private activations = weights |> List.scan (fun h w -> Expr.tanh (Expr.matmul h w)) x |> List.tail
let private loss = Expr.mean (List.last activations ** 2.0)
let private grads = Grad.wrt weights loss
// The last layer's gradient first: a plan runs its roots in order, so each segment's copies die before the next.
let private backwardOrder = List.rev weights
// Every third layer's output kept (about the square root of the depth).
let private everyThird =
    {
        Forward = loss
        Keep = activations |> List.indexed |> List.filter (fun (i, _) -> i % 3 = 2) |> List.map snd
    }
let private values =
    (x, Tensor.randNormal Float64 1 [| batch; width |] 0.0 1.0)
    :: (weights |> List.mapi (fun i w -> w, Tensor.randNormal Float64 (2 + i) [| width; width |] 0.0 0.5))

let private set (plan: Plan) =
    for v, t in values do
        plan.Set((Expr.tryName v).Value, t)

[<Tests>]
let tests =
    moduleTests
        "CheckpointTests"
        [
            testCase "a deep MLP's checkpointed plan gives the same loss and gradients in fewer buffer bytes"
            <| fun () ->
                let outputs = loss :: (backwardOrder |> List.map (fun w -> grads[w]))
                let plain = Plan.compile outputs
                let checkpointed = Plan.compileWith { Checkpoint = Some everyThird } outputs []
                set plain
                set checkpointed
                plain.Execute()
                checkpointed.Execute()
                for i in 0 .. outputs.Length - 1 do
                    expectSameValues ((plain.Output i).ToArray()) ((checkpointed.Output i).ToArray()) (sprintf "output %d" i)
                // At least two activations' worth of bytes saved (the figure is in docs/vmap.md).
                let activation = int64 (batch * width * sizeof<float>)
                if checkpointed.BufferBytes + 2L * activation > plain.BufferBytes then
                    failtestf "checkpointed %d bytes, without %d bytes" checkpointed.BufferBytes plain.BufferBytes
                // Recomputation is more work: the copies run as instructions of their own.
                Expect.isGreaterThan checkpointed.InstructionCount plain.InstructionCount "instructions"
            testCase "a checkpointed SGD training plan follows the plain one step for step"
            <| fun () ->
                let updates = backwardOrder |> List.map (fun w -> w, w - 0.1 * grads[w])
                let plain = Plan.compileWithUpdates [ loss ] updates
                let checkpointed = Plan.compileWith { Checkpoint = Some everyThird } [ loss ] updates
                set plain
                set checkpointed
                for step in 1..3 do
                    plain.Execute()
                    checkpointed.Execute()
                    expectSameValues [| plain.OutputScalar 0 |] [| checkpointed.OutputScalar 0 |] (sprintf "loss at step %d" step)
                for w in weights do
                    let name = (Expr.tryName w).Value
                    expectSameValues ((plain.Get name).ToArray()) ((checkpointed.Get name).ToArray()) name
                Expect.isLessThan checkpointed.BufferBytes plain.BufferBytes "buffer bytes"
            testPropertyFrom
                "random DAGs: rewritten gradients read only kept activations and leaves, and their values are unchanged"
                100
                (ExprGen.genCase 10)
                (fun case ->
                    let forward = Expr.sum case.Output
                    let vars = List.map fst case.Variables
                    let roots = vars |> List.map (fun v -> (Grad.wrt vars forward)[v])
                    let forwardNodes = HashSet<Expr>(Graph.topoSort [ forward ])
                    // Every third node of the forward pass kept.
                    let keep =
                        Graph.topoSort [ forward ]
                        |> Array.filter (fun n -> n.Inputs.Length > 0)
                        |> Array.indexed
                        |> Array.filter (fun (i, _) -> i % 3 = 0)
                        |> Array.map snd
                        |> List.ofArray
                    let rewritten = Checkpoint.rewrite { Forward = forward; Keep = keep } roots
                    for node in Graph.topoSort rewritten do
                        if not (forwardNodes.Contains node) then
                            for input in node.Inputs do
                                if forwardNodes.Contains input && input.Inputs.Length > 0 && not (List.contains input keep) then
                                    failtestf "%s reads the forward activation %s, which is not kept" node.Op.Name input.Op.Name
                    let env = bind case.Variables
                    List.iter2
                        (fun (a: Tensor) (b: Tensor) -> expectSameValues (a.ToArray()) (b.ToArray()) "gradient")
                        (Eval.many env roots)
                        (Eval.many env rewritten))
            testCase "the forward result and nodes it computes are not rewritten"
            <| fun () ->
                let rewritten = Checkpoint.rewrite everyThird [ loss; activations[2]; grads[weights[0]] ]
                Expect.isTrue (obj.ReferenceEquals(rewritten[0], loss)) "the loss"
                Expect.isTrue (obj.ReferenceEquals(rewritten[1], activations[2])) "an activation"
                Expect.isFalse (obj.ReferenceEquals(rewritten[2], grads[weights[0]])) "a gradient reads copies"
            testCase "a kept node outside the forward computation is an error naming it"
            <| fun () ->
                let e =
                    throws<ArgumentException>(fun () ->
                        Checkpoint.rewrite { Forward = loss; Keep = [ Expr.tanh x ] } [ grads[weights[0]] ] |> ignore)
                Expect.stringContains e.Message "Checkpoint.rewrite: a kept node (tanh, shape (1024, 8))" "message"
                Expect.stringContains e.Message "is not part of the forward computation" "message"
                let e =
                    throws<ArgumentNullException>(fun () ->
                        Checkpoint.rewrite { Forward = loss; Keep = [ Unchecked.defaultof<Expr> ] } [ loss ] |> ignore)
                Expect.stringContains e.Message "Checkpoint.rewrite: the forward result or a kept node is null" "message"
            testCase "BufferBytes counts the dtype's bytes per element"
            <| fun () ->
                let plan64 = Plan.compile [ Expr.tanh x ]
                Expect.equal plan64.BufferBytes (8L * plan64.BufferElements) "float64"
                let x32 = Expr.var32 "x" [| 3; 5 |]
                let plan32 = Plan.compile [ Expr.tanh x32 ]
                // x and the result: 15 elements each.
                Expect.equal plan32.BufferElements 30L "float32 elements"
                Expect.equal plan32.BufferBytes 120L "float32 bytes"
        ]
