namespace FuncFlow.NN

open System
open FuncFlow

/// What an optimiser adds to a training plan for one parameter: its state variables with their initial
/// values, and the updates (variable, new value expression), the parameter's own among them. All new values
/// are computed from the values before the step, as Plan.compileWithUpdates applies them.
type ParameterUpdate =
    {
        /// State variables (momentum, moments) and their initial values.
        State: (Expr * Tensor) list
        /// (variable, expression of its value after the step), for the parameter and each state variable.
        Updates: (Expr * Expr) list
    }

/// An optimiser: a pure description of how a parameter and its gradient become update expressions, so the
/// whole step (forward, loss, gradient, update) compiles into one plan.
[<AbstractClass>]
type Optimizer() =
    /// The update of one parameter. `step` is a scalar variable holding the number of steps already taken.
    abstract Update: step: Expr * parameter: Expr * gradient: Expr -> ParameterUpdate

    /// The gradients the updates see, from the loss's, all parameters' together (for global-norm clipping);
    /// the loss's own by default.
    abstract Gradients: gradients: Expr list -> Expr list
    default _.Gradients(gradients: Expr list) = gradients

    /// A state variable named after the parameter ("0.weight.momentum"), starting at zeros.
    static member internal StateOf(parameter: Expr, suffix: string) =
        let name = (Expr.tryName parameter |> Option.defaultValue "parameter") + "." + suffix
        Expr.varOf parameter.DType name parameter.Shape, Tensor.zeros parameter.DType parameter.Shape

    /// Fails unless a hyper-parameter is finite and at least `lowest` (NaN fails too).
    static member internal Require(op: string, name: string, value: float, lowest: float, strictly: bool) =
        let ok = Double.IsFinite value && (if strictly then value > lowest else value >= lowest)
        if not ok then
            invalidArg name (sprintf "%s: %s must be a finite number %s %g, got %g" op name (if strictly then ">" else ">=") lowest value)

    /// The gradient plus L2 weight decay (coupled decay, as PyTorch's weight_decay).
    static member internal Decayed(parameter: Expr, gradient: Expr, weightDecay: float) =
        if weightDecay = 0.0 then gradient else gradient + weightDecay * parameter

/// Gradient clipping by global norm, as functions on gradient expressions.
[<RequireQualifiedAccess>]
module Clip =
    /// The global norm of a set of gradients: the square root of the sum of all their elements' squares (a
    /// scalar of the gradients' dtype).
    let globalNorm (gradients: Expr list) : Expr =
        if List.isEmpty gradients then invalidArg "gradients" "Clip.globalNorm: needs at least one gradient"
        Expr.sqrt (Expr.addN [ for g in gradients -> Expr.sum (g * g) ])

    /// The gradients scaled by min(1, maxNorm / (norm + 1e-6)), norm their global norm, as PyTorch's
    /// clip_grad_norm_: their global norm is then at most maxNorm, and gradients within it are unchanged (no
    /// gradients give none).
    /// Raises ArgumentException unless maxNorm is finite and positive.
    let byGlobalNorm (maxNorm: float) (gradients: Expr list) : Expr list =
        if not (Double.IsFinite maxNorm && maxNorm > 0.0) then
            invalidArg "maxNorm" (sprintf "Clip.byGlobalNorm: maxNorm must be a finite number > 0, got %g" maxNorm)
        if List.isEmpty gradients then
            []
        else
            let norm = globalNorm gradients
            let factor = Expr.minimum (Expr.scalarLike norm 1.0) (maxNorm / (norm + 1e-6))
            gradients |> List.map (fun g -> g * factor)

