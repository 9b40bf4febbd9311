namespace FuncFlow.Onnx

// ONNX's schema (namespace Onnx), opened before FuncFlow, whose FuncFlow.Onnx would shadow it.
open Onnx
open System
open System.Collections.Generic
open System.IO
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open Google.Protobuf

/// A second trace of an exported graph at another batch size: which axes grow with the batch, so that shapes
/// written into the graph (Reshape's target) can leave them to the run time.
type internal BatchTrace =
    {
        /// The batch size of the exported trace.
        Size: int
        /// The batch size of the second trace.
        Other: int
        /// Each node's shape in the second trace, by the exported trace's node id.
        Shapes: Dictionary<int64, int[]>
    }

/// Writing FuncFlow expression DAGs as ONNX graphs (opset 17, IR version 8): one walk over the topological order
/// (no recursion), each node mapped onto one or a few ONNX nodes by one table (`emit`).
module internal OnnxExport =
    [<Literal>]
    let Opset = 17L

    [<Literal>]
    let IrVersion = 8L

    /// The symbolic name of axis 0 of an exported model's input.
    [<Literal>]
    let BatchName = "batch"

    let private attribute (name: string) (kind: AttributeProto.Types.AttributeType) = AttributeProto(Name = name, Type = kind)

    let private attrInt (name: string) (value: int64) =
        let a = attribute name AttributeProto.Types.AttributeType.Int
        a.I <- value
        a

    let private attrInts (name: string) (values: int seq) =
        let a = attribute name AttributeProto.Types.AttributeType.Ints
        a.Ints.AddRange(values |> Seq.map int64)
        a

    let private attrString (name: string) (value: string) =
        let a = attribute name AttributeProto.Types.AttributeType.String
        a.S <- ByteString.CopyFromUtf8 value
        a

    let private attrFloat (name: string) (value: float) =
        let a = attribute name AttributeProto.Types.AttributeType.Float
        a.F <- float32 value
        a

    /// A graph being written: fresh value names, nodes, initializers.
    type private Writer(graph: GraphProto, dtype: DType) =
        let used = HashSet<string>()
        let mutable counter = 0

        /// A name no other value has, from a prefix.
        member _.Fresh(prefix: string) =
            let mutable name = prefix
            while not (used.Add name) do
                counter <- counter + 1
                name <- sprintf "%s_%d" prefix counter
            name

        /// Claims a name given by the caller (an input, a parameter, an output); false if it is taken.
        member _.Claim(name: string) = used.Add name

        /// Adds a node; gives its output's name (`output` when given, a fresh one otherwise).
        member w.Node(opType: string, inputs: string list, attributes: AttributeProto list, output: string option) =
            let out =
                match output with
                | Some o -> o
                | None -> w.Fresh opType
            let node = NodeProto(OpType = opType, Name = w.Fresh("node_" + opType))
            node.Input.AddRange inputs
            node.Output.Add out
            node.Attribute.AddRange attributes
            graph.Node.Add node
            out

        /// An intermediate node.
        member w.Op(opType: string, inputs: string list, attributes: AttributeProto list) = w.Node(opType, inputs, attributes, None)

        /// An initializer of the graph's dtype.
        member w.Constant(prefix: string, t: Tensor) =
            let name = w.Fresh prefix
            graph.Initializer.Add(OnnxTensor.ofTensor name (Tensor.cast dtype t))
            name

        /// A scalar initializer of the graph's dtype.
        member w.Scalar(value: float) = w.Constant("const", Tensor.scalar value)

        /// A 1-D int64 initializer (shapes, axes, slice bounds).
        member w.Int64s(prefix: string, values: int64 seq) =
            let name = w.Fresh prefix
            let t = TensorProto(Name = name, DataType = int TensorProto.Types.DataType.Int64)
            let values = Array.ofSeq values
            t.Dims.Add(int64 values.Length)
            t.Int64Data.AddRange values
            graph.Initializer.Add t
            name

    /// The error for a node no ONNX mapping covers: the operation, where it is, and why.
    let private unsupported (position: int) (count: int) (node: Expr) (why: string) : 'a =
        let site =
            match node.CreationSite with
            | Some s -> sprintf ", built at %s" s
            | None -> ""
        raise (
            NotSupportedException(
                sprintf
                    "Onnx.export: operation '%s' (node %d of %d, %s %s%s) has no ONNX mapping: %s"
                    node.Op.Name
                    position
                    count
                    node.DType.Name
                    (Shape.show node.Shape)
                    site
                    why
            )
        )

    /// The one-hot kernels [C K; 1; kernel...] with which a depthwise convolution (group C) computes unfold:
    /// output channel c K + k copies tap k of channel c, as F.unfold lays its rows out.
    let private unfoldKernel (channels: int) (kernel: int list) =
        let taps = List.fold (*) 1 kernel
        let values = Array.zeroCreate (channels * taps * taps)
        for o in 0 .. channels * taps - 1 do
            values[o * taps + o % taps] <- 1.0
        Tensor.create (Array.ofList (channels * taps :: 1 :: kernel)) values

    /// A group of FuncFlow nodes that one ONNX operator computes, recognised at the group's last node: the
    /// builders' compositions (Expr.conv2d's unfold and GEMM, avgPool2d, globalAvgPool2d, Linear's product with a
    /// transposed weight), each with an optional bias added after it.
    type private Fused =
        | Conv of input: Expr * weight: Expr * bias: Expr option * window: Window * groups: int
        | AveragePool of input: Expr * window: Window
        | GlobalAveragePool of input: Expr
        | Gemm of a: Expr * b: Expr * bias: Expr option

        /// The nodes the ONNX operator reads.
        member f.Reads =
            match f with
            | Conv(x, w, bias, _, _) -> x :: w :: Option.toList bias
            | AveragePool(x, _)
            | GlobalAveragePool x -> [ x ]
            | Gemm(a, b, bias) -> a :: b :: Option.toList bias

    let private (|Node|) (e: Expr) = e.Op, List.ofSeq e.Operands

    /// Expr.conv's nodes: reshape (weight [G; O/G; P] times unfolded input [N; G; P; L]) to [N; O; spatial...].
    let private (|Convolution|_|) (r: Expr) =
        match r with
        | Node(Op.Reshape _,
               [ Node(Op.MatMul, [ Node(Op.Reshape _, [ w ]) as wr; Node(Op.Reshape _, [ Node(Op.Unfold window, [ x ]) ]) as cr ]) ]) when
            cr.Rank = 4 && w.Rank = x.Rank && x.Rank >= 3
            ->
            let groups = cr.Shape[1]
            let o, p = w.Shape[0], cr.Shape[2]
            let fits =
                groups > 0
                && o % groups = 0
                && w.Shape[1] * groups = x.Shape[1]
                && Shape.equal wr.Shape [| groups; o / groups; p |]
                && Shape.equal cr.Shape [| x.Shape[0]; groups; p; cr.Shape[3] |]
                && List.ofArray w.Shape[2..] = window.Kernel
                && Shape.equal r.Shape (Array.append [| x.Shape[0]; o |] (window.OutputSize x.Shape[2..]))
            if fits then Some(x, w, window, groups) else None
        | _ -> None

    /// A bias [features] reshaped to [1; features; 1...] (channels) or as it is (rows), added after a node.
    let private (|Biased|_|) (e: Expr) =
        match e with
        | Node(Op.Binary BinaryOp.Add, [ y; Node(Op.Reshape _, [ b ]) as rb ]) when
            b.Rank = 1
            && y.Rank >= 3
            && rb.Rank = y.Rank
            && Shape.equal rb.Shape (Array.init y.Rank (fun i -> if i = 1 then b.Shape[0] else 1))
            ->
            Some(y, b)
        | Node(Op.Binary BinaryOp.Add, [ y; b ]) when y.Rank = 2 && b.Rank = 1 && b.Shape[0] = y.Shape[1] -> Some(y, b)
        | _ -> None

    /// a b^T for matrices, b^T a transpose node (Linear's product).
    let private (|GemmTransposed|_|) (e: Expr) =
        match e with
        | Node(Op.MatMul, [ a; Node(Op.Permute [| 1; 0 |], [ b ]) ]) when a.Rank = 2 -> Some(a, b)
        | _ -> None

    let private fused (e: Expr) : Fused option =
        match e with
        | Biased(Convolution(x, w, window, groups), b) when b.Shape[0] = w.Shape[0] -> Some(Conv(x, w, Some b, window, groups))
        | Convolution(x, w, window, groups) -> Some(Conv(x, w, None, window, groups))
        | Biased(GemmTransposed(a, b), bias) when bias.Shape[0] = b.Shape[0] && e.Rank = 2 -> Some(Gemm(a, b, Some bias))
        | GemmTransposed(a, b) -> Some(Gemm(a, b, None))
        // avgPool2d: reshape (mean over axis 1 of unfold (x as [N C; 1; H; W])) to [N; C; H'; W'].
        | Node(Op.Reshape _,
               [ Node(Op.Reduce(ReduceOp.Mean, Some 1, false), [ Node(Op.Unfold window, [ Node(Op.Reshape _, [ x ]) as xr ]) ]) ]) when
            x.Rank = 4
            && window.Dilation |> List.forall ((=) 1)
            && Shape.equal xr.Shape [| x.Shape[0] * x.Shape[1]; 1; x.Shape[2]; x.Shape[3] |]
            && Shape.equal e.Shape (Array.append x.Shape[..1] (window.OutputSize x.Shape[2..]))
            ->
            Some(AveragePool(x, window))
        // globalAvgPool2d: reshape (mean over axis 2, kept, of x as [N; C; H W]) to [N; C; 1; 1].
        | Node(Op.Reshape _, [ Node(Op.Reduce(ReduceOp.Mean, Some 2, true), [ Node(Op.Reshape _, [ x ]) as xr ]) ]) when
            x.Rank = 4
            && Shape.equal xr.Shape [| x.Shape[0]; x.Shape[1]; x.Shape[2] * x.Shape[3] |]
            && Shape.equal e.Shape [| x.Shape[0]; x.Shape[1]; 1; 1 |]
            ->
            Some(GlobalAveragePool x)
        | _ -> None

    /// The ONNX graph of `outputs` (ONNX names and expressions) over `inputs` (ONNX names and variables) and
    /// `parameters` (initializers by variable name); `batch`, when given, is a second trace at another batch size.
    let graph
        (name: string)
        (inputs: (string * Expr) list)
        (outputs: (string * Expr) list)
        (parameters: Map<string, Tensor>)
        (batch: BatchTrace option)
        : GraphProto =
        if outputs.IsEmpty then invalidArg "outputs" "Onnx.exportGraph: no outputs to export"
        let order = Graph.topoSort (outputs |> List.map snd)
        let count = order.Length
        let dtype = order[0].DType
        match order |> Array.tryFind (fun e -> e.DType <> dtype) with
        | Some e ->
            invalidArg
                "outputs"
                (sprintf "Onnx.exportGraph: the graph mixes %s and %s nodes (%O); cast to one dtype" dtype.Name e.DType.Name e)
        | None -> ()
        let g = GraphProto(Name = name)
        let w = Writer(g, dtype)
        // The other trace's shape of a node, if there is one.
        let other (e: Expr) =
            match batch with
            | Some b ->
                match b.Shapes.TryGetValue e.Id with
                | true, s -> Some s
                | _ -> None
            | None -> None
        let moving (e: Expr) =
            match other e with
            | Some s -> Array.map2 (<>) e.Shape s
            | None -> Array.zeroCreate e.Rank
        let valueInfo (valueName: string) (e: Expr) =
            let tensor = TypeProto.Types.Tensor(ElemType = OnnxTensor.code e.DType, Shape = TensorShapeProto())
            let moves = moving e
            for axis in 0 .. e.Rank - 1 do
                let dim = TensorShapeProto.Types.Dimension()
                match batch, other e with
                | _ when not moves[axis] -> dim.DimValue <- int64 e.Shape[axis]
                | Some b, Some s when e.Shape[axis] = b.Size && s[axis] = b.Other -> dim.DimParam <- BatchName
                // A dimension that moves with the batch otherwise (batch x channels) is left unnamed.
                | _ -> ()
                tensor.Shape.Dim.Add dim
            ValueInfoProto(Name = valueName, Type = TypeProto(TensorType = tensor))

        // Names: inputs and parameters keep theirs; other nodes get fresh ones as they are written.
        let names = Dictionary<int64, string>()
        for inputName, v in inputs do
            match v.Op with
            | Op.Var _ ->
                if not (w.Claim inputName) then
                    invalidArg "inputs" (sprintf "Onnx.exportGraph: input name '%s' is given twice" inputName)
                if names.ContainsKey v.Id then
                    invalidArg "inputs" (sprintf "Onnx.exportGraph: variable %O is given as two inputs" v)
                let moves = moving v
                if moves |> Array.indexed |> Array.exists (fun (axis, m) -> m && axis > 0) then
                    invalidArg "inputs" (sprintf "Onnx.exportGraph: input '%s' changes shape beyond axis 0 with the batch" inputName)
                names[v.Id] <- inputName
                g.Input.Add(valueInfo inputName v)
            | _ -> invalidArg "inputs" (sprintf "Onnx.exportGraph: input '%s' is %O, expected a variable" inputName v)
        for outputName, _ in outputs do
            if not (w.Claim outputName) then
                invalidArg "outputs" (sprintf "Onnx.exportGraph: output name '%s' is also another input's or output's" outputName)
        let outputOf = Dictionary<int64, string>()
        for outputName, e in outputs do
            match e.Op with
            | Op.Var _ -> ()
            | _ -> outputOf.TryAdd(e.Id, outputName) |> ignore

        // Fused groups, and the nodes the ONNX graph needs: a group's inner nodes only where something else
        // reads them (a reverse walk from the outputs).
        let groups = Dictionary<int64, Fused>()
        for node in order do
            fused node |> Option.iter (fun f -> groups[node.Id] <- f)
        let needed = HashSet<int64>(outputs |> Seq.map (fun (_, e) -> e.Id))
        for position in count - 1 .. -1 .. 0 do
            let node = order[position]
            if needed.Contains node.Id then
                let reads =
                    match groups.TryGetValue node.Id with
                    | true, f -> f.Reads
                    | _ -> List.ofSeq node.Operands
                for r in reads do
                    needed.Add r.Id |> ignore

        // Parameters: initializers under their variables' names, claimed before any generated name could take one.
        for node in order do
            match node.Op with
            | Op.Var v when needed.Contains node.Id && not (names.ContainsKey node.Id) ->
                match parameters.TryFind v with
                | Some t ->
                    if not (Shape.equal t.Shape node.Shape) then
                        invalidArg
                            "parameters"
                            (sprintf "Onnx.exportGraph: parameter '%s' has shape %s but its variable %O" v (Shape.show t.Shape) node)
                    if not (w.Claim v) then
                        invalidArg "parameters" (sprintf "Onnx.exportGraph: parameter '%s' has the name of an input or output" v)
                    g.Initializer.Add(OnnxTensor.ofTensor v (Tensor.cast dtype t))
                    names[node.Id] <- v
                | None ->
                    invalidArg "parameters" (sprintf "Onnx.exportGraph: variable '%s' (%O) is neither an input nor a parameter" v node)
            | _ -> ()

        // A node's ONNX operator, named as the graph's output where the node is one.
        let operatorOf (node: Expr) (opType: string) (operands: string list) (attributes: AttributeProto list) =
            let output =
                match outputOf.TryGetValue node.Id with
                | true, o -> Some o
                | _ -> None
            w.Node(opType, operands, attributes, output)
        let windowAttributes (window: Window) =
            [
                attrInts "kernel_shape" window.Kernel
                attrInts "strides" window.Stride
                attrInts "pads" (window.Padding @ window.Padding)
            ]
        let emitFused (node: Expr) (f: Fused) =
            let op = operatorOf node
            let name (e: Expr) = names[e.Id]
            match f with
            | Conv(x, weight, bias, window, groups) ->
                let attributes =
                    windowAttributes window @ [ attrInts "dilations" window.Dilation; attrInt "group" (int64 groups) ]
                op "Conv" ([ name x; name weight ] @ (bias |> Option.map name |> Option.toList)) attributes
            | AveragePool(x, window) -> op "AveragePool" [ name x ] (attrInt "count_include_pad" 1L :: windowAttributes window)
            // One ReduceMean rather than GlobalAveragePool, which ONNX Runtime's CPU provider has only in float32.
            | GlobalAveragePool x -> op "ReduceMean" [ name x ] [ attrInts "axes" [ 2; 3 ]; attrInt "keepdims" 1L ]
            | Gemm(a, b, bias) -> op "Gemm" ([ name a; name b ] @ (bias |> Option.map name |> Option.toList)) [ attrInt "transB" 1L ]

        // The batch size at run time, [batch] as int64, read once from axis 0 of the first input.
        let batchSize =
            lazy
                (let shape = w.Op("Shape", [ fst inputs.Head ], [])
                 w.Op("Gather", [ shape; w.Int64s("axis0", [ 0L ]) ], [ attrInt "axis" 0L ]))
        // A node's shape as an int64 tensor computed at run time, each axis that moves with the batch a multiple of
        // the batch size; for shapes that 0 and -1 in a constant cannot write.
        let runtimeShape (fail: string -> string) (node: Expr) =
            match batch, other node with
            | Some b, Some o ->
                let pieces =
                    node.Shape
                    |> Array.mapi (fun axis d ->
                        if d = o[axis] then
                            w.Int64s("dim", [ int64 d ])
                        elif d % b.Size = 0 && d / b.Size * b.Other = o[axis] then
                            if d = b.Size then
                                batchSize.Value
                            else
                                w.Op("Mul", [ batchSize.Value; w.Int64s("factor", [ int64 (d / b.Size) ]) ], [])
                        else
                            fail (
                                sprintf
                                    "axis %d has %d elements at batch %d and %d at %d, not a multiple of the batch"
                                    axis
                                    d
                                    b.Size
                                    o[axis]
                                    b.Other
                            ))
                w.Op("Concat", List.ofArray pieces, [ attrInt "axis" 0L ])
            | _ -> fail "a shape that changes with the batch size, in a graph without a batch"

        let emitOne (position: int) (node: Expr) : string =
            let fail why = unsupported position count node why
            let ins = node.Operands |> Seq.map (fun i -> names[i.Id]) |> Array.ofSeq
            let op = operatorOf node
            let x = if ins.Length > 0 then ins[0] else ""
            let result =
                match node.Op with
                // Named before the walk: inputs and parameters.
                | Op.Var _ -> names[node.Id]
                | Op.Const t when Array.contains true (moving node) ->
                    // A constant made per batch (a recurrent layer's zero state): its one value expanded at run time.
                    let values = t.ToArray()
                    if values |> Array.exists (fun v -> not (v.Equals values[0])) then
                        fail "a constant whose shape changes with the batch size and whose values differ"
                    op "Expand" [ w.Scalar values[0]; runtimeShape fail node ] []
                | Op.Const t -> w.Constant("const", t)
                | Op.Unary u ->
                    let one () = w.Scalar 1.0
                    match u with
                    | UnaryOp.Neg -> op "Neg" [ x ] []
                    | UnaryOp.Exp -> op "Exp" [ x ] []
                    | UnaryOp.Log -> op "Log" [ x ] []
                    | UnaryOp.Sqrt -> op "Sqrt" [ x ] []
                    | UnaryOp.Abs -> op "Abs" [ x ] []
                    | UnaryOp.Sigmoid -> op "Sigmoid" [ x ] []
                    | UnaryOp.Tanh -> op "Tanh" [ x ] []
                    | UnaryOp.Relu -> op "Relu" [ x ] []
                    | UnaryOp.Softplus -> op "Softplus" [ x ] []
                    | UnaryOp.Sign -> op "Sign" [ x ] []
                    | UnaryOp.Step ->
                        let positive = w.Op("Greater", [ x; w.Scalar 0.0 ], [])
                        op "Cast" [ positive ] [ attrInt "to" (int64 (OnnxTensor.code dtype)) ]
                    | UnaryOp.Sin -> op "Sin" [ x ] []
                    | UnaryOp.Cos -> op "Cos" [ x ] []
                    | UnaryOp.Log1p -> op "Log" [ w.Op("Add", [ x; one () ], []) ] []
                    | UnaryOp.Expm1 -> op "Sub" [ w.Op("Exp", [ x ], []); one () ] []
                    | UnaryOp.Erf -> op "Erf" [ x ] []
                    | UnaryOp.Erfc -> op "Sub" [ one (); w.Op("Erf", [ x ], []) ] []
                    | UnaryOp.Gelu ->
                        // x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (ONNX's Gelu is opset 20).
                        let erf = w.Op("Erf", [ w.Op("Mul", [ x; w.Scalar(sqrt 0.5) ], []) ], [])
                        let half = w.Op("Mul", [ x; w.Scalar 0.5 ], [])
                        op "Mul" [ half; w.Op("Add", [ erf; one () ], []) ] []
                    | UnaryOp.Silu -> op "Mul" [ x; w.Op("Sigmoid", [ x ], []) ] []
                    // log sigmoid x = -softplus(-x).
                    | UnaryOp.LogSigmoid -> op "Neg" [ w.Op("Softplus", [ w.Op("Neg", [ x ], []) ], []) ] []
                    | UnaryOp.Floor -> op "Floor" [ x ] []
                    | UnaryOp.Ceil -> op "Ceil" [ x ] []
                    | UnaryOp.Round -> op "Round" [ x ] []
                    | UnaryOp.LeakyRelu slope -> op "LeakyRelu" [ x ] [ attrFloat "alpha" slope ]
                    | UnaryOp.Elu alpha -> op "Elu" [ x ] [ attrFloat "alpha" alpha ]
                    | UnaryOp.Clamp(lo, hi) ->
                        // An absent bound is an empty input name.
                        let bound (v: float) = if Double.IsInfinity v then "" else w.Scalar v
                        op "Clip" [ x; bound lo; bound hi ] []
                | Op.Binary b ->
                    let a, c = ins[0], ins[1]
                    match b with
                    | BinaryOp.Add -> op "Add" [ a; c ] []
                    | BinaryOp.Sub -> op "Sub" [ a; c ] []
                    | BinaryOp.Mul -> op "Mul" [ a; c ] []
                    | BinaryOp.Div -> op "Div" [ a; c ] []
                    | BinaryOp.Pow -> op "Pow" [ a; c ] []
                    | BinaryOp.Equal -> op "Cast" [ w.Op("Equal", [ a; c ], []) ] [ attrInt "to" (int64 (OnnxTensor.code dtype)) ]
                    | BinaryOp.Maximum -> op "Max" [ a; c ] []
                    | BinaryOp.Minimum -> op "Min" [ a; c ] []
                | Op.PowScalar p -> op "Pow" [ x; w.Scalar p ] []
                | Op.MatMul -> op "MatMul" [ ins[0]; ins[1] ] []
                | Op.Permute perm -> op "Transpose" [ x ] [ attrInts "perm" perm ]
                | Op.Reshape shape ->
                    let moves = moving node
                    let target =
                        if not (Array.contains true moves) then
                            Some(shape |> Array.map int64)
                        else
                            // An axis that moves with the batch and is the input's same axis is copied (0); one
                            // other moving axis is inferred (-1); more are computed at run time.
                            let source = node.Operands[0]
                            let sourceOther = other source
                            let copied axis =
                                axis < source.Rank
                                && source.Shape[axis] = shape[axis]
                                && (match sourceOther, other node with
                                    | Some s, Some o -> s[axis] = o[axis]
                                    | _ -> false)
                            let target = shape |> Array.mapi (fun axis d -> if moves[axis] && copied axis then 0L else int64 d)
                            let left = moves |> Array.indexed |> Array.filter (fun (axis, m) -> m && target[axis] <> 0L)
                            match left with
                            | [||] -> Some target
                            | [| axis, _ |] ->
                                target[axis] <- -1L
                                Some target
                            | _ -> None
                    match target with
                    | Some target -> op "Reshape" [ x; w.Int64s("shape", target) ] []
                    | None -> op "Reshape" [ x; runtimeShape fail node ] []
                | Op.BroadcastTo shape ->
                    if Array.contains true (moving node) then
                        op "Expand" [ x; runtimeShape fail node ] []
                    else
                        op "Expand" [ x; w.Int64s("shape", shape |> Array.map int64) ] []
                | Op.Reduce(kind, axis, keepDim) ->
                    let keep = attrInt "keepdims" (if keepDim then 1L else 0L)
                    let opType =
                        match kind with
                        | ReduceOp.Sum -> "ReduceSum"
                        | ReduceOp.Mean -> "ReduceMean"
                        | ReduceOp.Max -> "ReduceMax"
                        | ReduceOp.Prod -> "ReduceProd"
                        | ReduceOp.LogSumExp -> "ReduceLogSumExp"
                    let axes = axis |> Option.map (fun a -> [ a ]) |> Option.defaultValue [ 0 .. node.Operands[0].Rank - 1 ]
                    // ReduceSum takes its axes as an input from opset 13; the others as an attribute until opset 18.
                    if kind = ReduceOp.Sum then
                        op opType [ x; w.Int64s("axes", axes |> List.map int64) ] [ keep ]
                    else
                        op opType [ x ] [ attrInts "axes" axes; keep ]
                | Op.Concat axis -> op "Concat" (List.ofArray ins) [ attrInt "axis" (int64 axis) ]
                | Op.Slice(axis, start, length, step) ->
                    let source = node.Operands[0]
                    let whole = start = 0 && step = 1 && length = source.Shape[axis]
                    if (moving node)[axis] && not (whole && (moving source)[axis]) then
                        fail "a slice of part of an axis that changes with the batch size"
                    let stop =
                        if whole then Int64.MaxValue
                        // Backwards to the first element: a negative end would count from the end.
                        elif start + length * step < 0 then Int64.MinValue
                        else int64 (start + length * step)
                    op
                        "Slice"
                        [
                            x
                            w.Int64s("starts", [ int64 start ])
                            w.Int64s("ends", [ stop ])
                            w.Int64s("axes", [ int64 axis ])
                            w.Int64s("steps", [ int64 step ])
                        ]
                        []
                | Op.Pad(axis, before, after, interior, value) ->
                    if interior <> 0 then fail "ONNX's Pad has no interior padding"
                    let rank = node.Rank
                    let pads = Array.zeroCreate (2 * rank)
                    pads[axis] <- int64 before
                    pads[rank + axis] <- int64 after
                    op "Pad" [ x; w.Int64s("pads", pads); w.Scalar value ] [ attrString "mode" "constant" ]
                | Op.Gather axis ->
                    let indices = w.Op("Cast", [ ins[1] ], [ attrInt "to" (int64 TensorProto.Types.DataType.Int64) ])
                    op "Gather" [ ins[0]; indices ] [ attrInt "axis" (int64 axis) ]
                | Op.OneHot classes ->
                    // 1 where the label equals the class: labels [...; 1] against 0..classes-1.
                    let labels = w.Op("Unsqueeze", [ x; w.Int64s("axes", [ -1L ]) ], [])
                    let classes = w.Constant("classes", Tensor.arange Float64 classes)
                    op "Cast" [ w.Op("Equal", [ labels; classes ], []) ] [ attrInt "to" (int64 (OnnxTensor.code dtype)) ]
                | Op.Softmax axis -> op "Softmax" [ x ] [ attrInt "axis" (int64 axis) ]
                | Op.LogSoftmax axis -> op "LogSoftmax" [ x ] [ attrInt "axis" (int64 axis) ]
                | Op.AddN -> op "Sum" (List.ofArray ins) []
                | Op.Unfold window ->
                    // A depthwise convolution with one-hot kernels writes the windows' taps as channels.
                    let source = node.Operands[0]
                    let channels = source.Shape[1]
                    let spatial = window.Kernel.Length
                    let kernels = w.Constant("unfold_kernel", unfoldKernel channels window.Kernel)
                    let attributes =
                        windowAttributes window @ [ attrInts "dilations" window.Dilation; attrInt "group" (int64 channels) ]
                    if spatial = 1 then
                        op "Conv" [ x; kernels ] attributes
                    else
                        let planes = w.Op("Conv", [ x; kernels ], attributes)
                        op "Reshape" [ planes; w.Int64s("shape", [ 0L; int64 node.Shape[1]; -1L ]) ] []
                | Op.MaxPoolPick window ->
                    if not (obj.ReferenceEquals(node.Operands[0], node.Operands[1])) then
                        fail "values picked at the arg-max of other keys (max pooling reads one tensor)"
                    op "MaxPool" [ x ] (windowAttributes window @ [ attrInts "dilations" window.Dilation ])
                | Op.Where ->
                    let condition = w.Op("Cast", [ ins[0] ], [ attrInt "to" (int64 TensorProto.Types.DataType.Bool) ])
                    op "Where" [ condition; ins[1]; ins[2] ] []
                | Op.Cumsum(axis, reverse) ->
                    op "CumSum" [ x; w.Int64s("axis", [ int64 axis ]) ] [ attrInt "reverse" (if reverse then 1L else 0L) ]
                | Op.ScatterAdd _
                | Op.Fold _
                | Op.MaxPoolScatter _ ->
                    fail "it is a gradient's operation (the adjoint of gather, unfold or max pooling), not one of inference"
                | Op.Custom c -> fail (sprintf "'%s' is a user-defined operation, whose kernel is .NET code" c.Name)
            result

        for position in 0 .. count - 1 do
            let node = order[position]
            if needed.Contains node.Id then
                names[node.Id] <-
                    match groups.TryGetValue node.Id with
                    | true, f -> emitFused node f
                    | _ -> emitOne position node

        // Outputs that are inputs, parameters or another output's node are copies under their own names.
        for outputName, e in outputs do
            let value = names[e.Id]
            if value <> outputName then w.Node("Identity", [ value ], [], Some outputName) |> ignore
            g.Output.Add(valueInfo outputName e)
        g

    /// The ModelProto of a graph, opset 17.
    let model (graph: GraphProto) (metadata: (string * string) list) =
        let m = ModelProto(IrVersion = IrVersion, ProducerName = "FuncFlow", Graph = graph)
        let version = typeof<Expr>.Assembly.GetName().Version
        m.ProducerVersion <- if isNull version then "" else version.ToString()
        m.OpsetImport.Add(OperatorSetIdProto(Domain = "", Version = Opset))
        for key, value in metadata do
            m.MetadataProps.Add(StringStringEntryProto(Key = key, Value = value))
        m

    /// Writes a model to a file.
    let write (path: string) (m: ModelProto) =
        use stream = File.Create path
        m.WriteTo stream

    /// Exports expressions over named inputs (fixed shapes).
    let exportGraph (inputs: (string * Expr) list) (outputs: (string * Expr) list) (parameters: Map<string, Tensor>) (path: string) =
        write path (model (graph "funcflow" inputs outputs parameters None) [])

    /// A model's evaluation-mode graph with axis 0 of its input the symbolic batch: traced at the given shape
    /// and at another batch size, so that the axes that grow with the batch are known.
    let exportModel (m: Model) (inputShape: int[]) (path: string) =
        if isNull (box m) then nullArg "model"
        if isNull inputShape || inputShape.Length = 0 || inputShape |> Array.exists (fun d -> d <= 0) then
            invalidArg
                "inputShape"
                (sprintf
                    "Onnx.exportModel: the input shape must have a batch axis and positive sizes, got %s"
                    (if isNull inputShape then "null" else Shape.show inputShape))
        let trace (size: int) =
            let shape = Array.copy inputShape
            shape[0] <- size
            let input = Expr.varOf m.DType "input" shape
            let g = m.Build(input, false)
            input, g
        let size = inputShape[0]
        let otherSize = size + 1
        let input, traced = trace size
        let _, second = trace otherSize
        let order = Graph.topoSort [ traced.Output ]
        let otherOrder = Graph.topoSort [ second.Output ]
        let sameStructure =
            order.Length = otherOrder.Length
            && Array.forall2 (fun (a: Expr) (b: Expr) -> fst a.Op.Describe = fst b.Op.Describe && a.Rank = b.Rank) order otherOrder
        if not sameStructure then
            invalidOp (
                sprintf
                    "Onnx.exportModel: the model (%s) builds different graphs at batch sizes %d and %d, so its batch axis cannot be symbolic"
                    (m.Layer.Describe())
                    size
                    otherSize
            )
        let shapes = Dictionary<int64, int[]>()
        Array.iter2 (fun (a: Expr) (b: Expr) -> shapes[a.Id] <- b.Shape) order otherOrder
        let values = Seq.append (Map.toSeq m.Parameters) (Map.toSeq m.Buffers) |> Map.ofSeq
        let graph =
            graph
                "funcflow"
                [ "input", input ]
                [ "output", traced.Output ]
                values
                (Some { Size = size; Other = otherSize; Shapes = shapes })
        write path (model graph [ ModelFile.ArchitectureKey, m.Layer.Describe() ])

    /// Exports a model file written by Model.Save: its architecture from the metadata "funcflow.model"
    /// (LayerDescription.parse), its values and dtype from its tensors.
    let exportFile (modelPath: string) (inputShape: int[]) (onnxPath: string) =
        let description =
            match (Safetensors.loadMetadata modelPath).TryFind ModelFile.ArchitectureKey with
            | Some d -> d
            | None ->
                raise (
                    DataFormatException(
                        sprintf
                            "%s: no '%s' metadata, so the architecture is unknown (Model.Save records it)"
                            modelPath
                            ModelFile.ArchitectureKey
                    )
                )
        let layer =
            try
                LayerDescription.parse description
            with :? ArgumentException as e ->
                raise (DataFormatException(sprintf "%s: the architecture it records cannot be built: %s" modelPath e.Message, e))
        let dtype =
            Safetensors.load modelPath
            |> Seq.tryHead
            |> Option.map (fun kv -> kv.Value.DType)
            |> Option.defaultValue Float32
        exportModel (Model.Create(layer, 0, dtype).Load modelPath) inputShape onnxPath
