namespace FuncFlow

open System
open System.Collections.Generic
open System.Numerics

/// A graph compiled once and run many times (MiniFlow's static graph, made fast): the topological order,
/// every buffer and every kernel's operands are fixed at compile time, buffers whose lifetimes do not
/// overlap share memory, and a run allocates nothing. Every variable owns a buffer that keeps its value
/// between runs; an update (variable, expression) writes the expression's value into the variable at the
/// end of each run, so an optimiser's step is part of the plan. Runs are serialised: a plan may be shared
/// between threads.
[<AbstractClass>]
type Plan internal (outputs: Expr[], variables: Expr[]) =
    let byName = Dictionary<string, Expr>()
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
            raise (ArgumentOutOfRangeException("index", sprintf "Plan.%s: output %d does not exist; the plan has %d outputs" op index outputs.Length))
        outputs[index]

    /// The outputs, in the order given to compile.
    member _.Outputs: IReadOnlyList<Expr> = outputs
    /// The names of the variables the plan reads, inputs and state alike.
    member _.VariableNames: IReadOnlyList<string> = variables |> Array.map (fun v -> (Expr.tryName v).Value) :> IReadOnlyList<string>
    /// The number of instructions a run executes.
    abstract InstructionCount: int
    /// The number of elements held by the plan's own buffers (after sharing).
    abstract BufferElements: int64

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

/// One node of a fused elementwise group and where its operands come from: r >= 0 is the instruction's
/// Args[r], r < 0 the result of step -1 - r.
[<Struct>]
type internal FusedStep =
    {
        Node: Expr
        A: int
        B: int
    }

[<Struct>]
type internal Instruction<'T> =
    {
        Node: Expr
        Args: 'T[][]
        Dst: 'T[]
        TransA: bool
        TransB: bool
        /// Fused a - b * c for a scalar constant c (an SGD step): Args are [a; b], Scale is -c.
        Axpy: bool
        Scale: 'T
        /// A fused elementwise group (null if none): its steps in order, the last one being Node.
        Steps: FusedStep[]
        /// One block-sized buffer per step but the last.
        Temps: 'T[][]
    }

