namespace FuncFlow

open System
open System.Collections.Generic
open System.Numerics

/// A graph compiled once and run many times (MiniFlow's static graph, made fast): the topological order,
/// every buffer and every kernel's operands are fixed at compile time, buffers whose lifetimes do not
/// overlap share memory, and a run allocates nothing. Every variable owns a buffer that keeps its value
/// between runs. A run with updates (variable, expression) is one simultaneous assignment, like a JAX step
/// function returning the loss and the new parameters: every output and every update is computed from the
/// variables' values before the run, then all updates are written. So an output that is an updated
/// variable (or a view of one) shows its value before the run, and updates may swap or rotate variables.
/// A variable that is only written needs no value before the first run (it reads zeros until then).
/// Runs are serialised: a plan may be shared between threads.
/// Where a plan's time goes: one kind of instruction (its operation and shapes), how many of them a run
/// executes, and the mean microseconds per run they took together.
type PlanProfileEntry = { Instruction: string; Count: int; Microseconds: float }

[<AbstractClass>]
type Plan internal (outputs: Expr[], variables: Expr[]) =
    let byName = Dictionary<string, Expr>()
    // A read-only view: the array itself, cast to IReadOnlyList, could be cast back and written.
    let outputsView = Array.AsReadOnly outputs
    do
        for v in variables do
            byName[(Expr.tryName v).Value] <- v

    member internal _.Variable(op: string, name: string) =
        match byName.TryGetValue name with
        | true, v -> v
        | _ ->
            let known = if byName.Count = 0 then "it has none" else "it has " + String.Join(", ", byName.Keys)
            raise (KeyNotFoundException(sprintf "Plan.%s: the plan has no variable '%s' (%s)" op name known))

    member internal _.OutputNode(op: string, index: int) =
        if index < 0 || index >= outputs.Length then
            raise (
                ArgumentOutOfRangeException(
                    "index",
                    sprintf "Plan.%s: output %d does not exist; the plan has %d outputs" op index outputs.Length
                )
            )
        outputs[index]

    /// The outputs, in the order given to compile.
    member _.Outputs: IReadOnlyList<Expr> = outputsView
    /// The names of the plan's variables: those it reads (inputs and state alike), then those it only writes.
    member _.VariableNames: IReadOnlyList<string> =
        variables |> Array.map (fun v -> (Expr.tryName v).Value) :> IReadOnlyList<string>
    /// The number of instructions a run executes.
    abstract InstructionCount: int
    /// The number of elements held by the plan's own buffers (after sharing).
    abstract BufferElements: int64
    /// The floating-point operations of the matrix products a run executes (2 m n k each): the part of a step
    /// that GEMM's peak rate bounds.
    abstract MatMulFlops: int64
    /// The bytes held by the plan's own buffers (after sharing): variables, intermediate values and fused
    /// groups' blocks; constants are not counted. What gradient checkpointing saves shows here.
    abstract BufferBytes: int64

    /// Sets a variable's value (copied into the plan), for this and later runs.
    abstract Set: name: string * value: Tensor -> unit
    /// Sets a float64 variable from raw row-major values, without allocating.
    abstract Set: name: string * values: float[] -> unit
    /// Sets a float32 variable from raw row-major values, without allocating.
    abstract Set: name: string * values: float32[] -> unit
    /// A variable's current value (a copy): a trained parameter, an optimiser's state.
    abstract Get: name: string -> Tensor
    /// Runs the plan once on the variables' current values.
    abstract Execute: unit -> unit
    /// Runs the plan `runs` times timing each instruction, and gives the time per kind of instruction, the
    /// slowest first: a profile of where a run's time goes (the runs update variables as Execute does).
    abstract Profile: runs: int -> IReadOnlyList<PlanProfileEntry>
    /// An output of the last run (a copy).
    abstract Output: index: int -> Tensor
    /// The value of a one-element output of the last run, without allocating.
    abstract OutputScalar: index: int -> float

    /// Sets the given variables, runs once, and returns the outputs.
    member p.Run(env: IReadOnlyDictionary<string, Tensor>) : Tensor[] =
        if isNull env then nullArg "env"
        lock p (fun () ->
            for kv in env do
                p.Set(kv.Key, kv.Value)
            p.Execute()
            Array.init outputs.Length p.Output)

