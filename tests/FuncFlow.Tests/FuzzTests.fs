/// Fuzzing: random small expressions over extreme values, in plain and anomaly mode. Each outcome is a
/// value (NaN and infinities included, as values), an ArithmeticException from anomaly mode naming an
/// operation, or an ArgumentException from a builder; never another exception, never a hang. Gradients are
/// checked by value: a compiled plan of them gives one-shot evaluation's bits, and at a second, moderate
/// point, where the expression is smooth, they agree with central differences (GradCheck).
module FuncFlow.Tests.FuzzTests

open System
open System.Collections.Generic
open System.Threading.Tasks
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private extremes =
    [|
        1e300
        -1e300
        1e-300
        -1e-300
        0.0
        -0.0
        -1.0
        1.0
        2.5
        -3.0
        nan
        infinity
        -infinity
        709.0
        800.0
    |]

let private unaries =
    [|
        UnaryOp.Neg
        UnaryOp.Exp
        UnaryOp.Log
        UnaryOp.Sqrt
        UnaryOp.Abs
        UnaryOp.Sigmoid
        UnaryOp.Tanh
        UnaryOp.Relu
        UnaryOp.Softplus
        UnaryOp.Sign
        UnaryOp.Step
    |]
let private binaries =
    [| BinaryOp.Add; BinaryOp.Sub; BinaryOp.Mul; BinaryOp.Div; BinaryOp.Pow; BinaryOp.Equal |]

/// A random expression of depth at most `depth` over the given leaves.
let rec private generate (rng: Random) (leaves: Expr[]) (depth: int) : Expr =
    if depth = 0 || rng.Next 5 = 0 then
        leaves[rng.Next leaves.Length]
    else
        let sub () = generate rng leaves (depth - 1)
        match rng.Next 10 with
        | 0
        | 1
        | 2 -> Expr.unary unaries[rng.Next unaries.Length] (sub ())
        | 3
        | 4
        | 5 -> Expr.binary binaries[rng.Next binaries.Length] (sub ()) (sub ())
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

/// How far from a kink, jump or singularity every operand must be, and how large any value may be, for
/// central differences (eps 1e-6) to be meaningful: rounding noise is then below GradCheck's atol.
let private margin, largest = 1e-3, 1e4

/// Whether e is smooth around the bindings, judged node by node: every value is finite and at most
/// `largest` in magnitude; the operands of relu, abs, sign, step, log, sqrt, powScalar and a divisor are at
/// least `margin` from 0, and a power's base at least `margin` above it; no two values an equality compares,
/// or two of a maximum's operand, are closer than `margin` without being equal (equal ones are ties built
/// into the graph, which perturbations move together).
let private smoothAt (env: IReadOnlyDictionary<string, Tensor>) (e: Expr) =
    let nodes = Graph.topoSort [ e ]
    let values = Dictionary<Expr, float[]>(HashIdentity.Reference)
    List.iter2 (fun (n: Expr) (v: Tensor) -> values[n] <- v.ToArray()) (List.ofArray nodes) (Eval.many env (List.ofArray nodes))
    let operand (n: Expr) i = values[n.Operands[i]]
    let awayFromZero (v: float[]) = v |> Array.forall (fun a -> abs a >= margin)
    let apart (a: float[]) (b: float[]) = a |> Array.forall (fun p -> b |> Array.forall (fun q -> p = q || abs (p - q) >= margin))
    let nodeSmooth (n: Expr) =
        values[n] |> Array.forall (fun v -> Double.IsFinite v && abs v <= largest)
        && match n.Op with
           | Op.Unary(UnaryOp.Relu | UnaryOp.Abs | UnaryOp.Sign | UnaryOp.Step | UnaryOp.Log | UnaryOp.Sqrt)
           | Op.PowScalar _ -> awayFromZero (operand n 0)
           | Op.Binary BinaryOp.Div -> awayFromZero (operand n 1)
           | Op.Binary BinaryOp.Pow -> operand n 0 |> Array.forall (fun a -> a >= margin)
           | Op.Binary BinaryOp.Equal -> apart (operand n 0) (operand n 1)
           | Op.Reduce(ReduceOp.Max, _, _) -> apart (operand n 0) (operand n 0)
           | _ -> true
    nodes |> Array.forall nodeSmooth

let private bits = valueBits

