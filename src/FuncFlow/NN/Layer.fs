namespace FuncFlow.NN

open System
open System.Collections.Generic
open FuncFlow

/// A random input that a layer needs afresh at every training step (a dropout mask): the variable, and how
/// to draw each of its elements. The trainer fills it from its seeded generator before each run, so random
/// layers stay deterministic and the plan stays free of random operations.
type Noise =
    {
        /// The variable the layer reads.
        Var: Expr
        /// Draws one element.
        Sample: Random -> float
    }

/// What a layer sees while it builds its part of the graph: its parameters as variables, the mode, and a
/// way to ask for per-step noise. Names are hierarchical ("0.weight"), as in a PyTorch state dict.
[<Sealed>]
type Scope
    internal
    (
        prefix: string,
        dtype: DType,
        training: bool,
        shapes: IReadOnlyDictionary<string, int[]>,
        bufferShapes: IReadOnlyDictionary<string, int[]>,
        vars: Dictionary<string, Expr>,
        buffers: Dictionary<string, Expr>,
        bufferUpdates: ResizeArray<Expr * Expr>,
        noise: ResizeArray<Noise>
    ) =
    /// The variable of a parameter or buffer by full name, made once per name.
    let lookup
        (memberName: string)
        (what: string)
        (kinds: IReadOnlyDictionary<string, int[]>)
        (made: Dictionary<string, Expr>)
        (name: string)
        =
        let full = prefix + name
        match made.TryGetValue full with
        | true, v -> v
        | _ ->
            match kinds.TryGetValue full with
            | true, shape ->
                let v = Expr.varOf dtype full shape
                made[full] <- v
                v
            | _ ->
                let known = if kinds.Count = 0 then "none" else String.Join(", ", kinds.Keys)
                invalidArg "name" (sprintf "Scope.%s: the model has no %s '%s' (it has %s)" memberName what full known)

    /// True when building the training graph (dropout active), false for evaluation.
    member _.Training = training
    /// The element type of the model.
    member _.DType = dtype
    /// The prefix of this scope's names ("" at the top, "0." inside the first layer of a Sequential).
    member _.Prefix = prefix

    /// The variable of one of this layer's parameters, by its local name; the same name gives the same node.
    member _.Param(name: string) : Expr = lookup "Param" "parameter" shapes vars name

    /// The variable of one of this layer's buffers (state that is not trained by gradients, such as batch
    /// norm's running statistics), by its local name; the same name gives the same node.
    member _.Buffer(name: string) : Expr = lookup "Buffer" "buffer" bufferShapes buffers name

    /// Gives a buffer its value after a training step, as an expression of the values before it. A training
    /// step applies it with the optimiser's updates, as one simultaneous assignment; evaluation ignores it.
    member s.UpdateBuffer(name: string, value: Expr) =
        let v = s.Buffer name
        if not (Shape.equal v.ShapeRef value.ShapeRef) || v.DType <> value.DType then
            invalidArg
                "value"
                (sprintf
                    "Scope.UpdateBuffer: buffer '%s' is %s %s but its new value is %s %s"
                    (prefix + name)
                    v.DType.Name
                    (Shape.show v.ShapeRef)
                    value.DType.Name
                    (Shape.show value.ShapeRef))
        if bufferUpdates.Exists(fun (b, _) -> obj.ReferenceEquals(b, v)) then
            invalidOp (sprintf "Scope.UpdateBuffer: buffer '%s' is updated twice in one graph" (prefix + name))
        bufferUpdates.Add((v, value))

    /// The scope of a sub-layer, whose names are prefixed with `name.`.
    member _.Child(name: string) =
        Scope(prefix + name + ".", dtype, training, shapes, bufferShapes, vars, buffers, bufferUpdates, noise)

    /// A variable refilled before every training step, each element drawn by `sample`.
    member _.Noise(name: string, shape: int[], sample: Func<Random, float>) : Expr =
        let v = Expr.varOf dtype (prefix + name) shape
        noise.Add { Var = v; Sample = sample.Invoke }
        v

    /// The parameter variables used so far, by full name.
    member internal _.Vars = vars
    /// The buffer variables used so far, by full name.
    member internal _.Buffers = buffers
    /// The buffers' new values, in the order they were given.
    member internal _.BufferUpdates = bufferUpdates
    /// The noise variables requested so far.
    member internal _.NoiseList = noise

    /// A top-level scope over parameters and buffers of the given shapes.
    static member internal Create
        (dtype: DType, training: bool, shapes: IReadOnlyDictionary<string, int[]>, bufferShapes: IReadOnlyDictionary<string, int[]>)
        =
        Scope("", dtype, training, shapes, bufferShapes, Dictionary(), Dictionary(), ResizeArray(), ResizeArray())

/// A layer: named parameters with seeded initial values, and a forward function that builds the layer's
/// graph from its input. Layers hold no values of their own; a Model pairs a layer with its parameters.
[<AbstractClass>]
type Layer() =
    /// The parameters' local names and float64 initial values, drawn from `seed`. None by default.
    abstract Parameters: seed: int -> (string * Tensor) list
    default _.Parameters(_: int) = []

    /// The buffers' local names and float64 initial values: state carried between training steps but not
    /// trained by gradients (batch norm's running statistics). None by default.
    abstract Buffers: unit -> (string * Tensor) list
    default _.Buffers() = []

    /// The output expression for an input expression, reading parameters and noise through the scope.
    abstract Forward: scope: Scope * input: Expr -> Expr

    /// A short description, for printing a model.
    abstract Describe: unit -> string
