/// Error messages, deep and wide graphs, anomaly mode, and printing.
module FuncFlow.Tests.EvalTests

open System
open System.Collections.Generic
open FuncFlow
open FuncFlow.Tests.Support
open Expecto

let private chainLength = 100_000

let private tanhChain (x: Expr) = Seq.fold (fun y _ -> Expr.tanh y) x (seq { 1..chainLength })

let private x = Expr.var "x" [| 2; 3 |]
let private w = Expr.var "w" [| 3; 4 |]
let private b = Expr.var "b" [| 4 |]

[<Tests>]
let tests =
    moduleTests
        "EvalTests"
        [
            testCase "shape errors at build time name the operation and both shapes"
            <| fun () ->
                let a, b = Expr.var "a" [| 2; 3 |], Expr.var "b" [| 2; 3 |]
                let error = (throwsAny<ArgumentException>(fun () -> Expr.matmul a b |> ignore))
                Expect.stringContains error.Message "matmul" "error.Message"
                Expect.stringContains error.Message "(2, 3)" "error.Message"
                let error = (throwsAny<ArgumentException>(fun () -> a + Expr.var "c" [| 4 |] |> ignore))
                Expect.stringContains error.Message "(2, 3)" "error.Message"
                Expect.stringContains error.Message "(4,)" "error.Message"
            testCase "an unbound variable is named"
            <| fun () ->
                let x = Expr.var "x" [| 2 |]
                let error =
                    (throws<KeyNotFoundException>(fun () -> Eval.evaluate (Eval.bindings []) (Expr.tanh x) |> ignore))
                Expect.stringContains error.Message "'x'" "error.Message"
                Expect.stringContains error.Message "(2,)" "error.Message"
            testCase "a value of the wrong shape is named with both shapes"
            <| fun () ->
                let x = Expr.var "x" [| 2 |]
                let error =
                    (throwsAny<ArgumentException>(fun () -> Eval.evaluate (bind [ x, Tensor.ofArray [| 1.0; 2.0; 3.0 |] ]) x |> ignore))
                Expect.stringContains error.Message "'x'" "error.Message"
                Expect.stringContains error.Message "(2,)" "error.Message"
                Expect.stringContains error.Message "(3,)" "error.Message"
            testCase "mixing dtypes names both"
            <| fun () ->
                let error =
                    (throwsAny<ArgumentException>(fun () -> Expr.var "a" [| 2 |] + Expr.var32 "b" [| 2 |] |> ignore))
                Expect.stringContains error.Message "float64" "error.Message"
                Expect.stringContains error.Message "float32" "error.Message"
            testCase "a chain of 100,000 operations builds, evaluates and differentiates"
            <| fun () ->
                let x = Expr.var "x" [| 3 |]
                let start = [| 0.5; -1.0; 2.0 |]
                let f = Expr.sum (tanhChain x)
                let value, grads = Eval.valueAndGrad (bind [ x, Tensor.ofArray start ]) [ x ] f
                // The same chain in plain floats: the value, and the derivative as the product of 1 - y^2.
                let expected =
                    start
                    |> Array.map (fun s ->
                        Seq.fold (fun (y, d) _ -> let t = Math.Tanh y in t, d * (1.0 - t * t)) (s, 1.0) (seq { 1..chainLength }))
                assertRelative 1e-9 [| Array.sumBy fst expected |] [| Tensor.item value |]
                assertRelative 1e-9 (Array.map snd expected) (grads[x].ToArray())
            testCase "a variable used 100,000 times differentiates"
            <| fun () ->
                let x = Expr.var "x" [| 2 |]
                let env = bind [ x, Tensor.ofArray [| 0.25; -3.0 |] ]
                // Wide: one node with 100,000 operands, all x.
                let wide = Expr.sum (Expr.addN (List.replicate chainLength x))
                Expect.equal
                    ((Eval.evaluate env (Grad.grad x wide)).ToArray())
                    ([| 100000.0; 100000.0 |])
                    "(Eval.evaluate env (Grad.grad x wide)).ToArray()"
                // Scaled copies contribute different gradients: sum(i) over 10,000 terms = 49,995,000, exact in float64.
                let scaled = Expr.sum (Expr.addN (List.init 10_000 (fun i -> x * float i)))
                Expect.equal
                    ((Eval.evaluate env (Grad.grad x scaled)).ToArray())
                    ([| 49995000.0; 49995000.0 |])
                    "(Eval.evaluate env (Grad.grad x scaled)).ToArray()"
                // Deep: x + x + ... + x, each use a separate contribution to the accumulation.
                let deep = Expr.sum (Seq.fold (fun acc _ -> acc + x) x (seq { 2..chainLength }))
                Expect.equal
                    ((Eval.evaluate env (Grad.grad x deep)).ToArray())
                    ([| 100000.0; 100000.0 |])
                    "(Eval.evaluate env (Grad.grad x deep)).ToArray()"
            testCase "anomaly mode names the node that produced a NaN"
            <| fun () ->
                let x = Expr.var "x" [| 2 |]
                let f = Expr.sum (Expr.log x * 2.0)
                let env = bind [ x, Tensor.ofArray [| 1.0; -1.0 |] ]
                Expect.isTrue (Double.IsNaN(Tensor.item (Eval.evaluate env f))) "Double.IsNaN(Tensor.item (Eval.evaluate env f))"
                let error = (throws<ArithmeticException>(fun () -> Eval.evaluateChecked env f |> ignore))
                Expect.stringContains error.Message "log" "error.Message"
                Expect.stringContains error.Message "NaN" "error.Message"
                Expect.stringContains error.Message "flat index 1" "error.Message"
            testCase "formula prints infix with the fewest parentheses"
            <| fun () ->
                Expect.equal
                    (Print.formula (Expr.sigmoid (Expr.matmul x w + b)))
                    "sigmoid(matmul(x, w) + b)"
                    "Print.formula (Expr.sigmoid (Expr.matmul x w + b))"
                Expect.equal
                    (Print.formula ((x - x * 2.0) * (x - (x - 1.0))))
                    "(x - 2 * x) * (x - (x - 1))"
                    "Print.formula ((x - x * 2.0) * (x - (x - 1.0)))"
                Expect.equal
                    (Print.formula (-(x + 1.0) / Expr.pow x (Expr.pow (Expr.scalar 2.0) x)))
                    "-(x + 1) / x ** 2 ** x"
                    "Print.formula (-(x + 1.0) / Expr.pow x (Expr.pow (Expr.scalar 2.0) x))"
                Expect.equal (Print.formula ((x ** 2.0) ** -0.5)) "(x ** 2) ** -0.5" "Print.formula ((x ** 2.0) ** -0.5)"
                Expect.equal
                    (Print.formula (Expr.softmax 0 (Expr.sumAxisKeep 1 x * Expr.constant (Tensor.ones Float64 [| 2; 3 |]))))
                    "softmax(sum(x, axis=1, keepDim) * const(2, 3), axis=0)"
                    "Print.formula (Expr.softmax 0 (Expr.sumAxisKeep 1 x * Expr.constant (Tensor.ones Float64 [| 2; 3 |])))"
                Expect.equal
                    (Print.formula (Expr.transpose (Expr.slice 1 0 2 x)))
                    "transpose(slice(x, axis=1, start=0, length=2))"
                    "Print.formula (Expr.transpose (Expr.slice 1 0 2 x))"
                // shapeops group: a step, an interior width, a value and an axis other than 0 are shown where they are not the default.
                let i = Expr.var "i" [| 2 |]
                Expect.equal
                    (Print.formula (Expr.stridedSlice 1 None None -2 (Expr.padWith 1.5 0 1 0 x)))
                    "slice(pad(x, axis=0, before=1, after=0, value=1.5), axis=1, start=2, length=2, step=-2)"
                    "a backward strided slice of a constant pad"
                Expect.equal
                    (Print.formula (Expr.indexAdd 1 3 i (Expr.indexSelect 1 i x) + Expr.scatterAdd 2 i x))
                    "scatterAdd(gather(x, i, axis=1), i, axis=1, rows=3) + scatterAdd(x, i, rows=2)"
                    "picks and their adjoints along axes 1 and 0"
                Expect.equal
                    (Print.formula (Expr.reverseCumsum 0 (Expr.cumsum -1 x)))
                    "cumsum(cumsum(x, axis=1), axis=0, reverse)"
                    "running sums"
            testCase "formula binds shared sub-expressions once"
            <| fun () ->
                let h = Expr.sigmoid (Expr.matmul x w)
                let y = Expr.tanh h
                Expect.equal (Print.formula (h + h * 2.0)) ("let t1 = sigmoid(matmul(x, w)) in\nt1 + 2 * t1") "Print.formula (h + h * 2.0)"
                // h * h reads h once, as h ** 2.
                Expect.equal (Print.formula (h * h)) "sigmoid(matmul(x, w)) ** 2" "Print.formula (h * h)"
                Expect.equal
                    (Print.formula (Expr.sum (y + h * y)))
                    ("let t1 = sigmoid(matmul(x, w)) in\nlet t2 = tanh(t1) in\nsum(t2 + t1 * t2)")
                    "Print.formula (Expr.sum (y + h * y))"
            testCase "dot prints one node per expression, edges in data-flow order, outputs marked"
            <| fun () ->
                let h = Expr.sigmoid (Expr.matmul x w + b)
                let expected =
                    String.concat
                        "\n"
                        [
                            "digraph funcflow {"
                            "  node [shape=box];"
                            "  n0 [label=\"x\\n(2, 3)\", shape=ellipse];"
                            "  n1 [label=\"w\\n(3, 4)\", shape=ellipse];"
                            "  n2 [label=\"matmul\\n(2, 4)\"];"
                            "  n0 -> n2;"
                            "  n1 -> n2;"
                            "  n3 [label=\"b\\n(4,)\", shape=ellipse];"
                            "  n4 [label=\"+\\n(2, 4)\"];"
                            "  n2 -> n4;"
                            "  n3 -> n4;"
                            "  n5 [label=\"sigmoid\\n(2, 4)\", peripheries=2];"
                            "  n4 -> n5;"
                            "  n6 [label=\"sum axis=0\\n(4,)\", peripheries=2];"
                            "  n5 -> n6;"
                            "}"
                            ""
                        ]
                Expect.equal (Print.dot [ h; Expr.sumAxis 0 h ]) expected "Print.dot [ h; Expr.sumAxis 0 h ]"
            testCase "formula and dot print a chain of 100,000 operations"
            <| fun () ->
                let text = Print.formula (tanhChain (Expr.var "x" [| 2 |]))
                let lines = text.Split '\n'
                Expect.stringStarts text "let t1 = tanh(tanh(" "text"
                Expect.isTrue
                    (lines.Length > 1000 && lines |> Array.forall (fun l -> l.Length < 300))
                    "lines.Length > 1000 && lines |> Array.forall (fun l -> l.Length < 300)"
                Expect.equal (text.Split("tanh(").Length - 1) chainLength "text.Split(\"tanh(\").Length - 1"
                let dot = Print.dot [ tanhChain (Expr.var "x" [| 2 |]) ]
                Expect.equal (dot.Split("->").Length - 1) chainLength "dot.Split(\"->\").Length - 1"
            testCase "a plan broadcasts one value per block of trailing axes (a [1; C; 1; 1] bias) in every order and op"
            <| fun () ->
                // Plans run these one block at a time; the expected values are worked out element by element.
                let big, small = [| 2; 3; 4; 5 |], [| 1; 3; 1; 1 |]
                let bigValues = Array.init (Shape.size big) (fun i -> float (i % 7) - 2.5)
                let smallValues = [| 1.5; -2.0; 4.0 |]
                let a, c = Expr.var "a" big, Expr.var "c" small
                for name, op, f in
                    [
                        "-", (fun (u: Expr) (v: Expr) -> u - v), (fun (u: float) v -> u - v)
                        "/", (fun u v -> u / v), (fun u v -> u / v)
                        "maximum", Expr.maximum, (fun u v -> max u v)
                    ] do
                    for smallFirst in [ false; true ] do
                        let plan = Plan.compile [ (if smallFirst then op c a else op a c) ]
                        plan.Set("a", Tensor.create big bigValues)
                        plan.Set("c", Tensor.create small smallValues)
                        plan.Execute()
                        let expected =
                            bigValues
                            |> Array.mapi (fun i u ->
                                let v = smallValues[i / 20 % 3]
                                if smallFirst then f v u else f u v)
                        Expect.equal ((plan.Output 0).ToArray()) expected (sprintf "%s, the [1; 3; 1; 1] operand first: %b" name smallFirst)
            testCase "Plan.Profile runs the plan and accounts for every instruction"
            <| fun () ->
                let v = Expr.var "v" [| 3 |]
                let plan = Plan.compileWithUpdates [ Expr.sum (v * v) ] [ v, v * 2.0 ]
                plan.Set("v", Tensor.ofArray [| 1.0; 2.0; 3.0 |])
                let profile = plan.Profile 2
                Expect.equal (profile |> Seq.sumBy (fun e -> e.Count)) plan.InstructionCount "one entry per instruction"
                Expect.isTrue (profile |> Seq.forall (fun e -> e.Microseconds >= 0.0 && e.Instruction <> "")) "times and labels"
                Expect.equal ((plan.Get "v").ToArray()) [| 4.0; 8.0; 12.0 |] "two runs' updates, as two Executes"
                Expect.equal (plan.OutputScalar 0) 56.0 "the last run's output"
                let error = throwsAny<ArgumentException>(fun () -> plan.Profile 0 |> ignore)
                Expect.stringContains error.Message "Plan.Profile" "error.Message"
        ]
