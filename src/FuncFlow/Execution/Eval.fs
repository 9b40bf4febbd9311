namespace FuncFlow

open System
open System.Collections.Generic
open System.Numerics
open System.Runtime.CompilerServices

/// Options for one-shot evaluation.
type EvalOptions =
    {
        /// Anomaly mode: stop at the first node whose value holds a NaN or an infinity, and name it.
        CheckFinite: bool
    }

    /// Plain evaluation.
    static member Default = { CheckFinite = false }

type internal Evaluator<'T when 'T :> IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType> =
    /// Evaluates the outputs in one pass over the topological order. A value is dropped after its last
    /// use, so a long chain runs in memory bounded by its widest cut, not its length. Rank-0 values also
    /// live in one array indexed by position, and rank-0 elementwise nodes of rank-0 operands run on it
    /// directly: scalar graphs then allocate no array per node.
    // Optimised at once: called once per evaluation, its loop would otherwise run tier-0 code for a while.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member Run(outputs: Expr[], env: IReadOnlyDictionary<string, Tensor>, options: EvalOptions) : Tensor[] =
        use schedule = Schedule.Build outputs
        let order, starts, operands, lastUse, n =
            schedule.Order, schedule.Starts, schedule.Operands, schedule.LastUse, schedule.Count
        let values = Scratch.rent<'T[]> n
        let scalars = Scratch.rent<'T> n
        // Released whatever happens: a kernel's exception (an index out of range) must not leak pooled arrays.
        try
            // A rank-0 value computed on the fast path has no array until a tensor-valued user asks for one.
            let array (p: int) = if isNull values[p] then [| scalars[p] |] else values[p]
            let args1: 'T[][] = Array.zeroCreate 1
            let args2: 'T[][] = Array.zeroCreate 2
            for k in 0 .. n - 1 do
                let node = order[k]
                let first = starts[k]
                let count = starts[k + 1] - first
                if not options.CheckFinite && Evaluator<'T>.OnScalars(node, operands, first, count, scalars, k) then
                    ()
                else
                    values[k] <-
                        match node.Op with
                        | Op.Var name ->
                            let bound = Eval.Bind(name, node, env).Data :?> 'T[]
                            // A NaN fed in is reported as the input it is, not blamed on its first user.
                            if options.CheckFinite then Execute<'T>.CheckFinite(node, [||], bound)
                            bound
                        | Op.Const t -> t.Data :?> 'T[]
                        // A reshape shares its operand's storage: values are never written after they are made.
                        | Op.Reshape _ -> array operands[first]
                        | _ ->
                            // Kernels never keep their operand array, so unary and binary nodes share one each.
                            let args =
                                match count with
                                | 1 -> args1
                                | 2 -> args2
                                | n -> Array.zeroCreate n
                            for i in 0 .. count - 1 do
                                args[i] <- array operands[first + i]
                            let dst: 'T[] = Array.zeroCreate (Shape.size node.ShapeRef)
                            Execute<'T>.Node(node, args, dst)
                            if options.CheckFinite then Execute<'T>.CheckFinite(node, args, dst)
                            dst
                    if node.Rank = 0 then scalars[k] <- values[k][0]
                for e in first .. first + count - 1 do
                    let p = operands[e]
                    if lastUse[p] = k then values[p] <- null
            schedule.Roots |> Array.mapi (fun i p -> Tensor.wrap outputs[i].ShapeRef (array p))
        finally
            Scratch.release values
            Scratch.release scalars

    /// Computes a rank-0 elementwise node of rank-0 operands into scalars[k], through the same dispatcher
    /// as arrays (on one-element spans, so the values are those of the general path); false for any
    /// other node.
    static member private OnScalars(node: Expr, operands: int[], first: int, count: int, scalars: 'T[], k: int) : bool =
        let mutable rank0 = node.Rank = 0
        for input in node.Inputs do
            rank0 <- rank0 && input.Rank = 0
        if not rank0 then
            false
        else
            match node.Op with
            | op when op.IsElementwise ->
                let b = if count > 1 then ReadOnlySpan(scalars, operands[first + 1], 1) else ReadOnlySpan<'T>.Empty
                Execute<'T>.Elementwise(op, ReadOnlySpan(scalars, operands[first], 1), b, Span(scalars, k, 1))
                true
            | Op.AddN ->
                // Left to right, as the general path adds operand after operand.
                let mutable sum = scalars[operands[first]]
                for i in 1 .. count - 1 do
                    sum <- sum + scalars[operands[first + i]]
                scalars[k] <- sum
                true
            | _ -> false

/// One-shot evaluation of expressions, for dynamic use. For many runs of one graph, compile a Plan.
and Eval =
    /// The value bound to a variable, checked against the variable's shape and dtype.
    static member internal Bind(name: string, node: Expr, env: IReadOnlyDictionary<string, Tensor>) : Tensor =
        match env.TryGetValue name with
        | true, t ->
            if not (Shape.equal t.ShapeRef node.ShapeRef) then
                invalidArg
                    "env"
                    (sprintf
                        "evaluate: variable '%s' has shape %s but is bound to a value of shape %s"
                        name
                        (Shape.show node.ShapeRef)
                        (Shape.show t.ShapeRef))
            if t.DType <> node.DType then
                invalidArg
                    "env"
                    (sprintf
                        "evaluate: variable '%s' is %s but is bound to a %s value; cast it with Tensor.cast"
                        name
                        node.DType.Name
                        t.DType.Name)
            t
        | _ ->
            let known = if env.Count = 0 then "nothing is bound" else "bound: " + String.Join(", ", env.Keys)
            raise (
                KeyNotFoundException(
                    sprintf
                        "evaluate: variable '%s' is not bound (%s); bind a value of shape %s to it"
                        name
                        known
                        (Shape.show node.ShapeRef)
                )
            )

    /// Evaluates several expressions together, sharing common nodes.
    static member Many(env: IReadOnlyDictionary<string, Tensor>, outputs: Expr seq, options: EvalOptions) : Tensor[] =
        if isNull env then nullArg "env"
        if isNull outputs then nullArg "outputs"
        let outputs = Array.ofSeq outputs
        if outputs.Length = 0 then
            [||]
        else
            let dtype = outputs[0].DType
            match outputs |> Array.tryFind (fun o -> o.DType <> dtype) with
            | Some o ->
                invalidArg "outputs" (sprintf "evaluate: outputs mix dtypes %s and %s; evaluate them separately" dtype.Name o.DType.Name)
            | None -> ()
            match dtype with
            | Float64 -> Evaluator<float>.Run(outputs, env, options)
            | Float32 -> Evaluator<float32>.Run(outputs, env, options)

/// F# functions for one-shot evaluation.
module Eval =
    /// Variable bindings from (name, value) pairs.
    let bindings (pairs: (string * Tensor) seq) : IReadOnlyDictionary<string, Tensor> = Map.ofSeq pairs

    /// The values of several expressions.
    let many (env: IReadOnlyDictionary<string, Tensor>) (outputs: Expr list) : Tensor list =
        Eval.Many(env, outputs, EvalOptions.Default) |> List.ofArray

    /// The value of an expression.
    let evaluate (env: IReadOnlyDictionary<string, Tensor>) (e: Expr) : Tensor = Eval.Many(env, [ e ], EvalOptions.Default)[0]

    /// The value of an expression in anomaly mode: the first NaN or infinity raises an error naming its node.
    let evaluateChecked (env: IReadOnlyDictionary<string, Tensor>) (e: Expr) : Tensor = Eval.Many(env, [ e ], { CheckFinite = true })[0]

    /// The value of a scalar expression and its gradients with respect to the given variables, in one pass.
    let valueAndGrad (env: IReadOnlyDictionary<string, Tensor>) (vars: Expr list) (f: Expr) : Tensor * Map<Expr, Tensor> =
        let grads = Grad.wrt vars f
        let results = Eval.Many(env, f :: (vars |> List.map (fun v -> grads[v])), EvalOptions.Default)
        results[0], List.zip vars (List.ofArray results[1..]) |> Map.ofList
