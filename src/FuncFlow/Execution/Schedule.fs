namespace FuncFlow

open System
open System.Runtime.CompilerServices

/// The order a graph runs in, built once (iteratively) and shared by one-shot evaluation, plan compilation
/// and printing: every node reachable from the roots, operands before their users, with its operands as
/// positions, how many times it is read, and where it is read last. The arrays are rented scratch, longer
/// than Count: dispose the schedule (`use`) to give them back, also when a pass over it throws.
[<Sealed>]
type internal Schedule private (graph: IndexedGraph, roots: int[], uses: int[], lastUse: int[]) =
    let mutable disposed = false

    /// The nodes in order (the first Count entries).
    member _.Order: Expr[] = graph.Order
    /// The number of nodes.
    member _.Count = graph.Count
    /// Node k's operands are Operands[Starts[k] .. Starts[k + 1] - 1] (Count + 1 entries).
    member _.Starts: int[] = graph.Starts
    /// The operands' positions, node after node.
    member _.Operands: int[] = graph.Operands
    /// The roots' positions, in the order given (a root given twice appears twice).
    member _.Roots = roots
    /// How many times each node is read: once per operand slot of its users and once per root entry.
    member _.Uses = uses
    /// The position of each node's last reader: its own position when nothing reads it, Int32.MaxValue
    /// for a root (its value outlives the pass).
    member _.LastUse = lastUse
    /// A node's position, or -1 when it is not in the schedule.
    member _.Position(e: Expr) = graph.Index.Position e.Id

    /// Orders everything reachable from the roots and counts its uses.
    // Optimised at once: called once per Eval, its loop would otherwise run tier-0 code for a while.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member Build(roots: Expr[]) : Schedule =
        let graph = Graph.indexed roots
        let n = graph.Count
        let starts, operands = graph.Starts, graph.Operands
        let uses = Scratch.rent<int> n
        let lastUse = Scratch.rent<int> n
        for k in 0 .. n - 1 do
            // Users come after their operands, so a later user overwrites this.
            lastUse[k] <- k
            for e in starts[k] .. starts[k + 1] - 1 do
                let p = operands[e]
                uses[p] <- uses[p] + 1
                lastUse[p] <- k
        let positions = Array.zeroCreate roots.Length
        for i in 0 .. roots.Length - 1 do
            let p = graph.Index.Position roots[i].Id
            positions[i] <- p
            uses[p] <- uses[p] + 1
            lastUse[p] <- Int32.MaxValue
        new Schedule(graph, positions, uses, lastUse)

    interface IDisposable with
        member _.Dispose() =
            // A pooled array returned twice would be handed to two renters.
            if not disposed then
                disposed <- true
                Scratch.release uses
                Scratch.release lastUse
                graph.Release()
