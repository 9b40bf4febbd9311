/// Compiled plans with fused instructions (groups, the SGD update a - b * c among them, compiled loops, row broadcasts, the vectorised step)
/// and Eval's scalar path compute what one-shot evaluation's general path computes; shared literals and
/// the dense node index keep graphs' meaning.
module FuncFlow.Tests.FusionTests

open System
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private close (expected: Tensor) (actual: Tensor) =
    Expect.isTrue (Tensor.allClose 1e-12 1e-12 actual expected) (sprintf "expected %O, got %O" expected actual)

let private specials = [ -2.5; -0.0; 0.0; 0.3; 1.0; 3.0; nan; infinity; -infinity ]

// Every elementwise operation of a and b, as rank-0 nodes (Eval's scalar path) or shape-(1) nodes (its general path).
let private elementwise (a: Expr) (b: Expr) =
    [
        for op in everyUnaryOp -> Expr.unary op a
        for op in everyBinaryOp -> Expr.binary op a b
        for p in [ 2.0; 0.5; -1.5 ] -> Expr.powScalar p a
        yield Expr.addN [ a; b; a * b ]
        yield Expr.tanh (a * b + 0.5)
    ]

let private bits = valueBits

// Values equal where both are NaN, else within 1e-12.
let private sameOrClose (expected: Tensor) (actual: Tensor) =
    Expect.equal actual.Shape expected.Shape "actual.Shape"
    Array.iter2
        (fun (e: float) (a: float) ->
            if Double.IsNaN e then
                Expect.isTrue (Double.IsNaN a) (sprintf "expected NaN, got %g" a)
            else
                Expect.isTrue (e = a || abs (e - a) <= 1e-12 * max 1.0 (abs e)) (sprintf "expected %g, got %g" e a))
        (expected.ToArray())
        (actual.ToArray())

// A plan's outputs next to Eval's for the same bindings.
let private planAndEval (outputs: Expr list) (values: (string * Tensor) list) =
    let plan = Plan.compile outputs
    for (name, t) in values do
        plan.Set(name, t)
    plan.Execute()
    plan, List.init outputs.Length plan.Output, Eval.many (Eval.bindings values) outputs

// Elementwise chains with single-use intermediates: unary, binary, powScalar, one-element operands, a row broadcast
// (not fused) in the middle, and an intermediate used twice (not absorbed).
let private chains (a: Expr) (b: Expr) (s: Expr) (row: Expr) =
    let y = Expr.sigmoid a
    let shared = Expr.tanh (a - b)
    [
        b * (y * (1.0 - y))
        Expr.exp (Expr.powScalar 2.0 (a * s + b) / 3.0) - Expr.log (Expr.abs b + 0.5)
        Expr.relu (a * row + b) * Expr.step (a - 0.25)
        shared * shared + Expr.softplus (Expr.sqrt (Expr.abs a)) * Expr.sign b
        Expr.pow (Expr.abs a + 1.0) (b / s)
    ]

let private chainValues (shape: int[]) (withNaN: bool) =
    let n = Shape.size shape
    let a = Tensor.randNormal Float64 21 shape 0.0 2.0 |> Tensor.toArray
    if withNaN then
        a[n / 3] <- nan
        a[n - 1] <- infinity
    [
        "a", Tensor.create shape a
        "b", Tensor.randNormal Float64 22 shape 0.0 1.0
        "s", Tensor.scalar 1.75
        "row", Tensor.randNormal Float64 23 [| shape[shape.Length - 1] |] 0.0 1.0
    ]

// Chains of arithmetic only: the same kernels on the same spans give the same bits. (Transcendental
// kernels can differ in the last bits between the JIT's precompiled and rejitted code, fused or not.)
let private arithmetic (a: Expr) (b: Expr) (s: Expr) (row: Expr) =
    [
        b * (a * (1.0 - a))
        Expr.powScalar 2.0 (a * s + b) / 3.0 - Expr.abs b
        Expr.relu (a * row + b) * Expr.step (a - 0.25) + Expr.sign b / s
        -(a - b) * (a - b)
    ]

