/// Optimisers and schedules against PyTorch's torch.optim in float64: every option combination FuncFlow has
/// (SGD plain, momentum, Nesterov, each with and without weight decay; Adam and AdamW with and without weight
/// decay, with default and unusual betas and eps; LinearDecay and ExponentialDecay schedules), three steps
/// each, parameters and optimiser state within 1e-12. The reference is reference/optimizer_reference.json,
/// written by reference/make_optimizer_reference.py. FuncFlow's SGD has no dampening and its Adam no amsgrad,
/// so those options have no case.
module FuncFlow.Tests.NN.OptimizerReferenceTests

open System.Text.Json
open Expecto
open FuncFlow
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support
open FuncFlow.Tests.TorchReference

let private reference = lazy (load "optimizer_reference.json")

/// The FuncFlow optimiser a fixture case describes.
let private optimizerOf (spec: JsonElement) (schedule: JsonElement) : Optimizer =
    let num (key: string) = (field key spec).GetDouble()
    let inner: Optimizer =
        match (field "kind" spec).GetString() with
        | "sgd" -> SGD(num "lr", num "momentum", (field "nesterov" spec).GetBoolean(), num "weight_decay")
        | "adam" -> Adam(num "lr", num "beta1", num "beta2", num "eps", num "weight_decay", false)
        | "adamw" -> AdamW(num "lr", num "weight_decay", num "beta1", num "beta2", num "eps")
        | other -> failwithf "optimizer_reference.json: unknown optimizer kind %s" other
    if schedule.ValueKind = JsonValueKind.Null then
        inner
    else
        match (field "kind" schedule).GetString() with
        | "linear" -> Scheduled(inner, LinearDecay((field "steps" schedule).GetInt32()))
        | "exponential" -> Scheduled(inner, ExponentialDecay((field "gamma" schedule).GetDouble()))
        | other -> failwithf "optimizer_reference.json: unknown schedule kind %s" other

/// One step's values: the parameter and each state variable by its suffix ("momentum", "adam_m", ...).
type StepValues = { Parameter: float[]; State: Map<string, float[]> }

/// Runs an optimiser for some steps on loss = 0.5 sum(p^2) + sum(c p) (gradient p + c) through a compiled
/// plan with updates, as training does; returns the values after each step.
let runOptimizer (opt: Optimizer) (p0: Tensor) (c: Tensor) (steps: int) : StepValues list =
    let p = Expr.var "p" p0.Shape
    let step = Expr.var TrainStep.StepName [||]
    let loss = 0.5 * Expr.sum (p * p) + Expr.sum (Expr.constant c * p)
    let u = opt.Update(step, p, (Grad.wrt [ p ] loss)[p])
    let plan = Plan.compileWithUpdates [ loss ] ((step, step + 1.0) :: u.Updates)
    plan.Set("p", p0)
    plan.Set(TrainStep.StepName, Tensor.scalar 0.0)
    let stateNames = u.State |> List.map (fun (v, _) -> (Expr.tryName v).Value)
    for v, initial in u.State do
        plan.Set((Expr.tryName v).Value, initial)
    [
        for _ in 1..steps do
            plan.Execute()
            yield
                {
                    Parameter = (plan.Get "p").ToArray()
                    State = Map [ for name in stateNames -> name.Substring("p.".Length), (plan.Get name).ToArray() ]
                }
    ]

let private cases () = [ for c in (field "cases" reference.Value).EnumerateArray() -> c ]

/// Checks one fixture case: the parameter and every state variable torch keeps, after each step, within 1e-12.
let checkCase (c: JsonElement) =
    let root = reference.Value
    let name = (field "name" c).GetString()
    let shape = ints (field "shape" root)
    let steps = (field "steps" root).GetInt32()
    let p0, coefficients =
        Tensor.create shape (numbers (field "p0" root)), Tensor.create shape (numbers (field "c" root))
    let ours = runOptimizer (optimizerOf (field "optimizer" c) (field "schedule" c)) p0 coefficients steps
    let torchParams = [ for s in (field "params" c).EnumerateArray() -> numbers s ]
    let torchState =
        [
            for s in (field "state" c).EnumerateObject() -> s.Name, [ for v in s.Value.EnumerateArray() -> numbers v ]
        ]
    // Each state torch keeps must exist here too, and FuncFlow keeps no state torch does not.
    Expect.equal (ours.Head.State |> Map.keys |> List.ofSeq) (torchState |> List.map fst |> List.sort) (name + ": state variables")
    [
        for t in 0 .. steps - 1 do
            yield! mismatches 0.0 1e-12 (sprintf "parameter after step %d" (t + 1)) torchParams[t] ours[t].Parameter
            for stateName, values in torchState do
                yield! mismatches 0.0 1e-12 (sprintf "state %s after step %d" stateName (t + 1)) values[t] ours[t].State[stateName]
    ]
    |> assertNone name

/// The fixture must hold every option combination: regenerating it with a case missing would drop a check.
let private checkCoverage () =
    let specs = cases ()
    let has (predicate: JsonElement -> bool) = specs |> List.exists predicate
    let opt (c: JsonElement) = field "optimizer" c
    let kind c = (field "kind" (opt c)).GetString()
    let num key c = (field key (opt c)).GetDouble()
    let decayed c = num "weight_decay" c > 0.0
    let unscheduled (c: JsonElement) = (field "schedule" c).ValueKind = JsonValueKind.Null
    for decay in [ false; true ] do
        Expect.isTrue
            (has (fun c -> unscheduled c && kind c = "sgd" && decayed c = decay && num "momentum" c = 0.0))
            (sprintf "plain SGD, decay %b" decay)
        for nesterov in [ false; true ] do
            Expect.isTrue
                (has (fun c ->
                    unscheduled c
                    && kind c = "sgd"
                    && decayed c = decay
                    && num "momentum" c > 0.0
                    && (field "nesterov" (opt c)).GetBoolean() = nesterov))
                (sprintf "SGD momentum, Nesterov %b, decay %b" nesterov decay)
        for k in [ "adam"; "adamw" ] do
            Expect.isTrue (has (fun c -> unscheduled c && kind c = k && decayed c = decay)) (sprintf "%s, decay %b" k decay)
    for schedule in [ "linear"; "exponential" ] do
        Expect.isTrue (has (fun c -> not (unscheduled c) && (field "kind" (field "schedule" c)).GetString() = schedule)) schedule
    Expect.equal ((field "steps" reference.Value).GetInt32()) 3 "steps"

[<Tests>]
let tests =
    moduleTests
        "OptimizerReferenceTests"
        [
            for c in cases () do
                testCase (sprintf "%s matches torch.optim in float64 over three steps" ((field "name" c).GetString()))
                <| fun () -> checkCase c
            testCase "the reference covers every optimiser option combination and both schedules"
            <| checkCoverage
        ]