/// Stochastic gradient descent, PyTorch's form: g = grad + wd p; v = mu v + g; p -= lr (g + mu v) with
/// Nesterov, p -= lr v without; plain p -= lr g when momentum is 0.
[<Sealed>]
type SGD(learningRate: float, momentum: float, nesterov: bool, weightDecay: float) =
    inherit Optimizer()
    do
        Optimizer.Require("SGD", "learningRate", learningRate, 0.0, true)
        Optimizer.Require("SGD", "momentum", momentum, 0.0, false)
        Optimizer.Require("SGD", "weightDecay", weightDecay, 0.0, false)
        if nesterov && momentum = 0.0 then
            invalidArg "nesterov" "SGD: Nesterov momentum needs a positive momentum"

    /// Plain SGD (the seeds' p -= lr * grad).
    new(learningRate) = SGD(learningRate, 0.0, false, 0.0)
    /// SGD with momentum.
    new(learningRate, momentum) = SGD(learningRate, momentum, false, 0.0)

    /// The learning rate.
    member _.LearningRate = learningRate
    /// The momentum coefficient.
    member _.Momentum = momentum
    /// Whether the momentum is Nesterov's.
    member _.Nesterov = nesterov
    /// The L2 weight decay.
    member _.WeightDecay = weightDecay

    override _.Update(_: Expr, p: Expr, grad: Expr) =
        let g = Optimizer.Decayed(p, grad, weightDecay)
        if momentum = 0.0 then
            { State = []; Updates = [ p, p - learningRate * g ] }
        else
            let v, v0 = Optimizer.StateOf(p, "momentum")
            let vNew = momentum * v + g
            let direction = if nesterov then g + momentum * vNew else vNew
            { State = [ v, v0 ]; Updates = [ p, p - learningRate * direction; v, vNew ] }

/// Adam (Kingma and Ba) with bias correction; `decoupled` gives AdamW (Loshchilov and Hutter), which
/// shrinks the parameter by lr * wd directly instead of adding wd p to the gradient.
[<Sealed>]
type Adam(learningRate: float, beta1: float, beta2: float, epsilon: float, weightDecay: float, decoupled: bool) =
    inherit Optimizer()
    do
        Optimizer.Require("Adam", "learningRate", learningRate, 0.0, true)
        Optimizer.Require("Adam", "epsilon", epsilon, 0.0, false)
        Optimizer.Require("Adam", "weightDecay", weightDecay, 0.0, false)
        if not (beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0) then
            invalidArg "beta1" (sprintf "Adam: betas must be in [0, 1), got %g and %g" beta1 beta2)

    /// Adam with the usual betas (0.9, 0.999) and epsilon 1e-8.
    new(learningRate) = Adam(learningRate, 0.9, 0.999, 1e-8, 0.0, false)

    /// Adam with L2 weight decay added to the gradient (PyTorch's Adam weight_decay).
    new(learningRate, weightDecay) = Adam(learningRate, 0.9, 0.999, 1e-8, weightDecay, false)

    /// The learning rate.
    member _.LearningRate = learningRate
    /// The weight decay.
    member _.WeightDecay = weightDecay
    /// True for AdamW's decoupled decay.
    member _.Decoupled = decoupled

    override _.Update(step: Expr, p: Expr, grad: Expr) =
        let g = if decoupled then grad else Optimizer.Decayed(p, grad, weightDecay)
        let m, m0 = Optimizer.StateOf(p, "adam_m")
        let v, v0 = Optimizer.StateOf(p, "adam_v")
        let mNew = beta1 * m + (1.0 - beta1) * g
        let vNew = beta2 * v + (1.0 - beta2) * (g * g)
        let t = step + 1.0
        // t counts this step too, so the first step divides the moments by (1 - beta).
        let c1 = 1.0 - Expr.pow (Expr.scalarLike p beta1) t
        let c2 = 1.0 - Expr.pow (Expr.scalarLike p beta2) t
        // PyTorch's order (torch.optim.Adam): the corrections folded into two scalars, so each element costs
        // two divisions and a square root, lr m^ / (sqrt v^ + eps) = (lr / c1) m / (sqrt v / sqrt c2 + eps).
        let stepSize = learningRate / c1
        let denominator = Expr.sqrt vNew / Expr.sqrt c2 + epsilon
        let shrunk = if decoupled && weightDecay <> 0.0 then p * (1.0 - learningRate * weightDecay) else p
        {
            State = [ m, m0; v, v0 ]
            Updates = [ p, shrunk - stepSize * (mNew / denominator); m, mNew; v, vNew ]
        }

