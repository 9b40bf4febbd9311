/// Vectorising maps: vmap f xs against stacking f of each slice (evaluated one example at a time), for every
/// operation and on random DAGs; node counts independent of the batch size; per-example gradients; vmap of vmap.
module FuncFlow.Tests.VmapTests

open System
open System.Collections.Generic
open FsCheck.FSharp
open FuncFlow
open FuncFlow.Tests.Support
open Expecto

let private empty = Eval.bindings []

/// Slice i of t along an axis, without the axis.
let private sliceOf (axis: int) (i: int) (t: Tensor) =
    Eval.evaluate empty (Expr.constant t |> Expr.slice axis i 1 |> Expr.reshape (Array.removeAt axis t.Shape))

/// Variables of one example's shape for the mapped inputs; the others as they are.
let private exampleVars (inAxes: int option list) (vars: Expr list) =
    List.zip vars inAxes
    |> List.map (fun (v, axis) ->
        match axis with
        | Some a -> Expr.var (sprintf "example%s" (Expr.tryName v).Value) (Array.removeAt ((a + v.Rank) % v.Rank) v.Shape)
        | None -> v)

/// Asserts that vmapAxes inAxes f equals f evaluated on each example's slices (unmapped inputs whole),
/// stacked along a new leading axis.
let private againstLoop (inAxes: int option list) (f: Expr list -> Expr) (values: Tensor list) =
    let vars = values |> List.mapi (fun i t -> Expr.var (sprintf "in%d" i) t.Shape)
    let batched = Vmap.vmapAxes inAxes f vars
    let actual = Eval.evaluate (bind (List.zip vars values)) batched
    let b =
        List.zip inAxes values
        |> List.pick (fun (axis, t) -> axis |> Option.map (fun a -> t.Shape[(a + t.Rank) % t.Rank]))
    // The reference: f applied to per-example variables, evaluated once per example.
    let examples = exampleVars inAxes vars
    let out = f examples
    let expected =
        [|
            for i in 0 .. b - 1 do
                let env =
                    List.zip3 examples inAxes values
                    |> List.map (fun (e, axis, t) ->
                        match axis with
                        | Some a -> e, sliceOf ((a + t.Rank) % t.Rank) i t
                        | None -> e, t)
                yield! (Eval.evaluate (bind env) out).ToArray()
        |]
    Expect.equal actual.Shape (Array.append [| b |] out.Shape) "the batched shape"
    assertClose 1e-10 expected (actual.ToArray())

/// vmap over axis 0 of one input.
let private mapsLike (f: Expr -> Expr) (xs: Tensor) = againstLoop [ Some 0 ] (fun e -> f e.Head) [ xs ]

let private random (seed: int) (shape: int[]) = Tensor.randUniform Float64 seed shape -1.5 1.5

/// Whole numbers in [0, n) as float64 values.
let private indices (seed: int) (n: int) (shape: int[]) =
    let r = Random seed
    Tensor.create shape (Array.init (Shape.size shape) (fun _ -> float (r.Next n)))

/// The output with each variable replaced by its counterpart: the random DAGs' output as a function of them.
let private substitute (vars: Expr list) (output: Expr) (by: Expr list) =
    let rebuilt = Dictionary<Expr, Expr>()
    for v, e in List.zip vars by do
        rebuilt[v] <- e
    for node in Graph.topoSort [ output ] do
        if not (rebuilt.ContainsKey node) then
            let inputs = node.Inputs |> Array.map (fun i -> rebuilt[i])
            rebuilt[node] <-
                if Array.forall2 (fun (a: Expr) b -> a = b) inputs node.Inputs then
                    node
                else
                    Expr.make node.Op inputs node.ShapeRef node.DType
    rebuilt[output]

/// A random DAG with values for its variables, each given a new axis of length 1-3 at `axis` (the variable's
/// rank: its last), or only the first variable when `all` is false.
let private genMapped (all: bool) =
    gen {
        let! case = ExprGen.genCase 8
        let! b = Gen.choose (1, 3)
        let mapped = if all then case.Variables else [ case.Variables.Head ]
        let! values =
            mapped
            |> List.map (fun (v, _) -> genTensor (genFloat -1.5 1.5) (Array.insertAt v.Rank b v.Shape))
            |> Gen.sequenceToList
        return case, values
    }

