/// A plan run with updates is one simultaneous assignment: every output and every update is computed from
/// the variables' values before the run, then all updates are written. Checked against Eval stepping the
/// same assignment by hand; then the compiler's passes one by one.
module FuncFlow.Tests.PlanSemanticsTests

open System
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private bits (t: Tensor) = t.ToArray() |> Array.map BitConverter.DoubleToInt64Bits

let private expectSame (what: string) (expected: Tensor) (actual: Tensor) =
    Expect.equal actual.Shape expected.Shape (what + ": shape")
    if bits expected <> bits actual then failtestf "%s: expected %O, got %O" what expected actual

/// Runs a plan `runs` times and, beside it, the same assignment with Eval: each run's outputs are Eval's
/// on the values before the run, and the variables then hold Eval's update values, all written at once.
let private stepsMatchEval (runs: int) (outputs: Expr list) (updates: (Expr * Expr) list) (initial: (string * Tensor) list) =
    let plan = Plan.compileWithUpdates outputs updates
    for (name, t) in initial do
        plan.Set(name, t)
    let mutable env = Map.ofList initial
    for run in 1..runs do
        let expectedOutputs = Eval.many env outputs
        let expectedUpdates = Eval.many env (updates |> List.map snd)
        plan.Execute()
        expectedOutputs
        |> List.iteri (fun i e -> expectSame (sprintf "run %d, output %d" run i) e (plan.Output i))
        env <- List.fold2 (fun (m: Map<string, Tensor>) (v, _) value -> m.Add((Expr.tryName v).Value, value)) env updates expectedUpdates
        for KeyValue(name, value) in env do
            expectSame (sprintf "run %d, variable '%s'" run name) value (plan.Get name)
    plan

let private values (seed: int) (shape: int[]) = Tensor.randNormal Float64 seed shape 0.0 1.0

/// The buffers of a plan of these outputs and updates, after the passes before layout.
let private layoutOf (outputs: Expr[]) (updates: (Expr * Expr)[]) =
    use s = Schedule.Build(Array.append outputs (Array.map snd updates))
    let lowered = s |> PlanCompiler.rewrite |> PlanCompiler.fuse
    PlanCompiler.layout<float> lowered (PlanCompiler.liveness lowered) outputs.Length updates

/// Update expressions with an operand broadcast against the parameter, next to the fused SGD pattern.
let private broadcastUpdates (p: Expr) (b: Expr) (q: Expr) (c: Expr) =
    [
        p - b * 0.5
        p - 0.5 * b
        p - (b * 0.5 + q)
        p - (q + b * 0.5)
        p - c * 0.5
        p - Expr.exp (b * 0.5) * 0.25
        (p - b) * 0.5
        p - q * 0.5
    ]

