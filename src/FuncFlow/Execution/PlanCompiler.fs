namespace FuncFlow

open System
open System.Collections.Generic
open System.Numerics

/// How a plan computes one scheduled node, as the rewrite and fusion passes decide.
type internal Lowering =
    /// A variable's or a constant's own buffer: nothing runs.
    | Leaf
    /// A reshape: a view of its operand's buffer; nothing runs.
    | Alias
    /// Execute.Node on its operands.
    | Kernel
    /// A matrix product reading transposed operands through GEMM flags instead of copies.
    | Gemm of transA: bool * transB: bool
    /// The transpose of a rank-2 matrix product nothing else reads, (A B)^T = B^T A^T: one GEMM reading
    /// [B; A] with their flags flipped; the product itself is Folded.
    | TransposedGemm of transA: bool * transB: bool
    /// Computed inside another node's instruction (a folded matrix product, a step of a
    /// group read nowhere else): never runs on its own.
    | Folded
    /// A fused elementwise group: reads its leaves and runs its steps in order, the last being this node;
    /// each block of a step in stores is also copied into that node's buffer.
    | Group of steps: FusedStep[] * stores: FusedStore[]
    /// A node computed inside the group at this position, which stores its values in this node's buffer.
    | Produced of group: int
    /// c + A B (in either order) for a product read nowhere else: one GEMM with beta = 1 onto c's values, the
    /// product Folded. Reads [A; B; c]. In place, c's buffer is the sum's; otherwise c is first broadcast into it.
    | GemmAccumulate of transA: bool * transB: bool * product: int * inPlace: bool

/// The plan's intermediate form over a schedule: for every position, how it runs and the positions it reads.
type internal Lowered = { Schedule: Schedule; Kinds: Lowering[]; Reads: int[][] }

/// What runs and how long each buffer lives.
type internal Liveness =
    {
        /// The positions the roots reach through the rewritten reads, in order.
        Running: int[]
        /// The position whose buffer each position uses: a reshape uses its operand's owner's.
        Owner: int[]
        /// Per owner, the index in Running of its buffer's last read; Int32.MaxValue for the roots' (pinned).
        LastRead: int[]
    }

/// Every buffer of a plan and the copies that end a run.
type internal Layout<'T> =
    {
        /// Each running position's buffer (null elsewhere).
        Buffers: 'T[][]
        /// Each group's block-sized buffers, one per step but the last.
        Temps: 'T[][][]
        /// Each variable's buffer, by name: the variables read and those only written.
        Variables: Dictionary<string, 'T[]>
        /// (variable, copy) pairs run after the instructions: the values before the run of updated variables
        /// that outputs or updates read, kept before any update is written.
        Stage: struct ('T[] * 'T[])[]
        /// (value, variable) pairs run last: the updates; one whose value is the variable's own buffer is left out.
        Writes: struct ('T[] * 'T[])[]
        /// Where each output's value is after a run.
        Outputs: 'T[][]
        /// Elements in buffers the plan allocated itself.
        Own: int64
    }