[<Tests>]
let tests =
    moduleTests
        "FusionTests"
        [
            testCase "an SGD step compiled with its update equals the update evaluated one-shot"
            <| fun () ->
                let x = Expr.var "x" [| 5; 3 |]
                let y = Expr.var "y" [| 5; 1 |]
                let w1, b1 = Expr.var "w1" [| 3; 4 |], Expr.var "b1" [| 4 |]
                let w2, b2 = Expr.var "w2" [| 4; 1 |], Expr.var "b2" [| 1 |]
                let out = Expr.matmul (Expr.sigmoid (Expr.matmul x w1 + b1)) w2 + b2
                let loss = Expr.mean (Expr.powScalar 2.0 (out - y))
                let ps = [ w1; b1; w2; b2 ]
                let grads = Grad.wrt ps loss
                let updates = [ for p in ps -> p, p - grads[p] * 0.1 ]
                let values =
                    [
                        "x", Tensor.randNormal Float64 1 [| 5; 3 |] 0.0 1.0
                        "y", Tensor.randNormal Float64 2 [| 5; 1 |] 0.0 1.0
                        "w1", Tensor.randNormal Float64 3 [| 3; 4 |] 0.0 1.0
                        "b1", Tensor.randNormal Float64 4 [| 4 |] 0.0 1.0
                        "w2", Tensor.randNormal Float64 5 [| 4; 1 |] 0.0 1.0
                        "b2", Tensor.randNormal Float64 6 [| 1 |] 0.0 1.0
                    ]
                let env = Eval.bindings values
                let expectedLoss = Eval.evaluate env loss
                let expected = Eval.many env (updates |> List.map snd)
                let plan = Plan.compileWithUpdates [ loss ] updates
                for (name, t) in values do
                    plan.Set(name, t)
                plan.Execute()
                Expect.equal (plan.OutputScalar 0) (Tensor.item expectedLoss) "plan.OutputScalar 0"
                List.iter2 (fun (p, _) e -> close e (plan.Get (Expr.tryName p).Value)) updates expected
            testCase "row and column broadcasts in a plan equal one-shot evaluation"
            <| fun () ->
                let a = Expr.var "a" [| 2; 3; 4 |]
                let row = Expr.var "row" [| 4 |]
                let row3 = Expr.var "row3" [| 1; 1; 4 |]
                let col = Expr.var "col" [| 2; 3; 1 |]
                let outputs =
                    [
                        a + row
                        row3 - a
                        a * col
                        col - a
                        row / (a + 10.0)
                        Expr.step (a - row)
                        Expr.broadcastTo [| 2; 3; 4 |] col
                        Expr.broadcastTo [| 2; 3; 4 |] row
                        Expr.broadcastTo [| 2; 3; 4 |] (Expr.sum col)
                    ]
                let values =
                    [
                        "a", Tensor.randNormal Float64 7 [| 2; 3; 4 |] 0.0 1.0
                        "row", Tensor.randNormal Float64 8 [| 4 |] 0.0 1.0
                        "row3", Tensor.randNormal Float64 9 [| 1; 1; 4 |] 0.0 1.0
                        "col", Tensor.randNormal Float64 10 [| 2; 3; 1 |] 0.0 1.0
                    ]
                let plan = Plan.compile outputs
                for (name, t) in values do
                    plan.Set(name, t)
                plan.Execute()
                let expected = Eval.many (Eval.bindings values) outputs
                expected |> List.iteri (fun i e -> close e (plan.Output i))
            testCase "step is 1 exactly where x > 0, NaN included, across vector widths"
            <| fun () ->
                let values =
                    Array.init 37 (fun i ->
                        if i = 5 then nan
                        elif i = 6 then 0.0
                        else float (i % 5) - 2.0)
                let x = Expr.var32 "x" [| values.Length |]
                let got =
                    Eval.evaluate (Eval.bindings [ "x", Tensor.ofArray32 (Array.map float32 values) ]) (Expr.step x)
                    |> Tensor.toArray
                Expect.equal got (values |> Array.map (fun v -> if v > 0.0 then 1.0 else 0.0)) "got"
            for dtypeName in [ "float64"; "float32" ] do
                testCase (
                    sprintf
                        "rank-0 nodes on Eval's scalar path equal the general path bit for bit, NaN and infinities included %s"
                        dtypeName
                )
                <| fun () ->
                    let dtype = if dtypeName = "float64" then Float64 else Float32
                    let scalarOutputs = elementwise (Expr.varOf dtype "a" [||]) (Expr.varOf dtype "b" [||])
                    let vectorOutputs = elementwise (Expr.varOf dtype "a" [| 1 |]) (Expr.varOf dtype "b" [| 1 |])
                    for va in specials do
                        for vb in specials do
                            let bind shape =
                                Eval.bindings
                                    [
                                        "a", Tensor.cast dtype (Tensor.create shape [| va |])
                                        "b", Tensor.cast dtype (Tensor.create shape [| vb |])
                                    ]
                            let fast = Eval.many (bind [||]) scalarOutputs
                            let general = Eval.many (bind [| 1 |]) vectorOutputs
                            List.iter2
                                (fun (f: Tensor) (g: Tensor) ->
                                    Expect.equal f.Shape ([||]) "f.Shape"
                                    Expect.equal (bits f) (bits g) "bits f")
                                fast
                                general
            testCase "rank-0 values feed tensor-valued users, and outputs are fresh values"
            <| fun () ->
                let a = Expr.var "a" [||]
                let s = Expr.exp a * 2.0
                let spread = Expr.broadcastTo [| 2; 3 |] s + Expr.reshape [| 1; 1 |] s
                let env = Eval.bindings [ "a", Tensor.scalar 0.25 ]
                let results = Eval.many env [ s; spread; Expr.sum spread * s; a ]
                let v = exp 0.25 * 2.0
                Expect.equal (Tensor.item results[0]) v "Tensor.item results[0]"
                Expect.equal (Tensor.toArray results[1]) (Array.create 6 (v + v)) "Tensor.toArray results[1]"
                Expect.equal (Tensor.item results[2]) (6.0 * (v + v) * v) "Tensor.item results[2]"
                Expect.equal (Tensor.item results[3]) 0.25 "Tensor.item results[3]"
                // Anomaly mode takes the general path for every node, and computes the same values.
                Expect.equal
                    (Tensor.item (Eval.evaluateChecked env (Expr.sum spread * s)))
                    (Tensor.item (Eval.evaluate env (Expr.sum spread * s)))
                    "Tensor.item (Eval.evaluateChecked env (Expr.sum spread * s))"
            testCase "a scalar graph's gradients match a shape-(1) graph's, which runs on the general path"
            <| fun () ->
                let build (shape: int[]) =
                    let xs = Array.init 5 (fun i -> Expr.var (sprintf "x%d" i) shape)
                    let mutable acc = Expr.zerosLike xs[0]
                    for i in 0..99 do
                        acc <- acc + Expr.tanh (xs[i % 5] * xs[(i * 3 + 1) % 5] + 0.5) / (1.0 + Expr.sigmoid xs[i % 5])
                    let f = Expr.sum acc
                    let grads = Grad.wrt (List.ofArray xs) f
                    let env =
                        Eval.bindings [ for i in 0..4 -> sprintf "x%d" i, Tensor.create shape [| float i / 3.0 - 0.5 |] ]
                    Eval.many env (f :: [ for x in xs -> grads[x] ]) |> List.map bits
                List.iter2 (fun (s: int64[]) v -> Expect.equal s v "s") (build [||]) (build [| 1 |])
            testCase "operator literals share constant nodes per dtype and value; Expr.scalar stays distinct"
            <| fun () ->
                let x = Expr.var "x" [||]
                let x32 = Expr.var32 "x32" [||]
                let constOf (e: Expr) = e.Inputs[1]
                Expect.isTrue (obj.ReferenceEquals(constOf (x + 0.5), constOf (x * 0.5))) "the same object"
                Expect.isFalse (obj.ReferenceEquals(constOf (x + 0.5), constOf (x32 + 0.5))) "distinct objects"
                Expect.isFalse (obj.ReferenceEquals(constOf (x + 0.0), constOf (x + -0.0))) "distinct objects"
                Expect.equal
                    (BitConverter.DoubleToInt64Bits(Tensor.item (Eval.evaluate (Eval.bindings []) (constOf (x + -0.0)))))
                    (BitConverter.DoubleToInt64Bits -0.0)
                    "BitConverter.DoubleToInt64Bits (Tensor.item (Eval.evaluate (Eval.bindings []) (constOf (x + -0.0))))"
                Expect.isTrue (obj.ReferenceEquals(constOf (x + nan), constOf (x - nan))) "the same object"
                Expect.isFalse (obj.ReferenceEquals(Expr.scalar 0.5, Expr.scalar 0.5)) "distinct objects"
                // Many distinct literals (a schedule) neither break values nor grow without bound.
                for i in 1..1000 do
                    Expect.equal
                        (Tensor.item (Eval.evaluate (Eval.bindings [ "x", Tensor.scalar 1.0 ]) (x + float i)))
                        (float i + 1.0)
                        "Tensor.item (Eval.evaluate (Eval.bindings [ \"x\", Tensor.scalar 1.0 ]) (x + float i))"
            testCase "gradients with respect to an explicit constant ignore shared literals of the same value"
            <| fun () ->
                let x = Expr.var "x" [||]
                let c = Expr.scalar 2.0
                let f = c * x + x * 2.0 + 2.0
                let g = Grad.wrt [ c; x ] f
                let env = Eval.bindings [ "x", Tensor.scalar 3.0 ]
                Expect.equal (Tensor.item (Eval.evaluate env g[c])) 3.0 "Tensor.item (Eval.evaluate env g[c])"
                Expect.equal (Tensor.item (Eval.evaluate env g[x])) 4.0 "Tensor.item (Eval.evaluate env g[x])"
            testCase "shared literals do not depend on what other threads build"
            <| fun () ->
                let x = Expr.var "x" [||]
                let before = x * 1.0001
                // Another thread builds a thousand different literals in between: in a cache common to all
                // threads they would evict 1.0001 (64 slots a dtype).
                let other =
                    Threading.Thread(fun () ->
                        for i in 1..1000 do
                            x + float i |> ignore)
                other.Start()
                other.Join()
                let after = x * 1.0001
                Expect.equal (Graph.size [ before; after ]) 4 "x, one 1.0001 and the two products"
            testCase "graphs mixing old and new nodes (ids far apart) differentiate and evaluate correctly"
            <| fun () ->
                let old = Expr.var "old" [| 3 |]
                let k = Expr.scalar 1.5
                // Many unrelated nodes in between: the graph below spans a wide range of ids.
                let mutable junk = Expr.var "junk" [||]
                for _ in 1..300_000 do
                    junk <- junk + 1.0
                let mutable y = old * k
                for i in 1..5000 do
                    y <- if i % 2 = 0 then y * 1.0001 else y - 0.25
                let f = Expr.sum (y * old)
                let g = Grad.grad old f
                let plan = Plan.compile [ f; g ]
                let value = Tensor.ofArray [| 1.0; -2.0; 0.5 |]
                plan.Set("old", value)
                plan.Execute()
                let env = Eval.bindings [ "old", value ]
                close (Eval.evaluate env f) (plan.Output 0)
                close (Eval.evaluate env g) (plan.Output 1)
                // old, k, old * k, the 5000 steps, and their two literals, each shared by 2500 steps.
                Expect.equal (Graph.size [ y ]) (3 + 5000 + 2) "Graph.size [ y ]"
            testCase "fused elementwise groups equal Eval when they fit one block, NaN and infinity included"
            <| fun () ->
                let shape = [| 7; 13 |]
                let a, b, s, row = Expr.var "a" shape, Expr.var "b" shape, Expr.var "s" [||], Expr.var "row" [| 13 |]
                let values = chainValues shape true
                let plan, got, expected = planAndEval (chains a b s row) values
                List.iter2 sameOrClose expected got
                let _, got, expected = planAndEval (arithmetic a b s row) values
                List.iter2 (fun (e: Tensor) (g: Tensor) -> Expect.equal (bits g) (bits e) "bits g") expected got
                // Far fewer instructions than elementwise nodes: the chains run as groups.
                Expect.isTrue (plan.InstructionCount <= 12) (sprintf "%d instructions" plan.InstructionCount)
            testCase "sigmoid's gradient chain is one instruction"
            <| fun () ->
                let a = Expr.var "a" [| 4; 5 |]
                let b = Expr.var "b" [| 4; 5 |]
                let y = Expr.sigmoid a
                let plan = Plan.compile [ b * (y * (1.0 - y)) ]
                // sigmoid, 1 - y, y * that and b * that fused: y, read twice inside the group only, is computed
                // there once.
                Expect.equal plan.InstructionCount 1 "plan.InstructionCount"
            // From 65536 elements on, a group's blocks run in two halves (uneven for 70001) with their own temps.
            for n in [ 1024; 2500; 2053; 65536; 70001 ] do
                testCase (sprintf "fused groups over several blocks equal Eval, with a short last block %d" n)
                <| fun () ->
                    let shape = [| n |]
                    let outputs =
                        chains (Expr.var "a" shape) (Expr.var "b" shape) (Expr.var "s" [||]) (Expr.var "row" [| n |])
                    let _, got, expected = planAndEval outputs (chainValues shape true)
                    List.iter2 sameOrClose expected got
            // Groups of +, -, *, /, sqrt, neg and abs run as one compiled loop (FusedLoop): vectors, then the last
            // elements one by one, in halves from 65536 on, with a stored step (read outside the group) there.
            for dtype in [ Float64; Float32 ] do
                for n in [ 1; 5; 91; 1024; 2053; 70001 ] do
                    testCase (sprintf "groups of exact operations run as one loop and give Eval's bits, %s %d" dtype.Name n)
                    <| fun () ->
                        let var name shape = Expr.varOf dtype name shape
                        let a, b, s = var "a" [| n |], var "b" [| n |], var "s" [||]
                        let shared = a * b - s
                        let outputs =
                            [
                                -(shared / (Expr.sqrt (Expr.abs b) + s)) * a + shared
                                shared * 2.0
                                Expr.sqrt (a / b - 0.5) - -b
                            ]
                        // NaN, infinity and signed zeros inside; the last elements (the scalar tail) ordinary.
                        let av = Tensor.randNormal Float64 21 [| n |] 0.0 2.0 |> Tensor.toArray
                        let bv = Tensor.randNormal Float64 22 [| n |] 0.0 1.0 |> Tensor.toArray
                        av[n / 3] <- nan
                        av[n / 2] <- infinity
                        bv[0] <- -0.0
                        bv[n / 2] <- 0.0
                        bv[n / 4] <- nan
                        let values =
                            [ "a", Tensor.create [| n |] av; "b", Tensor.create [| n |] bv; "s", Tensor.scalar 1.75 ]
                            |> List.map (fun (name, t) -> name, Tensor.cast dtype t)
                        let plan, got, expected = planAndEval outputs values
                        List.iter2 (fun (e: Tensor) (g: Tensor) -> Expect.equal (bits g) (bits e) "bits g") expected got
                        let labels = plan.Profile(1) |> Seq.map (fun e -> e.Instruction) |> List.ofSeq
                        Expect.isTrue
                            (labels |> List.exists (fun l -> l.StartsWith "fused loop"))
                            (sprintf "no group ran as a loop: %A" labels)
            testCase "an SGD update whose gradient is a fusable chain stays an update and equals Eval"
            <| fun () ->
                let x = Expr.var "x" [| 3; 4 |]
                let a = Expr.var "a" [| 3; 4 |]
                let g = a * (x * x + 1.0)
                let update = x - g * 0.1
                let values =
                    [
                        "x", Tensor.randNormal Float64 31 [| 3; 4 |] 0.0 1.0
                        "a", Tensor.randNormal Float64 32 [| 3; 4 |] 0.0 1.0
                    ]
                let expected = Eval.evaluate (Eval.bindings values) update
                let plan = Plan.compileWithUpdates [ Expr.sum x ] [ x, update ]
                for (name, t) in values do
                    plan.Set(name, t)
                plan.Execute()
                Expect.equal (bits (plan.Get "x")) (bits expected) "bits (plan.Get \"x\")"
        ]
