namespace FuncFlow

open System

/// Forward mode as a fold of its own: one pass over the nodes in topological order, with one rule per
/// operation mapping a node and its operands' tangents to its own tangent, as expressions. It shares no rule
/// with reverse mode (Grad.rule), only the few derivative helpers below, so each checks the other.
module internal Jvp =
    /// Reshapes a reduced value back to keep-dim form, then broadcasts it over the reduced axis of x.
    let spread (x: Expr) (axis: int option) (keepDim: bool) (v: Expr) =
        let kept =
            match axis, keepDim with
            | None, _ -> Expr.reshape (Array.create x.Rank 1) v
            | Some a, false -> Expr.reshape (x.ShapeRef |> Array.mapi (fun i d -> if i = a then 1 else d)) v
            | Some _, true -> v
        Expr.broadcastTo x.ShapeRef kept

    let twoOverSqrtPi = 1.1283791670955125739
    let sqrtHalf = 0.70710678118654752440

    /// sigmoid x as 1 / (1 + z) above 0 and z / (1 + z) below, z = e^-|x|: it keeps the lower tail's small
    /// values (sigmoid -89 in float32, 2e-39), which 1 / (1 + e^-x) loses to the overflow of e^-x.
    let tailSigmoid (x: Expr) =
        let z = Expr.exp (-(Expr.abs x))
        let above = Expr.step x
        (above + (1.0 - above) * z) / (1.0 + z)

    /// d prod(x) / dx over an axis (None: all), x's shape: the product of the others. y / x without zeros;
    /// with one zero, the product of the nonzeros at the zero and (the zero) * that / x elsewhere, 0 whose
    /// derivative in the zero is right; with more, 0 (as torch). Selections, not masks, so infinities stay put.
    let productOfOthers (x: Expr) (axis: int option) (keepDim: bool) =
        let zero = Expr.scalarLike x 0.0
        let isZero = Expr.equal x zero
        let over (e: Expr) =
            match axis with
            | Some a -> Expr.sumAxisKeep a e
            | None -> Expr.sum e
        let safe = Expr.where isZero (Expr.scalarLike x 1.0) x
        let others = spread x axis keepDim (Expr.reduce ReduceOp.Prod axis keepDim safe)
        let count = spread x axis keepDim (over isZero)
        let theZero = spread x axis keepDim (over (Expr.where isZero x zero))
        let atOneZero = Expr.where isZero others (theZero * others / safe)
        let oneZero = Expr.where (Expr.equal count (Expr.scalarLike x 1.0)) atOneZero zero
        Expr.where (Expr.equal count zero) (others / safe) oneZero

    // Expr has no null in F#; the fold uses it for "no tangent": the node does not depend on the inputs.
    let inline private missing (e: Expr) = obj.ReferenceEquals(e, null)

    let private none = Unchecked.defaultof<Expr>

    /// The sum of the tangents given (null: none), broadcast to y's shape (an operand's tangent has its
    /// operand's shape, which may broadcast).
    let private total (y: Expr) (terms: Expr list) =
        match terms |> List.filter (missing >> not) with
        | [] -> none
        | first :: rest -> List.fold (+) first rest |> Expr.broadcastTo y.ShapeRef

    /// Node y's tangent from its operands' tangents dx (null where an operand has none, at least one not null);
    /// null when y's derivative is zero (sign, rounding, comparisons, one-hot).
    let private rule (y: Expr) (dx: Expr[]) : Expr =
        let x = if y.Inputs.Length > 0 then y.Inputs[0] else y
        let d = if dx.Length > 0 then dx[0] else none
        // A term along an operand's tangent, built only when there is one.
        let along (t: Expr) (term: Expr -> Expr) = if missing t then none else term t
        match y.Op with
        | Op.Var _
        | Op.Const _ -> none
        | Op.Unary op ->
            match op with
            | UnaryOp.Neg -> -d
            | UnaryOp.Exp -> d * y
            | UnaryOp.Log -> d / x
            | UnaryOp.Sqrt -> d / (y * 2.0)
            | UnaryOp.Abs -> d * Expr.sign x
            | UnaryOp.Sigmoid -> d * (y * (1.0 - y))
            | UnaryOp.Tanh -> d * (1.0 - y * y)
            | UnaryOp.Relu -> d * Expr.step x
            | UnaryOp.Softplus -> d * Expr.sigmoid x
            | UnaryOp.Sign
            | UnaryOp.Step
            | UnaryOp.Floor
            | UnaryOp.Ceil
            | UnaryOp.Round -> none
            | UnaryOp.Sin -> d * Expr.cos x
            | UnaryOp.Cos -> -(d * Expr.sin x)
            | UnaryOp.Log1p -> d / (x + 1.0)
            | UnaryOp.Expm1 -> d * Expr.exp x
            | UnaryOp.Erf -> d * (Expr.exp (-(x * x)) * twoOverSqrtPi)
            | UnaryOp.Erfc -> d * (Expr.exp (-(x * x)) * -twoOverSqrtPi)
            | UnaryOp.Gelu ->
                let z = x * -sqrtHalf
                d * (Expr.erfc z * 0.5 + x * (Expr.exp (-(z * z)) * (0.5 * sqrtHalf * twoOverSqrtPi)))
            | UnaryOp.Silu ->
                let s = tailSigmoid x
                d * (s * (1.0 + x * (1.0 - s)))
            | UnaryOp.LogSigmoid -> d * tailSigmoid (-x)
            | UnaryOp.LeakyRelu slope -> d * (Expr.step x + (1.0 - Expr.step x) * slope)
            | UnaryOp.Elu alpha -> d * (Expr.step x + (1.0 - Expr.step x) * (Expr.exp (-(Expr.relu (-x))) * alpha))
            | UnaryOp.Clamp(lo, hi) ->
                let below = if Double.IsNegativeInfinity lo then None else Some(Expr.step (lo - x))
                let above = if Double.IsPositiveInfinity hi then None else Some(Expr.step (x - hi))
                [ below; above ] |> List.choose id |> List.fold (fun acc out -> acc * (1.0 - out)) d
        | Op.Binary op ->
            let a, b = y.Inputs[0], y.Inputs[1]
            let da, db = dx[0], dx[1]
            match op with
            | BinaryOp.Add -> total y [ da; db ]
            | BinaryOp.Sub -> total y [ da; along db (~-) ]
            | BinaryOp.Mul -> total y [ along da (fun t -> t * b); along db (fun t -> a * t) ]
            | BinaryOp.Div -> total y [ along da (fun t -> t / b); along db (fun t -> -(t * y) / b) ]
            | BinaryOp.Pow ->
                // PyTorch's conventions, as the reverse rule: d/da is 0 where b = 0, and d/db is 0 where a = 0
                // and b >= 0, the unused branch moved to a finite point rather than masked after an infinity.
                let zero = Expr.scalarLike a 0.0
                total
                    y
                    [
                        along da (fun t -> t * b * Expr.pow a (b - 1.0 + Expr.equal b zero))
                        along db (fun t -> t * y * Expr.log (a + Expr.equal a zero * (Expr.step b + Expr.equal b zero)))
                    ]
            | BinaryOp.Equal -> none
            // A tie moves with half of each side's tangent, as the reverse rule shares the gradient.
            | BinaryOp.Maximum
            | BinaryOp.Minimum ->
                let half = Expr.equal a b * 0.5
                let aWins, bWins = if op = BinaryOp.Maximum then a - b, b - a else b - a, a - b
                total
                    y
                    [
                        along da (fun t -> t * (Expr.step aWins + half))
                        along db (fun t -> t * (Expr.step bWins + half))
                    ]
        | Op.PowScalar 0.0 -> none
        | Op.PowScalar p -> d * (Expr.powScalar (p - 1.0) x * p)
        | Op.MatMul ->
            let a, b = y.Inputs[0], y.Inputs[1]
            total y [ along dx[0] (fun t -> Expr.matmul t b); along dx[1] (Expr.matmul a) ]
        // Linear operations: the tangent goes through the operation itself.
        | Op.Permute perm -> Expr.permute perm d
        | Op.Reshape shape -> Expr.reshape shape d
        | Op.BroadcastTo shape -> Expr.broadcastTo shape d
        | Op.Reduce((ReduceOp.Sum | ReduceOp.Mean) as kind, axis, keep) -> Expr.reduce kind axis keep d
        | Op.Reduce(ReduceOp.Max, axis, keep) ->
            // The mean tangent of the maxima: ties share, as the reverse rule.
            let mask = Expr.equal x (spread x axis keep y)
            Expr.reduce ReduceOp.Sum axis keep (d * mask) / Expr.reduce ReduceOp.Sum axis keep mask
        | Op.Reduce(ReduceOp.LogSumExp, axis, keep) -> Expr.reduce ReduceOp.Sum axis keep (d * Expr.exp (x - spread x axis keep y))
        | Op.Reduce(ReduceOp.Prod, axis, keep) -> Expr.reduce ReduceOp.Sum axis keep (d * productOfOthers x axis keep)
        | Op.Concat axis ->
            y.Inputs
            |> Array.mapi (fun i input -> if missing dx[i] then Expr.zerosLike input else dx[i])
            |> List.ofArray
            |> Expr.concat axis
        | Op.Slice(axis, start, length, step) -> Expr.sliceNode axis start length step d
        | Op.Pad(axis, before, after, interior, _) -> Expr.padNode axis before after interior 0.0 d
        // The indices, labels and max pooling's keys have no tangent that moves the result.
        | Op.Gather axis -> along d (Expr.indexSelect axis y.Inputs[1])
        | Op.ScatterAdd(axis, rows) -> along d (Expr.indexAdd axis rows y.Inputs[1])
        | Op.OneHot _ -> none
        | Op.Softmax axis -> y * (d - Expr.sumAxisKeep axis (d * y))
        | Op.LogSoftmax axis -> d - Expr.sumAxisKeep axis (Expr.exp y * d)
        | Op.AddN -> total y (List.ofArray dx)
        | Op.Unfold w -> Expr.unfold w d
        | Op.Fold w -> Expr.fold (List.ofArray y.ShapeRef[2..]) w d
        | Op.MaxPoolPick w -> along dx[1] (Expr.maxPoolPick w x)
        | Op.MaxPoolScatter w -> along dx[1] (Expr.maxPoolScatter w x)
        | Op.Where ->
            if missing dx[1] && missing dx[2] then
                none
            else
                let zero = Expr.scalarLike y 0.0
                let pick (t: Expr) = if missing t then zero else t
                Expr.where y.Inputs[0] (pick dx[1]) (pick dx[2]) |> Expr.broadcastTo y.ShapeRef
        | Op.Cumsum(axis, reverse) -> if reverse then Expr.reverseCumsum axis d else Expr.cumsum axis d
        // A user-defined operation's own forward rule (CustomOp.withJvp), or an error naming it.
        | Op.Custom op ->
            match op.Jvp with
            | Some jvp -> jvp (List.ofArray y.Inputs) y [ for t in dx -> if missing t then None else Some t ]
            | None -> raise (op.Unsupported("forward-mode (jvp)", "CustomOp.withJvp"))

    /// The tangent of f when each seeded node moves along its tangent (pairs of node and tangent, each
    /// tangent of its node's shape and dtype): the directional derivative, unsimplified. Seeded nodes are
    /// independent inputs: what they are computed from does not move them.
    let tangent (seeds: (Expr * Expr) list) (f: Expr) : Expr =
        for x, v in seeds do
            if isNull (box x) || isNull (box v) then nullArg "seeds"
            if not (Shape.equal x.ShapeRef v.ShapeRef) then
                invalidArg
                    "tangent"
                    (sprintf "Grad.jvp: the tangent has shape %s but the input has shape %s" (Shape.show v.ShapeRef) (Shape.show x.ShapeRef))
            if x.DType <> v.DType then
                invalidArg "tangent" (sprintf "Grad.jvp: the tangent is %s but the input is %s" v.DType.Name x.DType.Name)
        if seeds |> List.countBy (fun (x, _) -> x.Id) |> List.exists (fun (_, n) -> n > 1) then
            invalidArg "seeds" "Grad.jvp: an input is given more than one tangent; give each input once"
        use graph = Graph.indexed [ f ]
        let n = graph.Count
        let tangents = Scratch.rent<Expr> n
        try
            for x, v in seeds do
                let p = graph.Index.Position x.Id
                if p >= 0 then tangents[p] <- v
            for k in 0 .. n - 1 do
                if missing tangents[k] then
                    let first = graph.Starts[k]
                    let count = graph.Starts[k + 1] - first
                    let mutable moves = false
                    for e in first .. first + count - 1 do
                        moves <- moves || not (missing tangents[graph.Operands[e]])
                    if moves then
                        tangents[k] <- rule graph.Order[k] (Array.init count (fun i -> tangents[graph.Operands[first + i]]))
            if missing tangents[n - 1] then Expr.zerosLike f else tangents[n - 1]
        finally
            Scratch.release tangents
