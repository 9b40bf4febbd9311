namespace FuncFlow

open System
open System.Threading

/// Vectorising maps (JAX's vmap): a function written for one example, applied to a whole batch by rewriting
/// its expression, not by looping. The function is applied once to a placeholder variable of one example's
/// shape; then the resulting DAG is rewritten bottom-up, one batching rule per operation, into the same
/// computation with a batch axis in front of every node that depends on the placeholder. Nodes that do not
/// depend on it (weights, constants) stay as they are, shared, and are broadcast only where they meet
/// batched ones. So the result's node count does not depend on the batch size, and it is an ordinary
/// expression: it evaluates, compiles, prints and differentiates like any other.
[<RequireQualifiedAccess>]
module Vmap =
    let mutable private placeholders = 0L

    // Unique names, so that nested vmaps' placeholders (an inner one sees the outer's as an ordinary variable)
    // never meet under one name.
    let private placeholder (dtype: DType) (shape: int[]) = Expr.varOf dtype (sprintf "vmap#%d" (Interlocked.Increment &placeholders)) shape

    // [b] @ dims.
    let private batchOf (b: int) (dims: int[]) = Array.append [| b |] dims

    // Offsets an example's indices into a flattened [b * rows] axis: example i's index j becomes i * rows + j.
    // An index outside [0, rows) is moved outside [0, b * rows) (negatives stay negative, the others are raised
    // past the end), so the kernel's range check still fails instead of reading another example's rows.
    let private intoFlatRows (b: int) (rows: int) (indices: Expr) =
        let dims = Array.init indices.Rank (fun i -> if i = 0 then b else 1)
        let shift =
            Expr.constant (Tensor.ofFloats indices.DType dims (Array.init b (fun i -> float i * float rows)))
        let inRange = Expr.step (indices + 1.0) * Expr.step (float rows - indices)
        indices + Expr.where inRange shift (Expr.step indices * (float b * float rows))

    // Expr has no null in F#; the rewrite's arrays use it for "not batched".
    let inline private missing (e: Expr) = obj.ReferenceEquals(e, null)

    /// The batched form of node y (its value for every example, batch axis 0 of length b), given its operands'
    /// batched forms: null for an operand that does not depend on the mapped inputs, which is then read as
    /// it is. At least one operand is batched.
    let private rule (b: int) (y: Expr) (batched: Expr[]) : Expr =
        let inputs = y.Inputs
        let isBatched i = not (missing batched[i])
        // The one operand of a unary operation, batched (else the node would not be).
        let only () = batched[0]
        // Operand i against the node's rank with NumPy broadcasting: a batched operand gets length-1 axes
        // after its batch axis (an unbatched one is aligned from the right as it is).
        let aligned i =
            let x = inputs[i]
            if isBatched i then
                Expr.reshape (Array.concat [ [| b |]; Array.create (y.Rank - x.Rank) 1; x.ShapeRef ]) batched[i]
            else
                x
        // Operand i as [b] @ its shape, broadcast when it is unbatched: operations whose operands must agree.
        let full i = if isBatched i then batched[i] else Expr.broadcastTo (batchOf b inputs[i].ShapeRef) inputs[i]
        // [b; n; ...] as [b n; ...]: the batch axis folded into an example's own N axis.
        let intoN (e: Expr) = Expr.reshape (Array.append [| b * e.ShapeRef[1] |] e.ShapeRef[2..]) e
        let outOfN (e: Expr) = Expr.reshape (batchOf b y.ShapeRef) e
        let axes (first: int) (count: int) = Array.init count (fun i -> first + i)
        // Max pooling's pick and scatter: keys and the other operand with the batch folded into N.
        let pooling build (w: Window) =
            let keys = intoN (full 0)
            // Max pooling reads one node as keys and values: keep it one node.
            let other = if inputs[1] = inputs[0] then keys else intoN (full 1)
            build w keys other |> outOfN
        match y.Op with
        | Op.Var _
        | Op.Const _ -> invalidOp (sprintf "Vmap: %s has no operand, so only a mapped placeholder can be batched" y.Op.Name)
        | Op.Unary u -> Expr.unary u (only ())
        | Op.Binary op -> Expr.binary op (aligned 0) (aligned 1)
        | Op.PowScalar p -> Expr.powScalar p (only ())
        // Op.MatMul's operands have two axes or more: the batch axis is one more broadcast batch axis.
        | Op.MatMul -> Expr.matmul (aligned 0) (aligned 1)
        | Op.Permute perm -> Expr.permute (Array.append [| 0 |] (Array.map ((+) 1) perm)) (only ())
        | Op.Reshape shape -> Expr.reshape (batchOf b shape) (only ())
        | Op.BroadcastTo shape -> Expr.broadcastTo (batchOf b shape) (aligned 0)
        | Op.Reduce(kind, Some a, keepDim) -> Expr.reduce kind (Some(a + 1)) keepDim (only ())
        | Op.Reduce(kind, None, _) ->
            // Over one example's elements: its axes flattened into one (a view in plans).
            Expr.reshape [| b; Shape.size inputs[0].ShapeRef |] (only ())
            |> Expr.reduce kind (Some 1) false
            |> Expr.reshape (batchOf b y.ShapeRef)
        | Op.Concat a -> Expr.concat (a + 1) (List.init inputs.Length full)
        | Op.Slice(a, start, length, step) -> Expr.sliceNode (a + 1) start length step (only ())
        | Op.Pad(a, before, after, interior, value) -> Expr.padNode (a + 1) before after interior value (only ())
        | Op.Gather a ->
            let x, indices = inputs[0], inputs[1]
            let ri = indices.Rank
            if not (isBatched 1) then
                Expr.indexSelect (a + 1) indices batched[0]
            elif not (isBatched 0) then
                // x's axes before a, then the batched indices' (batch first), then x's after a.
                let picked = Expr.indexSelect a batched[1] x
                Expr.permute (Array.concat [ [| a |]; axes 0 a; axes (a + 1) (picked.Rank - a - 1) ]) picked
            else
                // Each example picks from its own rows: the batch axis and axis a flattened into one.
                let rows = x.ShapeRef[a]
                let flat =
                    batched[0]
                    |> Expr.permute (Array.concat [ [| 0; a + 1 |]; axes 1 a; axes (a + 2) (x.Rank - a - 1) ])
                    |> Expr.reshape (Array.concat [ [| b * rows |]; x.ShapeRef[.. a - 1]; x.ShapeRef[a + 1 ..] ])
                // [b] @ indices @ before @ after, to [b] @ before @ indices @ after.
                let picked = Expr.indexSelect 0 (intoFlatRows b rows batched[1]) flat
                Expr.permute (Array.concat [ [| 0 |]; axes (1 + ri) a; axes 1 ri; axes (1 + ri + a) (x.Rank - a - 1) ]) picked
        | Op.ScatterAdd(a, rows) ->
            let values, indices = inputs[0], inputs[1]
            let ri = indices.Rank
            if not (isBatched 1) then
                Expr.indexAdd (a + 1) rows indices batched[0]
            else
                // Each example adds into its own rows: [b] @ before @ indices @ after, moved to
                // [b] @ indices @ before @ after, added into [b rows] @ before @ after, then rows put back at a.
                let after = values.Rank - a - ri
                let moved =
                    full 0
                    |> Expr.permute (Array.concat [ [| 0 |]; axes (1 + a) ri; axes 1 a; axes (1 + a + ri) after ])
                Expr.indexAdd 0 (b * rows) (intoFlatRows b rows batched[1]) moved
                |> Expr.reshape (Array.concat [ [| b; rows |]; values.ShapeRef[.. a - 1]; values.ShapeRef[a + ri ..] ])
                |> Expr.permute (Array.concat [ [| 0 |]; axes 2 a; [| 1 |]; axes (2 + a) after ])
        | Op.OneHot classes -> Expr.oneHot classes (only ())
        | Op.Softmax a -> Expr.softmax (a + 1) (only ())
        | Op.LogSoftmax a -> Expr.logSoftmax (a + 1) (only ())
        | Op.AddN -> Expr.addN (List.init inputs.Length full)
        | Op.Unfold w -> Expr.unfold w (intoN (only ())) |> outOfN
        | Op.Fold w -> Expr.fold (List.ofArray y.ShapeRef[2..]) w (intoN (only ())) |> outOfN
        | Op.MaxPoolPick w -> pooling Expr.maxPoolPick w
        | Op.MaxPoolScatter w -> pooling Expr.maxPoolScatter w
        | Op.Where -> Expr.where (aligned 0) (aligned 1) (aligned 2)
        | Op.Cumsum(a, reverse) -> (if reverse then Expr.reverseCumsum else Expr.cumsum) (a + 1) (only ())
        // A user-defined operation's own batching rule (CustomOp.withBatching), its result's batch axis moved to 0.
        | Op.Custom op ->
            match op.Batching with
            | Some rule ->
                let operands = [ for i in 0 .. inputs.Length - 1 -> if isBatched i then batched[i] else inputs[i] ]
                let result, axis =
                    rule operands [ for i in 0 .. inputs.Length - 1 -> if isBatched i then Some 0 else None ]
                if axis = 0 then
                    result
                else
                    Expr.permute (Array.concat [ [| axis |]; axes 0 axis; axes (axis + 1) (result.Rank - axis - 1) ]) result
            | None -> raise (op.Unsupported("batching (vmap)", "CustomOp.withBatching"))

    /// The batched form of f's output for inputs mapped over the given axes (None: not mapped, passed to f as
    /// it is), batch axis 0; the rewrite behind vmap, vmapAxis and vmapAxes.
    let private batch (op: string) (inputs: (Expr * int option)[]) (f: Expr[] -> Expr) : Expr =
        for x, _ in inputs do
            if isNull (box x) then
                raise (ArgumentNullException("xs", sprintf "%s: an input is null; pass an expression" op))
        let inputs = inputs |> Array.map (fun (x, axis) -> x, axis |> Option.map (Shape.axis op x.ShapeRef))
        let mapped = inputs |> Array.choose (fun (x, axis) -> axis |> Option.map (fun a -> x, a))
        if mapped.Length = 0 then
            invalidArg "inAxes" (sprintf "%s: no input is mapped; give at least one an axis" op)
        let x0, a0 = mapped[0]
        let b = x0.ShapeRef[a0]
        for x, a in mapped do
            if x.ShapeRef[a] <> b then
                invalidArg
                    "xs"
                    (sprintf
                        "%s: the mapped axes have different lengths: axis %d of %s has %d, axis %d of %s has %d"
                        op
                        a0
                        (Shape.show x0.ShapeRef)
                        b
                        a
                        (Shape.show x.ShapeRef)
                        x.ShapeRef[a])
        // Each mapped input is read through a placeholder of one example's shape; its batched form is the
        // input with the mapped axis moved to the front.
        let seeds =
            inputs
            |> Array.map (fun (x, axis) ->
                match axis with
                | None -> x, None
                | Some a ->
                    let front = Array.concat [ [| a |]; Array.init a id; Array.init (x.Rank - a - 1) (fun i -> a + 1 + i) ]
                    placeholder x.DType (Array.removeAt a x.ShapeRef), Some(Expr.permute front x))
        let out = f (Array.map fst seeds)
        if isNull (box out) then
            raise (InvalidOperationException(sprintf "%s: the function returned null; return an expression" op))
        use graph = Graph.indexed [ out ]
        let n = graph.Count
        let forms = Scratch.rent<Expr> n
        try
            for p, form in seeds do
                match form with
                | Some form when graph.Index.Position p.Id >= 0 -> forms[graph.Index.Position p.Id] <- form
                | _ -> ()
            // Operands come before their users, so one pass in order batches every node that needs it.
            for k in 0 .. n - 1 do
                let first, count = graph.Starts[k], graph.Starts[k + 1] - graph.Starts[k]
                let operands = Array.init count (fun i -> forms[graph.Operands[first + i]])
                if missing forms[k] && operands |> Array.exists (missing >> not) then
                    let y = graph.Order[k]
                    let form = rule b y operands
                    if not (Shape.equal form.ShapeRef (batchOf b y.ShapeRef)) then
                        invalidOp (
                            sprintf
                                "%s: the batching rule of %s gave shape %s for an example shape %s and %d examples"
                                op
                                y.Op.Name
                                (Shape.show form.ShapeRef)
                                (Shape.show y.ShapeRef)
                                b
                        )
                    forms[k] <- form
            // An output that does not depend on the mapped inputs is the same for every example.
            if missing forms[n - 1] then Expr.broadcastTo (batchOf b out.ShapeRef) out else forms[n - 1]
        finally
            Scratch.release forms

    /// f applied to every slice of xs along an axis, the results stacked along a new leading axis: the same as
    /// stacking f of each slice, computed as one batched expression whose node count does not depend on the
    /// batch size. E.g. per-example gradients: Vmap.vmapAxis 0 (fun x -> Grad.grad w (loss x)) xs.
    let vmapAxis (axis: int) (f: Expr -> Expr) (xs: Expr) : Expr = batch "Vmap.vmapAxis" [| xs, Some axis |] (fun e -> f e[0])

    /// f applied to every slice of xs along its leading axis, the results stacked along a new leading axis
    /// (JAX's vmap). E.g. Vmap.vmap (fun x -> Expr.matmul w x) xs maps a matrix-vector product over xs's rows.
    let vmap (f: Expr -> Expr) (xs: Expr) : Expr = batch "Vmap.vmap" [| xs, Some 0 |] (fun e -> f e[0])

    /// f over several inputs, each mapped over its own axis (Some axis) or passed whole to every example
    /// (None), as JAX's in_axes; the mapped axes must have one length, and the results are stacked along a new
    /// leading axis. E.g. Vmap.vmapAxes [ Some 0; Some 1; None ] (fun [ x; y; w ] -> ...) [ xs; ys; w ].
    let vmapAxes (inAxes: int option list) (f: Expr list -> Expr) (xs: Expr list) : Expr =
        if inAxes.Length <> xs.Length then
            invalidArg "inAxes" (sprintf "Vmap.vmapAxes: %d axes for %d inputs; give one axis (or None) per input" inAxes.Length xs.Length)
        batch "Vmap.vmapAxes" (Array.ofList (List.zip xs inAxes)) (fun e -> f (List.ofArray e))
