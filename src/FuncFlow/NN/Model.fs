namespace FuncFlow.NN

open System
open System.Collections.Generic
open FuncFlow
open FuncFlow.Data

/// A model's graph for one input: the output, the parameter variables it reads, and the noise it needs.
type ModelGraph =
    {
        /// The model's output.
        Output: Expr
        /// Every parameter variable, by name.
        Parameters: Map<string, Expr>
        /// The per-step random inputs (dropout masks); empty in evaluation mode.
        Noise: Noise list
    }

/// A layer together with its parameter values, in one dtype. Immutable: training returns a new model.
[<Sealed>]
type Model(layer: Layer, parameters: Map<string, Tensor>, dtype: DType) =
    do
        for KeyValue(name, t) in parameters do
            if t.DType <> dtype then
                invalidArg "parameters" (sprintf "Model: parameter '%s' is %s but the model is %s" name t.DType.Name dtype.Name)

    let shapes = parameters |> Map.map (fun _ t -> t.Shape) :> IReadOnlyDictionary<string, int[]>

    /// A model with the layer's initial parameters drawn from `seed`, in the given dtype.
    static member Create(layer: Layer, seed: int, dtype: DType) =
        let ps = layer.Parameters seed |> List.map (fun (n, t) -> n, Tensor.cast dtype t)
        let names = ps |> List.map fst
        if List.length (List.distinct names) <> List.length names then
            invalidArg "layer" (sprintf "Model.Create: parameter names repeat: %A" names)
        Model(layer, Map.ofList ps, dtype)

    /// A float64 model with the layer's initial parameters drawn from `seed`.
    static member Create(layer: Layer, seed: int) = Model.Create(layer, seed, Float64)

    /// The architecture.
    member _.Layer = layer
    /// The parameter values, by name ("0.weight").
    member _.Parameters = parameters
    /// The element type.
    member _.DType = dtype
    /// The total number of parameter elements.
    member _.ParameterCount = parameters |> Seq.sumBy (fun kv -> kv.Value.Size)

    /// The same architecture with other parameter values (same names, shapes and dtype).
    member m.WithParameters(values: Map<string, Tensor>) =
        for KeyValue(name, t) in parameters do
            match values.TryFind name with
            | Some v when Shape.equal v.ShapeRef t.ShapeRef -> ()
            | Some v ->
                invalidArg
                    "values"
                    (sprintf "Model.WithParameters: '%s' has shape %s, expected %s" name (Shape.show v.Shape) (Shape.show t.Shape))
            | None -> invalidArg "values" (sprintf "Model.WithParameters: no value for parameter '%s'" name)
        Model(layer, parameters |> Map.map (fun name _ -> Tensor.cast dtype values[name]), dtype)

    /// Builds the graph of the model applied to an input, in training mode (dropout on) or not.
    member _.Build(input: Expr, training: bool) : ModelGraph =
        let scope = Scope.Create(dtype, training, shapes)
        let output = layer.Forward(scope, input)
        {
            Output = output
            Parameters = scope.Vars |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
            Noise = List.ofSeq scope.NoiseList
        }

    /// The model's output expression for an input expression, in evaluation mode.
    member m.Forward(input: Expr) : Expr = m.Build(input, false).Output

    /// The model's output for an input tensor, evaluated once in evaluation mode.
    member m.Predict(input: Tensor) : Tensor =
        let x = Expr.varOf dtype "input" input.Shape
        let g = m.Build(x, false)
        let env = ("input", input) :: [ for KeyValue(name, _) in g.Parameters -> name, parameters[name] ]
        Eval.evaluate (Eval.bindings env) g.Output

    /// Writes the parameters to a safetensors file, with the architecture's description as metadata.
    member _.Save(path: string) =
        Safetensors.saveWithMetadata path (Map [ "funcflow.model", layer.Describe() ]) (Map.toSeq parameters)

    /// The same architecture with the parameters read from a safetensors file written by Save.
    member m.Load(path: string) =
        let values = Safetensors.load path
        try
            m.WithParameters values
        with :? ArgumentException as e ->
            raise (DataFormatException(sprintf "%s: the parameters do not fit this model: %s" path e.Message, e))

    override _.ToString() =
        sprintf "Model(%s, %d parameters, %s)" (layer.Describe()) (parameters |> Seq.sumBy (fun kv -> kv.Value.Size)) dtype.Name