/// Runs fused elementwise groups block by block: each step's intermediate stays in a small buffer that
/// is still in cache for the next step, and the group is one instruction instead of one per node.
type internal Fused<'T when 'T :> IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType> =
    /// The elements per block: a multiple of every vector width, so that only a group's last block can
    /// take TensorPrimitives' scalar path; groups of at most this size run their kernels on exactly the
    /// spans the unfused nodes would, and compute the same bits.
    static member Block = 1024

    static member private Source(r: int, args: 'T[][], temps: 'T[][], start: int, length: int) : ReadOnlySpan<'T> =
        if r < 0 then ReadOnlySpan(temps[-1 - r], 0, length)
        else
            let a = args[r]
            // A one-element operand is broadcast: the dispatcher takes it as a value.
            if a.Length = 1 then ReadOnlySpan(a, 0, 1) else ReadOnlySpan(a, start, length)

    /// Computes the group's last step into dst.
    static member Run(steps: FusedStep[], args: 'T[][], temps: 'T[][], dst: 'T[]) : unit =
        let mutable start = 0
        while start < dst.Length do
            let length = min Fused<'T>.Block (dst.Length - start)
            for s in 0 .. steps.Length - 1 do
                let step = steps[s]
                let out = if s = steps.Length - 1 then Span(dst, start, length) else Span(temps[s], 0, length)
                let a = Fused<'T>.Source(step.A, args, temps, start, length)
                let b = if step.Node.Inputs.Length > 1 then Fused<'T>.Source(step.B, args, temps, start, length) else ReadOnlySpan<'T>.Empty
                Execute<'T>.Elementwise(step.Node.Op, a, b, out)
            start <- start + length

type internal TypedPlan<'T when 'T :> IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType>
    (outputs: Expr[], variables: Expr[], instructions: Instruction<'T>[], buffers: Dictionary<int64, 'T[]>,
     updates: struct ('T[] * 'T[])[], bound: HashSet<string>, ownElements: int64) =
    inherit Plan(outputs, variables)

    let outputBuffers = outputs |> Array.map (fun o -> buffers[o.Id])

    member private p.Buffer(op: string, name: string) =
        let v = p.Variable(op, name)
        struct (v, buffers[v.Id])

    override _.InstructionCount = instructions.Length
    override _.BufferElements = ownElements

    override p.Set(name: string, value: Tensor) =
        let struct (v, buffer) = p.Buffer("Set", name)
        if not (Shape.equal value.ShapeRef v.ShapeRef) then
            invalidArg "value" (sprintf "Plan.Set: variable '%s' has shape %s but the value has shape %s" name (Shape.show v.ShapeRef) (Shape.show value.ShapeRef))
        if value.DType <> v.DType then
            invalidArg "value" (sprintf "Plan.Set: variable '%s' is %s but the value is %s; cast it with Tensor.cast" name v.DType.Name value.DType.Name)
        lock p (fun () ->
            (value.Data :?> 'T[]).CopyTo(buffer, 0)
            bound.Add name |> ignore)

    override p.Set(name: string, values: float[]) = p.SetRaw(name, values)
    override p.Set(name: string, values: float32[]) = p.SetRaw(name, values)

    member private p.SetRaw(name: string, values: Array) =
        let struct (v, buffer) = p.Buffer("Set", name)
        match box values with
        | :? ('T[]) as typed when typed.Length = buffer.Length ->
            lock p (fun () ->
                typed.CopyTo(buffer, 0)
                bound.Add name |> ignore)
        | :? ('T[]) ->
            invalidArg "values" (sprintf "Plan.Set: variable '%s' of shape %s needs %d values, got %d" name (Shape.show v.ShapeRef) buffer.Length values.Length)
        | _ -> invalidArg "values" (sprintf "Plan.Set: variable '%s' is %s; pass values of that dtype" name v.DType.Name)

    override p.Get(name: string) =
        let struct (v, buffer) = p.Buffer("Get", name)
        lock p (fun () -> Tensor.wrap v.ShapeRef (Array.copy buffer))

    override p.Execute() =
        // Monitor rather than `lock`: lock's closure would be the only allocation of a run.
        Threading.Monitor.Enter p
        try
            if bound.Count < variables.Length then
                let missing = variables |> Array.map (fun v -> (Expr.tryName v).Value) |> Array.filter (bound.Contains >> not)
                raise (KeyNotFoundException(sprintf "Plan.Execute: variables %s have no value; set them with Plan.Set or pass them to Run" (String.Join(", ", missing))))
            for ins in instructions do
                if ins.Axpy then
                    // Not fused in rounding: MultiplyAdd rounds the product, then the sum, as a - b * c does.
                    Numerics.Tensors.TensorPrimitives.MultiplyAdd(ReadOnlySpan ins.Args[1], ins.Scale, ReadOnlySpan ins.Args[0], Span ins.Dst)
                elif not (isNull ins.Steps) then Fused<'T>.Run(ins.Steps, ins.Args, ins.Temps, ins.Dst)
                else
                    match ins.Node.Op with
                    | MatMul -> Execute<'T>.MatMul(ins.Node, ins.Args[0], ins.Args[1], ins.Dst, ins.TransA, ins.TransB)
                    | _ -> Execute<'T>.Node(ins.Node, ins.Args, ins.Dst)
            for struct (src, dst) in updates do
                src.CopyTo(dst, 0)
        finally
            Threading.Monitor.Exit p

    override p.Output(index: int) =
        p.OutputNode("Output", index) |> ignore
        lock p (fun () -> Tensor.wrap outputs[index].ShapeRef (Array.copy outputBuffers[index]))

    override p.OutputScalar(index: int) =
        let node = p.OutputNode("OutputScalar", index)
        if outputBuffers[index].Length <> 1 then
            invalidArg "index" (sprintf "Plan.OutputScalar: output %d has shape %s, not one element; use Output" index (Shape.show node.ShapeRef))
        Scalar.toFloat (outputBuffers[index][0])

    /// Lays out buffers and instructions for the outputs and updates.
    static member Compile(outputs: Expr[], updates: (Expr * Expr)[]) : Plan =
        let roots = Array.append outputs (updates |> Array.map snd)
        let order = Graph.topoSort (Array.append roots (updates |> Array.map fst))
        // A matmul reads a transposed operand through a BLAS flag instead of a copy.
        let isSwap (e: Expr) =
            match e.Op with
            | Permute perm -> Op.IsTransposePermutation perm
            | _ -> false
        let uses = Dictionary<int64, int>()
        let countUse (e: Expr) = uses[e.Id] <- (match uses.TryGetValue e.Id with | true, n -> n + 1 | _ -> 1)
        for e in order do
            for i in e.Inputs do
                countUse i
        for r in roots do
            countUse r
        // a - b * c with c a scalar constant and b * c used nowhere else runs as one pass: the SGD update.
        let axpy (node: Expr) =
            match node.Op with
            | Binary Sub ->
                let product = node.Inputs[1]
                match product.Op with
                | Binary Mul when uses[product.Id] = 1 && Shape.equal node.Inputs[0].ShapeRef node.ShapeRef
                                  && Shape.equal product.Inputs[0].ShapeRef node.ShapeRef ->
                    match product.Inputs[1].Op with
                    | Const c when c.Size = 1 -> ValueSome(-(c.At 0))
                    | _ -> ValueNone
                | _ -> ValueNone
            | _ -> ValueNone
        // Elementwise nodes fold in their elementwise operands of the same size that nothing else uses, up to
        // a bounded group: one instruction, run block by block (sigmoid's gradient g * (y * (1 - y)), a loss's
        // chain). Operands of one element are broadcast; other broadcasts stay separate instructions.
        let size (e: Expr) = Shape.size e.ShapeRef
        // An SGD update reads its product's operand directly, so the product can neither lead nor join a group.
        let products = HashSet<int64>(order |> Seq.filter (fun e -> (axpy e).IsSome) |> Seq.map (fun e -> e.Inputs[1].Id))
        let elementwise (e: Expr) =
            size e > 0 && not (products.Contains e.Id) && e.Op.IsElementwise && (axpy e).IsNone
            && e.Inputs |> Array.forall (fun i -> size i = size e || size i = 1)
        let maxSteps = 16
        let absorbed = HashSet<int64>()
        let groupSize = Dictionary<int64, int>()
        for e in order do
            let mutable steps = 1
            if elementwise e then
                for i in e.Inputs do
                    match groupSize.TryGetValue i.Id with
                    | true, n when uses[i.Id] = 1 && size i = size e && steps + n <= maxSteps ->
                        absorbed.Add i.Id |> ignore
                        steps <- steps + n
                    | _ -> ()
                groupSize[e.Id] <- steps
        let groups = Dictionary<int64, struct (Expr[] * FusedStep[])>()
        for e in order do
            if e.Inputs |> Array.exists (fun i -> absorbed.Contains i.Id) && not (absorbed.Contains e.Id) then
                let leaves = ResizeArray<Expr>()
                let steps = ResizeArray<FusedStep>()
                // Depth is bounded by maxSteps.
                let rec step (node: Expr) =
                    let source (i: Expr) =
                        if absorbed.Contains i.Id then step i
                        else
                            match leaves.FindIndex(fun l -> obj.ReferenceEquals(l, i)) with
                            | -1 ->
                                leaves.Add i
                                leaves.Count - 1
                            | k -> k
                    let a = source node.Inputs[0]
                    let b = if node.Inputs.Length > 1 then source node.Inputs[1] else 0
                    steps.Add { Node = node; A = a; B = b }
                    -steps.Count
                step e |> ignore
                groups[e.Id] <- struct (leaves.ToArray(), steps.ToArray())
        let operands (node: Expr) =
            match node.Op with
            | MatMul -> node.Inputs |> Array.map (fun i -> if isSwap i then i.Inputs[0] else i)
            | _ ->
                match axpy node, groups.TryGetValue node.Id with
                | ValueSome _, _ -> [| node.Inputs[0]; node.Inputs[1].Inputs[0] |]
                | ValueNone, (true, struct (leaves, _)) -> leaves
                | ValueNone, _ -> node.Inputs
        // Which nodes are actually run: those reachable from the roots through the rewritten operands.
        let live = HashSet<int64>()
        for r in roots do
            live.Add r.Id |> ignore
        for k in order.Length - 1 .. -1 .. 0 do
            let node = order[k]
            if live.Contains node.Id then
                for i in operands node do
                    live.Add i.Id |> ignore
        let variables = order |> Array.filter (fun e -> (match e.Op with Var _ -> true | _ -> false))
        let names = Dictionary<string, Expr>()
        for v in variables do
            let name = (Expr.tryName v).Value
            match names.TryGetValue name with
            | true, other when not (Shape.equal other.ShapeRef v.ShapeRef) || other.DType <> v.DType ->
                invalidArg "outputs" (sprintf "Plan.compile: two variables are named '%s' with shapes %s and %s; give them distinct names" name (Shape.show other.ShapeRef) (Shape.show v.ShapeRef))
            | _ -> names[name] <- v
        for (v, value) in updates do
            match v.Op with
            | Var _ when Shape.equal v.ShapeRef value.ShapeRef && v.DType = value.DType -> ()
            | Var name -> invalidArg "updates" (sprintf "Plan.compile: the update of '%s' (%s %s) has shape %s and dtype %s" name (Shape.show v.ShapeRef) v.DType.Name (Shape.show value.ShapeRef) value.DType.Name)
            | _ -> invalidArg "updates" (sprintf "Plan.compile: only variables can be updated, got %O" v)
        let running = order |> Array.filter (fun e -> live.Contains e.Id)
        let position = Dictionary<int64, int>()
        running |> Array.iteri (fun i e -> position[e.Id] <- i)
        // Reshapes alias their operand's buffer; a buffer lives until the last use of any alias.
        let root = Dictionary<int64, int64>()
        for e in running do
            root[e.Id] <- (match e.Op with Reshape _ -> root[e.Inputs[0].Id] | _ -> e.Id)
        let lastUse = Dictionary<int64, int>()
        let pinned = HashSet<int64>(roots |> Seq.map (fun r -> root[r.Id]))
        running
        |> Array.iteri (fun i e ->
            lastUse[root[e.Id]] <- i
            for a in operands e do
                lastUse[root[a.Id]] <- i)
        let buffers = Dictionary<int64, 'T[]>()
        let free = Dictionary<int, Stack<'T[]>>()
        let mutable own = 0L
        let instructions = ResizeArray<Instruction<'T>>()
        let varBuffers = Dictionary<string, 'T[]>()
        for i in 0 .. running.Length - 1 do
            let e = running[i]
            let size = Shape.size e.ShapeRef
            match e.Op with
            | Var name ->
                match varBuffers.TryGetValue name with
                | true, b -> buffers[e.Id] <- b
                | _ ->
                    let b = Array.zeroCreate size
                    own <- own + int64 size
                    varBuffers[name] <- b
                    buffers[e.Id] <- b
            | Const t -> buffers[e.Id] <- (t.Data :?> 'T[])
            | Reshape _ -> buffers[e.Id] <- buffers[e.Inputs[0].Id]
            | _ ->
                let dst =
                    match free.TryGetValue size with
                    | true, stack when stack.Count > 0 -> stack.Pop()
                    | _ ->
                        own <- own + int64 size
                        Array.zeroCreate size
                buffers[e.Id] <- dst
                let ops = operands e
                let scale = axpy e
                let steps, temps =
                    match groups.TryGetValue e.Id with
                    | true, struct (_, steps) ->
                        let block = min size Fused<'T>.Block
                        own <- own + int64 (block * (steps.Length - 1))
                        steps, Array.init (steps.Length - 1) (fun _ -> Array.zeroCreate block)
                    | _ -> null, null
                instructions.Add
                    { Node = e
                      Args = ops |> Array.map (fun a -> buffers[a.Id])
                      Dst = dst
                      TransA = e.Op = MatMul && not (obj.ReferenceEquals(ops[0], e.Inputs[0]))
                      TransB = e.Op = MatMul && not (obj.ReferenceEquals(ops[1], e.Inputs[1]))
                      Axpy = scale.IsSome
                      Scale = 'T.CreateTruncating(ValueOption.defaultValue 0.0 scale)
                      Steps = steps
                      Temps = temps }
            // Buffers whose last use is this instruction go back to the pool (computed values only).
            for a in Seq.append (operands e) [ e ] |> Seq.distinct do
                let r = root[a.Id]
                if lastUse[r] = i && not (pinned.Contains r) && buffers.ContainsKey r then
                    match running[position[r]].Op with
                    | Var _ | Const _ -> ()
                    | _ ->
                        let b = buffers[r]
                        match free.TryGetValue b.Length with
                        | true, stack -> stack.Push b
                        | _ -> free[b.Length] <- Stack [ b ]
                        lastUse[r] <- -1
        let updateCopies = updates |> Array.map (fun (v, value) -> struct (buffers[value.Id], varBuffers[(Expr.tryName v).Value]))
        let distinctVars = names.Values |> Array.ofSeq
        TypedPlan<'T>(outputs, distinctVars, instructions.ToArray(), buffers, updateCopies, HashSet<string>(), own) :> Plan

/// Compiling expressions into plans.
module Plan =
    let private compileTyped (outputs: Expr[]) (updates: (Expr * Expr)[]) =
        let all = Array.append outputs (updates |> Array.map snd)
        if all.Length = 0 then invalidArg "outputs" "Plan.compile: nothing to compute; give at least one output or update"
        let dtype = all[0].DType
        match all |> Array.tryFind (fun e -> e.DType <> dtype) with
        | Some e -> invalidArg "outputs" (sprintf "Plan.compile: the graph mixes dtypes %s and %s" dtype.Name e.DType.Name)
        | None -> ()
        match dtype with
        | Float64 -> TypedPlan<float>.Compile(outputs, updates)
        | Float32 -> TypedPlan<float32>.Compile(outputs, updates)

    /// Compiles outputs into a plan; all their variables are set with Plan.Set or passed to Run.
    let compile (outputs: Expr list) : Plan = compileTyped (Array.ofList outputs) [||]

    /// Compiles outputs plus updates: after each run, every (variable, expression) pair writes the
    /// expression's value (computed from the variables' values before the run) into the variable.
    let compileWithUpdates (outputs: Expr list) (updates: (Expr * Expr) list) : Plan =
        compileTyped (Array.ofList outputs) (Array.ofList updates)

    /// Runs a plan once with the given variable values and returns its outputs.
    let run (env: IReadOnlyDictionary<string, Tensor>) (plan: Plan) : Tensor list = plan.Run env |> List.ofArray
