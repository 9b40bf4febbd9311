namespace FuncFlow.Onnx

open System
open System.Collections.Generic
open FuncFlow
open FuncFlow.Data
open global.Onnx

/// A dimension of a declared input or output: known, or named (symbolic, e.g. "batch"). A dimension the file
/// leaves without size or name is named "input[axis]", e.g. "x[0]".
[<RequireQualifiedAccess>]
type OnnxDim =
    | Known of int
    | Named of string

/// What a file declares for an input or output: its name, its dtype (None for one FuncFlow does not compute in,
/// such as INT64) and its dimensions.
type OnnxSignature = { Name: string; DType: DType option; Dims: OnnxDim list }

/// What an ONNX file declares, read without building expressions (Onnx.inspect).
type OnnxInfo =
    {
        IrVersion: int64
        /// Operator sets the model imports: (domain, version); "" is ONNX's default domain.
        Opsets: (string * int64) list
        /// The producer's name and version, e.g. "pytorch 1.13.0".
        Producer: string
        GraphName: string
        /// The graph inputs that are not initializers: what a caller feeds.
        Inputs: OnnxSignature list
        Outputs: OnnxSignature list
        /// Each initializer's name, dtype (None: not a float type) and dims.
        Initializers: (string * DType option * int[]) list
        /// How many nodes of each operator type the graph holds, in order of first use.
        OperatorCounts: (string * int) list
        Metadata: (string * string) list
    }

/// An ONNX graph as FuncFlow expressions (Onnx.load): evaluate, compile, differentiate and fine-tune it.
type OnnxModel =
    {
        /// The graph inputs that are not initializers, as variables of their declared names.
        Inputs: (string * Expr) list
        Outputs: (string * Expr) list
        /// The float initializers' values, keyed by their variables' names (the initializers' names): the model's
        /// trainable parameters.
        Parameters: Map<string, Tensor>
        Info: OnnxInfo
    }

