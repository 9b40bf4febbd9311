namespace FuncFlow

open System
open System.Collections.Generic

/// Gradient checkpointing (rematerialisation): which forward activations the backward pass reads as they were
/// computed, and which it recomputes.
type Checkpointing =
    {
        /// The forward computation's result (a loss): the nodes it depends on are the forward activations.
        Forward: Expr
        /// The activations the backward pass reads as computed (segment boundaries, such as every k-th layer's
        /// output). Every other forward activation it reads is recomputed from these, variables and constants.
        Keep: Expr list
    }

/// Gradient checkpointing as a rewrite of a gradient DAG: each forward activation the backward pass reads,
/// unless kept, is replaced there by a copy recomputed from the kept activations. The originals are then read
/// only by the forward pass, so a plan's liveness frees them as soon as the forward pass is done with them;
/// the copies are computed when the backward pass first needs them. Values are unchanged (the copies are the
/// same operations on the same operands); memory trades against the recomputation.
[<RequireQualifiedAccess>]
module Checkpoint =
    /// The roots with their backward nodes reading recomputed copies of the forward activations that are not
    /// kept; forward nodes and leaves are unchanged, and one copy of each activation is shared by its readers.
    let rewrite (checkpointing: Checkpointing) (roots: Expr list) : Expr list =
        // C# callers can pass null; say so by name rather than fail inside with a NullReferenceException.
        if isNull (box checkpointing.Forward) || List.exists (box >> isNull) checkpointing.Keep then
            raise (
                ArgumentNullException("checkpointing", "Checkpoint.rewrite: the forward result or a kept node is null; pass expressions")
            )
        let forwardOrder = Graph.topoSort [ checkpointing.Forward ]
        let forward = HashSet<Expr>(forwardOrder)
        let keep = HashSet<Expr>(checkpointing.Keep)
        for k in keep do
            if not (forward.Contains k) then
                invalidArg
                    "checkpointing"
                    (sprintf
                        "Checkpoint.rewrite: a kept node (%s, shape %s) is not part of the forward computation %O; keep activations the forward result depends on"
                        k.Op.Name
                        (Shape.show k.ShapeRef)
                        checkpointing.Forward)
        let saved (e: Expr) = keep.Contains e || e.Inputs.Length = 0
        let order = Graph.topoSort roots
        // The activations to recompute: those the backward nodes read, and what they are computed from, down to
        // saved nodes (an explicit stack: depth never grows the call stack).
        let recompute = HashSet<Expr>()
        let stack = Stack<Expr>()
        let visit (e: Expr) = if forward.Contains e && not (saved e) && recompute.Add e then stack.Push e
        for node in order do
            if not (forward.Contains node) then
                for input in node.Inputs do
                    visit input
        while stack.Count > 0 do
            for input in stack.Pop().Inputs do
                visit input
        // Copies in forward order, operands first (a copy is a new node even when its operands are all saved);
        // then the backward nodes, rebuilt in order where an operand changed. Forward nodes are never rebuilt,
        // so they keep reading the originals.
        let rebuilt = Dictionary<Expr, Expr>()
        let read (e: Expr) =
            match rebuilt.TryGetValue e with
            | true, copy -> copy
            | _ -> e
        for node in forwardOrder do
            if recompute.Contains node then
                rebuilt[node] <- Expr.make node.Op (Array.map read node.Inputs) node.ShapeRef node.DType
        for node in order do
            if not (forward.Contains node) then
                let inputs = Array.map read node.Inputs
                if not (Array.forall2 (fun a b -> obj.ReferenceEquals(a, b)) inputs node.Inputs) then
                    rebuilt[node] <- Expr.make node.Op inputs node.ShapeRef node.DType
        roots |> List.map (fun r -> if forward.Contains r then r else read r)