/// AdamW: Adam with decoupled weight decay, p <- p (1 - lr wd) - lr m^ / (sqrt v^ + eps).
[<Sealed>]
type AdamW(learningRate: float, weightDecay: float, beta1: float, beta2: float, epsilon: float) =
    inherit Optimizer()
    let inner = Adam(learningRate, beta1, beta2, epsilon, weightDecay, true)

    /// AdamW with betas (0.9, 0.999) and epsilon 1e-8.
    new(learningRate, weightDecay) = AdamW(learningRate, weightDecay, 0.9, 0.999, 1e-8)
    /// AdamW with PyTorch's default weight decay 0.01.
    new(learningRate) = AdamW(learningRate, 0.01)

    /// The learning rate.
    member _.LearningRate = learningRate
    /// The decoupled weight decay.
    member _.WeightDecay = weightDecay

    override _.Update(step: Expr, p: Expr, grad: Expr) = inner.Update(step, p, grad)

/// A learning-rate schedule: a factor on the base rate as a function of the number of steps taken,
/// computed inside the training plan, so a schedule costs no recompilation.
type Schedule =
    /// Falls linearly from the base rate to zero over the given number of steps, then stays at zero.
    | LinearDecay of steps: int
    /// Multiplies the rate by gamma after every step.
    | ExponentialDecay of gamma: float
    /// Cosine annealing (PyTorch's CosineAnnealingLR, with eta_min = minFactor times the base rate): the
    /// factor after t steps is minFactor + (1 - minFactor) (1 + cos(pi t / steps)) / 2, then minFactor from
    /// `steps` on.
    | Cosine of steps: int * minFactor: float
    /// Linear warm-up, then another schedule (PyTorch's SequentialLR of LinearLR(startFactor, 1, steps) and
    /// `after`): the factor rises from startFactor by (1 - startFactor) / steps per step, and from `steps`
    /// steps on is `after`'s factor after (t - steps) steps.
    | Warmup of steps: int * startFactor: float * after: Schedule

    /// The factor after `step` steps (a scalar expression of the step variable's dtype).
    member s.Factor(step: Expr) : Expr =
        match s with
        | LinearDecay steps ->
            if steps <= 0 then
                invalidArg "steps" (sprintf "Schedule.LinearDecay: the number of steps must be positive, got %d" steps)
            Expr.relu (1.0 - step / float steps)
        | ExponentialDecay gamma ->
            if not (gamma > 0.0 && gamma <= 1.0) then
                invalidArg "gamma" (sprintf "Schedule.ExponentialDecay: gamma must be in (0, 1], got %g" gamma)
            Expr.pow (Expr.scalarLike step gamma) step
        | Cosine(steps, minFactor) ->
            if steps <= 0 then
                invalidArg "steps" (sprintf "Schedule.Cosine: the number of steps must be positive, got %d" steps)
            if not (minFactor >= 0.0 && minFactor <= 1.0) then
                invalidArg "minFactor" (sprintf "Schedule.Cosine: minFactor must be in [0, 1], got %g" minFactor)
            let t = Expr.clamp (Some 0.0) (Some(float steps)) step
            minFactor + (1.0 - minFactor) * 0.5 * (1.0 + Expr.cos (Math.PI / float steps * t))
        | Warmup(steps, startFactor, after) ->
            if steps <= 0 then
                invalidArg "steps" (sprintf "Schedule.Warmup: the number of steps must be positive, got %d" steps)
            if not (startFactor >= 0.0 && startFactor <= 1.0) then
                invalidArg "startFactor" (sprintf "Schedule.Warmup: startFactor must be in [0, 1], got %g" startFactor)
            // Steps are whole numbers, so this is exactly 1 while warming up and exactly 0 after.
            let warming = Expr.clamp (Some 0.0) (Some 1.0) (float steps - step)
            let rising = startFactor + (1.0 - startFactor) / float steps * step
            warming * rising + (1.0 - warming) * after.Factor(Expr.relu (step - float steps))

