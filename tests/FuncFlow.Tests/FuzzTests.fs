/// Fuzzing: random small expressions over extreme values, in plain and anomaly mode. Each outcome is a
/// value (NaN and infinities included, as values), an ArithmeticException from anomaly mode naming an
/// operation, or an ArgumentException from a builder; never another exception, never a hang.
module FuncFlow.Tests.FuzzTests

open System
open System.Threading.Tasks
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private extremes = [| 1e300; -1e300; 1e-300; -1e-300; 0.0; -0.0; -1.0; 1.0; 2.5; -3.0; nan; infinity; -infinity; 709.0; 800.0 |]

let private unaries = [| Neg; Exp; Log; Sqrt; Abs; Sigmoid; Tanh; Relu; Softplus; Sign; Step |]
let private binaries = [| Add; Sub; Mul; Div; Pow; Equal |]

/// A random expression of depth at most `depth` over the given leaves.
let rec private generate (rng: Random) (leaves: Expr[]) (depth: int) : Expr =
    if depth = 0 || rng.Next 5 = 0 then leaves[rng.Next leaves.Length]
    else
        let sub () = generate rng leaves (depth - 1)
        match rng.Next 10 with
        | 0 | 1 | 2 -> Expr.unary unaries[rng.Next unaries.Length] (sub ())
        | 3 | 4 | 5 -> Expr.binary binaries[rng.Next binaries.Length] (sub ()) (sub ())
        | 6 -> Expr.powScalar ([| -2.0; -0.5; 0.5; 2.0; 3.0 |][rng.Next 5]) (sub ())
        | 7 ->
            let e = sub ()
            match rng.Next 4 with
            | 0 -> Expr.sum e
            | 1 -> Expr.mean e
            | 2 -> Expr.max e
            | _ -> Expr.sumAxisKeep (rng.Next 3 - 1) e
        | 8 -> Expr.softmax (rng.Next 2 - 1) (sub ())
        | _ -> Expr.logSoftmax -1 (sub ())

let private valuesOf (rng: Random) (shape: int[]) = Array.init (Shape.size shape) (fun _ -> extremes[rng.Next extremes.Length])

type private Outcome =
    | Value of Tensor
    | Anomaly of string

let private runCase (seed: int) =
    let rng = Random seed
    let dtype = if seed % 3 = 0 then Float32 else Float64
    let x = Expr.varOf dtype "x" [| 2; 3 |]
    let y = Expr.varOf dtype "y" [| 3 |]
    let env =
        Eval.bindings
            [ "x", Tensor.cast dtype (Tensor.create [| 2; 3 |] (valuesOf rng [| 2; 3 |]))
              "y", Tensor.cast dtype (Tensor.create [| 3 |] (valuesOf rng [| 3 |])) ]
    let built =
        try
            Ok(generate rng [| x; y; Expr.scalarOf dtype extremes[rng.Next extremes.Length] |] 4)
        with :? ArgumentException as e -> Error e.Message
    match built with
    | Error message -> Expect.isMatch message "^[A-Za-z ]+[^:]*: " "message"
    | Ok e ->
        let plain = Eval.evaluate env e
        Expect.equal plain.Shape e.Shape "plain.Shape"
        let checkedOutcome =
            try
                Value(Eval.evaluateChecked env e)
            with :? ArithmeticException as a -> Anomaly a.Message
        let allFinite = plain.ToArray() |> Array.forall Double.IsFinite
        match checkedOutcome with
        | Value v -> expectSameValues (plain.ToArray()) (v.ToArray()) "anomaly mode against plain evaluation"
        | Anomaly message ->
            Expect.stringStarts message "anomaly: " "message"
            Expect.isMatch message ("shape \\(") "message"
        // A non-finite result is some node's output, so anomaly mode must have stopped somewhere; only a
        // constant leaf (given, not produced) is exempt.
        let isConstant = match e.Op with Const _ -> true | _ -> false
        if not allFinite && not isConstant then Expect.isTrue checkedOutcome.IsAnomaly (sprintf "anomaly mode missed a non-finite value in %O" e)
        // Plans run the same kernels: the same bits, NaNs included.
        let plan = Plan.compile [ e ]
        let planned = plan.Run(Eval.bindings [ for name in plan.VariableNames -> name, env[name] ])
        Expect.equal (planned[0].ToArray() |> Array.map BitConverter.DoubleToInt64Bits) (plain.ToArray() |> Array.map BitConverter.DoubleToInt64Bits)
            "planned[0].ToArray() |> Array.map BitConverter.DoubleToInt64Bits"
        // Gradients of the summed output exist whatever the values are.
        let grads = Eval.many env [ (Grad.grad x (Expr.sum e)); (Grad.grad y (Expr.sum e)) ]
        Expect.equal (grads[0].Shape) ([| 2; 3 |]) "grads[0].Shape"

[<Tests>]
let tests =
    moduleTests "FuzzTests" [
        testCase "random expressions over extreme values give values or clear errors, never crashes or hangs" <| fun () ->
            for seed in 0 .. 399 do
                let case = Task.Run(fun () -> runCase seed)
                let finished =
                    try
                        case.Wait(TimeSpan.FromSeconds 20.0)
                    with :? AggregateException as a -> raise (Exception(sprintf "seed %d: %s" seed a.InnerException.Message, a.InnerException))
                Expect.isTrue finished (sprintf "seed %d did not finish in 20 s" seed)
    ]