[<Struct>]
type internal Instruction<'T> =
    {
        Node: Expr
        Args: 'T[][]
        Dst: 'T[]
        TransA: bool
        TransB: bool
        /// Node is the transpose of a matrix product, computed as one GEMM of Args [B; A] (TransposedGemm).
        Transposed: bool
        /// A fused elementwise group (null if none): its steps in order, the last one being Node.
        Steps: FusedStep[]
        /// The group's block-sized temps, one per slot its steps write (FusedStep.Slot).
        Temps: 'T[][]
        /// (step, buffer): the steps of a group whose blocks are also copied into a node's buffer.
        Stores: struct (int * 'T[])[]
        /// The group as one loop, when its steps allow (FusedLoop).
        Loop: FusedLoop<'T> voption
        /// The matrix product a GemmAccumulate adds onto Args[2] (null if none), Args being [A; B; c].
        Product: Expr
        /// c, the sum's other operand (null if none).
        Addend: Expr
    }

/// Plan compilation as passes over one schedule, each a function of the previous passes' results:
/// validate -> rewrite -> fuse -> liveness -> layout -> emit.
module internal PlanCompiler =
    /// The elements per block of a fused group: a multiple of every vector width, so that only a group's
    /// last block can take TensorPrimitives' scalar path; groups of at most this size run their kernels on
    /// exactly the spans the unfused nodes would, and compute the same bits.
    [<Literal>]
    let FusedBlock = 1024

    /// From this many elements on, a fused group's blocks are shared between two cores.
    let FusedHalving = 1 <<< 16

    /// The most nodes one fused group holds.
    [<Literal>]
    let MaxGroupSteps = 16

    let private name (v: Expr) = (Expr.tryName v).Value

    /// Fails before any work on updates that are not one simultaneous assignment: a target that is not a
    /// variable, a value of another shape or dtype, a variable assigned twice.
    let validate (updates: (Expr * Expr)[]) =
        let assigned = HashSet<string>()
        for (v, value) in updates do
            match v.Op with
            | Op.Var n when not (Shape.equal v.ShapeRef value.ShapeRef) || v.DType <> value.DType ->
                invalidArg
                    "updates"
                    (sprintf
                        "Plan.compile: the update of '%s' (%s %s) has shape %s and dtype %s"
                        n
                        (Shape.show v.ShapeRef)
                        v.DType.Name
                        (Shape.show value.ShapeRef)
                        value.DType.Name)
            | Op.Var n when not (assigned.Add n) ->
                invalidArg "updates" (sprintf "Plan.compile: variable '%s' is updated twice; a run assigns each variable one value" n)
            | Op.Var _ -> ()
            | _ -> invalidArg "updates" (sprintf "Plan.compile: only variables can be updated, got %O" v)

    /// The plan's variables, first those read (in first-use order), then those only written; fails on two
    /// variables that share a name but not a shape and dtype.
    let variables (s: Schedule) (updates: (Expr * Expr)[]) : Expr[] * Expr[] =
        let byName = Dictionary<string, Expr>()
        let all = ResizeArray<Expr>()
        let add (v: Expr) =
            match byName.TryGetValue(name v) with
            | true, other when not (Shape.equal other.ShapeRef v.ShapeRef) || other.DType <> v.DType ->
                invalidArg
                    "outputs"
                    (sprintf
                        "Plan.compile: two variables are named '%s' with shapes %s and %s; give them distinct names"
                        (name v)
                        (Shape.show other.ShapeRef)
                        (Shape.show v.ShapeRef))
            | true, _ -> ()
            | _ ->
                byName[name v] <- v
                all.Add v
        for k in 0 .. s.Count - 1 do
            match s.Order[k].Op with
            | Op.Var _ -> add s.Order[k]
            | _ -> ()
        let read = all.ToArray()
        for (v, _) in updates do
            add v
        all.ToArray(), read

    /// A transpose that a matrix product reads through a GEMM flag: its operand.
    let private (|Transposed|_|) (e: Expr) =
        match e.Op with
        | Op.Permute perm when Op.IsTransposePermutation perm -> Some e.Inputs[0]
        | _ -> None

    /// Decides how each node runs: leaves and reshapes run nothing, matrix products read transposes through
    /// GEMM flags, a sum onto a product read only there one GEMM with beta = 1; every other node runs as itself.
    let rewrite (s: Schedule) : Lowered =
        let n = s.Count
        let reads = Array.init n (fun k -> s.Operands[s.Starts[k] .. s.Starts[k + 1] - 1])
        let kinds = Array.create n Kernel
        for k in 0 .. n - 1 do
            let e = s.Order[k]
            kinds[k] <-
                match e.Op, e with
                | (Op.Var _ | Op.Const _), _ -> Leaf
                | Op.Reshape _, _ -> Alias
                | Op.MatMul, _ ->
                    // Through a chain of transposes (a layer's transposed weight, transposed again by its
                    // gradient rule): each toggles the flag, and the chain's source is read in place.
                    let flag i =
                        let mutable source, transposed, more = e.Inputs[i], false, true
                        while more do
                            match source with
                            | Transposed x ->
                                source <- x
                                transposed <- not transposed
                            | _ -> more <- false
                        reads[k][i] <- s.Position source
                        transposed
                    let transA = flag 0
                    Gemm(transA, flag 1)
                | _ -> Kernel
        // How many times each node is read, by the rewritten reads and as a root.
        let countReaders () =
            let readers = Array.zeroCreate<int> n
            for k in 0 .. n - 1 do
                for i in reads[k] do
                    readers[i] <- readers[i] + 1
            for r in s.Roots do
                readers[r] <- readers[r] + 1
            readers
        // After the flags are read, since a product read through a transpose's flag has a second reader. With
        // Linear's weight [out, in], its gradient (x^T g)^T is then one GEMM, g^T x, and no transpose copy.
        let readers = countReaders ()
        for k in 0 .. n - 1 do
            let e = s.Order[k]
            match e.Op, kinds[k] with
            | Op.Permute perm, Kernel when Op.IsTransposePermutation perm && e.Rank = 2 ->
                let m = reads[k][0]
                match kinds[m] with
                | Gemm(transA, transB) when readers[m] = 1 && s.Order[m].Inputs |> Array.forall (fun i -> i.Rank = 2) ->
                    reads[k] <- [| reads[m][1]; reads[m][0] |]
                    kinds[m] <- Folded
                    kinds[k] <- TransposedGemm(not transB, not transA)
                | _ -> ()
            | _ -> ()
        // Counted again after the flags and transposes moved reads: a count only errs high (a Folded node's reads
        // still count), which only leaves a sum as it is.
        let readers = countReaders ()
        // The node whose buffer position q is: through reshapes that only the next one reads.
        let source (q: int) =
            let mutable q = q
            while kinds[q] = Alias && readers[q] = 1 do
                q <- reads[q][0]
            q
        let size (q: int) = Shape.size s.Order[q].ShapeRef
        for k in 0 .. n - 1 do
            let e = s.Order[k]
            match e.Op, kinds[k] with
            | Op.Binary BinaryOp.Add, Kernel ->
                // The operand that is a product only this sum reads, of the sum's size (not broadcast by it).
                let fromProduct i =
                    let q = source (reads[k][i])
                    match kinds[q] with
                    | Gemm _ when readers[q] = 1 && size q = size k -> true
                    | _ -> false
                match [ 0; 1 ] |> List.tryFind fromProduct with
                | Some i ->
                    let product = source (reads[k][i])
                    let c = reads[k][1 - i]
                    let owner = source c
                    // c's buffer becomes the sum's when the sum is the only reader of c and of its buffer's
                    // computed owner (not a variable's or a constant's storage, nor a result).
                    let inPlace =
                        size c = size k
                        && readers[c] = 1
                        && readers[owner] = 1
                        && (match kinds[owner] with
                            | Leaf
                            | Alias
                            | Folded -> false
                            | _ -> true)
                    match kinds[product] with
                    | Gemm(transA, transB) ->
                        kinds[product] <- Folded
                        kinds[k] <- GemmAccumulate(transA, transB, product, inPlace)
                        reads[k] <- [| reads[product][0]; reads[product][1]; c |]
                    | _ -> ()
                | None -> ()
            | _ -> ()
        { Schedule = s; Kinds = kinds; Reads = reads }

    /// Whether node k is an elementwise op whose operands have its size or one element: element i of its
    /// result reads element i of each operand, and nothing else.
    let private elementwiseKernel (p: Lowered) (k: int) =
        let size i = Shape.size p.Schedule.Order[i].ShapeRef
        p.Schedule.Order[k].Op.IsElementwise
        && size k > 0
        && p.Reads[k] |> Array.forall (fun i -> size i = size k || size i = 1)

    /// A group's steps with their temps: a step's values live in a temp from the step to its last reader in
    /// the group (to the block's end, for a stored one), and the temp is taken again after that, so a long
    /// group's intermediates stay in the L1 cache (Adam's 16 steps write a few temps, not 15).
    let private withSlots (steps: FusedStep[]) (stores: ResizeArray<FusedStore>) : FusedStep[] =
        let count = steps.Length
        let lastRead = Array.create count -1
        for i in 0 .. count - 1 do
            for r in [ steps[i].A; steps[i].B ] do
                if r < 0 then lastRead[-1 - r] <- i
        for store in stores do
            lastRead[store.Step] <- count
        let free = SortedSet<int>()
        let mutable slots = 0
        let slot = Array.create count -1
        for i in 0 .. count - 2 do
            if free.Count > 0 then
                slot[i] <- free.Min
                free.Remove free.Min |> ignore
            else
                slot[i] <- slots
                slots <- slots + 1
            // Given back after the step's own temp is taken: no kernel writes over its operand (some, such as
            // a NaN-propagating maximum, read an operand again after writing).
            for r in [ steps[i].A; steps[i].B ] do
                if r < 0 && lastRead[-1 - r] = i then free.Add slot[-1 - r] |> ignore
        steps |> Array.mapi (fun i step -> { step with Slot = slot[i] })

    /// Folds elementwise nodes into an elementwise reader of their size, up to MaxGroupSteps nodes: one
    /// blocked instruction per group (sigmoid's gradient g * (y * (1 - y)), a loss's chain, an optimiser's
    /// update). A node read only there is computed inside the group; one that others read too, after the
    /// group, is computed inside it as well and stored as the group passes (Produced): Adam's moments, read by
    /// the parameter's update and written to their variables. A group's operands have its size or one element
    /// (broadcast as a value by the dispatcher); a node with any other broadcast stays outside.
    let fuse (p: Lowered) : Lowered =
        let s = p.Schedule
        let n = s.Count
        let size k = Shape.size s.Order[k].ShapeRef
        let elementwise k =
            match p.Kinds[k] with
            | Kernel -> elementwiseKernel p k
            | _ -> false
        // Chains of single-use nodes first. The schedule's use counts hold for the rewritten reads here: the
        // rewrites change only what matrix products and transposes read, and neither is elementwise.
        let groupSize = Array.zeroCreate<int> n
        let absorbed = Array.zeroCreate<bool> n
        for k in 0 .. n - 1 do
            if elementwise k then
                let mutable steps = 1
                for i in p.Reads[k] do
                    if groupSize[i] > 0 && s.Uses[i] = 1 && size i = size k && steps + groupSize[i] <= MaxGroupSteps then
                        absorbed[i] <- true
                        steps <- steps + groupSize[i]
                groupSize[k] <- steps
        // What each chain reads from outside it (depth bounded by MaxGroupSteps), and who reads each node.
        let leavesOf (k: int) =
            let leaves = HashSet<int>()
            let rec walk (node: int) =
                for i in p.Reads[node] do
                    if absorbed[i] then walk i else leaves.Add i |> ignore
            walk k
            leaves
        let readers = Array.init n (fun _ -> ResizeArray<int>())
        for k in 0 .. n - 1 do
            if not absorbed[k] then
                for i in leavesOf k do
                    readers[i].Add k
        let isRoot = Array.zeroCreate<bool> n
        for r in s.Roots do
            isRoot[r] <- true
        // Then chains read by several nodes, each taken into the group of its first reader when every other
        // reader runs after that group: computed once there, and stored unless only that group reads it. A
        // stored chain is taken only into a group of FusedHalving elements or more: below that, its values stay
        // in cache between kernels anyway, and the group's per-block steps and copies cost more than the pass
        // they save (an LSTM step's gates, 32 x 256, ran about 15% slower taken in).
        let takenBy = Array.create n -1
        let stored = Array.zeroCreate<bool> n
        let producer = Array.zeroCreate<bool> n
        for k in 0 .. n - 1 do
            if elementwise k && not absorbed[k] then
                let mutable steps = groupSize[k]
                for i in leavesOf k |> Seq.sort do
                    if
                        elementwise i
                        && not absorbed[i]
                        && not producer[i]
                        && takenBy[i] < 0
                        && size i = size k
                        && steps + groupSize[i] <= MaxGroupSteps
                        && readers[i] |> Seq.forall (fun r -> r >= k)
                        && (not (isRoot[i] || readers[i].Count > 1) || size k >= FusedHalving)
                    then
                        takenBy[i] <- k
                        stored[i] <- isRoot[i] || readers[i].Count > 1
                        producer[k] <- true
                        steps <- steps + groupSize[i]
        let kinds = Array.copy p.Kinds
        let reads = Array.copy p.Reads
        for k in 0 .. n - 1 do
            if (groupSize[k] > 1 || producer[k]) && not absorbed[k] then
                let leaves = ResizeArray<int>()
                let steps = ResizeArray<FusedStep>()
                let stores = ResizeArray<FusedStore>()
                // A node taken in is reached once per reader inside the group, and computed once.
                let computed = Dictionary<int, int>()
                // Depth is bounded by MaxGroupSteps.
                let rec step (node: int) =
                    let source (i: int) =
                        if absorbed[i] || takenBy[i] = k then
                            match computed.TryGetValue i with
                            | true, r -> r
                            | _ ->
                                let r = step i
                                computed[i] <- r
                                if stored[i] then stores.Add { Step = -1 - r; Position = i }
                                r
                        else
                            match leaves.IndexOf i with
                            | -1 ->
                                leaves.Add i
                                leaves.Count - 1
                            | j -> j
                    let operands = p.Reads[node]
                    let a = source operands[0]
                    let b = if operands.Length > 1 then source operands[1] else 0
                    steps.Add { Node = s.Order[node]; A = a; B = b; Slot = -1 }
                    -steps.Count
                step k |> ignore
                // A group that runs as one loop keeps its steps' values in registers, not in temps.
                let steps = steps.ToArray()
                let steps = if FusedLoop.covers steps then steps else withSlots steps stores
                kinds[k] <- Group(steps, stores.ToArray())
                reads[k] <- leaves.ToArray()
        for i in 0 .. n - 1 do
            if takenBy[i] >= 0 then
                reads[i] <- [||]
                kinds[i] <- if stored[i] then Produced takenBy[i] else Folded
        { p with Kinds = kinds; Reads = reads }

    /// Which positions run (those the roots reach through the rewritten reads), whose buffer each uses, and
    /// where each buffer is read last; the roots' buffers are pinned, as the plan's results.
    let liveness (p: Lowered) : Liveness =
        let s = p.Schedule
        let n = s.Count
        let live = Array.zeroCreate<bool> n
        for r in s.Roots do
            live[r] <- true
        let mutable more = true
        while more do
            for k in n - 1 .. -1 .. 0 do
                if live[k] then
                    for i in p.Reads[k] do
                        live[i] <- true
            // A node computed inside a group is there only if its group runs.
            more <- false
            for k in 0 .. n - 1 do
                match p.Kinds[k] with
                | Produced group when live[k] && not live[group] ->
                    live[group] <- true
                    more <- true
                | _ -> ()
        let running = Array.init n id |> Array.filter (fun k -> live[k])
        let owner = Array.init n id
        for k in running do
            match p.Kinds[k] with
            | Alias -> owner[k] <- owner[p.Reads[k][0]]
            | GemmAccumulate(_, _, _, true) -> owner[k] <- owner[p.Reads[k][2]]
            | _ -> ()
        let lastRead = Array.create n -1
        running
        |> Array.iteri (fun i k ->
            lastRead[owner[k]] <- i
            for a in p.Reads[k] do
                lastRead[owner[a]] <- i)
        for r in s.Roots do
            lastRead[owner[r]] <- Int32.MaxValue
        { Running = running; Owner = owner; LastRead = lastRead }

    /// Fixes every buffer: variables by name (also those only written), constants' own storage, reshapes
    /// as views, computed values from a pool by size (a buffer returns to it after its last read, and is
    /// taken before the reads of its node are released, so no kernel writes over its operand). Then the
    /// copies that make a run one simultaneous assignment: an output or update that reads an updated
    /// variable gets a copy of its value before the run (a swap, a rotation, a loss beside its parameters),
    /// from buffers that are free by then.
    let layout<'T> (p: Lowered) (live: Liveness) (outputs: int) (updates: (Expr * Expr)[]) : Layout<'T> =
        let s = p.Schedule
        let own = ref 0L
        let fresh (size: int) : 'T[] =
            own.Value <- own.Value + int64 size
            Array.zeroCreate size
        let free = Dictionary<int, Stack<'T[]>>()
        let take (size: int) =
            match free.TryGetValue size with
            | true, stack when stack.Count > 0 -> stack.Pop()
            | _ -> fresh size
        let varBuffers = Dictionary<string, 'T[]>()
        let variable (v: Expr) =
            match varBuffers.TryGetValue(name v) with
            | true, b -> b
            | _ ->
                let b = fresh (Shape.size v.ShapeRef)
                varBuffers[name v] <- b
                b
        // An update computed element by element, after the last read of its variable's value before the run,
        // writes straight into the variable's buffer (each element is read before it is written there), and
        // the run's copy into the variable goes: an optimiser's parameters and moments.
        let inPlace = Dictionary<int, Expr>()
        let index = Array.create s.Count -1
        live.Running |> Array.iteri (fun i k -> index[k] <- i)
        let lastReadOf = Dictionary<string, int>()
        for k in live.Running do
            match s.Order[k].Op with
            | Op.Var _ ->
                // Two nodes may name one variable: the later read counts.
                let last =
                    match lastReadOf.TryGetValue(name s.Order[k]) with
                    | true, other -> max other live.LastRead[k]
                    | _ -> live.LastRead[k]
                lastReadOf[name s.Order[k]] <- last
            | _ -> ()
        updates
        |> Array.iteri (fun j (v, _) ->
            let k = s.Roots[outputs + j]
            // A stored node of a group is written block by block after the block's reads.
            let elementwise, runs =
                match p.Kinds[k] with
                | Group _ -> true, index[k]
                | Kernel -> elementwiseKernel p k, index[k]
                | Produced group -> true, index[group]
                | _ -> false, index[k]
            let readBefore =
                match lastReadOf.TryGetValue(name v) with
                | true, last -> last <= runs
                | _ -> true
            if elementwise && readBefore && not (inPlace.ContainsKey k) then inPlace[k] <- v)
        let buffers = Array.zeroCreate<'T[]> s.Count
        let temps = Array.zeroCreate<'T[][]> s.Count
        let released = Array.zeroCreate<bool> s.Count
        let release (i: int) (position: int) =
            let o = live.Owner[position]
            match p.Kinds[o] with
            | Leaf
            | Alias -> ()
            | _ when live.LastRead[o] = i && not released[o] ->
                released[o] <- true
                let b = buffers[o]
                match free.TryGetValue b.Length with
                | true, stack -> stack.Push b
                | _ -> free[b.Length] <- Stack [ b ]
            | _ -> ()
        live.Running
        |> Array.iteri (fun i k ->
            let e = s.Order[k]
            match p.Kinds[k] with
            | Leaf ->
                buffers[k] <-
                    match e.Op with
                    | Op.Const t -> t.Data :?> 'T[]
                    | _ -> variable e
            | Alias -> buffers[k] <- buffers[p.Reads[k][0]]
            | GemmAccumulate(_, _, _, true) -> buffers[k] <- buffers[p.Reads[k][2]]
            | kind ->
                let size = Shape.size e.ShapeRef
                buffers[k] <-
                    match inPlace.TryGetValue k with
                    | true, v -> variable v
                    | _ -> take size
                match kind with
                | Group(steps, _) ->
                    // A group shared between two cores (Fused.Run) keeps each thread's intermediates apart.
                    let temp = if size >= FusedHalving then 2 * FusedBlock else min size FusedBlock
                    let slots = steps |> Array.fold (fun most step -> max most (step.Slot + 1)) 0
                    temps[k] <- Array.init slots (fun _ -> fresh temp)
                | _ -> ()
            for a in p.Reads[k] do
                release i a
            release i k)
        for (v, _) in updates do
            variable v |> ignore
        let writes =
            updates
            |> Array.mapi (fun j (v, _) -> struct (buffers[s.Roots[outputs + j]], varBuffers[name v]))
            |> Array.filter (fun struct (value, target) -> not (obj.ReferenceEquals(value, target)))
        let written =
            HashSet<'T[]>(writes |> Seq.map (fun struct (_, target) -> target), HashIdentity.Reference)
        let copies = Dictionary<'T[], 'T[]>(HashIdentity.Reference)
        let beforeRun (b: 'T[]) =
            if not (written.Contains b) then
                b
            else
                match copies.TryGetValue b with
                | true, copy -> copy
                | _ ->
                    let copy = take b.Length
                    copies[b] <- copy
                    copy
        {
            Buffers = buffers
            Temps = temps
            Variables = varBuffers
            Outputs = Array.init outputs (fun i -> beforeRun buffers[s.Roots[i]])
            Writes = writes |> Array.map (fun struct (value, target) -> struct (beforeRun value, target))
            Stage = copies |> Seq.map (fun kv -> struct (kv.Key, kv.Value)) |> Array.ofSeq
            Own = own.Value
        }

    /// One instruction per running node that computes something, with its buffers.
    let emit<'T when 'T :> INumberBase<'T>> (p: Lowered) (live: Liveness) (layout: Layout<'T>) : Instruction<'T>[] =
        [|
            for k in live.Running do
                let plain =
                    {
                        Node = p.Schedule.Order[k]
                        Args = p.Reads[k] |> Array.map (fun a -> layout.Buffers[a])
                        Dst = layout.Buffers[k]
                        TransA = false
                        TransB = false
                        Transposed = false
                        Steps = null
                        Temps = null
                        Stores = Array.Empty()
                        Loop = ValueNone
                        Product = Unchecked.defaultof<Expr>
                        Addend = Unchecked.defaultof<Expr>
                    }
                match p.Kinds[k] with
                | Leaf
                | Alias
                | Folded
                | Produced _ -> ()
                | Kernel -> yield plain
                | Gemm(transA, transB) -> yield { plain with TransA = transA; TransB = transB }
                | TransposedGemm(transA, transB) -> yield { plain with TransA = transA; TransB = transB; Transposed = true }
                | Group(steps, stores) ->
                    yield
                        { plain with
                            Steps = steps
                            Temps = layout.Temps[k]
                            Stores = stores |> Array.map (fun st -> struct (st.Step, layout.Buffers[st.Position]))
                            Loop =
                                FusedLoop.tryCompile
                                    steps
                                    (stores |> Array.map (fun st -> st.Step))
                                    (plain.Args |> Array.map (fun a -> a.Length = 1))
                        }
                | GemmAccumulate(transA, transB, product, _) ->
                    let addend = p.Schedule.Order[p.Reads[k][2]]
                    yield
                        { plain with
                            TransA = transA
                            TransB = transB
                            Product = p.Schedule.Order[product]
                            Addend = addend
                        }
        |]
