/// The algebraic simplifier: values unchanged on random DAGs and their gradients (evaluated both ways), never
/// more nodes, and each rewrite by example.
module FuncFlow.Tests.SimplifyTests

open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private values (case: ExprGen.Case) (es: Expr list) = Eval.many (bind case.Variables) es |> List.map (fun t -> t.ToArray())

let private x3 = Expr.var "x" [| 3 |]

[<Tests>]
let tests =
    moduleTests
        "SimplifyTests"
        [
            testPropertyFrom
                "random DAGs: the simplified expression has the same value and no more nodes"
                300
                (ExprGen.genCase 12)
                (fun case ->
                    let simplified = Simplify.expr case.Output
                    let before, after = Graph.size [ case.Output ], Graph.size [ simplified ]
                    Expect.isLessThanOrEqual after before "nodes after simplification"
                    match values case [ case.Output; simplified ] with
                    | [ expected; actual ] -> assertClose 1e-12 expected actual
                    | _ -> failtest "two values")
            testPropertyFrom
                "random DAGs: simplified gradients equal the rules' gradients, with no more nodes"
                200
                (ExprGen.genCase 12)
                (fun case ->
                    let vars = List.map fst case.Variables
                    let f = Expr.sum case.Output
                    let raw, simplified = Grad.vjpUnsimplified (Expr.onesLike f) vars f, Grad.wrt vars f
                    for v in vars do
                        Expect.isLessThanOrEqual (Graph.size [ simplified[v] ]) (Graph.size [ raw[v] ]) "nodes after simplification"
                        match values case [ raw[v]; simplified[v] ] with
                        | [ expected; actual ] -> assertClose 1e-12 expected actual
                        | _ -> failtest "two values")
            testPropertyFrom
                "random DAGs: a plan of the loss and its simplified gradients runs no more instructions"
                300
                (ExprGen.genCase 12)
                (fun case ->
                    let vars = List.map fst case.Variables
                    let f = Expr.sum case.Output
                    let raw, simplified = Grad.vjpUnsimplified (Expr.onesLike f) vars f, Grad.wrt vars f
                    // Buffer elements are not compared: the layout shares buffers greedily, so its total moves a few
                    // elements either way with the order of lifetimes.
                    let instructions (grads: Map<Expr, Expr>) = (Plan.compile (f :: List.map (fun v -> grads[v]) vars)).InstructionCount
                    Expect.isLessThanOrEqual (instructions simplified) (instructions raw) "instructions")
            testCase "identities: x * 1, x / 1, x + 0, x - 0 and --x are x; 0 - x is -x; x * 0 is 0"
            <| fun () ->
                let one, zero = Expr.constant (Tensor.ones Float64 [| 1 |]), Expr.scalar 0.0
                for e in [ Expr.mul x3 one; Expr.div x3 one; Expr.add x3 zero; Expr.add zero x3; Expr.sub x3 zero; -(-x3) ] do
                    Expect.isTrue (obj.ReferenceEquals(Simplify.expr e, x3)) (Print.formula e)
                Expect.equal (Print.formula (Simplify.expr (Expr.sub zero x3))) "-x" "0 - x"
                let s = Expr.var "s" [||]
                Expect.isTrue (obj.ReferenceEquals(Simplify.expr (Expr.mul (Expr.exp s) zero), Simplify.expr zero)) "x * 0"
                Expect.equal (Print.formula (Simplify.expr (x3 + -(Expr.exp x3)))) "x - exp(x)" "a + -b"
            testCase "constants fold; a broadcast one-element value is read directly, a broadcast one-element constant folded"
            <| fun () ->
                let folded = Simplify.expr (Expr.scalar 2.0 * Expr.scalar 3.0 + x3)
                Expect.equal (Print.formula folded) "6 + x" "2 * 3 folded"
                Expect.equal (Graph.size [ folded ]) 3 "x, 6 and the sum"
                let broadcast = Simplify.expr (Expr.broadcastTo [| 3 |] (Expr.reshape [| 1 |] (Expr.scalar 2.0)) * x3)
                Expect.equal (Graph.size [ broadcast ]) 3 "x, 2 and the product: the broadcast is gone"
                let lifted = Simplify.expr (Expr.exp (Expr.broadcastTo [| 3 |] (Expr.scalar 0.5)))
                Expect.equal
                    (Graph.topoSort [ lifted ] |> Array.map (fun n -> n.Op.Name))
                    [| "const " + string (exp 0.5); "broadcastTo (3,)" |]
                    "exp folded on the one element, then broadcast"
                Expect.equal ((Eval.evaluate (bind []) lifted).ToArray()) (Array.create 3 (exp 0.5)) "value"
                // A broadcast variable is not lifted: the broadcast may be shared by other users.
                let s = Expr.var "s" [||]
                let kept = Expr.exp (Expr.broadcastTo [| 3 |] s)
                Expect.isTrue (obj.ReferenceEquals(Simplify.expr kept, kept)) "exp of a broadcast variable"
            testCase "structurally equal sub-expressions are shared, except elementwise ones (left to fusion); a variable stays itself"
            <| fun () ->
                let e = Expr.sumAxis 0 (Expr.softmax 0 x3) * 2.0 + Expr.sumAxis 0 (Expr.softmax 0 x3) * 2.0
                let shared = Simplify.expr e
                Expect.equal (Graph.size [ e ]) 9 "x, two softmax, two sums, 2 (shared by the literal cache), two products and the sum"
                Expect.equal (Graph.size [ shared ]) 7 "x, softmax, sum, 2, two products, the sum"
                Expect.equal (Print.formula shared) "let t1 = sum(softmax(x, axis=0), axis=0) in\n2 * t1 + 2 * t1" "formula"
                let same = Expr.var "x" [| 3 |]
                Expect.equal (Graph.size [ Simplify.expr (x3 + same) ]) 3 "two variables of one name are two nodes"
            testCase "a gradient keeps the function's own nodes, also where they could be simplified"
            <| fun () ->
                let y = Expr.exp (x3 + Expr.scalar 0.0)
                let g = Grad.grad x3 (Expr.sum y)
                Expect.isTrue (Graph.topoSort [ g ] |> Array.exists (fun n -> obj.ReferenceEquals(n, y))) "the gradient reads f's exp node"
                Expect.equal (Print.formula g) "exp(x + 0)" "g * y with g = 1 is y"
            testCase "a stack of reshapes is a reshape of the concat of their operands, shared with that concat elsewhere"
            <| fun () ->
                let xs = [ for i in 0..2 -> Expr.var (sprintf "x%d" i) [| 2; 3 |] ]
                let bound =
                    bind
                        [
                            for i, x in List.indexed xs -> x, Tensor.create [| 2; 3 |] (Array.init 6 (fun j -> float (10 * i + j)))
                        ]
                let stacked = Expr.concat 0 [ for x in xs -> Expr.reshape [| 1; 2; 3 |] x ]
                let joined = Expr.concat 0 xs
                match Simplify.many [ stacked; joined ] with
                | [ s; j ] ->
                    Expect.equal s.Op (Op.Reshape [| 3; 2; 3 |]) "the stack is a reshape"
                    Expect.isTrue (obj.ReferenceEquals(s.Inputs[0], j)) "of the one concat"
                    Expect.equal (Graph.size [ s; j ]) 5 "three variables, the concat and the reshape"
                    // Stacked, element [i; r; c] is x_i[r; c], which is 10 i + 3 r + c.
                    Expect.equal ((Eval.evaluate bound s).ToArray()) (Array.init 18 (fun k -> float (10 * (k / 6) + k % 6))) "value"
                | _ -> failtest "two roots"
                // Along a middle axis the stack's layout is again the concat's: element [r; i; c] is x_i[r; c].
                let middle = Simplify.expr (Expr.concat 1 [ for x in xs -> Expr.reshape [| 2; 1; 3 |] x ])
                Expect.equal middle.Op (Op.Reshape [| 2; 3; 3 |]) "a stack along axis 1"
                Expect.equal
                    ((Eval.evaluate bound middle).ToArray())
                    (Array.init 18 (fun k -> float (10 * (k / 3 % 3) + 3 * (k / 9) + k % 3)))
                    "value along axis 1"
                // A reshape that does not insert an axis at the concat's (here it merges x's axes) is no stack.
                let rows = Expr.concat 0 [ for x in xs -> Expr.reshape [| 1; 6 |] x ]
                Expect.isTrue (obj.ReferenceEquals(Simplify.expr rows, rows)) "concat of flattened tensors left as it is"
            testCase "an LSTM's gradients concatenate its gate gradients once (the input projection's is a view of it)"
            <| fun () ->
                let steps, batch, inputs, hidden = 5, 2, 3, 4
                let x = Expr.var "x" [| steps; batch; inputs |]
                let w: NN.CellWeights =
                    {
                        InputWeight = Expr.var "wih" [| 4 * hidden; inputs |]
                        HiddenWeight = Expr.var "whh" [| 4 * hidden; hidden |]
                        InputBias = Some(Expr.var "bih" [| 4 * hidden |])
                        HiddenBias = Some(Expr.var "bhh" [| 4 * hidden |])
                    }
                let zero = Expr.constant (Tensor.zeros Float64 [| batch; hidden |])
                let out, _ = NN.Recurrent.sequence NN.CellKind.Lstm w false x { Hidden = zero; Cell = Some zero }
                let grads = Grad.wrt [ x; w.InputWeight; w.HiddenWeight; w.InputBias.Value ] (Expr.sum (out * out))
                let gateConcats =
                    Graph.topoSort (Map.values grads)
                    |> Array.filter (fun n -> n.Op = Op.Concat 0 && Shape.size n.ShapeRef = steps * batch * 4 * hidden)
                Expect.equal
                    (gateConcats |> Array.map (fun n -> n.ShapeRef))
                    [| [| steps * batch; 4 * hidden |] |]
                    "one concat of the gate gradients"
            testCase "several roots are simplified together: what they share stays shared"
            <| fun () ->
                let a, b = Expr.softmax 0 x3 + 1.0, Expr.softmax 0 x3 * 3.0
                match Simplify.many [ a; b ] with
                | [ a'; b' ] -> Expect.isTrue (obj.ReferenceEquals(a'.Inputs[0], b'.Inputs[0])) "one softmax"
                | _ -> failtest "two roots"
        ]