[<Tests>]
let tests =
    moduleTests
        "PlanSemanticsTests"
        [
            testCase "a swap exchanges the two values on every run"
            <| fun () ->
                let a, b = Expr.var "a" [| 3 |], Expr.var "b" [| 3 |]
                let plan =
                    stepsMatchEval 3 [] [ a, b; b, a ] [ "a", Tensor.ofArray [| 1.0; 2.0; 3.0 |]; "b", Tensor.ofArray [| 4.0; 5.0; 6.0 |] ]
                // Three swaps leave them swapped once.
                Expect.equal ((plan.Get "a").ToArray()) [| 4.0; 5.0; 6.0 |] "a after three swaps"
                Expect.equal ((plan.Get "b").ToArray()) [| 1.0; 2.0; 3.0 |] "b after three swaps"
            testCase "a rotation of three moves every value one place, in either order of the updates"
            <| fun () ->
                let a, b, c = Expr.var "a" [| 2 |], Expr.var "b" [| 2 |], Expr.var "c" [| 2 |]
                let initial =
                    [
                        "a", Tensor.ofArray [| 1.0; 2.0 |]
                        "b", Tensor.ofArray [| 3.0; 4.0 |]
                        "c", Tensor.ofArray [| 5.0; 6.0 |]
                    ]
                let forward = stepsMatchEval 4 [] [ a, b; b, c; c, a ] initial
                Expect.equal ((forward.Get "a").ToArray()) [| 3.0; 4.0 |] "a after four rotations"
                let backward = stepsMatchEval 4 [] [ c, a; b, c; a, b ] initial
                Expect.equal ((backward.Get "a").ToArray()) [| 3.0; 4.0 |] "a after four rotations, updates reversed"
                Expect.equal ((backward.Get "c").ToArray()) [| 1.0; 2.0 |] "c after four rotations, updates reversed"
            testCase "an update that is a reshape of another updated variable reads its value before the run"
            <| fun () ->
                let a, b = Expr.var "a" [| 2; 3 |], Expr.var "b" [| 3; 2 |]
                let initial =
                    [ "a", Tensor.create [| 2; 3 |] [| 1.0 .. 6.0 |]; "b", Tensor.create [| 3; 2 |] [| 10.0 .. 15.0 |] ]
                let plan = stepsMatchEval 3 [] [ a, Expr.reshape [| 2; 3 |] b; b, Expr.reshape [| 3; 2 |] a ] initial
                Expect.equal ((plan.Get "a").ToArray()) [| 10.0 .. 15.0 |] "a after three exchanges"
                // A reshape of an updated variable next to a computed update that reads it.
                stepsMatchEval 3 [] [ a, Expr.reshape [| 2; 3 |] b; b, Expr.reshape [| 3; 2 |] a * 2.0 + b ] initial
                |> ignore
            testCase "outputs that are updated variables, or views of them, show the values before the run"
            <| fun () ->
                let w = Expr.var "w" [| 2; 3 |]
                let x = Expr.var "x" [| 4; 2 |]
                let loss = Expr.mean (Expr.powScalar 2.0 (Expr.matmul x w))
                let g = Grad.grad w loss
                let outputs = [ loss; w; Expr.reshape [| 3; 2 |] w; Expr.transpose w; w * 1.5 ]
                let initial = [ "w", values 1 [| 2; 3 |]; "x", values 2 [| 4; 2 |] ]
                let plan = stepsMatchEval 3 outputs [ w, w - g * 0.1 ] initial
                // The output w and the variable differ by exactly the last step.
                Expect.notEqual (bits (plan.Output 1)) (bits (plan.Get "w")) "output w against variable w"
            testCase "simultaneous updates hold where buffers are shared and updates read each other"
            <| fun () ->
                // A chain long enough that intermediate buffers are reused, two parameters whose updates read both,
                // a momentum buffer, and a swap beside them.
                let x = Expr.var "x" [| 5; 4 |]
                let w1, w2 = Expr.var "w1" [| 4; 4 |], Expr.var "w2" [| 4; 4 |]
                let m = Expr.var "m" [| 4; 4 |]
                let s, t = Expr.var "s" [| 4 |], Expr.var "t" [| 4 |]
                let h = Expr.tanh (Expr.matmul (Expr.tanh (Expr.matmul x w1) + s) w2)
                let loss = Expr.sum (h * h) / 20.0
                let grads = Grad.wrt [ w1; w2 ] loss
                let momentum = m * 0.9 + grads[w1]
                let updates =
                    [ m, momentum; w1, w1 - momentum * 0.05; w2, w2 - grads[w2] * 0.05 + (w1 - w2) * 0.01; s, t; t, s ]
                let initial =
                    [
                        "x", values 3 [| 5; 4 |]
                        "w1", values 4 [| 4; 4 |]
                        "w2", values 5 [| 4; 4 |]
                        "m", Tensor.zeros Float64 [| 4; 4 |]
                        "s", values 6 [| 4 |]
                        "t", values 7 [| 4 |]
                    ]
                stepsMatchEval 4 [ loss; w1; m; Expr.reshape [| 16 |] w2; s ] updates initial |> ignore
            testCase "a variable that is only written needs no value: it reads zeros until the first run, then the last write"
            <| fun () ->
                let x = Expr.var "x" [| 3 |]
                let count = Expr.var "count" [||]
                let last = Expr.var "last" [| 3 |]
                let plan = Plan.compileWithUpdates [ Expr.sum x ] [ last, x * 2.0 ]
                Expect.equal ((plan.Get "last").ToArray()) [| 0.0; 0.0; 0.0 |] "last before any run"
                plan.Set("x", Tensor.ofArray [| 1.0; -2.0; 0.5 |])
                plan.Execute()
                Expect.equal ((plan.Get "last").ToArray()) [| 2.0; -4.0; 1.0 |] "last after the first run"
                plan.Set("x", Tensor.ofArray [| 3.0; 0.0; -1.0 |])
                plan.Execute()
                Expect.equal ((plan.Get "last").ToArray()) [| 6.0; 0.0; -2.0 |] "last after the second run"
                Expect.equal (plan.OutputScalar 0) 2.0 "sum of x in the second run"
                // Written from a constant, with no output at all.
                let counter = Plan.compileWithUpdates [] [ count, Expr.scalar 7.0 ]
                counter.Execute()
                Expect.equal (Tensor.item (counter.Get "count")) 7.0 "count"
            testCase "a variable updated twice is rejected, naming it"
            <| fun () ->
                let a = Expr.var "a" [| 2 |]
                let error =
                    throwsAny<ArgumentException>(fun () -> Plan.compileWithUpdates [] [ a, a * 2.0; a, a + 1.0 ] |> ignore)
                Expect.stringContains error.Message "'a'" "error.Message"
                Expect.stringContains error.Message "Plan.compile" "error.Message"
            for dtypeName in [ "float64"; "float32" ] do
                testCase (sprintf "updates with a broadcast operand equal Eval of the same expressions %s" dtypeName)
                <| fun () ->
                    let dtype = if dtypeName = "float64" then Float64 else Float32
                    for bShape in [ [| 3 |]; [| 1; 3 |]; [| 2; 1 |]; [| 1 |]; [||] ] do
                        let p, q = Expr.varOf dtype "p" [| 2; 3 |], Expr.varOf dtype "q" [| 2; 3 |]
                        let b, c = Expr.varOf dtype "b" bShape, Expr.varOf dtype "c" [| 2; 1 |]
                        for update in broadcastUpdates p b q c do
                            let initial =
                                [
                                    "p", values 11 [| 2; 3 |]
                                    "q", values 12 [| 2; 3 |]
                                    "b", values 13 bShape
                                    "c", values 14 [| 2; 1 |]
                                ]
                                |> List.map (fun (n, t) -> n, Tensor.cast dtype t)
                            let env = Eval.bindings initial
                            let expected = Eval.evaluate env update
                            let plan = Plan.compileWithUpdates [ Expr.sum update ] [ p, update ]
                            for name in plan.VariableNames do
                                plan.Set(name, env[name])
                            plan.Execute()
                            expectSame (sprintf "%s with b %s" (Print.formula update) (Shape.show bShape)) expected (plan.Get "p")
                            Expect.equal (plan.OutputScalar 0) (Tensor.item (Eval.evaluate env (Expr.sum update))) "the summed update"
            testCase "a compiled training step with staged updates allocates nothing per run"
            <| fun () ->
                let x = Expr.var32 "x" [| 8; 4 |]
                let w, b = Expr.var32 "w" [| 4; 3 |], Expr.var32 "b" [| 3 |]
                let s, t = Expr.var32 "s" [| 3 |], Expr.var32 "t" [| 3 |]
                let loss = Expr.mean (Expr.powScalar 2.0 (Expr.sigmoid (Expr.matmul x w + b) - 0.5))
                let grads = Grad.wrt [ w; b ] loss
                let plan =
                    Plan.compileWithUpdates [ loss; w ] [ w, w - grads[w] * 0.1; b, b - grads[b] * 0.1; s, t; t, s ]
                for v in [ x; w; b; s; t ] do
                    plan.Set((Expr.tryName v).Value, Tensor.cast Float32 (values 20 v.Shape))
                expectNoAllocation "the step" plan
            // Convolution and pooling (the conv group).
            testCase
                "a convolutional network (padding, groups, max, average and global pooling) through Eval and a plan; its training step allocates nothing per run"
            <| fun () ->
                for dtype in [ Float64; Float32 ] do
                    let v name shape = Expr.varOf dtype name shape
                    let x, t = v "x" [| 4; 1; 12; 12 |], v "t" [| 4; 3 |]
                    let w1, b1 = v "w1" [| 6; 1; 5; 5 |], v "b1" [| 1; 6; 1; 1 |]
                    let w2, w3 = v "w2" [| 8; 3; 3; 3 |], v "w3" [| 8; 3 |]
                    let pool = PoolSpec.Create [ 2; 2 ]
                    // [4; 6; 12; 12] pooled to [4; 6; 6; 6], then two groups of 3 -> 4 channels, [4; 8; 4; 4] pooled to [4; 8; 2; 2].
                    let h1 =
                        Expr.maxPool2d pool (Expr.relu (Expr.conv2d { ConvSpec.Default2d with Padding = [ 2; 2 ] } x w1 + b1))
                    let h2 = Expr.avgPool2d pool (Expr.tanh (Expr.conv2d { ConvSpec.Default2d with Groups = 2 } h1 w2))
                    let features = Expr.reshape [| 4; 8 |] (Expr.globalAvgPool2d h2)
                    let loss = Expr.mean ((Expr.matmul features w3 - t) ** 2.0)
                    let parameters = [ w1; b1; w2; w3 ]
                    let grads = Grad.wrt (x :: parameters) loss
                    let initial =
                        [ x; t; w1; b1; w2; w3 ]
                        |> List.mapi (fun i e -> (Expr.tryName e).Value, Tensor.cast dtype (values (30 + i) e.Shape))
                    let env = Eval.bindings initial
                    // Bit for bit where both run the same kernels: the forward pass and the input's gradient (its
                    // products read the small weights transposed). A weight's gradient g cols^T is a GEMM that the
                    // plan reads through a transpose flag while Eval copies the transpose, and OpenBLAS rounds the
                    // two differently once the inner axis is long (144 here), as for any matmul: within 1e-12 there.
                    let exact = [ loss; features; grads[x] ]
                    List.zip (Eval.many env exact) (Plan.compile exact |> Plan.run env)
                    |> List.iteri (fun i (e, p) -> expectSame (sprintf "%s: output %d" dtype.Name i) e p)
                    let rounding = if dtype = Float64 then 1e-12 else 1e-5
                    let weights = parameters |> List.map (fun p -> grads[p])
                    List.zip (Eval.many env weights) (Plan.compile weights |> Plan.run env)
                    |> List.iter (fun (e, p) -> assertClose rounding (e.ToArray()) (p.ToArray()))
                    let plan = Plan.compileWithUpdates [ loss ] [ for p in parameters -> p, p - grads[p] * 0.1 ]
                    for name, value in initial do
                        plan.Set(name, value)
                    expectNoAllocation dtype.Name plan
            // shapeops group.
            testCase
                "broadcast and 1-D matmul, indexSelect, flip, cumsum, strided slices and padWith through Eval and a plan; the training step allocates nothing per run"
            <| fun () ->
                for dtype in [ Float64; Float32 ] do
                    let v name shape = Expr.varOf dtype name shape
                    let x, w, u = v "x" [| 3; 1; 4; 5 |], v "w" [| 2; 5; 6 |], v "u" [| 6 |]
                    let picks = Expr.constant (Tensor.cast dtype (Tensor.ofArray [| 4.0; 0.0; 4.0; 2.0 |]))
                    // [3; 1; 4; 5] x [2; 5; 6] -> [3; 2; 4; 6], its batch axis of 1 read against 2.
                    let h = Expr.tanh (Expr.matmul x w)
                    let picked = Expr.indexSelect 3 picks (Expr.padWith 0.5 3 1 0 h) // [3; 2; 4; 4]
                    let running = Expr.cumsum 2 (Expr.flip [ 1; 3 ] picked)
                    let strided = Expr.stridedSlice 0 None None -2 (Expr.reverseCumsum 3 running) // [2; 2; 4; 4]
                    let loss = Expr.mean (Expr.matmul (Expr.padWith -1.0 3 1 1 strided) u ** 2.0) // [..; 6] x [6]
                    let parameters = [ w; u ]
                    let grads = Grad.wrt (x :: parameters) loss
                    let initial =
                        [ x; w; u ]
                        |> List.mapi (fun i e -> (Expr.tryName e).Value, Tensor.cast dtype (values (50 + i) e.Shape))
                    let env = Eval.bindings initial
                    let outputs = [ loss; grads[x]; grads[w]; grads[u] ]
                    let rounding = if dtype = Float64 then 1e-12 else 1e-5
                    List.zip (Eval.many env outputs) (Plan.compile outputs |> Plan.run env)
                    |> List.iter (fun (e, p) -> assertClose rounding (e.ToArray()) (p.ToArray()))
                    let plan = Plan.compileWithUpdates [ loss ] [ for p in parameters -> p, p - grads[p] * 0.1 ]
                    for name, value in initial do
                        plan.Set(name, value)
                    expectNoAllocation dtype.Name plan

            // The passes one by one, on graphs small enough to derive their results by hand.
            testCase "the schedule counts every node's uses and last use once"
            <| fun () ->
                let x = Expr.var "x" [| 2 |]
                let h = Expr.tanh x
                let hh = h * h
                let y = hh + x
                use s = Schedule.Build [| y; h |]
                let at (e: Expr) = s.Position e
                Expect.equal s.Count 4 "nodes"
                Expect.equal s.Roots [| at y; at h |] "roots"
                // h: read twice by h * h and once as a root; x: by tanh and by +.
                Expect.equal s.Uses[at h] 3 "uses of h"
                Expect.equal s.Uses[at x] 2 "uses of x"
                Expect.equal s.Uses[at hh] 1 "uses of h * h"
                Expect.equal s.LastUse[at x] (at y) "last use of x"
                Expect.equal s.LastUse[at hh] (at y) "last use of h * h"
                Expect.equal s.LastUse[at h] Int32.MaxValue "last use of the root h"
                Expect.equal s.LastUse[at y] Int32.MaxValue "last use of the root y"
            testCase "rewrite reads transposes through GEMM flags; fuse groups single-use chains, the SGD update among them"
            <| fun () ->
                let a, w, p = Expr.var "a" [| 3; 2 |], Expr.var "w" [| 3; 4 |], Expr.var "p" [| 2; 4 |]
                let at = Expr.transpose a
                let g = Expr.matmul at w
                let product = g * 0.5
                let update = p - product
                let y = Expr.sigmoid p
                let oneMinus = 1.0 - y
                let inner = y * oneMinus
                let chain = g * inner
                use s = Schedule.Build [| chain; update |]
                let pos (e: Expr) = s.Position e
                let rewritten = PlanCompiler.rewrite s
                Expect.equal rewritten.Kinds[pos g] (Gemm(true, false)) "the product reads a through a flag"
                Expect.equal rewritten.Reads[pos g] [| pos a; pos w |] "the product's reads"
                Expect.equal rewritten.Kinds[pos update] Kernel "the update before fusion"
                Expect.equal rewritten.Kinds[pos chain] Kernel "the chain before fusion"
                let fused = PlanCompiler.fuse rewritten
                // Leaves in first-read order: g, p, the constant 1. y is read twice, both times inside the group:
                // computed there once, and not stored.
                Expect.equal fused.Reads[pos chain] [| pos g; pos p; pos oneMinus.Inputs[0] |] "the group's leaves"
                let expectedSteps =
                    [|
                        { Node = y; A = 1; B = 0; Slot = 0 }
                        { Node = oneMinus; A = 2; B = -1; Slot = 1 }
                        // y and 1 - y are read for the last time here: their temps are free after inner.
                        { Node = inner; A = -1; B = -2; Slot = 2 }
                        { Node = chain; A = 0; B = -3; Slot = -1 }
                    |]
                Expect.equal fused.Kinds[pos chain] (Group(expectedSteps, [||])) "the group's steps"
                Expect.equal fused.Kinds[pos y] Folded "y, computed inside the group"
                // The update p - g * 0.5: its product, read only there, is a step of its group (and never runs alone).
                // Both steps run in one loop (FusedLoop.covers), which needs no temp: every Slot is -1.
                let half = product.Inputs[1]
                Expect.equal fused.Reads[pos update] [| pos p; pos g; pos half |] "the update's leaves"
                Expect.equal
                    fused.Kinds[pos update]
                    (Group([| { Node = product; A = 1; B = 2; Slot = -1 }; { Node = update; A = 0; B = -1; Slot = -1 } |], [||]))
                    "the update's steps"
                let live = PlanCompiler.liveness fused
                for dead in [ at; product; inner; oneMinus; y ] do
                    Expect.isFalse (Array.contains (pos dead) live.Running) (sprintf "%O runs" dead)
                Expect.equal
                    live.Running
                    (Array.sort [| pos a; pos w; pos g; pos p; pos oneMinus.Inputs[0]; pos half; pos chain; pos update |])
                    "what runs"
                // g is read last by whichever of chain and update runs later; the roots are pinned.
                Expect.equal live.LastRead[pos g] (Array.IndexOf(live.Running, max (pos chain) (pos update))) "last read of g"
                Expect.equal live.LastRead[pos chain] Int32.MaxValue "last read of the root chain"
            testCase "a chain that others read too joins its first reader's group when they all run after it, and is stored"
            <| fun () ->
                // Stored chains are taken only into groups of FusedHalving elements or more.
                let shape = [| 256; PlanCompiler.FusedHalving / 256 |]
                let x, u = Expr.var "x" shape, Expr.var "u" shape
                // e is read by k's group and, later, by a sum: computed in the group and stored for the sum.
                let e = Expr.exp x
                let k = e * u + 1.0
                let later = Expr.sum e
                // t is read by a sum that runs before its elementwise reader: it runs on its own.
                let t = Expr.tanh x
                let reader = t * Expr.sum t
                let outputs = [ k; later; reader ]
                use s = Schedule.Build(Array.ofList outputs)
                let pos (e: Expr) = s.Position e
                let fused = s |> PlanCompiler.rewrite |> PlanCompiler.fuse
                Expect.equal fused.Kinds[pos e] (Produced(pos k)) "e, computed in k's group"
                match fused.Kinds[pos k] with
                | Group(steps, stores) ->
                    Expect.equal steps.Length 3 "k's steps: exp, *, +"
                    Expect.equal steps[0].Node e "k's first step"
                    Expect.equal steps[2].Node k "k's last step"
                    Expect.equal stores [| { Step = 0; Position = pos e } |] "k's store of e"
                | other -> failtestf "k runs as %A, not as a group" other
                Expect.equal fused.Kinds[pos t] Kernel "t"
                let values = [ "x", values 31 shape; "u", values 32 shape ]
                stepsMatchEval 2 outputs [] values |> ignore
            testCase "layout copies out only what a simultaneous assignment needs"
            <| fun () ->
                let a, b, c = Expr.var "a" [| 2 |], Expr.var "b" [| 2 |], Expr.var "c" [| 2 |]
                // A swap and an identity: the identity writes nothing, the swap writes from copies of both variables.
                let swap = layoutOf [| a |] [| a, b; b, a; c, c |]
                let va, vb = swap.Variables["a"], swap.Variables["b"]
                Expect.equal swap.Writes.Length 2 "writes"
                Expect.equal swap.Stage.Length 2 "copies"
                for struct (value, variable) in swap.Writes do
                    Expect.isTrue (obj.ReferenceEquals(variable, va) || obj.ReferenceEquals(variable, vb)) "a write goes to a or b"
                    Expect.isFalse
                        (swap.Variables.Values |> Seq.exists (fun v -> obj.ReferenceEquals(v, value)))
                        "an update writes from a variable's own buffer"
                // The output a reads the same copy of a as b's update.
                let copyOfA =
                    swap.Stage
                    |> Array.pick (fun struct (variable, copy) -> if obj.ReferenceEquals(variable, va) then Some copy else None)
                Expect.isTrue (obj.ReferenceEquals(copyOfA, swap.Outputs[0])) "output a is the copy of a"
                // Updates computed from the variables need no copies: they are read while the instructions run.
                // The one computed after the other has read its variable is written in place; the other is copied.
                let computed = layoutOf [||] [| a, b * 2.0; b, a * 3.0 |]
                Expect.isEmpty computed.Stage "copies for computed updates"
                Expect.equal computed.Writes.Length 1 "writes of computed updates"
            testCase "an update computed after the last read of its variable is written in place, and no sooner"
            <| fun () ->
                // Adam's shape: the moments' updates are read by the parameter's, which reads the parameter last.
                let p, g = Expr.var "p" [| 3; 4 |], Expr.var "g" [| 3; 4 |]
                let m, v = Expr.var "m" [| 3; 4 |], Expr.var "v" [| 3; 4 |]
                let mNew = m * 0.9 + g * 0.1
                let vNew = v * 0.999 + g * g * 0.001
                let pNew = p - mNew / (Expr.sqrt vNew + 1e-8) * 0.01
                // q's update is computed (in tanh's group) before the second sum reads q: it must not be in place.
                let q = Expr.var "q" [| 3; 4 |]
                let qNew = q * 0.5
                let loss = Expr.sum (Expr.tanh qNew) + Expr.sum q
                // A kernel written over its own operand gives the bits it gives apart: tanh near 0 and far from it.
                let t = Expr.var "t" [| 3; 4 |]
                let updates = [ m, mNew; v, vNew; p, pNew; q, qNew; t, Expr.tanh t ]
                let initial =
                    [
                        "p", values 21 [| 3; 4 |]
                        "g", values 22 [| 3; 4 |]
                        "m", values 23 [| 3; 4 |]
                        "v", Tensor.create [| 3; 4 |] ((values 24 [| 3; 4 |]).ToArray() |> Array.map abs)
                        "q", values 25 [| 3; 4 |]
                        "t", Tensor.create [| 3; 4 |] [| 1e-9; -3e-5; 0.004; -0.2; 0.7; 2.5; -20.0; 0.0; -0.0; 1e-300; nan; 0.05 |]
                    ]
                stepsMatchEval 4 [ loss ] updates initial |> ignore
                let layout = layoutOf [| loss |] (Array.ofList updates)
                let written = layout.Writes |> Array.map (fun struct (_, target) -> target)
                for name in [ "m"; "v"; "p"; "t" ] do
                    Expect.isFalse (written |> Array.exists (fun b -> obj.ReferenceEquals(b, layout.Variables[name]))) (name + " is copied")
                Expect.isTrue (written |> Array.exists (fun b -> obj.ReferenceEquals(b, layout.Variables["q"]))) "q is copied"
            testCase "a reshape keeps its operand's buffer until the reshape's last reader has run"
            <| fun () ->
                // exp x is read only through its reshape, and tanh x (the same size) is computed after that reshape
                // but before the sum reads it: a pool that freed exp x's buffer at the reshape would hand it to tanh x.
                let x = Expr.var "x" [| 2; 3 |]
                let xs = [| -1.5; -0.5; 0.0; 0.25; 1.0; 2.0 |]
                let plan = Plan.compile [ Expr.reshape [| 6 |] (Expr.exp x) + Expr.reshape [| 6 |] (Expr.tanh x) ]
                let out = Plan.run (Eval.bindings [ "x", Tensor.create [| 2; 3 |] xs ]) plan |> List.exactlyOne
                Expect.equal out.Shape [| 6 |] "shape"
                assertClose 1e-14 (xs |> Array.map (fun v -> exp v + tanh v)) (out.ToArray())
            testCase "a plan's outputs are a read-only view that cannot be written through"
            <| fun () ->
                let x = Expr.var "x" [| 2 |]
                let y = Expr.tanh x
                let plan = Plan.compile [ y ]
                throws<NotSupportedException>(fun () -> (plan.Outputs :?> Collections.Generic.IList<Expr>)[0] <- x)
                |> ignore
                Expect.isTrue (obj.ReferenceEquals(y, plan.Outputs[0])) "the output is y"
        ]