let private w23 = Expr.constant (random 11 [| 2; 3 |])
let private w3 = Expr.constant (random 12 [| 3 |])
let private w34 = Expr.constant (random 13 [| 3; 4 |])

/// (name, in_axes, f, input values): a case per operation and per way its operands can be batched.
let private cases: (string * int option list * (Expr list -> Expr) * Tensor list) list =
    let one (f: Expr -> Expr) = fun (e: Expr list) -> f e.Head
    let two (f: Expr -> Expr -> Expr) = fun (e: Expr list) -> f e[0] e[1]
    let xs = random 1 [| 4; 2; 3 |]
    let window = { Window.Kernel = [ 2; 2 ]; Stride = [ 1; 1 ]; Padding = [ 0; 0 ]; Dilation = [ 1; 1 ] }
    [
        for u in everyUnaryOp do
            yield "unary " + u.Name, [ Some 0 ], one (fun x -> Expr.unary u (x * x + 0.5)), [ xs ]
        for op in everyBinaryOp do
            // A positive base for pow; a batched operand of lower rank than the unbatched one, and both batched.
            let f a b = Expr.binary op (Expr.sigmoid a + 0.5) b
            yield "binary " + op.Name + ", unbatched right", [ Some 0 ], one (fun x -> f x w3), [ xs ]
            yield "binary " + op.Name + ", lower-rank batched left", [ Some 0 ], one (fun x -> f x w23), [ random 2 [| 4; 3 |] ]
            yield "binary " + op.Name + ", both batched", [ Some 0; Some 0 ], two (fun x y -> f y x), [ random 3 [| 4; 3 |]; xs ]
        yield "powScalar", [ Some 0 ], one (fun x -> x ** 3.0), [ xs ]
        yield "matmul by an unbatched matrix", [ Some 0 ], one (fun x -> Expr.matmul x w34), [ xs ]
        yield "matmul of an unbatched matrix", [ Some 0 ], one (fun x -> Expr.matmul (Expr.transpose w34) (Expr.transpose x)), [ xs ]
        yield
            "matmul with broadcast batch axes",
            [ Some 0 ],
            one (fun x -> Expr.matmul (Expr.reshape [| 1; 2; 3 |] x) (Expr.constant (random 14 [| 2; 3; 2 |]))),
            [ xs ]
        yield "matmul, both batched", [ Some 0; Some 0 ], two (fun x y -> Expr.matmul x y), [ xs; random 4 [| 4; 3; 2 |] ]
        yield "matmul of vectors", [ Some 0; Some 0 ], two (fun x y -> Expr.matmul x y), [ random 5 [| 4; 3 |]; random 6 [| 4; 3 |] ]
        yield "matmul of a vector by a matrix", [ Some 0 ], one (fun x -> Expr.matmul x w34), [ random 7 [| 4; 3 |] ]
        yield "permute", [ Some 0 ], one (Expr.permute [| 1; 2; 0 |] << Expr.reshape [| 1; 2; 3 |]), [ xs ]
        yield "reshape", [ Some 0 ], one (Expr.reshape [| 3; 2 |]), [ xs ]
        yield "broadcastTo", [ Some 0 ], one (Expr.broadcastTo [| 2; 2; 3 |]), [ xs ]
        yield "broadcastTo from a lower rank", [ Some 0 ], one (Expr.broadcastTo [| 2; 3 |]), [ random 8 [| 4; 3 |] ]
        for kind in [ ReduceOp.Sum; ReduceOp.Mean; ReduceOp.Max; ReduceOp.Prod; ReduceOp.LogSumExp ] do
            for axis in [ None; Some 0; Some 1 ] do
                for keep in [ false; true ] do
                    yield sprintf "%s axis=%A keepDim=%b" kind.Name axis keep, [ Some 0 ], one (Expr.reduce kind axis keep), [ xs ]
        yield "concat with an unbatched operand", [ Some 0 ], one (fun x -> Expr.concat 1 [ x; w23; x ]), [ xs ]
        yield "slice", [ Some 0 ], one (Expr.slice 1 1 2), [ xs ]
        yield "strided backward slice", [ Some 0 ], one (Expr.stridedSlice 1 None None -2), [ xs ]
        yield "pad", [ Some 0 ], one (Expr.padWith 0.5 0 1 2), [ xs ]
        yield "interior pad", [ Some 0 ], one (Expr.padNode 1 1 0 2 0.0), [ xs ]
        yield "gather, batched values", [ Some 0 ], one (Expr.indexSelect 1 (Expr.constant (indices 1 3 [| 2; 2 |]))), [ xs ]
        yield "gather, batched indices", [ Some 0 ], one (fun i -> Expr.indexSelect 1 i w23), [ indices 2 3 [| 4; 5 |] ]
        yield "gather, both batched", [ Some 0; Some 0 ], two (fun x i -> Expr.indexSelect 1 i x), [ xs; indices 3 3 [| 4; 2; 2 |] ]
        yield "scatterAdd, batched values", [ Some 0 ], one (Expr.indexAdd 1 4 (Expr.constant (indices 4 4 [| 3 |]))), [ xs ]
        yield "scatterAdd, batched indices", [ Some 0 ], one (fun i -> Expr.indexAdd 0 3 i w23), [ indices 5 3 [| 4; 2 |] ]
        yield
            "scatterAdd, both batched",
            [ Some 0; Some 0 ],
            two (fun x i -> Expr.indexAdd 1 5 i x),
            [ random 9 [| 4; 2; 2; 2 |]; indices 6 5 [| 4; 2; 2 |] ]
        yield "oneHot", [ Some 0 ], one (Expr.oneHot 3), [ indices 7 3 [| 4; 2 |] ]
        yield "softmax", [ Some 0 ], one (Expr.softmax 0), [ xs ]
        yield "logSoftmax", [ Some 0 ], one (Expr.logSoftmax 1), [ xs ]
        yield "addN with an unbatched operand", [ Some 0 ], one (fun x -> Expr.addN [ x; w23; Expr.exp x ]), [ xs ]
        yield
            "conv2d (unfold), batched input",
            [ Some 0 ],
            one (fun x -> Expr.conv2d ConvSpec.Default2d x (Expr.constant (random 15 [| 2; 1; 2; 2 |]))),
            [ random 10 [| 3; 2; 1; 3; 3 |] ]
        yield
            "conv1d, input and weight batched",
            [ Some 0; Some 0 ],
            two (Expr.conv1d { ConvSpec.Default1d with Padding = [ 1 ] }),
            [ random 16 [| 3; 2; 2; 4 |]; random 17 [| 3; 3; 2; 2 |] ]
        yield "fold", [ Some 0 ], one (Expr.fold [ 3; 3 ] window), [ random 18 [| 3; 2; 4; 4 |] ]
        yield
            "maxPool2d (pick)",
            [ Some 0 ],
            one (Expr.maxPool2d { Kernel = [ 2; 2 ]; Stride = [ 1; 1 ]; Padding = [ 0; 0 ] }),
            [ random 19 [| 3; 1; 2; 3; 3 |] ]
        yield
            "maxPoolPick, unbatched keys",
            [ Some 0 ],
            one (Expr.maxPoolPick window (Expr.constant (random 20 [| 1; 2; 3; 3 |]))),
            [ random 21 [| 3; 1; 2; 3; 3 |] ]
        yield
            "maxPoolScatter, batched keys and unbatched values",
            [ Some 0 ],
            one (fun k -> Expr.maxPoolScatter window k (Expr.constant (random 22 [| 1; 2; 2; 2 |]))),
            [ random 23 [| 3; 1; 2; 3; 3 |] ]
        yield "where, batched condition", [ Some 0 ], one (fun x -> Expr.where (Expr.step x) w3 (-w3)), [ xs ]
        yield "where, batched branches", [ Some 0; Some 0 ], two (fun x y -> Expr.where (Expr.step w3) x y), [ xs; random 24 [| 4; 3 |] ]
        yield "cumsum", [ Some 0 ], one (Expr.cumsum 1), [ xs ]
        yield "reverseCumsum", [ Some 0 ], one (Expr.reverseCumsum 0), [ xs ]
        yield "custom", [ Some 0 ], one (fun x -> CustomOp.apply doubledSquare [ x ]), [ xs ]
    ]