/// Runs fused elementwise groups block by block: each step's intermediate stays in a small buffer that
/// is still in cache for the next step, and the group is one instruction instead of one per node. A large
/// group's blocks are shared between two cores (Halves), through one job object per thread.
type internal Fused<'T when 'T :> IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType>() =
    [<ThreadStatic; DefaultValue>]
    static val mutable private current: Fused<'T>

    [<DefaultValue>]
    val mutable Steps: FusedStep[]

    [<DefaultValue>]
    val mutable Args: 'T[][]

    [<DefaultValue>]
    val mutable Temps: 'T[][]

    [<DefaultValue>]
    val mutable Dst: 'T[]

    [<DefaultValue>]
    val mutable Stores: struct (int * 'T[])[]

    [<DefaultValue>]
    val mutable Loop: FusedLoop<'T> voption

    interface IRangeJob with
        member j.Run(first: int, stop: int, thread: int) =
            Fused<'T>.Blocks(j.Steps, j.Args, j.Temps, j.Dst, j.Stores, j.Loop, first, stop, thread)

    static member private Source
        (r: int, steps: FusedStep[], args: 'T[][], temps: 'T[][], temp: int, start: int, length: int)
        : ReadOnlySpan<'T> =
        if r < 0 then
            ReadOnlySpan(temps[steps[-1 - r].Slot], temp, length)
        else
            let a = args[r]
            // A one-element operand is broadcast: the dispatcher takes it as a value.
            if a.Length = 1 then ReadOnlySpan(a, 0, 1) else ReadOnlySpan(a, start, length)

    // The full-length argument that step(x) * g (relu's gradient, a group of two steps) reads for g, or -1 if
    // the group is not that: it then runs in one pass (Kernels.StepTimes) instead of two per block.
    static member private StepTimesGradient(steps: FusedStep[], args: 'T[][], dst: 'T[], stores: struct (int * 'T[])[]) : int =
        if steps.Length <> 2 || stores.Length > 0 || not (Fused<'T>.Full(steps[0].A, args, dst)) then
            -1
        else
            match steps[0].Node.Op, steps[1].Node.Op with
            | Op.Unary UnaryOp.Step, Op.Binary BinaryOp.Mul ->
                if steps[1].A = -1 && Fused<'T>.Full(steps[1].B, args, dst) then steps[1].B
                elif steps[1].B = -1 && Fused<'T>.Full(steps[1].A, args, dst) then steps[1].A
                else -1
            | _ -> -1

    // Whether a step's operand r is an argument of dst's length (not a step's result or a broadcast value).
    static member private Full(r: int, args: 'T[][], dst: 'T[]) : bool = r >= 0 && args[r].Length = dst.Length

    // Blocks [first, stop) on one of the two threads, which keeps its intermediates in its own half of the temps.
    static member private Blocks
        (
            steps: FusedStep[],
            args: 'T[][],
            temps: 'T[][],
            dst: 'T[],
            stores: struct (int * 'T[])[],
            loop: FusedLoop<'T> voption,
            first: int,
            stop: int,
            thread: int
        ) : unit =
        let from = first * PlanCompiler.FusedBlock
        let until = min dst.Length (stop * PlanCompiler.FusedBlock)
        match loop with
        | ValueSome run -> run.Invoke(args, dst, stores, from, until)
        | ValueNone ->
            let g = Fused<'T>.StepTimesGradient(steps, args, dst, stores)
            if g >= 0 then
                let x = args[steps[0].A]
                Kernels<'T>
                    .StepTimes(
                        ReadOnlySpan(x, from, until - from),
                        ReadOnlySpan(args[g], from, until - from),
                        Span(dst, from, until - from)
                    )
            else
                let temp = thread * PlanCompiler.FusedBlock
                for block in first .. stop - 1 do
                    let start = block * PlanCompiler.FusedBlock
                    let length = min PlanCompiler.FusedBlock (dst.Length - start)
                    for s in 0 .. steps.Length - 1 do
                        let step = steps[s]
                        let out =
                            if s = steps.Length - 1 then Span(dst, start, length) else Span(temps[step.Slot], temp, length)
                        let a = Fused<'T>.Source(step.A, steps, args, temps, temp, start, length)
                        let b =
                            if step.Node.Inputs.Length > 1 then
                                Fused<'T>.Source(step.B, steps, args, temps, temp, start, length)
                            else
                                ReadOnlySpan<'T>.Empty
                        Execute<'T>.Elementwise(step.Node.Op, a, b, out)
                    // After every read of the block: a stored node may be written over one of the group's operands.
                    for struct (s, buffer) in stores do
                        ReadOnlySpan(temps[steps[s].Slot], temp, length).CopyTo(Span(buffer, start, length))

    /// Computes the group's last step into dst, and its stored steps into their buffers.
    static member Run
        (steps: FusedStep[], args: 'T[][], temps: 'T[][], dst: 'T[], stores: struct (int * 'T[])[], loop: FusedLoop<'T> voption)
        : unit =
        let blocks = (dst.Length + PlanCompiler.FusedBlock - 1) / PlanCompiler.FusedBlock
        if dst.Length >= PlanCompiler.FusedHalving then
            if isNull (box Fused<'T>.current) then Fused<'T>.current <- Fused<'T>()
            let job = Fused<'T>.current
            job.Steps <- steps
            job.Args <- args
            job.Temps <- temps
            job.Dst <- dst
            job.Stores <- stores
            job.Loop <- loop
            Halves.run job blocks Halved<'T>.Pieces
            job.Steps <- null
            job.Args <- null
            job.Temps <- null
            job.Dst <- null
            job.Stores <- null
            job.Loop <- ValueNone
        else
            Fused<'T>.Blocks(steps, args, temps, dst, stores, loop, 0, blocks, 0)

type internal TypedPlan<'T when 'T :> IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType>
    (outputs: Expr[], variables: Expr[], read: Expr[], instructions: Instruction<'T>[], layout: Layout<'T>) =
    inherit Plan(outputs, variables)

    // The variables a run reads that have no value yet; those only written never need one.
    let unset = HashSet<string>(read |> Seq.map (fun v -> (Expr.tryName v).Value))

    member private p.Buffer(op: string, name: string) =
        let v = p.Variable(op, name)
        struct (v, layout.Variables[name])

    override _.InstructionCount = instructions.Length
    override _.BufferElements = layout.Own

    override _.MatMulFlops =
        let flops (product: Expr) =
            let a = product.Inputs[0].ShapeRef
            2L * int64 (Shape.size product.ShapeRef) * int64 a[a.Length - 1]
        instructions
        |> Array.sumBy (fun ins ->
            match ins.Node.Op with
            | Op.MatMul when isNull ins.Steps -> flops ins.Node
            | _ when not (isNull (box ins.Product)) -> flops ins.Product
            // A transposed product computed as one GEMM (its product node folded into it).
            | Op.Permute _ when ins.Transposed -> flops ins.Node.Inputs[0]
            | _ -> 0L)
    override _.BufferBytes = layout.Own * int64 sizeof<'T>

    override p.Set(name: string, value: Tensor) =
        let struct (v, buffer) = p.Buffer("Set", name)
        if not (Shape.equal value.ShapeRef v.ShapeRef) then
            invalidArg
                "value"
                (sprintf
                    "Plan.Set: variable '%s' has shape %s but the value has shape %s"
                    name
                    (Shape.show v.ShapeRef)
                    (Shape.show value.ShapeRef))
        if value.DType <> v.DType then
            invalidArg
                "value"
                (sprintf "Plan.Set: variable '%s' is %s but the value is %s; cast it with Tensor.cast" name v.DType.Name value.DType.Name)
        lock p (fun () ->
            (value.Data :?> 'T[]).CopyTo(buffer, 0)
            unset.Remove name |> ignore)

    override p.Set(name: string, values: float[]) = p.SetRaw(name, values)
    override p.Set(name: string, values: float32[]) = p.SetRaw(name, values)

    member private p.SetRaw(name: string, values: Array) =
        let struct (v, buffer) = p.Buffer("Set", name)
        match box values with
        | :? ('T[]) as typed when typed.Length = buffer.Length ->
            lock p (fun () ->
                typed.CopyTo(buffer, 0)
                unset.Remove name |> ignore)
        | :? ('T[]) ->
            invalidArg
                "values"
                (sprintf
                    "Plan.Set: variable '%s' of shape %s needs %d values, got %d"
                    name
                    (Shape.show v.ShapeRef)
                    buffer.Length
                    values.Length)
        | _ -> invalidArg "values" (sprintf "Plan.Set: variable '%s' is %s; pass values of that dtype" name v.DType.Name)

    override p.Get(name: string) =
        let struct (v, buffer) = p.Buffer("Get", name)
        lock p (fun () -> Tensor.wrap v.ShapeRef (Array.copy buffer))

    static member private Run(ins: Instruction<'T>) =
        if not (isNull ins.Steps) then
            Fused<'T>.Run(ins.Steps, ins.Args, ins.Temps, ins.Dst, ins.Stores, ins.Loop)
        elif not (isNull (box ins.Product)) then
            // c + A B: c's values (already there when c lent its buffer), then the GEMM adds the product.
            if not (obj.ReferenceEquals(ins.Args[2], ins.Dst)) then
                Kernels<'T>.BroadcastTo(ins.Args[2], ins.Addend.ShapeRef, ins.Dst, ins.Node.ShapeRef)
            Execute<'T>.MatMul(ins.Product, ins.Args[0], ins.Args[1], ins.Dst, ins.TransA, ins.TransB, true)
        else
            match ins.Node.Op with
            | Op.MatMul -> Execute<'T>.MatMul(ins.Node, ins.Args[0], ins.Args[1], ins.Dst, ins.TransA, ins.TransB, false)
            | Op.Permute _ when ins.Transposed ->
                Execute<'T>.TransposedMatMul(ins.Node, ins.Args[0], ins.Args[1], ins.Dst, ins.TransA, ins.TransB)
            | _ -> Execute<'T>.Node(ins.Node, ins.Args, ins.Dst)

    override p.Execute() = p.Runs(null)

    override p.Profile(runs: int) =
        if runs < 1 then invalidArg "runs" (sprintf "Plan.Profile: runs must be at least 1, got %d" runs)
        let ticks = Array.zeroCreate<int64> instructions.Length
        for _ in 1..runs do
            p.Runs ticks
        let shapes (e: Expr) = e.Inputs |> Array.map (fun i -> Shape.show i.ShapeRef) |> String.concat " "
        let flags (ins: Instruction<'T>) = if ins.TransA || ins.TransB then sprintf " (transposed %b %b)" ins.TransA ins.TransB else ""
        let label (ins: Instruction<'T>) =
            if not (isNull (box ins.Product)) then
                let c = if obj.ReferenceEquals(ins.Args[2], ins.Dst) then "in place" else "copied"
                sprintf
                    "c %s %s + matmul %s -> %s%s"
                    (Shape.show ins.Addend.ShapeRef)
                    c
                    (shapes ins.Product)
                    (Shape.show ins.Node.ShapeRef)
                    (flags ins)
            elif not (isNull ins.Steps) then
                sprintf
                    "fused%s %s %s"
                    (if ins.Loop.IsSome then " loop" else "")
                    (ins.Steps |> Array.map (fun s -> s.Node.Op.Name) |> String.concat ", ")
                    (Shape.show ins.Node.ShapeRef)
            else
                sprintf "%s %s -> %s%s" ins.Node.Op.Name (shapes ins.Node) (Shape.show ins.Node.ShapeRef) (flags ins)
        let perRun t = float t * 1e6 / float Diagnostics.Stopwatch.Frequency / float runs
        Array.zip instructions ticks
        |> Array.groupBy (fst >> label)
        |> Array.map (fun (l, group) -> { Instruction = l; Count = group.Length; Microseconds = group |> Array.sumBy (snd >> perRun) })
        |> Array.sortByDescending (fun e -> e.Microseconds)
        :> IReadOnlyList<PlanProfileEntry>

    // One run; with `ticks` (not null) each instruction's time is added to its entry.
    member private p.Runs(ticks: int64[]) =
        // Monitor rather than `lock`: lock's closure would be the only allocation of a run.
        Threading.Monitor.Enter p
        try
            if unset.Count > 0 then
                let missing = read |> Array.map (fun v -> (Expr.tryName v).Value) |> Array.filter unset.Contains
                raise (
                    KeyNotFoundException(
                        sprintf
                            "Plan.Execute: variables %s have no value; set them with Plan.Set or pass them to Run"
                            (String.Join(", ", missing))
                    )
                )
            for i in 0 .. instructions.Length - 1 do
                if isNull ticks then
                    TypedPlan<'T>.Run instructions[i]
                else
                    let start = Diagnostics.Stopwatch.GetTimestamp()
                    TypedPlan<'T>.Run instructions[i]
                    ticks[i] <- ticks[i] + Diagnostics.Stopwatch.GetTimestamp() - start
            // One simultaneous assignment: keep what outputs and updates read of updated variables, then write.
            for struct (variable, copy) in layout.Stage do
                variable.CopyTo(copy, 0)
            for struct (value, variable) in layout.Writes do
                value.CopyTo(variable, 0)
        finally
            Threading.Monitor.Exit p

    override p.Output(index: int) =
        p.OutputNode("Output", index) |> ignore
        lock p (fun () -> Tensor.wrap outputs[index].ShapeRef (Array.copy layout.Outputs[index]))

    override p.OutputScalar(index: int) =
        let node = p.OutputNode("OutputScalar", index)
        if layout.Outputs[index].Length <> 1 then
            invalidArg
                "index"
                (sprintf "Plan.OutputScalar: output %d has shape %s, not one element; use Output" index (Shape.show node.ShapeRef))
        Scalar.toFloat (layout.Outputs[index][0])

    /// Compiles the outputs and updates through the passes (PlanCompiler).
    static member Compile(outputs: Expr[], updates: (Expr * Expr)[]) : Plan =
        PlanCompiler.validate updates
        use schedule = Schedule.Build(Array.append outputs (Array.map snd updates))
        let variables, read = PlanCompiler.variables schedule updates
        let lowered = schedule |> PlanCompiler.rewrite |> PlanCompiler.fuse
        let live = PlanCompiler.liveness lowered
        let layout = PlanCompiler.layout<'T> lowered live outputs.Length updates
        TypedPlan<'T>(outputs, variables, read, PlanCompiler.emit lowered live layout, layout) :> Plan

/// Options for Plan.compileWith.
type PlanOptions =
    {
        /// Gradient checkpointing: forward activations that the gradients read are recomputed in the backward
        /// pass from the kept ones instead of being kept alive (None: every activation is kept).
        Checkpoint: Checkpointing option
    }

    /// No checkpointing: what Plan.compile and Plan.compileWithUpdates do.
    static member Default = { Checkpoint = None }

/// Compiling expressions into plans.
module Plan =
    let private compileTyped (outputs: Expr[]) (updates: (Expr * Expr)[]) =
        let all = Array.append outputs (updates |> Array.map snd)
        if all.Length = 0 then
            invalidArg "outputs" "Plan.compile: nothing to compute; give at least one output or update"
        let dtype = all[0].DType
        match all |> Array.tryFind (fun e -> e.DType <> dtype) with
        | Some e -> invalidArg "outputs" (sprintf "Plan.compile: the graph mixes dtypes %s and %s" dtype.Name e.DType.Name)
        | None -> ()
        match dtype with
        | Float64 -> TypedPlan<float>.Compile(outputs, updates)
        | Float32 -> TypedPlan<float32>.Compile(outputs, updates)

    /// Compiles outputs into a plan; all their variables are set with Plan.Set or passed to Run.
    let compile (outputs: Expr list) : Plan = compileTyped (Array.ofList outputs) [||]

    /// Compiles outputs plus updates (variable, expression): a run is one simultaneous assignment. Every
    /// output and every update's expression is computed from the variables' values before the run, then
    /// all updates are written; so an output that is an updated variable, or a view of one, shows its value
    /// before the run, and (a, b), (b, a) swaps. A variable that is only written needs no value: it reads
    /// zeros until the first run, then the last value written. Each variable is updated at most once.
    let compileWithUpdates (outputs: Expr list) (updates: (Expr * Expr) list) : Plan =
        compileTyped (Array.ofList outputs) (Array.ofList updates)

    /// compileWithUpdates with options. With a Checkpoint, the outputs and updates are first rewritten
    /// (Checkpoint.rewrite) so that the gradients read recomputed copies of the activations that are not kept:
    /// the same values, in less memory (BufferBytes), for more computation. A plan runs its outputs and updates
    /// in the order given, so list the last layer's gradients first: each layer's recomputed activations are
    /// then released before the previous layer's are computed.
    let compileWith (options: PlanOptions) (outputs: Expr list) (updates: (Expr * Expr) list) : Plan =
        match options.Checkpoint with
        | None -> compileWithUpdates outputs updates
        | Some checkpointing ->
            let rewritten = Checkpoint.rewrite checkpointing (outputs @ List.map snd updates)
            compileWithUpdates (List.take outputs.Length rewritten) (List.zip (List.map fst updates) (List.skip outputs.Length rewritten))

    /// Runs a plan once with the given variable values and returns its outputs.
    let run (env: IReadOnlyDictionary<string, Tensor>) (plan: Plan) : Tensor list = plan.Run env |> List.ofArray
