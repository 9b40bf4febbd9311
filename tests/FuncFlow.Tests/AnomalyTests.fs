/// Anomaly mode: Eval.evaluateChecked stops at the first node whose value holds a NaN or an infinity and
/// names it; plain evaluation returns the NaN or infinity as a value.
module FuncFlow.Tests.AnomalyTests

open System
open Xunit
open FuncFlow

let private x = Expr.var "x" [| 3 |]
let private bind (values: float[]) = Eval.bindings [ "x", Tensor.ofArray values ]

let private anomaly (env: Collections.Generic.IReadOnlyDictionary<string, Tensor>) (e: Expr) =
    Assert.Throws<ArithmeticException>(fun () -> Eval.evaluateChecked env e |> ignore).Message

[<Fact>]
let ``log of a negative: plain gives NaN, checked names log, the shape and the value`` () =
    let f = Expr.log x * 2.0
    let plain = (Eval.evaluate (bind [| 1.0; -1.0; 2.0 |]) f).ToArray()
    Assert.True(Double.IsNaN plain[1])
    let message = anomaly (bind [| 1.0; -1.0; 2.0 |]) f
    // The first bad node is the log, not the multiplication after it.
    Assert.StartsWith("anomaly: log (node", message)
    Assert.Contains("shape (3,)", message)
    Assert.Contains("NaN at flat index 1", message)
    Assert.Contains("operand values there: -1", message)

[<Fact>]
let ``zero over zero names the division and both operands`` () =
    let y = Expr.var "y" [| 3 |]
    let env = Eval.bindings [ "x", Tensor.ofArray [| 1.0; 0.0; 1.0 |]; "y", Tensor.ofArray [| 1.0; 0.0; 2.0 |] ]
    let f = Expr.sum (x / y)
    Assert.True(Double.IsNaN(Tensor.item (Eval.evaluate env f)))
    let message = anomaly env f
    Assert.StartsWith("anomaly: binary / (node", message)
    Assert.Contains("operands (3,), (3,)", message)
    Assert.Contains("operand values there: 0, 0", message)

[<Fact>]
let ``exp overflow is an infinity: plain returns it, checked names exp`` () =
    let f = Expr.exp x
    Assert.True(Double.IsPositiveInfinity((Eval.evaluate (bind [| 0.0; 1000.0; 1.0 |]) f).ToArray()[1]))
    let message = anomaly (bind [| 0.0; 1000.0; 1.0 |]) (Expr.sum f)
    Assert.StartsWith("anomaly: exp (node", message)
    Assert.Contains("operand values there: 1000", message)

[<Fact>]
let ``float32 overflow is caught in float32`` () =
    let x32 = Expr.var32 "x" [| 2 |]
    let env = Eval.bindings [ "x", Tensor.ofArray32 [| 1.0f; 100.0f |] ]
    let message = Assert.Throws<ArithmeticException>(fun () -> Eval.evaluateChecked env (Expr.exp x32) |> ignore).Message
    Assert.StartsWith("anomaly: exp", message)

[<Fact>]
let ``a NaN fed in is reported as the input it is`` () =
    let message = anomaly (bind [| 1.0; nan; 2.0 |]) (Expr.tanh x)
    Assert.StartsWith("anomaly: variable 'x' (shape (3,)) is bound to a value holding NaN at flat index 1", message)

[<Fact>]
let ``finite values pass anomaly mode unchanged`` () =
    let f = Expr.softmax 0 (Expr.log (x * x + 1.0))
    let env = bind [| 1.0; -2.0; 3.0 |]
    Assert.Equal<float[]>((Eval.evaluate env f).ToArray(), (Eval.evaluateChecked env f).ToArray())

[<Fact>]
let ``without capture a node has no creation site and the message says how to get one`` () =
    // Only this module switches capture on, and a module's tests run one at a time; FUNCFLOW_TRACE=1 in the
    // environment turns it on for the whole run.
    if not Expr.CaptureCreationSites then
        let f = Expr.sqrt x
        Assert.True(f.CreationSite.IsNone)
        Assert.Contains("FUNCFLOW_TRACE=1", anomaly (bind [| -1.0; 1.0; 1.0 |]) f)

// Not inlined, so that the Release build keeps this frame in the recorded creation site.
[<System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)>]
let private buildModel (input: Expr) = Expr.sum (Expr.log (input - 1.0))

[<Fact>]
let ``with capture on the anomaly message says where the node was built`` () =
    let previous = Expr.CaptureCreationSites
    Expr.CaptureCreationSites <- true
    let f =
        try
            buildModel x
        finally
            Expr.CaptureCreationSites <- previous
    let message = anomaly (bind [| 3.0; 0.5; 2.0 |]) f
    Assert.StartsWith("anomaly: log", message)
    Assert.Contains("built at", message)
    Assert.Contains("buildModel", message)
    Assert.Contains("AnomalyTests.fs", message)