// A small MLP's loss on one example: x [3], label one-hot [2].
let private w1 = Expr.var "w1" [| 3; 4 |]
let private b1 = Expr.var "b1" [| 4 |]
let private w2 = Expr.var "w2" [| 4; 2 |]
let private parameters = [ w1, random 31 [| 3; 4 |]; b1, random 32 [| 4 |]; w2, random 33 [| 4; 2 |] ]
let private loss (x: Expr) (label: Expr) =
    let h = Expr.tanh (Expr.matmul x w1 + b1)
    -Expr.sum(label * Expr.logSoftmax 0 (Expr.matmul h w2))

[<Tests>]
let tests =
    moduleTests
        "VmapTests"
        [
            testCase "every batching rule equals stacking f of each slice"
            <| fun () ->
                for name, inAxes, f, values in cases do
                    try
                        againstLoop inAxes f values
                    with e ->
                        failtestf "%s: %s" name e.Message
            testCase "the per-operation cases cover every operation with operands"
            <| fun () ->
                let tag = Reflection.FSharpValue.PreComputeUnionTagReader typeof<Op>
                let covered =
                    cases
                    |> List.collect (fun (_, inAxes, f, values) ->
                        let vars = values |> List.mapi (fun i t -> Expr.var (sprintf "in%d" i) t.Shape)
                        Graph.topoSort [ f (exampleVars inAxes vars) ] |> Array.map (fun n -> tag n.Op) |> List.ofArray)
                    |> set
                for case in Reflection.FSharpType.GetUnionCases typeof<Op> do
                    if case.Name <> "Var" && case.Name <> "Const" then
                        Expect.isTrue (covered.Contains case.Tag) (sprintf "no vmap case builds Op.%s" case.Name)
            testPropertyFrom "random DAGs: vmap f xs equals stacking f of each slice" 150 (genMapped false) (fun (case, values) ->
                let others = case.Variables.Tail
                againstLoop
                    (Some (fst case.Variables.Head).Rank :: List.map (fun _ -> None) others)
                    (substitute (List.map fst case.Variables) case.Output)
                    (values @ List.map snd others))
            testPropertyFrom
                "random DAGs: per-example gradients (vmap of Grad) equal the gradients one example at a time"
                100
                (genMapped false)
                (fun (case, values) ->
                    let others = case.Variables.Tail
                    // With respect to the last variable: an unmapped one (a parameter) when there are several.
                    againstLoop
                        (Some (fst case.Variables.Head).Rank :: List.map (fun _ -> None) others)
                        (fun inputs ->
                            Grad.grad (List.last inputs) (Expr.sum (substitute (List.map fst case.Variables) case.Output inputs)))
                        (values @ List.map snd others))
            testPropertyFrom "random DAGs: every variable mapped" 100 (genMapped true) (fun (case, values) ->
                againstLoop
                    (case.Variables |> List.map (fun (v, _) -> Some v.Rank))
                    (substitute (List.map fst case.Variables) case.Output)
                    values)
            testPropertyFrom "random DAGs: the node count does not depend on the batch size" 100 (ExprGen.genCase 8) (fun case ->
                let v, _ = case.Variables.Head
                let count b =
                    Graph.size
                        [
                            Vmap.vmap (fun x -> substitute [ v ] case.Output [ x ]) (Expr.var "xs" (Array.append [| b |] v.Shape))
                        ]
                Expect.equal (count 2) (count 9) "nodes for 2 and for 9 examples")
            testCase "an MLP's node count does not depend on the batch size"
            <| fun () ->
                let count b =
                    Graph.size [ Vmap.vmap (fun x -> loss x (Expr.oneHot 2 (Expr.scalar 1.0))) (Expr.var "xs" [| b; 3 |]) ]
                Expect.equal (count 1) (count 1000) "nodes for 1 and for 1000 examples"
            testCase "per-example gradients equal the gradients computed one example at a time"
            <| fun () ->
                let xs, labels = random 41 [| 5; 3 |], Tensor.create [| 5; 2 |] [| 1; 0; 0; 1; 0; 1; 1; 0; 1; 0 |]
                for w, _ in parameters do
                    let env = parameters |> List.map (fun (p, t) -> (Expr.tryName p).Value, t)
                    let xsVar, labelsVar = Expr.var "xs" [| 5; 3 |], Expr.var "labels" [| 5; 2 |]
                    let perExample =
                        Vmap.vmapAxes [ Some 0; Some 0 ] (fun e -> Grad.grad w (loss e[0] e[1])) [ xsVar; labelsVar ]
                    let actual = Eval.evaluate (Eval.bindings (("xs", xs) :: ("labels", labels) :: env)) perExample
                    let x, label = Expr.var "x" [| 3 |], Expr.var "label" [| 2 |]
                    let g = Grad.grad w (loss x label)
                    let expected =
                        Array.init 5 (fun i ->
                            (Eval.evaluate (Eval.bindings (("x", sliceOf 0 i xs) :: ("label", sliceOf 0 i labels) :: env)) g).ToArray())
                    Expect.equal actual.Shape (Array.append [| 5 |] w.Shape) "per-example gradients' shape"
                    assertClose 1e-12 (Array.concat expected) (actual.ToArray())
                    // And their sum is the gradient of the summed loss.
                    let total =
                        Grad.grad w (Expr.sum (Vmap.vmapAxes [ Some 0; Some 0 ] (fun e -> loss e[0] e[1]) [ xsVar; labelsVar ]))
                    let summed = Array.init (Shape.size w.Shape) (fun j -> expected |> Array.sumBy (fun e -> e[j]))
                    let totalValue = Eval.evaluate (Eval.bindings (("xs", xs) :: ("labels", labels) :: env)) total
                    assertClose 1e-12 summed (totalValue.ToArray())
            testCase "vmap of vmap: pairwise squared distances"
            <| fun () ->
                let a, b = random 51 [| 3; 2 |], random 52 [| 4; 2 |]
                let aVar, bVar = Expr.var "a" [| 3; 2 |], Expr.var "b" [| 4; 2 |]
                let d = Vmap.vmap (fun p -> Vmap.vmap (fun q -> Expr.sum ((p - q) ** 2.0)) bVar) aVar
                let actual = Eval.evaluate (bind [ aVar, a; bVar, b ]) d
                let av, bv = a.ToArray(), b.ToArray()
                let expected =
                    Array.init 12 (fun k ->
                        let i, j = k / 4, k % 4
                        (av[2 * i] - bv[2 * j]) ** 2.0 + (av[2 * i + 1] - bv[2 * j + 1]) ** 2.0)
                Expect.equal actual.Shape [| 3; 4 |] "pairwise distances' shape"
                assertClose 1e-14 expected (actual.ToArray())
            testCase "vmap of vmap over per-example Hessian-vector products"
            <| fun () ->
                let xs, vs = random 53 [| 2; 3 |], random 54 [| 4; 3 |]
                let xsVar, vsVar = Expr.var "xs" [| 2; 3 |], Expr.var "vs" [| 4; 3 |]
                let f (x: Expr) = Expr.sum (Expr.tanh x ** 3.0)
                let batched = Vmap.vmap (fun x -> Vmap.vmap (fun v -> Grad.hvp x v (f x)) vsVar) xsVar
                let actual = Eval.evaluate (bind [ xsVar, xs; vsVar, vs ]) batched
                let x, v = Expr.var "x" [| 3 |], Expr.var "v" [| 3 |]
                let h = Grad.hvp x v (f x)
                let expected =
                    [|
                        for i in 0..1 do
                            for j in 0..3 do
                                yield! (Eval.evaluate (bind [ x, sliceOf 0 i xs; v, sliceOf 0 j vs ]) h).ToArray()
                    |]
                Expect.equal actual.Shape [| 2; 4; 3 |] "shape"
                assertClose 1e-12 expected (actual.ToArray())
            testCase "vmapAxis maps over a later axis; a result independent of the input is repeated"
            <| fun () ->
                let xs = random 61 [| 2; 5 |]
                let xsVar = Expr.var "xs" [| 2; 5 |]
                let actual = Eval.evaluate (bind [ xsVar, xs ]) (Vmap.vmapAxis 1 (fun x -> x * 2.0 + Expr.sum x) xsVar)
                let v = xs.ToArray()
                // Column j is one example [v0j; v1j]: row j of the result is 2 x + (v0j + v1j).
                let expected = Array.init 10 (fun k -> 2.0 * v[k % 2 * 5 + k / 2] + v[k / 2] + v[5 + k / 2])
                Expect.equal actual.Shape [| 5; 2 |] "columns as examples"
                assertClose 1e-14 expected (actual.ToArray())
                let constant = Eval.evaluate (bind [ xsVar, xs ]) (Vmap.vmapAxis -1 (fun _ -> w3) xsVar)
                Expect.equal constant.Shape [| 5; 3 |] "a constant result, one per example"
                assertClose 0.0 (Array.concat (Array.create 5 ((Eval.evaluate empty w3).ToArray()))) (constant.ToArray())
            testCase "a batched index outside its example's rows is still an error"
            <| fun () ->
                let table = Expr.var "table" [| 2; 3 |]
                let picks = Expr.var "picks" [| 2; 1 |]
                let picked = Vmap.vmapAxes [ Some 0; Some 0 ] (fun e -> Expr.gather e[1] e[0]) [ table; picks ]
                for bad in [ 3.0; -1.0; 0.5 ] do
                    let env = bind [ table, random 71 [| 2; 3 |]; picks, Tensor.create [| 2; 1 |] [| bad; 0.0 |] ]
                    throws<ArgumentOutOfRangeException>(fun () -> Eval.evaluate env picked |> ignore) |> ignore
            testCase "bad input names vmap, the shapes and what was expected"
            <| fun () ->
                let xs, ys = Expr.var "xs" [| 3; 2 |], Expr.var "ys" [| 4; 2 |]
                let e =
                    throws<ArgumentException>(fun () -> Vmap.vmapAxes [ Some 0; Some 0 ] (fun e -> e[0] + e[1]) [ xs; ys ] |> ignore)
                Expect.stringContains e.Message "Vmap.vmapAxes: the mapped axes have different lengths" "message"
                Expect.stringContains e.Message "(4, 2) has 4" "message"
                let e = throws<ArgumentException>(fun () -> Vmap.vmapAxis 2 id xs |> ignore)
                Expect.stringContains e.Message "Vmap.vmapAxis" "message"
                let e = throws<ArgumentException>(fun () -> Vmap.vmapAxes [ None ] List.head [ xs ] |> ignore)
                Expect.stringContains e.Message "no input is mapped" "message"
                let e = throws<ArgumentException>(fun () -> Vmap.vmapAxes [ Some 0 ] List.head [ xs; ys ] |> ignore)
                Expect.stringContains e.Message "1 axes for 2 inputs" "message"
                let e = throws<ArgumentException>(fun () -> Vmap.vmap (fun x -> Expr.matmul x w34) xs |> ignore)
                Expect.stringContains e.Message "matmul" "an example's shape error names the operation"
            testCase "a vmapped float32 MLP compiles into a plan with the loop's values"
            <| fun () ->
                let w = Expr.constant (Tensor.cast Float32 (random 81 [| 3; 4 |]))
                let f (x: Expr) = Expr.softmax 0 (Expr.tanh (Expr.matmul x w))
                let xs = Tensor.cast Float32 (random 82 [| 6; 3 |])
                let xsVar = Expr.var32 "xs" [| 6; 3 |]
                let plan = Plan.compile [ Vmap.vmap f xsVar ]
                let actual = (plan.Run(Eval.bindings [ "xs", xs ]))[0]
                let x = Expr.var32 "x" [| 3 |]
                let expected =
                    Array.init 6 (fun i -> (Eval.evaluate (Eval.bindings [ "x", sliceOf 0 i xs ]) (f x)).ToArray())
                    |> Array.concat
                assertClose 1e-6 expected (actual.ToArray())
        ]
