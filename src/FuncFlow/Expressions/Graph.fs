namespace FuncFlow

open System
open System.Buffers
open System.Collections.Generic
open System.Runtime.CompilerServices

/// Scratch arrays for one pass over a graph, rented from the shared pool: a graph of ten thousand nodes
/// needs arrays on the large-object heap, and allocating them afresh on every Grad or Eval call would
/// trigger a full (gen-2) collection every few calls.
module internal Scratch =
    /// A zeroed array of at least n elements (the pool rounds lengths up).
    let rent<'T> (n: int) : 'T[] =
        let a = ArrayPool<'T>.Shared.Rent(max n 1)
        Array.Clear a
        a

    /// Gives an array back; references are cleared so that the pool keeps no graph alive.
    let release<'T> (a: 'T[]) = ArrayPool<'T>.Shared.Return(a, RuntimeHelpers.IsReferenceOrContainsReferences<'T>())

    /// An array twice as long holding a's first `count` elements; a goes back to the pool.
    let grow<'T> (a: 'T[]) (count: int) : 'T[] =
        let grown = rent<'T>(2 * a.Length)
        Array.Copy(a, grown, count)
        release a
        grown

/// Positions of nodes in one topological order, looked up by node id. Ids grow in creation order and a
/// node's operands are older than it, so a graph built in one go occupies a narrow band of ids just
/// below its newest root: an array covers that band and a dictionary the rest (old variables), which
/// keeps per-node lookups off hashing on the hot paths of Grad and Eval.
[<Sealed>]
type internal NodeIndex(newest: int64) =
    // slots[newest - id] holds the position + 2: 0 is absent, 1 is visited but not yet placed.
    let mutable slots: int[] = Scratch.rent 256
    let far = Dictionary<int64, int>()
    let mutable count = 0

    member private _.Store(id: int64, stored: int) =
        let d = newest - id
        // Grow the array only while it stays within a few times the nodes seen, so sparse ids cannot blow it up;
        // the allowance covers a gradient's function nodes, met before the gradient's own are counted.
        if d >= 0L && d >= int64 slots.Length && d < 4L * int64 count + 65536L then
            let grown = Scratch.rent (max (2 * slots.Length) (int d + 1))
            slots.CopyTo(grown, 0)
            Scratch.release slots
            slots <- grown
        if d >= 0L && d < int64 slots.Length then slots[int d] <- stored else far[id] <- stored

    member private _.Stored(id: int64) =
        let d = newest - id
        let inArray = if d >= 0L && d < int64 slots.Length then slots[int d] else 0
        if inArray <> 0 || far.Count = 0 then
            inArray
        else
            match far.TryGetValue id with
            | true, v -> v
            | _ -> 0

    /// Marks a node as visited; false if it already was.
    member x.Visit(id: int64) =
        if x.Stored id <> 0 then
            false
        else
            x.Store(id, 1)
            count <- count + 1
            true

    /// Records a visited node's position.
    member x.Place(id: int64, position: int) = x.Store(id, position + 2)

    /// The node's position, or -1 when it is not in the order.
    member x.Position(id: int64) = x.Stored id - 2 |> max -1

    /// Gives the scratch storage back; the index must not be used afterwards.
    member _.Release() = Scratch.release slots

/// A topological order with each node's operands as positions in it (compressed rows: node k's operand
/// positions are Operands[Starts[k] .. Starts[k + 1] - 1]). The arrays are rented scratch, longer than
/// Count; Release (or Dispose, through `use`) gives them back.
type internal IndexedGraph =
    {
        /// Every reachable node, operands before their users (the first Count entries).
        Order: Expr[]
        /// The number of nodes.
        Count: int
        /// Positions by node id.
        Index: NodeIndex
        /// Where each node's operands start in Operands (Count + 1 entries).
        Starts: int[]
        /// The operands' positions, node after node.
        Operands: int[]
    }

    /// Gives the scratch arrays back; the graph must not be used afterwards.
    member g.Release() =
        g.Index.Release()
        Scratch.release g.Order
        Scratch.release g.Starts
        Scratch.release g.Operands

    interface IDisposable with
        member g.Dispose() = g.Release()

/// Walks over expression DAGs, iteratively: graph depth never grows the call stack.
module Graph =
    /// The topological order of everything reachable from the roots, with positions by id.
    // Optimised at once: called once per Grad or Eval, its loop would otherwise run tier-0 code for a while.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let internal indexed (roots: Expr seq) : IndexedGraph =
        let roots = Array.ofSeq roots
        let mutable newest = 0L
        for r in roots do
            newest <- max newest r.Id
        let index = NodeIndex newest
        let mutable order = Scratch.rent<Expr> 256
        let mutable count = 0
        // The DFS stack in pooled arrays (node, next operand), as deep as the graph's longest path.
        let mutable stack = Scratch.rent<Expr> 256
        let mutable nextOperand = Scratch.rent<int> 256
        let mutable depth = 0
        let mutable edges = 0
        for root in roots do
            if index.Visit root.Id then
                stack[0] <- root
                nextOperand[0] <- 0
                depth <- 1
            while depth > 0 do
                // A step pops one entry and pushes at most two.
                if depth + 1 >= stack.Length then
                    stack <- Scratch.grow stack depth
                    nextOperand <- Scratch.grow nextOperand depth
                depth <- depth - 1
                let node, next = stack[depth], nextOperand[depth]
                if next < node.Inputs.Length then
                    nextOperand[depth] <- next + 1
                    depth <- depth + 1
                    let child = node.Inputs[next]
                    if index.Visit child.Id then
                        stack[depth] <- child
                        nextOperand[depth] <- 0
                        depth <- depth + 1
                else
                    index.Place(node.Id, count)
                    edges <- edges + node.Inputs.Length
                    if count = order.Length then order <- Scratch.grow order count
                    order[count] <- node
                    count <- count + 1
        Scratch.release stack
        Scratch.release nextOperand
        let starts = Scratch.rent (count + 1)
        let operands = Scratch.rent edges
        let mutable e = 0
        for k in 0 .. count - 1 do
            starts[k] <- e
            for input in order[k].Inputs do
                operands[e] <- index.Position input.Id
                e <- e + 1
        starts[count] <- e
        { Order = order; Count = count; Index = index; Starts = starts; Operands = operands }

    /// Every node reachable from the roots, each once, operands before their users (post-order DFS).
    let topoSort (roots: Expr seq) : Expr[] =
        use graph = indexed roots
        graph.Order[.. graph.Count - 1]

    /// The variables the roots depend on, in first-use order.
    let variables (roots: Expr seq) : Expr list =
        topoSort roots
        |> Array.filter (fun e ->
            match e.Op with
            | Op.Var _ -> true
            | _ -> false)
        |> List.ofArray

    /// The number of distinct nodes reachable from the roots.
    let size (roots: Expr seq) = (topoSort roots).Length
