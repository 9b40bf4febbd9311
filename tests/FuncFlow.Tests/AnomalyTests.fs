/// Anomaly mode: Eval.evaluateChecked stops at the first node whose value holds a NaN or an infinity and
/// names it; plain evaluation returns the NaN or infinity as a value.
module FuncFlow.Tests.AnomalyTests

open System
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private x = Expr.var "x" [| 3 |]
let private bind (values: float[]) = Eval.bindings [ "x", Tensor.ofArray values ]

let private anomaly (env: Collections.Generic.IReadOnlyDictionary<string, Tensor>) (e: Expr) =
    (throws<ArithmeticException>(fun () -> Eval.evaluateChecked env e |> ignore)).Message

// Not inlined, so that the Release build keeps this frame in the recorded creation site.
[<System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)>]
let private buildModel (input: Expr) = Expr.sum (Expr.log (input - 1.0))

[<Tests>]
let tests =
    moduleTests
        "AnomalyTests"
        [
            testCase "log of a negative: plain gives NaN, checked names log, the shape and the value"
            <| fun () ->
                let f = Expr.log x * 2.0
                let plain = (Eval.evaluate (bind [| 1.0; -1.0; 2.0 |]) f).ToArray()
                Expect.isTrue (Double.IsNaN plain[1]) "Double.IsNaN plain[1]"
                let message = anomaly (bind [| 1.0; -1.0; 2.0 |]) f
                // The first bad node is the log, not the multiplication after it.
                Expect.stringStarts message "anomaly: log (node" "message"
                Expect.stringContains message "shape (3,)" "message"
                Expect.stringContains message "NaN at flat index 1" "message"
                Expect.stringContains message "operand values there: -1" "message"
            testCase "zero over zero names the division and both operands"
            <| fun () ->
                let y = Expr.var "y" [| 3 |]
                let env =
                    Eval.bindings [ "x", Tensor.ofArray [| 1.0; 0.0; 1.0 |]; "y", Tensor.ofArray [| 1.0; 0.0; 2.0 |] ]
                let f = Expr.sum (x / y)
                Expect.isTrue (Double.IsNaN(Tensor.item (Eval.evaluate env f))) "Double.IsNaN(Tensor.item (Eval.evaluate env f))"
                let message = anomaly env f
                Expect.stringStarts message "anomaly: binary / (node" "message"
                Expect.stringContains message "operands (3,), (3,)" "message"
                Expect.stringContains message "operand values there: 0, 0" "message"
            testCase "exp overflow is an infinity: plain returns it, checked names exp"
            <| fun () ->
                let f = Expr.exp x
                Expect.isTrue
                    (Double.IsPositiveInfinity((Eval.evaluate (bind [| 0.0; 1000.0; 1.0 |]) f).ToArray()[1]))
                    "Double.IsPositiveInfinity((Eval.evaluate (bind [| 0.0; 1000.0; 1.0 |]) f).ToArray()[1])"
                let message = anomaly (bind [| 0.0; 1000.0; 1.0 |]) (Expr.sum f)
                Expect.stringStarts message "anomaly: exp (node" "message"
                Expect.stringContains message "operand values there: 1000" "message"
            testCase "float32 overflow is caught in float32"
            <| fun () ->
                let x32 = Expr.var32 "x" [| 2 |]
                let env = Eval.bindings [ "x", Tensor.ofArray32 [| 1.0f; 100.0f |] ]
                let message =
                    (throws<ArithmeticException>(fun () -> Eval.evaluateChecked env (Expr.exp x32) |> ignore)).Message
                Expect.stringStarts message "anomaly: exp" "message"
            testCase "a NaN fed in is reported as the input it is"
            <| fun () ->
                let message = anomaly (bind [| 1.0; nan; 2.0 |]) (Expr.tanh x)
                Expect.stringStarts message "anomaly: variable 'x' (shape (3,)) is bound to a value holding NaN at flat index 1" "message"
            testCase "finite values pass anomaly mode unchanged"
            <| fun () ->
                let f = Expr.softmax 0 (Expr.log (x * x + 1.0))
                let env = bind [| 1.0; -2.0; 3.0 |]
                Expect.equal
                    ((Eval.evaluateChecked env f).ToArray())
                    ((Eval.evaluate env f).ToArray())
                    "(Eval.evaluateChecked env f).ToArray()"
            testCase "without capture a node has no creation site and the message says how to get one"
            <| fun () ->
                // Only this module switches capture on, and a module's tests run one at a time; FUNCFLOW_TRACE=1 in the
                // environment turns it on for the whole run.
                if not Expr.CaptureCreationSites then
                    let f = Expr.sqrt x
                    Expect.isTrue f.CreationSite.IsNone "f.CreationSite.IsNone"
                    Expect.stringContains (anomaly (bind [| -1.0; 1.0; 1.0 |]) f) "FUNCFLOW_TRACE=1" "anomaly (bind [| -1.0; 1.0; 1.0 |]) f"
            testCase "with capture on the anomaly message says where the node was built"
            <| fun () ->
                let previous = Expr.CaptureCreationSites
                Expr.CaptureCreationSites <- true
                let f =
                    try
                        buildModel x
                    finally
                        Expr.CaptureCreationSites <- previous
                let message = anomaly (bind [| 3.0; 0.5; 2.0 |]) f
                Expect.stringStarts message "anomaly: log" "message"
                Expect.stringContains message "built at" "message"
                Expect.stringContains message "buildModel" "message"
                Expect.stringContains message "AnomalyTests.fs" "message"
        ]
