namespace FuncFlow.NN

open System
open FuncFlow

/// The per-step random inputs (dropout masks) of a training plan: one buffer per noise variable, refilled and set
/// before each run (also used by FuncFlow.Mpi's data-parallel steps).
module internal StepNoise =
    /// A buffer of the dtype for each noise variable.
    let buffers (dtype: DType) (noise: Noise list) : (Noise * Array) list =
        noise
        |> List.map (fun n ->
            let size = Shape.size n.Var.ShapeRef
            n,
            (match dtype with
             | Float64 -> Array.zeroCreate<float> size :> Array
             | Float32 -> Array.zeroCreate<float32> size :> Array))

    /// Draws every element of each buffer from the generator and sets it into the plan.
    let fill (plan: Plan) (rng: Random) (buffers: (Noise * Array) list) =
        for n, buffer in buffers do
            let name = (Expr.tryName n.Var).Value
            match buffer with
            | :? (float[]) as b ->
                for i in 0 .. b.Length - 1 do
                    b[i] <- n.Sample rng
                plan.Set(name, b)
            | :? (float32[]) as b ->
                for i in 0 .. b.Length - 1 do
                    b[i] <- float32 (n.Sample rng)
                plan.Set(name, b)
            | _ -> invalidOp "TrainStep: noise buffers are float[] or float32[]"

/// The loss of a model for one batch shape, as every training step builds it (also FuncFlow.Mpi's): the model
/// built in training mode on the variable "input", the loss against the variable "target", and the number of
/// correct rows when the loss counts them.
module internal TrainingGraph =
    /// The model's graph, the loss (one element, else an ArgumentException that `op` begins) and the correct count.
    let build (op: string) (model: Model) (loss: Loss) (inputShape: int[]) (targetShape: int[]) =
        let x = Expr.varOf model.DType "input" inputShape
        let y = Expr.varOf model.DType "target" targetShape
        let graph = model.Build(x, true)
        let value = loss.Compute graph.Output y
        if Shape.size value.ShapeRef <> 1 then
            invalidArg "loss" (sprintf "%s: the loss '%s' has shape %s; it must have one element" op loss.Name (Shape.show value.ShapeRef))
        struct (graph, value, loss.Correct |> Option.map (fun c -> c graph.Output y))

