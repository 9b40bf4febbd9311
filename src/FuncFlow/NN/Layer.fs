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
        vars: Dictionary<string, Expr>,
        noise: ResizeArray<Noise>
    ) =
    /// True when building the training graph (dropout active), false for evaluation.
    member _.Training = training
    /// The element type of the model.
    member _.DType = dtype
    /// The prefix of this scope's names ("" at the top, "0." inside the first layer of a Sequential).
    member _.Prefix = prefix

    /// The variable of one of this layer's parameters, by its local name; the same name gives the same node.
    member _.Param(name: string) : Expr =
        let full = prefix + name
        match vars.TryGetValue full with
        | true, v -> v
        | _ ->
            match shapes.TryGetValue full with
            | true, shape ->
                let v = Expr.varOf dtype full shape
                vars[full] <- v
                v
            | _ ->
                invalidArg "name" (sprintf "Scope.Param: the model has no parameter '%s' (it has %s)" full (String.Join(", ", shapes.Keys)))

    /// The scope of a sub-layer, whose names are prefixed with `name.`.
    member _.Child(name: string) = Scope(prefix + name + ".", dtype, training, shapes, vars, noise)

    /// A variable refilled before every training step, each element drawn by `sample`.
    member _.Noise(name: string, shape: int[], sample: Func<Random, float>) : Expr =
        let v = Expr.varOf dtype (prefix + name) shape
        noise.Add { Var = v; Sample = sample.Invoke }
        v

    /// The parameter variables used so far, by full name.
    member internal _.Vars = vars
    /// The noise variables requested so far.
    member internal _.NoiseList = noise

    /// A top-level scope over parameters of the given shapes.
    static member internal Create(dtype: DType, training: bool, shapes: IReadOnlyDictionary<string, int[]>) =
        Scope("", dtype, training, shapes, Dictionary(), ResizeArray())

/// A layer: named parameters with seeded initial values, and a forward function that builds the layer's
/// graph from its input. Layers hold no values of their own; a Model pairs a layer with its parameters.
[<AbstractClass>]
type Layer() =
    /// The parameters' local names and float64 initial values, drawn from `seed`. None by default.
    abstract Parameters: seed: int -> (string * Tensor) list
    default _.Parameters(_: int) = []

    /// The output expression for an input expression, reading parameters and noise through the scope.
    abstract Forward: scope: Scope * input: Expr -> Expr

    /// A short description, for printing a model.
    abstract Describe: unit -> string