/// Reading ONNX files: parsing and validating a ModelProto, and building its graph as expressions.
module internal Import =
    let private fail (path: string) (message: string) : 'a = raise (DataFormatException(sprintf "%s: %s" path message))

    /// The model in a file; a missing, truncated or corrupt file is a DataFormatException naming it.
    let read (path: string) : ModelProto =
        let model = OnnxTensor.parseFile ModelProto.Parser path
        if isNull model.Graph then fail path "the model has no graph"
        model

    /// The version of ONNX's default operator set the model imports (1 when it declares none, as ONNX assumes).
    let private opset (model: ModelProto) =
        model.OpsetImport
        |> Seq.tryFind (fun o -> o.Domain = "" || o.Domain = "ai.onnx")
        |> Option.map (fun o -> o.Version)
        |> Option.defaultValue 1L

    let private signature (v: ValueInfoProto) =
        let tensor = if isNull v.Type then null else v.Type.TensorType
        if isNull tensor then
            { Name = v.Name; DType = None; Dims = [] }
        else
            let dims =
                if isNull tensor.Shape then
                    []
                else
                    tensor.Shape.Dim
                    |> Seq.mapi (fun axis d ->
                        if d.HasDimValue && d.DimValue >= 0L && d.DimValue <= int64 Int32.MaxValue then
                            OnnxDim.Known(int d.DimValue)
                        elif d.HasDimParam && d.DimParam <> "" then
                            OnnxDim.Named d.DimParam
                        else
                            OnnxDim.Named(sprintf "%s[%d]" v.Name axis))
                    |> List.ofSeq
            { Name = v.Name; DType = OnnxTensor.dtypeOf tensor.ElemType; Dims = dims }

    /// What the model declares; `path` names the file in errors.
    let info (path: string) (model: ModelProto) : OnnxInfo =
        let graph = model.Graph
        let initializers = graph.Initializer |> Seq.map (fun t -> t.Name) |> HashSet
        let counts = Dictionary<string, int>()
        let order = ResizeArray<string>()
        for node in graph.Node do
            match counts.TryGetValue node.OpType with
            | true, c -> counts[node.OpType] <- c + 1
            | _ ->
                counts[node.OpType] <- 1
                order.Add node.OpType
        {
            IrVersion = model.IrVersion
            Opsets = model.OpsetImport |> Seq.map (fun o -> o.Domain, o.Version) |> List.ofSeq
            Producer = (model.ProducerName + " " + model.ProducerVersion).Trim()
            GraphName = graph.Name
            Inputs =
                graph.Input
                |> Seq.filter (fun i -> not (initializers.Contains i.Name))
                |> Seq.map signature
                |> List.ofSeq
            Outputs = graph.Output |> Seq.map signature |> List.ofSeq
            Initializers =
                graph.Initializer
                |> Seq.map (fun t -> t.Name, OnnxTensor.dtypeOf t.DataType, OnnxTensor.shapeOf path t)
                |> List.ofSeq
            OperatorCounts = order |> Seq.map (fun op -> op, counts[op]) |> List.ofSeq
            Metadata = model.MetadataProps |> Seq.map (fun p -> p.Key, p.Value) |> List.ofSeq
        }

    /// A TensorProto's values and element type: floats as they are, integers and booleans as float64.
    let tensorOf (path: string) (proto: TensorProto) : Tensor * int =
        let proto = OnnxTensor.withExternalData path proto
        match OnnxTensor.dtypeOf proto.DataType with
        | Some _ -> OnnxTensor.toTensor path proto, proto.DataType
        | None -> OnnxTensor.toExactTensor path proto, proto.DataType

    /// The nodes in an order where each comes after the nodes whose outputs it reads (Kahn's algorithm, a
    /// queue rather than recursion). `provided` holds the names initializers and graph inputs give. A name no one
    /// gives, a name two nodes give and a cycle are errors naming the nodes.
    let order (path: string) (graph: GraphProto) (provided: ISet<string>) : NodeProto list =
        let nodes = Array.ofSeq graph.Node
        let label (i: int) = sprintf "node '%s' (#%d, %s)" nodes[i].Name i nodes[i].OpType
        let producer = Dictionary<string, int>()
        nodes
        |> Array.iteri (fun i node ->
            for output in node.Output do
                if output <> "" then
                    if producer.ContainsKey output || provided.Contains output then
                        fail path (sprintf "%s gives '%s', which another node, an initializer or a graph input gives too" (label i) output)
                    producer[output] <- i)
        let readers = Array.init nodes.Length (fun _ -> ResizeArray<int>())
        let waiting = Array.zeroCreate<int> nodes.Length
        nodes
        |> Array.iteri (fun i node ->
            for input in Seq.distinct node.Input do
                if input <> "" then
                    match producer.TryGetValue input with
                    | true, p ->
                        readers[p].Add i
                        waiting[i] <- waiting[i] + 1
                    | _ when provided.Contains input -> ()
                    | _ ->
                        fail
                            path
                            (sprintf "%s reads '%s', which no node, initializer or graph input gives (a dangling input)" (label i) input))
        let ready =
            Queue<int>(
                seq {
                    for i in 0 .. nodes.Length - 1 do
                        if waiting[i] = 0 then i
                }
            )
        let sorted = ResizeArray<NodeProto>()
        while ready.Count > 0 do
            let i = ready.Dequeue()
            sorted.Add nodes[i]
            for r in readers[i] do
                waiting[r] <- waiting[r] - 1
                if waiting[r] = 0 then ready.Enqueue r
        if sorted.Count < nodes.Length then
            let stuck =
                [
                    for i in 0 .. nodes.Length - 1 do
                        if waiting[i] > 0 then label i
                ]
            fail path (sprintf "the graph has a cycle: %s wait on each other's outputs" (String.Join(", ", List.truncate 5 stuck)))
        for output in graph.Output do
            if not (producer.ContainsKey output.Name || provided.Contains output.Name) then
                fail path (sprintf "graph output '%s' is given by no node, initializer or graph input" output.Name)
        List.ofSeq sorted

    /// The op types the importer claims (ONNX's default domain).
    let claimed: string list = Operators.table.Keys |> Seq.sort |> List.ofSeq

    /// Builds the graph's expressions. `dims` sizes the named dimensions of the inputs.
    let build (path: string) (dims: Map<string, int>) (model: ModelProto) : OnnxModel =
        let info = info path model
        let graph = model.Graph
        let version = opset model
        let values = Dictionary<string, OnnxValue>()
        let parameters = ResizeArray<string * Tensor>()
        // Names are how nodes find their inputs, and a FuncFlow variable needs one.
        graph.Initializer
        |> Seq.iteri (fun i init -> if String.IsNullOrEmpty init.Name then fail path (sprintf "initializer #%d has no name" i))
        graph.Input
        |> Seq.iteri (fun i input -> if String.IsNullOrEmpty input.Name then fail path (sprintf "graph input #%d has no name" i))
        for init in graph.Initializer do
            if values.ContainsKey init.Name then fail path (sprintf "initializer '%s' is given twice" init.Name)
            let t, code = tensorOf path init
            values[init.Name] <-
                match OnnxTensor.dtypeOf code with
                | Some dtype ->
                    parameters.Add(init.Name, t)
                    { Expr = Expr.varOf dtype init.Name t.Shape; ElemType = code; Known = None }
                | None -> { Expr = Expr.constant t; ElemType = code; Known = Some t }
        let missing =
            info.Inputs
            |> List.collect (fun s ->
                s.Dims
                |> List.choose (function
                    | OnnxDim.Named d when not (dims.ContainsKey d) -> Some d
                    | _ -> None))
            |> List.distinct
        if not missing.IsEmpty then
            invalidArg
                "dims"
                (sprintf
                    "%s: give the size of the named dimensions %s (Onnx.load's dims)"
                    path
                    (String.Join(", ", missing |> List.map (sprintf "'%s'"))))
        for input in info.Inputs do
            match input.DType with
            | Some dtype ->
                let shape =
                    input.Dims
                    |> List.map (function
                        | OnnxDim.Known d -> d
                        | OnnxDim.Named d -> dims[d])
                    |> Array.ofList
                values[input.Name] <- { Expr = Expr.varOf dtype input.Name shape; ElemType = OnnxTensor.code dtype; Known = None }
            | None ->
                raise (
                    NotSupportedException(
                        sprintf "%s: graph input '%s' is not FLOAT or DOUBLE; FuncFlow computes in float32 and float64" path input.Name
                    )
                )
        let sorted = order path graph (HashSet values.Keys)
        let parameterValues = dict parameters
        // A float initializer read where a value must be known (a shape-like input) is read as its value.
        let parameterOf (e: Expr) =
            match Expr.tryName e with
            | Some name when parameterValues.ContainsKey name && obj.ReferenceEquals(values[name].Expr, e) -> Some parameterValues[name]
            | _ -> None
        let position = graph.Node |> Seq.mapi (fun i n -> n, i) |> dict
        for node in sorted do
            let label = sprintf "%s: node '%s' (#%d, %s)" path node.Name position[node] node.OpType
            if node.Domain <> "" && node.Domain <> "ai.onnx" then
                raise (
                    NotSupportedException(
                        sprintf "%s: operator %s of domain '%s' is not imported (only ONNX's default domain)" label node.OpType node.Domain
                    )
                )
            let op =
                match Operators.table.TryGetValue node.OpType with
                | true, op -> op
                | _ ->
                    raise (
                        NotSupportedException(
                            sprintf "%s: operator %s is not imported. FuncFlow imports %s" label node.OpType (String.Join(", ", claimed))
                        )
                    )
            let inputs =
                node.Input |> Seq.map (fun name -> if name = "" then None else Some values[name]) |> Array.ofSeq
            // A node whose inputs are all known is computed now, so that shapes computed in the graph stay known
            // (unless it is too big to hold while importing).
            let known = inputs.Length > 0 && inputs |> Array.forall (fun v -> v.IsSome && v.Value.Known.IsSome)
            let fold (v: OnnxValue) =
                if known && v.Known.IsNone && Shape.size v.Expr.Shape <= OperatorSupport.knownLimit then
                    let t = Eval.evaluate (Eval.bindings []) v.Expr
                    let t =
                        if ElemType.isExact v.ElemType then
                            t |> Tensor.toArray |> Array.map Math.Truncate |> Tensor.create t.Shape
                        else
                            t
                    { v with Expr = Expr.constant t; Known = Some t }
                else
                    v
            let outputs =
                try
                    op (OnnxNode(node, label, inputs, version, tensorOf path, parameterOf)) |> List.map fold
                with
                | :? ArgumentException
                | :? InvalidOperationException as e -> raise (DataFormatException(sprintf "%s: %s" label e.Message, e))
            match node.Output |> Seq.indexed |> Seq.tryFind (fun (i, name) -> name <> "" && i >= outputs.Length) with
            | Some(i, name) ->
                raise (
                    NotSupportedException(
                        sprintf "%s: output %d ('%s') is not imported; the importer gives %d outputs" label i name outputs.Length
                    )
                )
            | None -> ()
            Seq.zip node.Output outputs |> Seq.iter (fun (name, v) -> if name <> "" then values[name] <- v)
        {
            Inputs = info.Inputs |> List.map (fun s -> s.Name, values[s.Name].Expr)
            Outputs = info.Outputs |> List.map (fun s -> s.Name, values[s.Name].Expr)
            Parameters = Map.ofSeq parameters
            Info = info
        }
