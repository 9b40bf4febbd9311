namespace FuncFlow

open System
open System.Collections.Generic

/// An algebraic simplifier: one pass over the graph in topological order (iterative) that rebuilds each
/// node from its operands' simplified forms, applying local rewrites that only remove work, and shares
/// structurally equal nodes (hash-consing). Values are unchanged up to rounding, for finite values: x * 0
/// becomes 0 even where x would be an infinity.
module Simplify =
    /// A hash-consing key: a node's operation and its operands (the node's own array, compared node by node),
    /// or a one-element constant's value.
    [<CustomEquality; NoComparison>]
    type private Key =
        | Node of op: Op * operands: Expr[]
        | Scalar of dtype: DType * shape: int[] * bits: int64

        override k.Equals(other: obj) =
            match other with
            | :? Key as o ->
                match k, o with
                | Node(a, xs), Node(b, ys) ->
                    xs.Length = ys.Length && Array.forall2 (fun (x: Expr) y -> obj.ReferenceEquals(x, y)) xs ys && a = b
                | Scalar(d, s, v), Scalar(e, t, w) -> d = e && v = w && Shape.equal s t
                | _ -> false
            | _ -> false

        override k.GetHashCode() =
            match k with
            | Node(op, xs) -> Array.fold (fun h (x: Expr) -> h * 31 + x.Id.GetHashCode()) (hash op) xs
            | Scalar(d, s, v) -> HashCode.Combine(d, v, s.Length)

    /// Results above this many elements are not folded: a constant computed once must not become a large
    /// copy held by every plan.
    [<Literal>]
    let private MaxFolded = 4096

    let private isOne (e: Expr) = Shape.size e.ShapeRef = 1

    /// The one-element constant's value, if e is one.
    // Struct patterns: they run on every node the simplifier visits, and an option would be an allocation each.
    [<return: Struct>]
    let private (|ScalarConst|_|) (e: Expr) =
        match e.Op with
        | Op.Const t when t.Size = 1 -> ValueSome(t.At 0)
        | _ -> ValueNone

    [<return: Struct>]
    let private (|Constant|_|) (e: Expr) =
        match e.Op with
        | Op.Const t -> ValueSome t
        | _ -> ValueNone

    let private isNeg (e: Expr) =
        match e.Op with
        | Op.Unary UnaryOp.Neg -> true
        | _ -> false

    let private isConst (value: float) (e: Expr) =
        match e with
        | ScalarConst v -> v = value
        | _ -> false

    /// The one-element node that a chain of reshapes and broadcasts of it reads (e itself when e is none).
    let private core (e: Expr) =
        let mutable s = e
        let mutable go = true
        while go do
            match s.Op with
            | Op.Reshape _
            | Op.BroadcastTo _ when isOne s.Inputs[0] -> s <- s.Inputs[0]
            | _ -> go <- false
        s

    /// Whether e is a reshape of a tensor that inserts a size-1 axis at `axis`, before an axis of it.
    let private insertsAxis (axis: int) (e: Expr) =
        e.Op.IsReshape
        && axis < e.Inputs[0].Rank
        && e.Rank = e.Inputs[0].Rank + 1
        && e.ShapeRef[axis] = 1
        && Shape.equal (Array.removeAt axis e.ShapeRef) e.Inputs[0].ShapeRef

    /// The operations whose value constant operands always fix without a run-time error (index ranges are
    /// checked when they run, so gathers are left to run). A reshape is a view in plans: folding it would
    /// only add a constant's copy.
    let private foldable (op: Op) =
        match op with
        | Op.Unary _
        | Op.Binary _
        | Op.PowScalar _
        | Op.MatMul
        | Op.Permute _
        | Op.BroadcastTo _
        | Op.Reduce _
        | Op.Concat _
        | Op.Slice _
        | Op.Pad _
        | Op.AddN
        | Op.Softmax _
        | Op.LogSoftmax _
        | Op.Where
        | Op.Cumsum _ -> true
        | _ -> false

    /// The value of a node whose operands are all constants, through the one kernel dispatcher.
    let private evaluate (node: Expr) : Tensor =
        let values =
            node.Inputs
            |> Array.map (fun i ->
                match i with
                | Constant t -> t
                | _ -> invalidOp "Simplify: not a constant")
        let dst =
            match node.DType with
            | Float64 ->
                let dst = Array.zeroCreate<float>(Shape.size node.ShapeRef)
                Execute<float>.Node(node, values |> Array.map (fun t -> t.Data :?> float[]), dst)
                dst :> Array
            | Float32 ->
                let dst = Array.zeroCreate<float32>(Shape.size node.ShapeRef)
                Execute<float32>.Node(node, values |> Array.map (fun t -> t.Data :?> float32[]), dst)
                dst :> Array
        Tensor.wrap node.ShapeRef dst

    /// Simplifies the roots together (nodes they share stay shared), leaving the nodes the kept roots reach as
    /// they are: a gradient keeps the function's own nodes, which a plan computes anyway.
    let private run (kept: Expr list) (roots: Expr list) : Expr list =
        let roots = Array.ofList roots
        use graph = Graph.indexed (Seq.append kept roots)
        let n = graph.Count
        let simplified = Scratch.rent<Expr> n
        // Nodes the kept roots reach, and how many times each node is read (by a user or as a root).
        let frozen = Scratch.rent<bool> n
        let uses = Scratch.rent<int> n
        let table = Dictionary<Key, Expr>()
        try
            for r in kept do
                frozen[graph.Index.Position r.Id] <- true
            for r in Seq.append kept roots do
                let p = graph.Index.Position r.Id
                uses[p] <- uses[p] + 1
            for k in n - 1 .. -1 .. 0 do
                for e in graph.Starts[k] .. graph.Starts[k + 1] - 1 do
                    let p = graph.Operands[e]
                    uses[p] <- uses[p] + 1
                    if frozen[k] then frozen[p] <- true
            // A node of the graph read once: a rewrite that skips it leaves its operand's readers as they were
            // (a plan fuses a single-use elementwise operand; an extra reader would make it write to memory).
            // A rewrite's new node is read once when it stands for a node read once and is elementwise (so not
            // shared by hash-consing); other new nodes count as shared.
            let freshReadOnce = HashSet<int64>()
            let readOnce (e: Expr) =
                let p = graph.Index.Position e.Id
                (p >= 0 && obj.ReferenceEquals(graph.Order[p], e) && uses[p] = 1) || freshReadOnce.Contains e.Id
            let key (e: Expr) =
                match e.Op with
                | Op.Var _ -> None
                // A plan fuses a single-use elementwise node into its user's pass, computing it again for free
                // where shared it would be written to memory and read back: such copies are left to fusion.
                | op when op.IsElementwise -> None
                | Op.Const t when t.Size = 1 -> Some(Scalar(e.DType, e.ShapeRef, BitConverter.DoubleToInt64Bits(t.At 0)))
                | Op.Const _ -> None
                | op -> Some(Node(op, e.Inputs))
            // The first node seen with a key stands for every later one.
            let intern (e: Expr) =
                match key e with
                | None -> e
                | Some k ->
                    match table.TryGetValue k with
                    | true, shared -> shared
                    | _ ->
                        table[k] <- e
                        e
            // No original node: a rewrite's new node.
            let fresh = Unchecked.defaultof<Expr>
            // The simplified node computing op on the (simplified) inputs, of the given shape: `original` when it
            // is that node unchanged. Rewrites build their new nodes through here too, a bounded number of levels
            // each, so the recursion's depth does not grow with the graph.
            let rec build (original: Expr) (op: Op) (inputs: Expr[]) (shape: int[]) (dtype: DType) : Expr =
                let inline same (e: Expr) = Shape.equal e.ShapeRef shape
                let inline again op' inputs' = Some(build fresh op' inputs' shape dtype)
                let inline made () =
                    if
                        not (isNull (box original))
                        && Array.forall2 (fun (a: Expr) b -> obj.ReferenceEquals(a, b)) inputs original.Inputs
                    then
                        original
                    else
                        Expr.make op inputs shape dtype
                let inline folded () =
                    if
                        foldable op
                        && inputs.Length > 0
                        && inputs |> Array.forall (fun i -> i.Op.IsConst && Shape.size i.ShapeRef <= MaxFolded)
                        && Shape.size shape <= max 1 (inputs |> Array.map (fun i -> Shape.size i.ShapeRef) |> Array.max)
                    then
                        Some(Expr.constant (evaluate (Expr.make op inputs shape dtype)))
                    else
                        None
                // An elementwise operation on broadcast one-element constants: folded on one element, then
                // broadcast (one broadcast instead of a broadcast and the operation). Not for other values: a
                // broadcast operand shared by several users would then be broadcast once per user.
                let inline lifted () =
                    match op with
                    | Op.Unary _
                    | Op.Binary _
                    | Op.PowScalar _
                    | Op.Where when
                        Shape.size shape > 1
                        && inputs
                           |> Array.forall (fun i ->
                               let c = core i
                               isOne c && c.Op.IsConst)
                        ->
                        let cores = inputs |> Array.map core
                        let coreShape = cores |> Array.map (fun c -> c.ShapeRef) |> Array.reduce (Shape.broadcast "simplify")
                        let inner = build fresh op cores coreShape dtype
                        let ones = Array.create shape.Length 1
                        let column =
                            if Shape.equal inner.ShapeRef ones then
                                inner
                            else
                                build fresh (Op.Reshape ones) [| inner |] ones dtype
                        Some(build fresh (Op.BroadcastTo(Array.copy shape)) [| column |] shape dtype)
                    | _ -> None
                // A one-element operand read through reshapes and broadcasts is read directly where the
                // elementwise operation broadcasts it to the same result.
                let inline direct () =
                    match op with
                    // Most operands are read as they are: no copy of the inputs unless one is read through shapes.
                    | Op.Binary _
                    | Op.Where when inputs |> Array.exists (fun i -> not (obj.ReferenceEquals(core i, i))) ->
                        let direct = Array.copy inputs
                        for i in 0 .. direct.Length - 1 do
                            let c = core direct[i]
                            if not (obj.ReferenceEquals(c, direct[i])) then
                                let trial = Array.copy direct
                                trial[i] <- c
                                let broadcast = trial |> Array.map (fun t -> t.ShapeRef) |> Array.reduce (Shape.broadcast "simplify")
                                if Shape.equal broadcast shape then direct[i] <- c
                        if Array.forall2 (fun (a: Expr) b -> obj.ReferenceEquals(a, b)) direct inputs then
                            None
                        else
                            again op direct
                    | _ -> None
                let inline identity () =
                    match op, inputs with
                    | Op.Unary UnaryOp.Neg, [| x |] when isNeg x && readOnce x -> Some x.Inputs[0]
                    | Op.Binary BinaryOp.Add, [| a; b |] when isConst 0.0 b && same a -> Some a
                    | Op.Binary BinaryOp.Add, [| a; b |] when isConst 0.0 a && same b -> Some b
                    | Op.Binary BinaryOp.Sub, [| a; b |] when isConst 0.0 b && same a -> Some a
                    | Op.Binary BinaryOp.Sub, [| a; b |] when isConst 0.0 a && same b -> again (Op.Unary UnaryOp.Neg) [| b |]
                    | Op.Binary BinaryOp.Add, [| a; b |] when isNeg b && readOnce b -> again (Op.Binary BinaryOp.Sub) [| a; b.Inputs[0] |]
                    | Op.Binary BinaryOp.Sub, [| a; b |] when isNeg b && readOnce b -> again (Op.Binary BinaryOp.Add) [| a; b.Inputs[0] |]
                    | Op.Binary BinaryOp.Mul, [| a; b |] when isConst 1.0 b && same a -> Some a
                    | Op.Binary BinaryOp.Mul, [| a; b |] when isConst 1.0 a && same b -> Some b
                    | Op.Binary BinaryOp.Div, [| a; b |] when isConst 1.0 b && same a -> Some a
                    // -1 * x as -x: as much work, and a double negation then cancels.
                    | Op.Binary BinaryOp.Mul, [| a; b |] when isConst -1.0 a && same b -> again (Op.Unary UnaryOp.Neg) [| b |]
                    | Op.Binary BinaryOp.Mul, [| a; b |] when isConst -1.0 b && same a -> again (Op.Unary UnaryOp.Neg) [| a |]
                    | Op.Binary(BinaryOp.Mul | BinaryOp.Div), [| a; _ |] when isConst 0.0 a && same a -> Some a
                    | Op.Binary BinaryOp.Mul, [| _; b |] when isConst 0.0 b && same b -> Some b
                    // Chains of shape operations: the last one reads the first one's operand.
                    | Op.Reshape _, [| x |] when x.Op.IsReshape ->
                        if Shape.equal x.Inputs[0].ShapeRef shape then Some x.Inputs[0] else again op [| x.Inputs[0] |]
                    | Op.BroadcastTo _, [| x |] when x.Op.IsBroadcastTo || x.Op.IsReshape && isOne x && x.Inputs[0].Rank <= shape.Length ->
                        again op [| x.Inputs[0] |]
                    // A stack (a concat of reshapes that each insert a size-1 axis at the concat's axis) is a view of
                    // the concat of the reshapes' operands, laid out alike, which the graph may compute already: a
                    // recurrent layer's per-step gate gradients are stacked for its input projection and joined for
                    // its recurrent weight's product. Only where the graph reads each reshape once (the originals: their
                    // simplified forms are new nodes when their operands changed), so that no reshape stays besides.
                    | Op.Concat axis, _ when
                        inputs.Length > 0
                        && not (isNull (box original))
                        && Array.forall2 (fun i o -> insertsAxis axis i && readOnce o) inputs original.Inputs
                        ->
                        let operands = inputs |> Array.map (fun i -> i.Inputs[0])
                        let joined = operands[0].ShapeRef |> Array.mapi (fun j d -> if j = axis then d * operands.Length else d)
                        again (Op.Reshape(Array.copy shape)) [| build fresh op operands joined dtype |]
                    | _ -> None
                // The rewrites in turn, the first that applies winning; local and inlined, so that the many
                // nodes no rewrite applies to cost no closures (a scalar graph's gradient has thousands).
                let result =
                    match folded () with
                    | Some e -> e
                    | None ->
                        match lifted () with
                        | Some e -> e
                        | None ->
                            match direct () with
                            | Some e -> e
                            | None ->
                                match identity () with
                                | Some e -> e
                                | None -> made ()
                if not (Shape.equal result.ShapeRef shape) || result.DType <> dtype then
                    invalidOp (
                        sprintf
                            "Simplify: a rewrite of %s gave shape %s, expected %s"
                            op.Name
                            (Shape.show result.ShapeRef)
                            (Shape.show shape)
                    )
                intern result
            for k in 0 .. n - 1 do
                let node = graph.Order[k]
                if frozen[k] then
                    // Later nodes equal to a kept one share it.
                    simplified[k] <- node
                    match key node with
                    | Some shared when not (table.ContainsKey shared) -> table[shared] <- node
                    | _ -> ()
                else
                    let first = graph.Starts[k]
                    let mutable unchanged = true
                    for i in 0 .. node.Inputs.Length - 1 do
                        unchanged <- unchanged && obj.ReferenceEquals(simplified[graph.Operands[first + i]], node.Inputs[i])
                    // Most operands come through unchanged: the node's own array then serves (nodes never change it).
                    let inputs =
                        if unchanged then
                            node.Inputs
                        else
                            Array.init node.Inputs.Length (fun i -> simplified[graph.Operands[first + i]])
                    let result = build node node.Op inputs node.ShapeRef node.DType
                    if uses[k] = 1 && result.Op.IsElementwise && graph.Index.Position result.Id < 0 then
                        freshReadOnce.Add result.Id |> ignore
                    simplified[k] <- result
            roots |> Array.map (fun r -> simplified[graph.Index.Position r.Id]) |> List.ofArray
        finally
            Scratch.release simplified
            Scratch.release frozen
            Scratch.release uses

    /// The roots simplified together, leaving the nodes that `kept` reaches as they are (a function's own
    /// nodes, when its gradients are simplified).
    let internal keeping (kept: Expr list) (roots: Expr list) : Expr list = run kept roots

    /// Simplifies several expressions together: constants folded; x + 0, x - 0, x * 1, x / 1 and --x to x,
    /// x * 0 and 0 / x to 0 where the zero has the result's shape; a + -b to a - b; elementwise operations
    /// on broadcast one-element constants folded on one element; one-element operands read without their
    /// reshapes and broadcasts; chains of reshapes and broadcasts shortened; a stack (a concat of reshapes
    /// inserting a size-1 axis) as a reshape of the concat of their operands; structurally equal
    /// sub-expressions shared (not elementwise ones, which plans fuse). Every rewrite removes work, so a plan
    /// of the result runs no more instructions. Values are unchanged up to rounding, for finite values.
    let many (roots: Expr list) : Expr list = run [] roots

    /// Simplifies one expression (see Simplify.many).
    let expr (e: Expr) : Expr = many [ e ] |> List.head