/// Runs one case; true when its gradients were compared with central differences.
let private runCase (seed: int) =
    let rng = Random seed
    let dtype = if seed % 3 = 0 then Float32 else Float64
    let x = Expr.varOf dtype "x" [| 2; 3 |]
    let y = Expr.varOf dtype "y" [| 3 |]
    let env =
        Eval.bindings
            [
                "x", Tensor.cast dtype (Tensor.create [| 2; 3 |] (valuesOf rng [| 2; 3 |]))
                "y", Tensor.cast dtype (Tensor.create [| 3 |] (valuesOf rng [| 3 |]))
            ]
    let built =
        try
            Ok(generate rng [| x; y; Expr.scalarOf dtype extremes[rng.Next extremes.Length] |] 4)
        with :? ArgumentException as e ->
            Error e.Message
    match built with
    | Error message ->
        Expect.isMatch message "^[A-Za-z ]+[^:]*: " "message"
        false
    | Ok e ->
        let plain = Eval.evaluate env e
        Expect.equal plain.Shape e.Shape "plain.Shape"
        let checkedOutcome =
            try
                Value(Eval.evaluateChecked env e)
            with :? ArithmeticException as a ->
                Anomaly a.Message
        let allFinite = plain.ToArray() |> Array.forall Double.IsFinite
        match checkedOutcome with
        | Value v -> expectSameValues (plain.ToArray()) (v.ToArray()) "anomaly mode against plain evaluation"
        | Anomaly message ->
            Expect.stringStarts message "anomaly: " "message"
            Expect.isMatch message ("shape \\(") "message"
        // A non-finite result is some node's output, so anomaly mode must have stopped somewhere; only a
        // constant leaf (given, not produced) is exempt.
        let isConstant =
            match e.Op with
            | Op.Const _ -> true
            | _ -> false
        if not allFinite && not isConstant then
            Expect.isTrue checkedOutcome.IsAnomaly (sprintf "anomaly mode missed a non-finite value in %O" e)
        // Plans run the same kernels: the same bits, every NaN as one (valueBits).
        let plan = Plan.compile [ e ]
        let planned = plan.Run(Eval.bindings [ for name in plan.VariableNames -> name, env[name] ])
        Expect.equal (bits planned[0]) (bits plain) "the plan's value bits"
        // Gradients of the summed output exist whatever the values are, and a compiled plan of them (fused,
        // with shared buffers) gives one-shot evaluation's bits (NaNs as one).
        let gradients = [ Grad.grad x (Expr.sum e); Grad.grad y (Expr.sum e) ]
        let grads = Eval.many env gradients
        Expect.equal grads[0].Shape [| 2; 3 |] "the gradient's shape for x"
        Expect.equal grads[1].Shape [| 3 |] "the gradient's shape for y"
        let gradPlan = Plan.compile gradients
        let plannedGrads = gradPlan.Run(Eval.bindings [ for name in gradPlan.VariableNames -> name, env[name] ])
        List.iteri2
            (fun i (g: Tensor) (p: Tensor) ->
                Expect.isTrue
                    (bits g = bits p)
                    (sprintf
                        "seed %d: the plan's gradient %d differs from evaluation's in %O: %A vs %A"
                        seed
                        i
                        e
                        (g.ToArray())
                        (p.ToArray())))
            grads
            (List.ofArray plannedGrads)
        // At a moderate point where the expression is smooth, the gradients' values agree with central
        // differences (a NaN or infinite gradient there fails too).
        let moderate = Random(seed + 100_000)
        let around shape =
            Tensor.create
                shape
                (Array.init (Shape.size shape) (fun _ ->
                    (0.25 + 1.75 * moderate.NextDouble()) * (if moderate.Next 2 = 0 then -1.0 else 1.0)))
        let atModerate =
            Eval.bindings [ "x", Tensor.cast dtype (around [| 2; 3 |]); "y", Tensor.cast dtype (around [| 3 |]) ]
        if dtype = Float64 && smoothAt atModerate e then
            let report = GradCheck.check GradCheckOptions.Default atModerate [ x; y ] (Expr.sum e)
            Expect.isTrue report.Passed (sprintf "seed %d: %s\nformula: %s" seed report.Message (Print.formula e))
            true
        else
            false

[<Tests>]
let tests =
    moduleTests
        "FuzzTests"
        [
            testCase "random expressions over extreme values give values or clear errors, never crashes or hangs"
            <| fun () ->
                let mutable compared = 0
                for seed in 0..399 do
                    let case = Task.Run(fun () -> runCase seed)
                    let finished =
                        try
                            case.Wait(TimeSpan.FromSeconds 20.0)
                        with :? AggregateException as a ->
                            raise (Exception(sprintf "seed %d: %s" seed a.InnerException.Message, a.InnerException))
                    Expect.isTrue finished (sprintf "seed %d did not finish in 20 s" seed)
                    if case.Result then compared <- compared + 1
                // Most float64 cases are smooth at the moderate point; a filter that let none through would check nothing.
                Expect.isGreaterThanOrEqual compared 100 "cases whose gradients were compared with central differences"
        ]
