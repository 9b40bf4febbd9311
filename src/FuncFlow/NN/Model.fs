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
        /// Every buffer variable the graph reads, by name (running statistics).
        Buffers: Map<string, Expr>
        /// The buffers' values after a training step, as expressions of the values before it (empty in
        /// evaluation mode); a training step applies them with the optimiser's updates.
        BufferUpdates: (Expr * Expr) list
        /// The per-step random inputs (dropout masks); empty in evaluation mode.
        Noise: Noise list
    }

/// What a non-strict load (Model.LoadNonStrict) took and what it skipped.
type LoadReport =
    {
        /// The model with every value of the file that fits it.
        Model: Model
        /// Keys of the file the model has no parameter or buffer for (PyTorch's unexpected_keys).
        Unexpected: string list
        /// Parameters and buffers the file has no value for; they keep their current values (missing_keys).
        Missing: string list
        /// Values of another shape than the model's, each with both shapes; they keep their current values.
        Mismatched: string list
        /// How the architecture recorded in the file differs from the model's, when it does.
        Architecture: string option
    }

/// A layer together with its parameter values and its buffers (state such as batch norm's running
/// statistics, carried by training but not trained by gradients), in one dtype. Immutable: training
/// returns a new model.
and [<Sealed>] Model(layer: Layer, parameters: Map<string, Tensor>, buffers: Map<string, Tensor>, dtype: DType) =
    do
        for KeyValue(name, t) in Seq.append parameters buffers do
            if t.DType <> dtype then
                invalidArg "parameters" (sprintf "Model: '%s' is %s but the model is %s" name t.DType.Name dtype.Name)
        for KeyValue(name, _) in buffers do
            if parameters.ContainsKey name then
                invalidArg "buffers" (sprintf "Model: '%s' is both a parameter and a buffer" name)

    let shapesOf (values: Map<string, Tensor>) = values |> Map.map (fun _ t -> t.Shape) :> IReadOnlyDictionary<string, int[]>

    let shapes = shapesOf parameters
    let bufferShapes = shapesOf buffers

    /// The same names with other values, each of the same shape, cast to the model's dtype.
    let replace (operation: string) (what: string) (current: Map<string, Tensor>) (values: Map<string, Tensor>) =
        for KeyValue(name, t) in current do
            match values.TryFind name with
            | Some v when Shape.equal v.ShapeRef t.ShapeRef -> ()
            | Some v ->
                invalidArg
                    "values"
                    (sprintf "Model.%s: '%s' has shape %s, expected %s" operation name (Shape.show v.Shape) (Shape.show t.Shape))
            | None -> invalidArg "values" (sprintf "Model.%s: no value for %s '%s'" operation what name)
        current |> Map.map (fun name _ -> Tensor.cast dtype values[name])

    /// A model with the given parameters and the layer's initial buffers.
    new(layer: Layer, parameters: Map<string, Tensor>, dtype: DType) =
        Model(layer, parameters, layer.Buffers() |> List.map (fun (n, t) -> n, Tensor.cast dtype t) |> Map.ofList, dtype)

    /// A model with the layer's initial parameters drawn from `seed` and its initial buffers, in the given dtype.
    static member Create(layer: Layer, seed: int, dtype: DType) =
        let ps = layer.Parameters seed |> List.map (fun (n, t) -> n, Tensor.cast dtype t)
        let names = (ps |> List.map fst) @ (layer.Buffers() |> List.map fst)
        if List.length (List.distinct names) <> List.length names then
            invalidArg "layer" (sprintf "Model.Create: parameter and buffer names repeat: %A" names)
        Model(layer, Map.ofList ps, dtype)

    /// A float64 model with the layer's initial parameters drawn from `seed`.
    static member Create(layer: Layer, seed: int) = Model.Create(layer, seed, Float64)

    /// The architecture.
    member _.Layer = layer
    /// The parameter values, by name ("0.weight").
    member _.Parameters = parameters
    /// The buffer values, by name ("1.running_mean").
    member _.Buffers = buffers
    /// The element type.
    member _.DType = dtype
    /// The total number of parameter elements.
    member _.ParameterCount = parameters |> Seq.sumBy (fun kv -> kv.Value.Size)

    /// The same architecture with other parameter values (same names, shapes and dtype).
    /// The same architecture and buffers with other parameter values (same names, shapes and dtype); values
    /// under other names are ignored.
    member _.WithParameters(values: Map<string, Tensor>) =
        Model(layer, replace "WithParameters" "parameter" parameters values, buffers, dtype)

    /// The same architecture and parameters with other buffer values (same names, shapes and dtype); values
    /// under other names are ignored.
    member _.WithBuffers(values: Map<string, Tensor>) = Model(layer, parameters, replace "WithBuffers" "buffer" buffers values, dtype)

    /// Builds the graph of the model applied to an input, in training mode (dropout on, batch norm on the
    /// batch's statistics and updating its running ones) or evaluation mode (running statistics, no noise).
    member _.Build(input: Expr, training: bool) : ModelGraph =
        let scope = Scope.Create(dtype, training, shapes, bufferShapes)
        let output = layer.Forward(scope, input)
        let byName (vars: Dictionary<string, Expr>) = vars |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
        {
            Output = output
            Parameters = byName scope.Vars
            Buffers = byName scope.Buffers
            BufferUpdates = List.ofSeq scope.BufferUpdates
            Noise = List.ofSeq scope.NoiseList
        }

    /// The model's output expression for an input expression, in evaluation mode.
    member m.Forward(input: Expr) : Expr = m.Build(input, false).Output

    /// The model's output for an input tensor, evaluated once in evaluation mode.
    member m.Predict(input: Tensor) : Tensor =
        let x = Expr.varOf dtype "input" input.Shape
        let g = m.Build(x, false)
        let env =
            ("input", input) :: [ for KeyValue(name, _) in g.Parameters -> name, parameters[name] ]
            @ [ for KeyValue(name, _) in g.Buffers -> name, buffers[name] ]
        Eval.evaluate (Eval.bindings env) g.Output

    /// The version of the model file format Save writes (see ModelFile.Version).
    static member FormatVersion = ModelFile.Version

    /// Writes the parameters and buffers to a safetensors file under their state-dict names ("0.weight"), with
    /// the architecture's description and the format version as metadata (see ModelFile).
    member _.Save(path: string) =
        Safetensors.saveWithMetadata
            path
            (Map [ ModelFile.ArchitectureKey, layer.Describe(); ModelFile.FormatKey, string ModelFile.Version ])
            (Seq.append (Map.toSeq parameters) (Map.toSeq buffers))

    /// The same architecture with the parameters and buffers of a safetensors file written by Save or by
    /// PyTorch (safetensors.torch.save_file of a state dict). Strict: a key the model lacks, a key the file
    /// lacks, a shape that differs, or an architecture other than the one recorded in the file raises
    /// DataFormatException naming the file and the key. A file of format 1 is converted as it is read.
    member m.Load(path: string) : Model =
        let report = m.LoadNonStrict path
        let problems =
            [
                yield! report.Architecture |> Option.toList
                for k in report.Unexpected -> sprintf "'%s' is in the file but not in the model" k
                for k in report.Missing -> sprintf "'%s' is in the model but not in the file" k
                yield! report.Mismatched
            ]
        if not problems.IsEmpty then
            raise (
                DataFormatException(
                    sprintf
                        "%s: the file does not fit this model (%s): %s. Model.LoadNonStrict loads what fits and reports the rest"
                        path
                        (layer.Describe())
                        (String.Join("; ", problems))
                )
            )
        report.Model

    /// Loads what fits of a model file (see Load): values under the model's names and shapes replace the
    /// current ones; keys the model lacks, keys the file lacks (which keep their current values), values of
    /// another shape (also kept) and a differing architecture are reported instead of raised.
    member m.LoadNonStrict(path: string) : LoadReport =
        let values, metadata = ModelFile.read layer path
        let architecture =
            match metadata.TryFind ModelFile.ArchitectureKey with
            | Some recorded when recorded <> layer.Describe() ->
                Some(sprintf "metadata '%s' records %s, but the model is %s" ModelFile.ArchitectureKey recorded (layer.Describe()))
            | _ -> None
        let known = Seq.append parameters.Keys buffers.Keys |> Set.ofSeq
        let unexpected = values.Keys |> Seq.filter (known.Contains >> not) |> List.ofSeq
        let missing = known |> Seq.filter (values.ContainsKey >> not) |> List.ofSeq
        let take (current: Map<string, Tensor>) =
            current
            |> Map.map (fun name t ->
                match values.TryFind name with
                | Some v when Shape.equal v.ShapeRef t.ShapeRef -> Tensor.cast dtype v
                | _ -> t)
        let mismatched =
            [
                for KeyValue(name, t) in Seq.append parameters buffers do
                    match values.TryFind name with
                    | Some v when not (Shape.equal v.ShapeRef t.ShapeRef) ->
                        yield sprintf "'%s' has shape %s in the file, expected %s" name (Shape.show v.Shape) (Shape.show t.Shape)
                    | _ -> ()
            ]
        {
            Model = Model(layer, take parameters, take buffers, dtype)
            Unexpected = unexpected
            Missing = missing
            Mismatched = mismatched
            Architecture = architecture
        }

    override _.ToString() =
        sprintf "Model(%s, %d parameters, %s)" (layer.Describe()) (parameters |> Seq.sumBy (fun kv -> kv.Value.Size)) dtype.Name