/// An optimiser whose learning rate follows a schedule. It scales each parameter's step (new value minus
/// old) by the schedule's factor, which for SGD, Adam and AdamW is the same as scaling the learning rate;
/// the optimiser's state (momentum, moments) is updated as without a schedule.
[<Sealed>]
type Scheduled(inner: Optimizer, schedule: Schedule) =
    inherit Optimizer()

    /// The optimiser being scheduled.
    member _.Inner = inner
    /// The schedule.
    member _.Schedule = schedule

    override _.Gradients(gradients: Expr list) = inner.Gradients gradients

    override _.Update(step: Expr, p: Expr, grad: Expr) =
        let update = inner.Update(step, p, grad)
        let factor = schedule.Factor step
        { update with
            Updates = update.Updates |> List.map (fun (v, e) -> if v = p then v, p + factor * (e - p) else v, e)
        }

/// An optimiser whose updates see the gradients clipped by their global norm (Clip.byGlobalNorm, PyTorch's
/// clip_grad_norm_ before the optimiser's step), all parameters' gradients together.
[<Sealed>]
type ClipGradNorm(inner: Optimizer, maxNorm: float) =
    inherit Optimizer()
    do Optimizer.Require("ClipGradNorm", "maxNorm", maxNorm, 0.0, true)

    /// The optimiser whose updates see the clipped gradients.
    member _.Inner = inner
    /// The largest global norm the updates see.
    member _.MaxNorm = maxNorm

    override _.Gradients(gradients: Expr list) = Clip.byGlobalNorm maxNorm (inner.Gradients gradients)
    override _.Update(step: Expr, p: Expr, grad: Expr) = inner.Update(step, p, grad)

/// An optimiser that leaves its parameters as they are: give it to ParameterGroups for the parameters to
/// freeze. The training plan then has no update for them (and never computes their gradients), so they stay
/// bit for bit what they were.
[<Sealed>]
type Frozen() =
    inherit Optimizer()
    override _.Update(_: Expr, _: Expr, _: Expr) = { State = []; Updates = [] }

/// Parameter groups, as PyTorch's param_groups: each parameter is updated by the optimiser of the first group
/// one of whose names selects it, the others by `rest`. A name selects the parameter of that name and those
/// under it ("0" selects "0.weight" and "0.bias"). Each group's optimiser has its own learning rate and
/// weight decay (and may be Scheduled, or Frozen).
[<Sealed>]
type ParameterGroups(groups: (string list * Optimizer) list, rest: Optimizer) =
    inherit Optimizer()
    do
        for names, optimizer in groups do
            if isNull (box optimizer) then nullArg "groups"
            if List.isEmpty names then
                invalidArg "groups" "ParameterGroups: a group needs at least one parameter name"
        if isNull (box rest) then nullArg "rest"

    /// No groups yet: every parameter is updated by `rest` (add groups with With).
    new(rest: Optimizer) = ParameterGroups([], rest)

    /// A copy with one more group, tried after the others: the parameters `names` select, updated by
    /// `optimizer` (ParameterGroups(rest).With(["0"], SGD 0.1) in C# as in F#).
    member _.With(names: seq<string>, optimizer: Optimizer) =
        if isNull names then nullArg "names"
        ParameterGroups(groups @ [ List.ofSeq names, optimizer ], rest)

    /// The groups, in the order they are tried.
    member _.Groups = groups
    /// The optimiser of the parameters no group selects.
    member _.Rest = rest

    /// The optimiser of a parameter, by its name.
    member _.For(name: string) : Optimizer =
        let selects (n: string) = name = n || name.StartsWith(n + ".", StringComparison.Ordinal)
        match groups |> List.tryFind (fun (names, _) -> List.exists selects names) with
        | Some(_, optimizer) -> optimizer
        | None -> rest

    override g.Update(step: Expr, p: Expr, grad: Expr) =
        let name =
            match Expr.tryName p with
            | Some n -> n
            | None -> invalidArg "parameter" "ParameterGroups.Update: the parameter is not a named variable"
        g.For(name).Update(step, p, grad)
