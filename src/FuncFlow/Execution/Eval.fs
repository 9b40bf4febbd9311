namespace FuncFlow

open System
open System.Collections.Generic
open System.Numerics

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
    /// use, so a long chain runs in memory bounded by its widest cut, not its length.
    static member Run(outputs: Expr[], env: IReadOnlyDictionary<string, Tensor>, options: EvalOptions) : Tensor[] =
        let order = Graph.topoSort outputs
        let position = Dictionary<int64, int>(order.Length)
        order |> Array.iteri (fun i e -> position[e.Id] <- i)
        let lastUse = Array.init order.Length id
        for i in 0 .. order.Length - 1 do
            for input in order[i].Inputs do
                lastUse[position[input.Id]] <- i
        for o in outputs do
            lastUse[position[o.Id]] <- Int32.MaxValue
        let values: 'T[][] = Array.zeroCreate order.Length
        let args1: 'T[][] = Array.zeroCreate 1
        let args2: 'T[][] = Array.zeroCreate 2
        for i in 0 .. order.Length - 1 do
            let node = order[i]
            values[i] <-
                match node.Op with
                | Var name ->
                    let bound = Eval.Bind(name, node, env).Data :?> 'T[]
                    // A NaN fed in is reported as the input it is, not blamed on its first user.
                    if options.CheckFinite then Execute<'T>.CheckFinite(node, [||], bound)
                    bound
                | Const t -> t.Data :?> 'T[]
                // A reshape shares its operand's storage: values are never written after they are made.
                | Reshape _ -> values[position[node.Inputs[0].Id]]
                | _ ->
                    // Kernels never keep their operand array, so unary and binary nodes share one each.
                    let args =
                        match node.Inputs.Length with
                        | 1 -> args1
                        | 2 -> args2
                        | n -> Array.zeroCreate n
                    for k in 0 .. args.Length - 1 do
                        args[k] <- values[position[node.Inputs[k].Id]]
                    let dst: 'T[] = Array.zeroCreate (Shape.size node.ShapeRef)
                    Execute<'T>.Node(node, args, dst)
                    if options.CheckFinite then Execute<'T>.CheckFinite(node, args, dst)
                    dst
            for input in node.Inputs do
                let p = position[input.Id]
                if lastUse[p] = i then values[p] <- null
        outputs |> Array.map (fun o -> Tensor.wrap o.ShapeRef values[position[o.Id]])

/// One-shot evaluation of expressions, for dynamic use. For many runs of one graph, compile a Plan.
and Eval =
    /// The value bound to a variable, checked against the variable's shape and dtype.
    static member internal Bind(name: string, node: Expr, env: IReadOnlyDictionary<string, Tensor>) : Tensor =
        match env.TryGetValue name with
        | true, t ->
            if t.ShapeRef <> node.ShapeRef then
                invalidArg "env" (sprintf "evaluate: variable '%s' has shape %s but is bound to a value of shape %s" name (Shape.show node.ShapeRef) (Shape.show t.ShapeRef))
            if t.DType <> node.DType then
                invalidArg "env" (sprintf "evaluate: variable '%s' is %s but is bound to a %s value; cast it with Tensor.cast" name node.DType.Name t.DType.Name)
            t
        | _ ->
            let known = if env.Count = 0 then "nothing is bound" else "bound: " + String.Join(", ", env.Keys)
            raise (KeyNotFoundException(sprintf "evaluate: variable '%s' is not bound (%s); bind a value of shape %s to it" name known (Shape.show node.ShapeRef)))

    /// Evaluates several expressions together, sharing common nodes.
    static member Many(env: IReadOnlyDictionary<string, Tensor>, outputs: Expr seq, options: EvalOptions) : Tensor[] =
        if isNull env then nullArg "env"
        if isNull outputs then nullArg "outputs"
        let outputs = Array.ofSeq outputs
        if outputs.Length = 0 then [||]
        else
            let dtype = outputs[0].DType
            match outputs |> Array.tryFind (fun o -> o.DType <> dtype) with
            | Some o -> invalidArg "outputs" (sprintf "evaluate: outputs mix dtypes %s and %s; evaluate them separately" dtype.Name o.DType.Name)
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
    let evaluateChecked (env: IReadOnlyDictionary<string, Tensor>) (e: Expr) : Tensor =
        Eval.Many(env, [ e ], { CheckFinite = true })[0]

    /// The value of a scalar expression and its gradients with respect to the given variables, in one pass.
    let valueAndGrad (env: IReadOnlyDictionary<string, Tensor>) (vars: Expr list) (f: Expr) : Tensor * Map<Expr, Tensor> =
        let grads = Grad.wrt vars f
        let results = Eval.Many(env, f :: (vars |> List.map (fun v -> grads[v])), EvalOptions.Default)
        results[0], List.zip vars (List.ofArray results[1..]) |> Map.ofList
