namespace FuncFlow

open System
open System.Collections.Generic
open System.Runtime.CompilerServices

/// Reverse-mode differentiation as a pure fold: one pass over the nodes in reverse topological order,
/// with one rule per operation mapping (node, gradient flowing in) to its operands' gradients. Nothing is
/// mutated; the result is a map from variable to gradient *expression*, so gradients can be evaluated,
/// compiled, printed, or differentiated again.
module Grad =
    let private spread = Jvp.spread
    let private tailSigmoid = Jvp.tailSigmoid
    let private twoOverSqrtPi = Jvp.twoOverSqrtPi
    let private sqrtHalf = Jvp.sqrtHalf

    // Expr has no null in F#; the fold's arrays use it for "no gradient (yet)".
    let inline private missing (e: Expr) = obj.ReferenceEquals(e, null)

    // Builds operand i's gradient only when it needs one: a constant's is never built, then dropped.
    let inline private emit (need: bool[]) (out: Expr[]) (i: int) ([<InlineIfLambda>] grad: unit -> Expr) =
        if need[i] then out[i] <- grad ()

    /// Writes into out[i] the gradient that node y passes to operand i, given the gradient g flowing into it,
    /// for every i with need[i]. An operand that receives no gradient (indices, labels, masks) is left null.
    let private rule (y: Expr) (g: Expr) (need: bool[]) (out: Expr[]) : unit =
        let x = if y.Inputs.Length > 0 then y.Inputs[0] else y
        let inline one (grad: unit -> Expr) = emit need out 0 grad
        match y.Op with
        | Op.Var _
        | Op.Const _ -> ()
        | Op.Unary op ->
            match op with
            | UnaryOp.Neg -> one (fun () -> -g)
            | UnaryOp.Exp -> one (fun () -> g * y)
            | UnaryOp.Log -> one (fun () -> g / x)
            | UnaryOp.Sqrt -> one (fun () -> g / (y * 2.0))
            | UnaryOp.Abs -> one (fun () -> g * Expr.sign x)
            | UnaryOp.Sigmoid -> one (fun () -> g * (y * (1.0 - y)))
            | UnaryOp.Tanh -> one (fun () -> g * (1.0 - y * y))
            | UnaryOp.Relu -> one (fun () -> g * Expr.step x)
            | UnaryOp.Softplus -> one (fun () -> g * Expr.sigmoid x)
            | UnaryOp.Sign
            | UnaryOp.Step -> ()
            // ops group.
            | UnaryOp.Sin -> one (fun () -> g * Expr.cos x)
            | UnaryOp.Cos -> one (fun () -> -(g * Expr.sin x))
            | UnaryOp.Log1p -> one (fun () -> g / (x + 1.0))
            // e^x rather than y + 1, which loses the lower tail (0 below -17 in float32).
            | UnaryOp.Expm1 -> one (fun () -> g * Expr.exp x)
            | UnaryOp.Erf -> one (fun () -> g * (Expr.exp (-(x * x)) * twoOverSqrtPi))
            | UnaryOp.Erfc -> one (fun () -> g * (Expr.exp (-(x * x)) * -twoOverSqrtPi))
            | UnaryOp.Gelu ->
                // Phi(x) + x phi(x), with Phi through erfc (as the forward) and phi's exponent as torch's (-z^2).
                one (fun () ->
                    let z = x * -sqrtHalf
                    g * (Expr.erfc z * 0.5 + x * (Expr.exp (-(z * z)) * (0.5 * sqrtHalf * twoOverSqrtPi))))
            | UnaryOp.Silu ->
                one (fun () ->
                    let s = tailSigmoid x
                    g * (s * (1.0 + x * (1.0 - s))))
            | UnaryOp.LogSigmoid -> one (fun () -> g * tailSigmoid (-x))
            | UnaryOp.Floor
            | UnaryOp.Ceil
            | UnaryOp.Round -> ()
            // 1 where x > 0, else the slope (at 0 too, as torch).
            | UnaryOp.LeakyRelu slope -> one (fun () -> g * (Expr.step x + (1.0 - Expr.step x) * slope))
            // alpha e^x for x <= 0, as e^-relu(-x), which stays finite where x is large (no 0 * infinity).
            | UnaryOp.Elu alpha -> one (fun () -> g * (Expr.step x + (1.0 - Expr.step x) * (Expr.exp (-(Expr.relu (-x))) * alpha)))
            // 1 where min <= x <= max, bounds included (as torch); step(lo - x) is x < lo for every non-NaN x.
            | UnaryOp.Clamp(lo, hi) ->
                one (fun () ->
                    let below = if Double.IsNegativeInfinity lo then None else Some(Expr.step (lo - x))
                    let above = if Double.IsPositiveInfinity hi then None else Some(Expr.step (x - hi))
                    [ below; above ] |> List.choose id |> List.fold (fun acc out -> acc * (1.0 - out)) g)
        | Op.Binary op ->
            let a, b = y.Inputs[0], y.Inputs[1]
            let inline toA (grad: unit -> Expr) = emit need out 0 (fun () -> Expr.sumTo a.ShapeRef (grad ()))
            let inline toB (grad: unit -> Expr) = emit need out 1 (fun () -> Expr.sumTo b.ShapeRef (grad ()))
            match op with
            | BinaryOp.Add ->
                toA (fun () -> g)
                toB (fun () -> g)
            | BinaryOp.Sub ->
                toA (fun () -> g)
                toB (fun () -> -g)
            | BinaryOp.Mul ->
                toA (fun () -> g * b)
                toB (fun () -> g * a)
            | BinaryOp.Div ->
                toA (fun () -> g / b)
                toB (fun () -> -(g * y) / b)
            | BinaryOp.Pow ->
                // PyTorch's conventions (pow_backward_self, pow_backward_exponent): d/da is 0 where b = 0, even
                // at a = 0, and d/db is 0 where a = 0 and b >= 0. With no select op, masks move the unused
                // branch to a finite point (a^0 = 1, log 1 = 0) rather than multiplying an infinity by 0.
                let zero = Expr.scalarLike a 0.0
                toA (fun () -> g * b * Expr.pow a (b - 1.0 + Expr.equal b zero))
                toB (fun () ->
                    let zeroBase = Expr.equal a zero * (Expr.step b + Expr.equal b zero)
                    g * y * Expr.log (a + zeroBase))
            | BinaryOp.Equal -> ()
            // ops group. a gets g where it is the larger (smaller), half of g at a tie, as torch.
            | BinaryOp.Maximum
            | BinaryOp.Minimum ->
                let half = Expr.equal a b * 0.5
                let aWins, bWins = if op = BinaryOp.Maximum then a - b, b - a else b - a, a - b
                toA (fun () -> g * (Expr.step aWins + half))
                toB (fun () -> g * (Expr.step bWins + half))
        // x^0 is constant (1 everywhere, even at 0): no gradient, as in PyTorch, rather than 0 * 0^-1 = NaN.
        | Op.PowScalar 0.0 -> ()
        | Op.PowScalar p -> one (fun () -> g * (Expr.powScalar (p - 1.0) x * p))
        | Op.MatMul ->
            let a, b = y.Inputs[0], y.Inputs[1]
            // An operand repeated over missing leading axes gets the sum over them.
            emit need out 0 (fun () -> Expr.sumTo a.ShapeRef (Expr.matmul g (Expr.transpose b)))
            emit need out 1 (fun () -> Expr.sumTo b.ShapeRef (Expr.matmul (Expr.transpose a) g))
        // (a b)^T = b^T a^T: a plan reads those transposes through GEMM flags, where a transposed product is a
        // copy (a weight's gradient through its transpose, once per step of a recurrent layer).
        | Op.Permute perm when perm.Length = 2 && g.Op = Op.MatMul && g.Inputs[0].Rank = 2 && g.Inputs[1].Rank = 2 ->
            one (fun () -> Expr.matmul (Expr.transpose g.Inputs[1]) (Expr.transpose g.Inputs[0]))
        | Op.Permute perm ->
            let inverse = Array.zeroCreate perm.Length
            perm |> Array.iteri (fun i p -> inverse[p] <- i)
            one (fun () -> Expr.permute inverse g)
        | Op.Reshape _ -> one (fun () -> Expr.reshape x.ShapeRef g)
        | Op.BroadcastTo _ -> one (fun () -> Expr.sumTo x.ShapeRef g)
        | Op.Reduce(ReduceOp.Sum, axis, keep) -> one (fun () -> spread x axis keep g)
        | Op.Reduce(ReduceOp.Mean, axis, keep) ->
            let n =
                match axis with
                | Some a -> x.ShapeRef[a]
                | None -> Shape.size x.ShapeRef
            one (fun () -> spread x axis keep g / float n)
        | Op.Reduce(ReduceOp.Max, axis, keep) ->
            // Ties share the gradient equally, as in JAX.
            one (fun () ->
                let mask = Expr.equal x (spread x axis keep y)
                let count =
                    match axis with
                    | Some a -> Expr.broadcastTo x.ShapeRef (Expr.sumAxisKeep a mask)
                    | None -> spread x None false (Expr.sum mask)
                spread x axis keep g * mask / count)
        // ops group.
        | Op.Reduce(ReduceOp.LogSumExp, axis, keep) -> one (fun () -> spread x axis keep g * Expr.exp (x - spread x axis keep y))
        | Op.Reduce(ReduceOp.Prod, axis, keep) -> one (fun () -> spread x axis keep g * Jvp.productOfOthers x axis keep)
        | Op.Concat axis ->
            let mutable start = 0
            for i in 0 .. y.Inputs.Length - 1 do
                let len = y.Inputs[i].ShapeRef[axis]
                let from = start
                emit need out i (fun () -> Expr.slice axis from len g)
                start <- start + len
        | Op.Slice(axis, start, length, step) ->
            // g's elements back at the positions they were read from, step - 1 zeros apart (interior padding);
            // a backward slice read them in reverse, so g is reversed first.
            one (fun () ->
                let n = x.ShapeRef[axis]
                let lowest =
                    if length = 0 then 0
                    elif step > 0 then start
                    else start + (length - 1) * step
                let extent = if length = 0 then 0 else (length - 1) * abs step + 1
                let ordered = if step > 0 then g else Expr.flip [ axis ] g
                Expr.padNode axis lowest (n - lowest - extent) (abs step - 1) 0.0 ordered)
        | Op.Pad(axis, before, _, interior, _) -> one (fun () -> Expr.sliceNode axis before x.ShapeRef[axis] (interior + 1) g)
        | Op.Gather axis -> one (fun () -> Expr.indexAdd axis x.ShapeRef[axis] y.Inputs[1] g)
        | Op.ScatterAdd(axis, _) -> one (fun () -> Expr.indexSelect axis y.Inputs[1] g)
        | Op.OneHot _ -> ()
        | Op.Softmax axis -> one (fun () -> y * (g - Expr.sumAxisKeep axis (g * y)))
        | Op.LogSoftmax axis -> one (fun () -> g - Expr.exp y * Expr.sumAxisKeep axis g)
        | Op.AddN ->
            for i in 0 .. y.Inputs.Length - 1 do
                emit need out i (fun () -> g)
        // Convolution and pooling (the conv group): unfold and fold are each other's adjoints, and so are
        // max pooling's pick and scatter; the keys (which element is the maximum) get no gradient.
        | Op.Unfold w -> one (fun () -> Expr.fold (List.ofArray x.ShapeRef[2..]) w g)
        | Op.Fold w -> one (fun () -> Expr.unfold w g)
        | Op.MaxPoolPick w -> emit need out 1 (fun () -> Expr.maxPoolScatter w x g)
        | Op.MaxPoolScatter w -> emit need out 1 (fun () -> Expr.maxPoolPick w x g)
        // ops group.
        | Op.Where ->
            let condition, a, b = y.Inputs[0], y.Inputs[1], y.Inputs[2]
            let zero = Expr.scalarLike g 0.0
            emit need out 1 (fun () -> Expr.sumTo a.ShapeRef (Expr.where condition g zero))
            emit need out 2 (fun () -> Expr.sumTo b.ShapeRef (Expr.where condition zero g))
        // shapeops group: a running sum's adjoint sums the gradient from the other end.
        | Op.Cumsum(axis, reverse) -> one (fun () -> if reverse then Expr.cumsum axis g else Expr.reverseCumsum axis g)
        // A user-defined operation's own rule; checked here, since a wrong shape would surface far from it.
        | Op.Custom c ->
            let grads = c.Vjp (List.ofArray y.Inputs) y g
            if isNull (box grads) || grads.Length <> y.Inputs.Length then
                invalidOp (
                    sprintf
                        "%s: the gradient rule gave %d entries for %d operands; give one per operand (None where not differentiable)"
                        c.Name
                        (if isNull (box grads) then 0 else grads.Length)
                        y.Inputs.Length
                )
            grads
            |> List.iteri (fun i grad ->
                match grad with
                | Some gi when need[i] ->
                    let input = y.Inputs[i]
                    if isNull (box gi) then
                        invalidOp (sprintf "%s: the gradient rule gave Some null for operand %d; give None for no gradient" c.Name i)
                    if not (Shape.equal gi.ShapeRef input.ShapeRef) || gi.DType <> input.DType then
                        invalidOp (
                            sprintf
                                "%s: the gradient rule gave operand %d a gradient of shape %s (%s), but the operand has shape %s (%s)"
                                c.Name
                                i
                                (Shape.show gi.ShapeRef)
                                gi.DType.Name
                                (Shape.show input.ShapeRef)
                                input.DType.Name
                        )
                    out[i] <- gi
                | _ -> ())

    // A node read in pieces by slices (a recurrent layer reads each time step of a sequence) receives each
    // piece's gradient padded with zeros to its full size: adding those would cost the full size once per piece,
    // T^2 for T steps. Pieces along one axis that do not overlap are joined instead, zeros between them, by
    // one concat; what is left (overlapping pieces, other contributions) is added as before.
    let rec private sumContributions (gs: Expr[]) : Expr =
        // Most nodes with several contributions (a scalar graph's variables) have neither pieces nor products.
        if gs |> Array.exists (fun e -> e.Op.IsPad || e.Op.IsMatMul) then
            sumPiecesAndProducts gs
        else
            Expr.addNOf gs

    and private sumPiecesAndProducts (gs: Expr[]) : Expr =
        let piece (e: Expr) =
            match e.Op with
            | Op.Pad(axis, before, _, 0, 0.0) -> Some(axis, before, before + e.Inputs[0].ShapeRef[axis])
            | _ -> None
        let joined = ResizeArray<Expr>()
        let used = HashSet<Expr>(HashIdentity.Reference)
        for axis, group in gs |> Seq.filter (piece >> Option.isSome) |> Seq.groupBy (piece >> Option.get >> fun (a, _, _) -> a) do
            let sorted = group |> Seq.sortBy (piece >> Option.get >> fun (_, from, _) -> from) |> Seq.toArray
            let span i =
                let _, from, until = (piece sorted[i]).Value
                from, until
            let disjoint = Seq.forall (fun i -> snd (span (i - 1)) <= fst (span i)) (seq { 1 .. sorted.Length - 1 })
            if sorted.Length >= 2 && disjoint then
                let full = sorted[0].ShapeRef
                let parts = ResizeArray<Expr>()
                let zeros from until =
                    if until > from then
                        let shape = full |> Array.mapi (fun i d -> if i = axis then until - from else d)
                        parts.Add(Expr.constant (Tensor.zeros sorted[0].DType shape))
                let mutable at = 0
                for i in 0 .. sorted.Length - 1 do
                    let from, until = span i
                    zeros at from
                    parts.Add sorted[i].Inputs[0]
                    used.Add sorted[i] |> ignore
                    at <- until
                zeros at full[axis]
                joined.Add(Expr.concat axis (List.ofSeq parts))
        let rest =
            [
                for g in gs do
                    if not (used.Contains g) then g
            ]
        Expr.addN (List.ofSeq joined @ joinProducts rest)

    // A node read by many matrix products (a recurrent layer's weight, once per step) receives the sum of
    // products A_i B_i, which is [A_1 .. A_n] [B_1; ..; B_n]: one GEMM over joined operands instead of n GEMMs
    // and the sum of their n full-size results. Transposed operands stay transposes of one joined matrix, which
    // a plan reads through a GEMM flag.
    and private joinProducts (gs: Expr list) : Expr list =
        // A node as (source, parity) through its chain of 2-D transposes.
        let untransposed (e: Expr) =
            let mutable source, odd = e, false
            while source.Op = Op.Permute [| 1; 0 |] do
                source <- source.Inputs[0]
                odd <- not odd
            source, odd
        let product (e: Expr) =
            if e.Op = Op.MatMul && e.Inputs[0].Rank = 2 && e.Inputs[1].Rank = 2 then
                let a, aOdd = untransposed e.Inputs[0]
                let b, bOdd = untransposed e.Inputs[1]
                Some(Shape.show a.ShapeRef, aOdd, Shape.show b.ShapeRef, bOdd)
            else
                None
        let products, others = gs |> List.partition (product >> Option.isSome)
        let joined =
            [
                for _, group in products |> List.groupBy (product >> Option.get) do
                    if List.length group < 3 then
                        yield! group
                    else
                        let a = group |> List.map (fun e -> untransposed e.Inputs[0])
                        let b = group |> List.map (fun e -> untransposed e.Inputs[1])
                        // [A_1 .. A_n]: A_i = X_i^T joins as (X_1; ..; X_n)^T.
                        let left =
                            if snd a.Head then
                                Expr.transpose (Expr.concat 0 (List.map fst a))
                            else
                                Expr.concat 1 (List.map fst a)
                        let right =
                            if snd b.Head then
                                Expr.transpose (Expr.concat 1 (List.map fst b))
                            else
                                Expr.concat 0 (List.map fst b)
                        yield Expr.matmul left right
            ]
        joined @ others

    /// Grad.vjp before simplification: the rules' expressions as they are built.
    // Optimised at once: called once per gradient, its loops would otherwise run tier-0 code for a while.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let internal vjpUnsimplified (seed: Expr) (wrt: Expr list) (f: Expr) : Map<Expr, Expr> =
        if not (Shape.equal seed.ShapeRef f.ShapeRef) then
            invalidArg
                "seed"
                (sprintf "Grad.vjp: the seed has shape %s but the output has shape %s" (Shape.show seed.ShapeRef) (Shape.show f.ShapeRef))
        if seed.DType <> f.DType then
            invalidArg "seed" (sprintf "Grad.vjp: the seed is %s but the output is %s" seed.DType.Name f.DType.Name)
        let graph = Graph.indexed [ f ]
        let order, starts, operands = graph.Order, graph.Starts, graph.Operands
        let n = graph.Count
        let needs = Scratch.rent<bool> n
        // Each node's contributions as a list threaded through pooled arrays (at most one per edge, plus the
        // seed): head[p] is the newest's slot + 1, 0 for none, and next[c] the slot + 1 of the one before c.
        let slots = starts[n] + 1
        let contributions = Scratch.rent<Expr> slots
        let next = Scratch.rent<int> slots
        let head = Scratch.rent<int> n
        let received = Scratch.rent<int> n
        let total = Scratch.rent<Expr> n
        // A rule or builder that throws (a shape bug, a null from C#) must not leak the pooled arrays.
        try
            // Only nodes on a path to a requested variable need a gradient.
            for v in wrt do
                let p = graph.Index.Position v.Id
                if p >= 0 then needs[p] <- true
            let anyNeeded (k: int) =
                let mutable found = false
                for e in starts[k] .. starts[k + 1] - 1 do
                    found <- found || needs[operands[e]]
                found
            let mutable arity = 0
            for k in 0 .. n - 1 do
                if not needs[k] && anyNeeded k then needs[k] <- true
                arity <- max arity (starts[k + 1] - starts[k])
            let used = ref 0
            let contribute (p: int) (g: Expr) =
                let c = used.Value
                contributions[c] <- g
                next[c] <- head[p]
                head[p] <- c + 1
                received[p] <- received[p] + 1
                used.Value <- c + 1
            let need = Array.zeroCreate<bool> arity
            let out = Array.zeroCreate<Expr> arity
            if needs[n - 1] then contribute (n - 1) seed
            for k in n - 1 .. -1 .. 0 do
                let g =
                    match received[k] with
                    | 0 -> Unchecked.defaultof<Expr>
                    | 1 -> contributions[head[k] - 1]
                    | r ->
                        // Contributions arrive from the last user first: newest first, they are summed in the
                        // users' order, and a gradient's terms follow the function's.
                        let gs = Array.zeroCreate r
                        let mutable c = head[k]
                        for i in 0 .. r - 1 do
                            gs[i] <- contributions[c - 1]
                            c <- next[c - 1]
                        sumContributions gs
                if not (missing g) then
                    total[k] <- g
                    if anyNeeded k then
                        let first = starts[k]
                        let count = starts[k + 1] - first
                        for i in 0 .. count - 1 do
                            need[i] <- needs[operands[first + i]]
                            out[i] <- Unchecked.defaultof<Expr>
                        rule order[k] g need out
                        for i in 0 .. count - 1 do
                            if need[i] && not (missing out[i]) then contribute operands[first + i] out[i]
            wrt
            |> List.map (fun v ->
                let p = graph.Index.Position v.Id
                if p >= 0 && not (missing total[p]) then v, total[p] else v, Expr.zerosLike v)
            |> Map.ofList
        finally
            Scratch.release needs
            Scratch.release contributions
            Scratch.release next
            Scratch.release head
            Scratch.release received
            Scratch.release total
            graph.Release()

    /// Vector-Jacobian product: the gradients of sum(seed * f) with respect to each of `wrt`, simplified
    /// (Simplify: constants folded, identities removed, repeated sub-expressions shared; f's own nodes are
    /// kept as they are, so a plan computing f and its gradients computes f once). Variables f does not
    /// depend on get zeros.
    let vjp (seed: Expr) (wrt: Expr list) (f: Expr) : Map<Expr, Expr> =
        let raw = vjpUnsimplified seed wrt f
        let vars = List.distinct wrt
        List.zip vars (Simplify.keeping [ f ] (vars |> List.map (fun v -> raw[v]))) |> Map.ofList

    /// Gradients of a scalar expression with respect to the given variables (or any of its nodes).
    let wrt (vars: Expr list) (f: Expr) : Map<Expr, Expr> =
        if f.Rank <> 0 && Shape.size f.ShapeRef <> 1 then
            invalidArg
                "f"
                (sprintf
                    "Grad.wrt: the output has shape %s; reduce it to a scalar (sum, mean) or give a seed with Grad.vjp"
                    (Shape.show f.ShapeRef))
        vjp (Expr.onesLike f) vars f

    /// Gradients of a scalar expression with respect to every variable in it.
    let ofExpr (f: Expr) : Map<Expr, Expr> = wrt (Graph.variables [ f ]) f

    /// The gradient of a scalar expression with respect to one variable (JAX's grad, on expressions).
    let grad (x: Expr) (f: Expr) : Expr = (wrt [ x ] f)[x]

    /// Hessian-vector product: the gradient of (grad f . v) with respect to x.
    let hvp (x: Expr) (v: Expr) (f: Expr) : Expr = grad x (Expr.sum (grad x f * v))

    /// Jacobian-vector product with several inputs (forward mode): the directional derivative of f when each
    /// input moves along its tangent (pairs of input and tangent of the input's shape and dtype), of f's
    /// shape, simplified. Its own fold with a forward rule per operation, in one topological pass.
    let jvpMany (tangents: (Expr * Expr) list) (f: Expr) : Expr = Simplify.keeping [ f ] [ Jvp.tangent tangents f ] |> List.head

    /// Jacobian-vector product (forward mode, JAX's jvp): the directional derivative of f at x along v (v of
    /// x's shape), of f's shape: sum(u * jvp x v f) = sum(v * (vjp u [x] f)[x]) for every u and v.
    let jvp (x: Expr) (v: Expr) (f: Expr) : Expr = jvpMany [ x, v ] f

    // The one-hot tensor of e's shape and dtype with a 1 at flat position i.
    let private basis (e: Expr) (i: int) =
        let values = Array.zeroCreate (Shape.size e.ShapeRef)
        values[i] <- 1.0
        Expr.constant (Tensor.ofFloats e.DType e.ShapeRef values)

    // The Jacobian by forward mode (one jvp per element of x, as columns) or reverse mode (one vjp per
    // element of f, as rows), stacked with concat and reshaped to f.Shape @ x.Shape.
    let internal jacobianBy (forward: bool) (x: Expr) (f: Expr) : Expr =
        let nx, nf = Shape.size x.ShapeRef, Shape.size f.ShapeRef
        let shape = Array.append f.ShapeRef x.ShapeRef
        if nx = 0 || nf = 0 then
            Expr.constant (Tensor.zeros f.DType shape)
        elif forward then
            List.init nx (fun i -> Jvp.tangent [ x, basis x i ] f |> Expr.reshape [| nf; 1 |])
            |> Expr.concat 1
            |> Expr.reshape shape
            |> fun j -> Simplify.keeping [ f ] [ j ] |> List.head
        else
            List.init nf (fun i -> (vjpUnsimplified (basis f i) [ x ] f)[x] |> Expr.reshape [| 1; nx |])
            |> Expr.concat 0
            |> Expr.reshape shape
            |> fun j -> Simplify.keeping [ f ] [ j ] |> List.head

    /// The Jacobian of f with respect to x, of shape f.Shape @ x.Shape (element [i..; j..] is d f[i..] / d x[j..]),
    /// as one simplified expression. Forward mode (one jvp per element of x) when x has fewer elements than f,
    /// else reverse mode (one vjp per element of f): the cheaper side's count of passes, as JAX's jacfwd and
    /// jacrev.
    let jacobian (x: Expr) (f: Expr) : Expr = jacobianBy (Shape.size x.ShapeRef < Shape.size f.ShapeRef) x f

    /// The Hessian of a scalar f with respect to x, of shape x.Shape @ x.Shape: the Jacobian of the gradient,
    /// by forward mode over reverse mode (one jvp of the gradient per element of x, as JAX's hessian), so
    /// symmetric up to rounding.
    let hessian (x: Expr) (f: Expr) : Expr =
        if Shape.size f.ShapeRef <> 1 then
            invalidArg
                "f"
                (sprintf
                    "Grad.hessian: the output has shape %s; the Hessian is of a scalar (reduce it with sum or mean)"
                    (Shape.show f.ShapeRef))
        jacobianBy true x (grad x f)
