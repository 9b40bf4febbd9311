namespace FuncFlow

open System.Collections.Generic

/// Reverse-mode differentiation as a pure fold: one pass over the nodes in reverse topological order,
/// with one rule per operation mapping (node, gradient flowing in) to its operands' gradients. Nothing is
/// mutated; the result is a map from variable to gradient *expression*, so gradients can be evaluated,
/// compiled, printed, or differentiated again.
module Grad =
    /// The gradients a node passes to each of its operands, given the gradient g flowing into it.
    /// `None` marks an operand that receives no gradient (indices, labels, masks).
    let private rule (y: Expr) (g: Expr) : Expr option[] =
        let x = if y.Inputs.Length > 0 then y.Inputs[0] else y
        let one v = [| Some v |]
        let scalar v = Expr.scalarLike y v
        // Reshapes a reduced gradient back to keep-dim form, then broadcasts it over the reduced axis.
        let spread (axis: int option) (keepDim: bool) (v: Expr) =
            let kept =
                match axis, keepDim with
                | None, _ -> Expr.reshape (Array.create x.Rank 1) v
                | Some a, false -> Expr.reshape (x.ShapeRef |> Array.mapi (fun i d -> if i = a then 1 else d)) v
                | Some _, true -> v
            Expr.broadcastTo x.ShapeRef kept
        match y.Op with
        | Var _
        | Const _ -> [||]
        | Unary op ->
            match op with
            | Neg -> one -g
            | Exp -> one (g * y)
            | Log -> one (g / x)
            | Sqrt -> one (g / (y * 2.0))
            | Abs -> one (g * Expr.sign x)
            | Sigmoid -> one (g * (y * (1.0 - y)))
            | Tanh -> one (g * (1.0 - y * y))
            | Relu -> one (g * Expr.step x)
            | Softplus -> one (g * Expr.sigmoid x)
            | Sign
            | Step -> [| None |]
        | Binary op ->
            let a, b = y.Inputs[0], y.Inputs[1]
            let toA v = Some(Expr.sumTo a.ShapeRef v)
            let toB v = Some(Expr.sumTo b.ShapeRef v)
            match op with
            | Add -> [| toA g; toB g |]
            | Sub -> [| toA g; toB -g |]
            | Mul -> [| toA (g * b); toB (g * a) |]
            | Div -> [| toA (g / b); toB (-(g * y) / b) |]
            | Pow -> [| toA (g * b * Expr.pow a (b - 1.0)); toB (g * y * Expr.log a) |]
            | Equal -> [| None; None |]
        | PowScalar p -> one (g * (Expr.powScalar (p - 1.0) x * p))
        | MatMul ->
            let a, b = y.Inputs[0], y.Inputs[1]
            [| Some(Expr.matmul g (Expr.transpose b)); Some(Expr.matmul (Expr.transpose a) g) |]
        | Permute perm ->
            let inverse = Array.zeroCreate perm.Length
            perm |> Array.iteri (fun i p -> inverse[p] <- i)
            one (Expr.permute inverse g)
        | Reshape _ -> one (Expr.reshape x.ShapeRef g)
        | BroadcastTo _ -> one (Expr.sumTo x.ShapeRef g)
        | Reduce(Sum, axis, keep) -> one (spread axis keep g)
        | Reduce(Mean, axis, keep) ->
            let n = match axis with Some a -> x.ShapeRef[a] | None -> Shape.size x.ShapeRef
            one (spread axis keep g / float n)
        | Reduce(Max, axis, keep) ->
            // Ties share the gradient equally, as in JAX.
            let mask = Expr.equal x (spread axis keep y)
            let count =
                match axis with
                | Some a -> Expr.broadcastTo x.ShapeRef (Expr.sumAxisKeep a mask)
                | None -> spread None false (Expr.sum mask)
            one (spread axis keep g * mask / count)
        | Concat axis ->
            let mutable start = 0
            y.Inputs
            |> Array.map (fun input ->
                let len = input.ShapeRef[axis]
                let part = Expr.slice axis start len g
                start <- start + len
                Some part)
        | Slice(axis, start, length) -> one (Expr.pad axis start (x.ShapeRef[axis] - start - length) g)
        | Pad(axis, before, _) -> one (Expr.slice axis before x.ShapeRef[axis] g)
        | Gather -> [| Some(Expr.scatterAdd x.ShapeRef[0] y.Inputs[1] g); None |]
        | ScatterAdd _ -> [| Some(Expr.gather y.Inputs[1] g); None |]
        | OneHot _ -> [| None |]
        | Softmax axis -> one (y * (g - Expr.sumAxisKeep axis (g * y)))
        | LogSoftmax axis -> one (g - Expr.exp y * Expr.sumAxisKeep axis g)
        | AddN -> y.Inputs |> Array.map (fun _ -> Some g)

    /// Vector-Jacobian product: the gradients of sum(seed * f) with respect to each of `wrt`.
    /// Variables f does not depend on get zeros.
    let vjp (seed: Expr) (wrt: Expr list) (f: Expr) : Map<Expr, Expr> =
        if seed.ShapeRef <> f.ShapeRef then
            invalidArg "seed" (sprintf "Grad.vjp: the seed has shape %s but the output has shape %s" (Shape.show seed.ShapeRef) (Shape.show f.ShapeRef))
        if seed.DType <> f.DType then
            invalidArg "seed" (sprintf "Grad.vjp: the seed is %s but the output is %s" seed.DType.Name f.DType.Name)
        let order = Graph.topoSort [ f ]
        // Only nodes on a path to a requested variable need a gradient.
        let wanted = HashSet<int64>(wrt |> Seq.map (fun e -> e.Id))
        let needs = HashSet<int64>()
        let anyNeeded (node: Expr) =
            let mutable found = false
            for i in node.Inputs do
                found <- found || needs.Contains i.Id
            found
        for node in order do
            if wanted.Contains node.Id || anyNeeded node then needs.Add node.Id |> ignore
        // Most nodes receive one contribution; a list is made only for the second (scalar graphs have many nodes).
        let single = Dictionary<int64, Expr>()
        let several = Dictionary<int64, ResizeArray<Expr>>()
        let contribute (id: int64) (g: Expr) =
            match several.TryGetValue id with
            | true, list -> list.Add g
            | _ ->
                match single.TryGetValue id with
                | true, first ->
                    single.Remove id |> ignore
                    several[id] <- ResizeArray [| first; g |]
                | _ -> single[id] <- g
        let total = Dictionary<int64, Expr>()
        if needs.Contains f.Id then contribute f.Id seed
        for k in order.Length - 1 .. -1 .. 0 do
            let node = order[k]
            let g =
                match single.TryGetValue node.Id with
                | true, g -> ValueSome g
                | _ ->
                    match several.TryGetValue node.Id with
                    | true, parts -> ValueSome(Expr.addN (List.ofArray (parts.ToArray())))
                    | _ -> ValueNone
            match g with
            | ValueNone -> ()
            | ValueSome g ->
                total[node.Id] <- g
                if anyNeeded node then
                    let grads = rule node g
                    for i in 0 .. node.Inputs.Length - 1 do
                        let input = node.Inputs[i]
                        match grads[i] with
                        | Some gi when needs.Contains input.Id -> contribute input.Id gi
                        | _ -> ()
        wrt
        |> List.map (fun v ->
            match total.TryGetValue v.Id with
            | true, g -> v, g
            | _ -> v, Expr.zerosLike v)
        |> Map.ofList

    /// Gradients of a scalar expression with respect to the given variables (or any of its nodes).
    let wrt (vars: Expr list) (f: Expr) : Map<Expr, Expr> =
        if f.Rank <> 0 && Shape.size f.ShapeRef <> 1 then
            invalidArg "f" (sprintf "Grad.wrt: the output has shape %s; reduce it to a scalar (sum, mean) or give a seed with Grad.vjp" (Shape.show f.ShapeRef))
        vjp (Expr.onesLike f) vars f

    /// Gradients of a scalar expression with respect to every variable in it.
    let ofExpr (f: Expr) : Map<Expr, Expr> = wrt (Graph.variables [ f ]) f

    /// The gradient of a scalar expression with respect to one variable (JAX's grad, on expressions).
    let grad (x: Expr) (f: Expr) : Expr = (wrt [ x ] f)[x]

    /// Hessian-vector product: the gradient of (grad f . v) with respect to x.
    let hvp (x: Expr) (v: Expr) (f: Expr) : Expr = grad x (Expr.sum (grad x f * v))