/// Compiled steps by the shapes of the batches they take (one or two: the batch size and a smaller last batch),
/// found by comparing shapes, so a step's lookup allocates nothing (also FuncFlow.Mpi's).
[<Sealed>]
type internal ByBatchShape<'T>() =
    let entries = ResizeArray<struct (int[] * int[] * 'T)>()

    /// The number of entries.
    member _.Count = entries.Count

    /// Forgets every entry.
    member _.Clear() = entries.Clear()

    /// The entry for these shapes, if there is one.
    member _.TryFind(inputShape: int[], targetShape: int[]) : 'T voption =
        let mutable found = ValueNone
        for struct (x, y, v) in entries do
            if found.IsNone && Shape.equal x inputShape && Shape.equal y targetShape then found <- ValueSome v
        found

    /// Keeps an entry for these shapes and returns it.
    member _.Add(inputShape: int[], targetShape: int[], value: 'T) : 'T =
        entries.Add(struct (Array.copy inputShape, Array.copy targetShape, value))
        value

/// One training step compiled into a single plan for one input and target shape: forward pass, loss,
/// gradients (derived once, at compile time), the optimiser's updates and the layers' buffer updates (batch
/// norm's running statistics). Running it feeds a batch and returns the loss; parameters, buffers and
/// optimiser state live in the plan between runs.
[<Sealed>]
type TrainStep internal (plan: Plan, model: Model, stateNames: string list, noise: (Noise * Array) list, rng: Random, hasCorrect: bool) =
    let fill () = StepNoise.fill plan rng noise

    /// The name of the variable holding the number of steps taken (Adam's t - 1).
    static member StepName = "optimizer.step"

    /// The compiled plan (outputs: 0 the loss, 1 the number of correct rows for classifiers).
    member _.Plan = plan
    /// The names of the variables that persist between steps: parameters, buffers, optimiser state, the step count.
    member _.StateNames = stateNames
    /// The number of steps taken so far.
    member _.Steps = int (Tensor.item (plan.Get TrainStep.StepName))

    /// Feeds a batch (features, targets) and runs one step; returns the loss before the update.
    member _.Run(features: Tensor, targets: Tensor) : float =
        plan.Set("input", features)
        plan.Set("target", targets)
        fill ()
        plan.Execute()
        plan.OutputScalar 0

    /// Feeds a batch from raw values in the plan's dtype and runs one step, without allocating.
    member _.Run(features: Array, targets: Array) : float =
        let set (name: string) (values: Array) =
            match values with
            | :? (float[]) as a -> plan.Set(name, a)
            | :? (float32[]) as a -> plan.Set(name, a)
            | _ -> invalidArg "features" "TrainStep.Run: pass float[] or float32[] values"
        set "input" features
        set "target" targets
        fill ()
        plan.Execute()
        plan.OutputScalar 0

    /// The number of correct rows in the last batch (0 for a loss without accuracy).
    member _.Correct = if hasCorrect then plan.OutputScalar 1 else 0.0

    /// The current parameter and buffer values, as a model.
    member _.Model: Model =
        let current (values: Map<string, Tensor>) =
            values |> Map.map (fun name t -> if List.contains name stateNames then plan.Get name else t)
        model.WithParameters(current model.Parameters).WithBuffers(current model.Buffers)

    /// Copies parameters, buffers, optimiser state and the step count from another step plan of the same model
    /// (used when the batch shape changes).
    member _.CopyStateFrom(other: TrainStep) =
        for name in stateNames do
            plan.Set(name, other.Plan.Get name)

    /// Compiles a step with a seeded generator for the noise (dropout masks).
    static member Compile(model: Model, loss: Loss, optimizer: Optimizer, inputShape: int[], targetShape: int[], seed: int) =
        TrainStep.Compile(model, loss, optimizer, inputShape, targetShape, Random seed)

    /// Compiles a step (noise seed 0).
    static member Compile(model: Model, loss: Loss, optimizer: Optimizer, inputShape: int[], targetShape: int[]) =
        TrainStep.Compile(model, loss, optimizer, inputShape, targetShape, 0)

    /// Compiles a step whose noise comes from a shared generator.
    static member internal Compile(model: Model, loss: Loss, optimizer: Optimizer, inputShape: int[], targetShape: int[], rng: Random) =
        let dtype = model.DType
        let struct (graph, value, correct) =
            TrainingGraph.build "TrainStep.Compile" model loss inputShape targetShape
        let parameters = graph.Parameters |> Map.toList
        let grads = Grad.wrt (List.map snd parameters) value
        let step = Expr.varOf dtype TrainStep.StepName [||]
        let gradients = optimizer.Gradients [ for _, p in parameters -> grads[p] ]
        let perParameter = List.map2 (fun (_, p) g -> optimizer.Update(step, p, g)) parameters gradients
        let updates =
            (step, step + 1.0) :: (perParameter |> List.collect (fun u -> u.Updates)) @ graph.BufferUpdates
        let outputs = value :: Option.toList correct
        let plan = Plan.compileWithUpdates outputs updates
        for name, _ in parameters do
            plan.Set(name, model.Parameters[name])
        // A buffer asked for but read by no output or update is not a plan variable.
        let inPlan = set plan.VariableNames
        for KeyValue(name, _) in graph.Buffers do
            if inPlan.Contains name then plan.Set(name, model.Buffers[name])
        let updatedBuffers = graph.BufferUpdates |> List.map (fun (v, _) -> (Expr.tryName v).Value)
        let states = perParameter |> List.collect (fun u -> u.State)
        for v, initial in states do
            plan.Set((Expr.tryName v).Value, initial)
        plan.Set(TrainStep.StepName, Tensor.scalarOf dtype 0.0)
        let buffers = StepNoise.buffers dtype graph.Noise
        let names =
            TrainStep.StepName :: (List.map fst parameters)
            @ updatedBuffers
            @ (states |> List.map (fun (v, _) -> (Expr.tryName v).Value))
        TrainStep(plan, model, names, buffers, rng, loss.Correct.IsSome)
