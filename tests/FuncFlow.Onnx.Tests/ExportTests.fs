/// Exports run in ONNX Runtime on seeded random inputs and compared with FuncFlow's own evaluation.
module FuncFlow.Onnx.Tests.ExportTests

// ONNX's schema (namespace Onnx), opened before FuncFlow, whose FuncFlow.Onnx would shadow it.
open Onnx
open System
open System.IO
open Expecto
open Microsoft.FSharp.Reflection
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Onnx
open FuncFlow.Tests
open FuncFlow.Onnx.Tests.Support

/// Where the exported files go.
let private folder = tempFolder ()

let private fileFor (name: string) =
    Path.Combine(folder, String(name |> String.map (fun c -> if Char.IsLetterOrDigit c || c = '-' then c else '_')) + ".onnx")

/// Values for an input: anywhere in [-2, 2], positive ([0.2, 2]: logarithms, roots, powers), or whole numbers
/// in [0, n) (labels, indices, equal pairs).
type private Domain =
    | Signed
    | Positive
    | Whole of int

let private sample (dtype: DType) (seed: int) (shape: int[]) (domain: Domain) =
    match domain with
    | Signed -> Tensor.randUniform dtype seed shape -2.0 2.0
    | Positive -> Tensor.randUniform dtype seed shape 0.2 2.0
    | Whole n ->
        let u = (Tensor.randUniform Float64 seed shape 0.0 (float n)).ToArray()
        Tensor.create shape (u |> Array.map floor) |> Tensor.cast dtype

/// Exports f over variables of the given shapes and domains, runs the file in ONNX Runtime and compares its
/// output with FuncFlow's value of f to 1e-5.
let private exportCase (name: string) (dtype: DType) (inputs: (int[] * Domain) list) (f: Expr list -> Expr) =
    let vars = inputs |> List.mapi (fun i (shape, _) -> Expr.varOf dtype (sprintf "x%d" i) shape)
    let values =
        List.map2 (fun (v: Expr) (shape, domain) -> (Expr.tryName v).Value, sample dtype (17 + v.Rank) shape domain) vars inputs
    let y = f vars
    let path = fileFor (sprintf "%s-%s" name dtype.Name)
    Onnx.exportGraph (vars |> List.map (fun v -> (Expr.tryName v).Value, v)) [ "y", y ] Map.empty path
    path, values, y

let private checkGraph (name: string) (dtype: DType) (inputs: (int[] * Domain) list) (f: Expr list -> Expr) =
    let path, values, y = exportCase name dtype inputs f
    let expected = Eval.evaluate (Eval.bindings values) y
    let actual = (Ort.run path values)["y"]
    Expect.equal actual.Shape expected.Shape (name + ": shape")
    Expect.equal actual.DType dtype (name + ": dtype")
    assertClose (sprintf "%s (%s)" name dtype.Name) 1e-5 (expected.ToArray()) (actual.ToArray())

let private unaryOps: UnaryOp list =
    [
        for c in FSharpType.GetUnionCases typeof<UnaryOp> do
            match c.Name with
            | "LeakyRelu" -> yield UnaryOp.LeakyRelu 0.2
            | "Elu" -> yield UnaryOp.Elu 1.5
            | "Clamp" ->
                yield UnaryOp.Clamp(-0.5, 1.25)
                yield UnaryOp.Clamp(-infinity, 1.0)
                yield UnaryOp.Clamp(-1.0, infinity)
            | _ -> yield FSharpValue.MakeUnion(c, [||]) :?> UnaryOp
    ]

let private allCases<'T> () = [ for c in FSharpType.GetUnionCases typeof<'T> -> FSharpValue.MakeUnion(c, [||]) :?> 'T ]

/// (name, inputs, expression) for every elementwise operation, reduction and shape operation the exporter maps.
let private cases: (string * (int[] * Domain) list * (Expr list -> Expr)) list =
    [
        for u in unaryOps do
            let domain =
                match u with
                | UnaryOp.Log
                | UnaryOp.Sqrt
                | UnaryOp.Log1p -> Positive
                | _ -> Signed
            yield sprintf "unary %s %s" u.Name (String.Join(" ", u.Parameters)), [ [| 3; 4 |], domain ], (fun xs -> Expr.unary u xs[0])
        for b in allCases<BinaryOp>() do
            let domains =
                match b with
                | BinaryOp.Pow -> [ Positive; Signed ]
                | BinaryOp.Equal -> [ Whole 3; Whole 3 ]
                | _ -> [ Signed; Signed ]
            // Broadcast: [3; 4] against [4].
            yield sprintf "binary %s" b.Name, [ [| 3; 4 |], domains[0]; [| 4 |], domains[1] ], (fun xs -> Expr.binary b xs[0] xs[1])
        for p in [ 2.0; 0.5; 3.0; -1.5 ] do
            yield sprintf "powScalar %g" p, [ [| 5 |], Positive ], (fun xs -> Expr.powScalar p xs[0])
        for kind in allCases<ReduceOp>() do
            let domain = if kind = ReduceOp.Prod then Positive else Signed
            let all, along, alongKeep =
                match kind with
                | ReduceOp.Sum -> Expr.sum, Expr.sumAxis, Expr.sumAxisKeep
                | ReduceOp.Mean -> Expr.mean, Expr.meanAxis, Expr.meanAxisKeep
                | ReduceOp.Max -> Expr.max, Expr.maxAxis, Expr.maxAxisKeep
                | ReduceOp.Prod -> Expr.prod, Expr.prodAxis, Expr.prodAxisKeep
                | ReduceOp.LogSumExp -> Expr.logSumExp, Expr.logSumExpAxis, Expr.logSumExpAxisKeep
            let shape = [ [| 2; 3; 4 |], domain ]
            yield sprintf "reduce %s" kind.Name, shape, (fun xs -> all xs[0])
            yield sprintf "reduce %s axis=1" kind.Name, shape, (fun xs -> along 1 xs[0])
            yield sprintf "reduce %s axis=-1" kind.Name, shape, (fun xs -> along -1 xs[0])
            yield sprintf "reduce %s axis=0 keepDim" kind.Name, shape, (fun xs -> alongKeep 0 xs[0])
        yield "matmul batched", [ [| 2; 3; 4 |], Signed; [| 4; 5 |], Signed ], (fun xs -> Expr.matmul xs[0] xs[1])
        yield "permute", [ [| 2; 3; 4 |], Signed ], (fun xs -> Expr.permute [| 2; 0; 1 |] xs[0])
        yield "reshape", [ [| 2; 3; 4 |], Signed ], (fun xs -> Expr.reshape [| 4; -1 |] xs[0])
        yield "broadcastTo", [ [| 3; 1 |], Signed ], (fun xs -> Expr.broadcastTo [| 2; 3; 4 |] xs[0])
        yield "concat", [ [| 2; 3 |], Signed; [| 2; 2 |], Signed ], (fun xs -> Expr.concat 1 [ xs[0]; xs[1]; xs[0] ])
        yield "slice", [ [| 5; 6 |], Signed ], (fun xs -> Expr.slice 1 2 3 xs[0])
        yield "strided slice", [ [| 5; 6 |], Signed ], (fun xs -> Expr.stridedSlice 1 (Some 1) None 2 xs[0])
        yield "backward slice", [ [| 5; 6 |], Signed ], (fun xs -> Expr.flip [ 0 ] xs[0])
        yield "pad", [ [| 2; 3 |], Signed ], (fun xs -> Expr.padWith 1.5 1 2 1 xs[0])
        yield "gather", [ [| 5; 3 |], Signed; [| 4 |], Whole 5 ], (fun xs -> Expr.gather xs[1] xs[0])
        yield "indexSelect", [ [| 2; 5 |], Signed; [| 3 |], Whole 5 ], (fun xs -> Expr.indexSelect 1 xs[1] xs[0])
        yield "oneHot", [ [| 6 |], Whole 4 ], (fun xs -> Expr.oneHot 4 xs[0])
        yield "softmax", [ [| 3; 4 |], Signed ], (fun xs -> Expr.softmax 0 xs[0])
        yield "logSoftmax", [ [| 3; 4 |], Signed ], (fun xs -> Expr.logSoftmax -1 xs[0])
        yield "addN", [ [| 3 |], Signed; [| 3 |], Signed ], (fun xs -> Expr.addN [ xs[0]; xs[1]; xs[0] ])
        yield "where", [ [| 3; 4 |], Whole 2; [| 3; 4 |], Signed; [| 4 |], Signed ], (fun xs -> Expr.where xs[0] xs[1] xs[2])
        yield "cumsum", [ [| 3; 4 |], Signed ], (fun xs -> Expr.cumsum 1 xs[0])
        yield "reverse cumsum", [ [| 3; 4 |], Signed ], (fun xs -> Expr.reverseCumsum 0 xs[0])
        yield
            "unfold 2-D",
            [ [| 2; 3; 7; 6 |], Signed ],
            (fun xs -> Expr.unfold { Kernel = [ 3; 2 ]; Stride = [ 2; 1 ]; Padding = [ 1; 0 ]; Dilation = [ 1; 2 ] } xs[0])
        yield
            "unfold 1-D",
            [ [| 2; 3; 9 |], Signed ],
            (fun xs -> Expr.unfold { Kernel = [ 3 ]; Stride = [ 2 ]; Padding = [ 1 ]; Dilation = [ 1 ] } xs[0])
        yield
            "maxPool2d",
            [ [| 2; 3; 7; 6 |], Signed ],
            (fun xs -> Expr.maxPool2d { Kernel = [ 3; 2 ]; Stride = [ 2; 2 ]; Padding = [ 1; 1 ] } xs[0])
        yield "avgPool2d", [ [| 2; 3; 6; 6 |], Signed ], (fun xs -> Expr.avgPool2d (PoolSpec.Create [ 2; 3 ]) xs[0])
        yield "globalAvgPool2d", [ [| 2; 3; 4; 5 |], Signed ], (fun xs -> Expr.globalAvgPool2d xs[0])
        yield
            "conv2d groups",
            [ [| 2; 4; 6; 5 |], Signed; [| 6; 2; 3; 3 |], Signed ],
            (fun xs -> Expr.conv2d { Stride = [ 1; 2 ]; Padding = [ 1; 1 ]; Dilation = [ 1; 1 ]; Groups = 2 } xs[0] xs[1])
    ]

/// The cases whose ONNX operators ONNX Runtime's CPU provider (1.31) has no float64 kernel for: Softplus, Erf,
/// Elu, Conv (unfold is a depthwise convolution) and AveragePool. Their float64 files are still
/// checked by ONNX's checker; a case listed here that runs is a failure, so the list stays true.
let private noFloat64Kernel =
    set
        [
            "unary softplus "
            "unary logSigmoid "
            "unary erf "
            "unary erfc "
            "unary gelu "
            "unary elu alpha=1.5"
            "unfold 2-D"
            "unfold 1-D"
            "avgPool2d"
            "conv2d groups"
        ]

let private exportModel (name: string) (m: Model) (inputShape: int[]) =
    let path = fileFor (sprintf "%s-%s" name m.DType.Name)
    Onnx.exportModel m inputShape path
    path

/// Runs a model exported at the batch of `inputShape` in ONNX Runtime at batch `runBatch`, against Model.Predict.
let private checkModel (name: string) (m: Model) (inputShape: int[]) (runBatch: int) =
    let path = exportModel name m inputShape
    let shape = Array.copy inputShape
    shape[0] <- runBatch
    let x = Tensor.randNormal m.DType 5 shape 0.0 1.0
    let expected = m.Predict x
    let actual = (Ort.run path [ "input", x ])["output"]
    Expect.equal actual.Shape expected.Shape (name + ": output shape")
    assertClose (sprintf "%s (%s)" name m.DType.Name) 1e-5 (expected.ToArray()) (actual.ToArray())
    path

/// Batch norm's running statistics set away from their initial 0 and 1, so evaluation mode shows in the values.
let private withRunningStatistics (m: Model) =
    m.WithBuffers(
        m.Buffers
        |> Map.map (fun name t ->
            if name.EndsWith "running_mean" then Tensor.randNormal m.DType 3 t.Shape 0.0 0.5
            elif name.EndsWith "running_var" then Tensor.randUniform m.DType 4 t.Shape 0.5 2.0
            else t)
    )

let private mlp () = Sequential(Linear(6, 16), ReLU(), Linear(16, 16), Tanh(), Dropout(0.5), Linear(16, 3), Softmax())

let private cnn () =
    Sequential(
        Conv2d(3, 8, 3, 1, 1),
        BatchNorm2d 8,
        ReLU(),
        MaxPool2d 2,
        Conv2d(8, 8, 3, 2, 1, 1, 2, true),
        GELU(),
        LayerNorm [| 8; 4; 4 |],
        AvgPool2d 2,
        AdaptiveAvgPool2d 1,
        Flatten(),
        BatchNorm1d 8,
        Linear(8, 5),
        LeakyReLU(),
        Dropout 0.2,
        LayerNorm 5
    )

let private cnn1d () = Sequential(Conv1d(2, 4, 3, 1, 1), ELU(), SiLU(), Flatten(), Linear(4 * 7, 3), Sigmoid())

/// A causal transformer block with the tanh GELU (ONNX Runtime has no float64 Erf) between linear layers.
let private transformer () =
    Sequential(Linear(4, 8), TransformerBlock(8, 2, 16, true, BlockActivation.GeluTanh), LayerNorm 8, Linear(8, 3))

/// A two-layer bidirectional LSTM over [batch; time; features]: its zero state is made per batch.
let private lstm () =
    Sequential(LSTM(3, 4, { RecurrentOptions.Default with BatchFirst = true; Bidirectional = true; Layers = 2 }), Linear(8, 2))

[<Tests>]
let tests =
    moduleTests
        "Export"
        [
            test "every elementwise, reduction and shape operation agrees with ONNX Runtime, float32 and float64" {
                let unsupported = Collections.Generic.HashSet<string>()
                for name, inputs, f in cases do
                    for dtype in [ Float32; Float64 ] do
                        try
                            checkGraph name dtype inputs f
                        with :? Microsoft.ML.OnnxRuntime.OnnxRuntimeException as e when
                            dtype = Float64 && e.Message.Contains "NotImplemented" ->
                            unsupported.Add name |> ignore
                Expect.equal (Set.ofSeq unsupported) noFloat64Kernel "cases ONNX Runtime has no float64 kernel for"
            }

            test "the table covers every unary, binary and reduction operation" {
                let names = cases |> List.map (fun (n, _, _) -> n)
                for c in FSharpType.GetUnionCases typeof<UnaryOp> do
                    let name = (unaryOps |> List.find (fun u -> (string u).StartsWith c.Name)).Name
                    Expect.isTrue (names |> List.exists (fun n -> n.StartsWith("unary " + name))) ("UnaryOp." + c.Name)
                for b in allCases<BinaryOp>() do
                    Expect.contains names ("binary " + b.Name) "a binary case"
                for r in allCases<ReduceOp>() do
                    Expect.isTrue (names |> List.exists (fun n -> n.StartsWith("reduce " + r.Name + " "))) ("ReduceOp." + r.Name)
            }

            test "an MLP exported at batch 4 runs at batch 7 (float32 and float64)" {
                for dtype in [ Float32; Float64 ] do
                    checkModel "mlp" (Model.Create(mlp (), 11, dtype)) [| 4; 6 |] 7 |> ignore
            }

            // ONNX Runtime has no float64 Conv: the convolutional models run in float32 (float64 files are checked).
            test "LeNet-5 exported at batch 2 runs at batch 3, its input and output dims the symbolic batch" {
                let dtype = Float32
                let path = checkModel "lenet5" (Model.Create(Models.lenet5 (), 3, dtype)) [| 2; 1; 28; 28 |] 3
                let m = ModelProto.Parser.ParseFrom(File.ReadAllBytes path)
                Expect.equal m.OpsetImport[0].Version 17L "opset"
                Expect.equal m.IrVersion 8L "IR version"
                let dims (v: ValueInfoProto) =
                    v.Type.TensorType.Shape.Dim
                    |> Seq.map (fun d -> if d.HasDimParam then d.DimParam else string d.DimValue)
                    |> List.ofSeq
                Expect.equal (m.Graph.Input |> Seq.map dims |> List.ofSeq) [ [ "batch"; "1"; "28"; "28" ] ] "inputs"
                Expect.equal (m.Graph.Output |> Seq.map dims |> List.ofSeq) [ [ "batch"; "10" ] ] "outputs"
                let initializers = m.Graph.Initializer |> Seq.map (fun t -> t.Name) |> Set.ofSeq
                for name in [ "0.weight"; "0.bias"; "11.weight"; "11.bias" ] do
                    Expect.isTrue (initializers.Contains name) (sprintf "initializer '%s'" name)
                // The builders' compositions come back as ONNX's operators: convolutions with their biases, Linear as
                // Gemm with a transposed weight and a bias, flatten as one batch-agnostic reshape.
                let operators = m.Graph.Node |> Seq.countBy (fun n -> n.OpType) |> Map.ofSeq
                Expect.equal operators (Map [ "Conv", 2; "Relu", 4; "MaxPool", 2; "Reshape", 1; "Gemm", 3 ]) "operators"
                for conv in m.Graph.Node |> Seq.filter (fun n -> n.OpType = "Conv") do
                    Expect.equal conv.Input.Count 3 "Conv reads the input, the weight and the bias"
                let metadata = m.MetadataProps |> Seq.map (fun p -> p.Key, p.Value) |> Map.ofSeq
                Expect.equal metadata["funcflow.model"] (Models.lenet5().Describe()) "the architecture in the metadata"
            }

            test "a CNN with batch norm (evaluation mode), grouped convolution, layer norm and pooling runs at another batch" {
                let dtype = Float32
                checkModel "cnn" (withRunningStatistics (Model.Create(cnn (), 8, dtype))) [| 2; 3; 16; 16 |] 5
                |> ignore
            }

            test "a 1-D CNN runs at another batch" {
                let dtype = Float32
                checkModel "cnn1d" (Model.Create(cnn1d (), 9, dtype)) [| 3; 2; 7 |] 1 |> ignore
            }

            test "a causal transformer block runs at another batch (float32 and float64)" {
                for dtype in [ Float32; Float64 ] do
                    checkModel "transformer" (Model.Create(transformer (), 12, dtype)) [| 2; 5; 4 |] 3 |> ignore
            }

            test "an LSTM and a GRU run at another batch" {
                for dtype in [ Float32; Float64 ] do
                    checkModel "lstm" (Model.Create(lstm (), 13, dtype)) [| 2; 6; 3 |] 4 |> ignore
                    let gru = GRU(3, 4, { RecurrentOptions.Default with BatchFirst = true })
                    checkModel "gru" (Model.Create(gru, 14, dtype)) [| 5; 2; 3 |] 1 |> ignore
                // Time-major, axis 0 is time: unrolled once per step, the graph changes with it and cannot be symbolic.
                let timeMajor = Model.Create(GRU(3, 4), 14)
                let e =
                    throws<InvalidOperationException>(fun () -> Onnx.exportModel timeMajor [| 5; 2; 3 |] (fileFor "gru-time"))
                expectMentions e.Message [ "GRU(3, 4, layers=1)"; "different graphs at batch sizes 5 and 6" ]
            }

            test "an operation with no ONNX mapping is a NotSupportedException naming it and its node" {
                let x = Expr.var "x" [| 1; 4; 2 |]
                let folded = Expr.fold [ 4 ] { Kernel = [ 2 ]; Stride = [ 2 ]; Padding = [ 0 ]; Dilation = [ 1 ] } x
                let y = Expr.tanh folded
                let e =
                    throws<NotSupportedException>(fun () -> Onnx.exportGraph [ "x", x ] [ "y", y ] Map.empty (fileFor "fold"))
                expectMentions e.Message [ "fold"; "node 1 of 3"; "(1, 2, 4)"; "gradient" ]
            }

            test "bad arguments are ArgumentExceptions naming the problem" {
                let x = Expr.var "x" [| 2 |]
                let w = Expr.var "w" [| 2 |]
                let path = fileFor "bad"
                let e = throws<ArgumentException>(fun () -> Onnx.exportGraph [ "x", x ] [ "y", x * w ] Map.empty path)
                expectMentions e.Message [ "'w'"; "neither an input nor a parameter" ]
                let e =
                    throws<ArgumentException>(fun () ->
                        Onnx.exportGraph [ "x", x ] [ "y", x * w ] (Map [ "w", Tensor.zeros Float64 [| 3 |] ]) path)
                expectMentions e.Message [ "'w'"; "(3,)" ]
                let e =
                    throws<ArgumentException>(fun () ->
                        Onnx.exportGraph [ "w", x ] [ "y", x * w ] (Map [ "w", Tensor.zeros Float64 [| 2 |] ]) path)
                expectMentions e.Message [ "parameter 'w'"; "name of an input or output" ]
                let e = throws<ArgumentException>(fun () -> Onnx.exportGraph [ "x", x * 2.0 ] [ "y", x ] Map.empty path)
                expectMentions e.Message [ "input 'x'"; "expected a variable" ]
                let m = Model.Create(mlp (), 1)
                let e = throws<ArgumentException>(fun () -> Onnx.exportModel m [| 0; 6 |] path)
                expectMentions e.Message [ "input shape"; "(0, 6)" ]
            }

            test "a parameter may have a name the exporter would otherwise generate" {
                let x = Expr.var "x" [| 3 |]
                let w = Expr.var "Tanh" [| 3 |]
                let y = Expr.tanh (Expr.tanh x) * w
                let path = fileFor "names"
                let wv = Tensor.create [| 3 |] [| 1.0; -2.0; 0.5 |]
                Onnx.exportGraph [ "x", x ] [ "y", y ] (Map [ "Tanh", wv ]) path
                let xv = Tensor.create [| 3 |] [| 0.5; 1.0; -1.5 |]
                let expected = xv.ToArray() |> Array.mapi (fun i v -> tanh (tanh v) * wv.ToArray()[i])
                let actual = (Ort.run path [ "x", xv ])["y"]
                assertClose "y" 1e-12 expected (actual.ToArray())
            }

            test "outputs that are inputs, parameters or one node twice are copies under their own names" {
                let x = Expr.var "x" [| 3 |]
                let w = Expr.var "w" [| 3 |]
                let y = x * w
                let path = fileFor "identity"
                let wv = Tensor.create [| 3 |] [| 1.0; -2.0; 0.5 |]
                Onnx.exportGraph [ "x", x ] [ "a", y; "b", y; "c", x; "d", w ] (Map [ "w", wv ]) path
                let xv = Tensor.create [| 3 |] [| 2.0; 3.0; 4.0 |]
                let out = Ort.run path [ "x", xv ]
                for name in [ "a"; "b" ] do
                    Expect.equal (out[name].ToArray()) [| 2.0; -6.0; 2.0 |] name
                Expect.equal (out["c"].ToArray()) (xv.ToArray()) "c"
                Expect.equal (out["d"].ToArray()) (wv.ToArray()) "d"
            }

            test "a model file exports with the architecture it records, and gives the saved model's outputs" {
                let m = withRunningStatistics (Model.Create(cnn (), 21, Float32))
                let saved = Path.Combine(folder, "cnn-file.safetensors")
                m.Save saved
                let path = fileFor "cnn-file"
                Onnx.exportFile saved [| 1; 3; 16; 16 |] path
                let x = Tensor.randNormal Float32 6 [| 4; 3; 16; 16 |] 0.0 1.0
                let actual = (Ort.run path [ "input", x ])["output"]
                assertClose "cnn from its file" 1e-5 ((m.Predict x).ToArray()) (actual.ToArray())
            }

            test "a model file without an architecture, or of layers FuncFlow cannot rebuild, is a DataFormatException" {
                let plain = Path.Combine(folder, "plain.safetensors")
                Safetensors.save plain [ "w", Tensor.zeros Float32 [| 2 |] ]
                let e = throws<DataFormatException>(fun () -> Onnx.exportFile plain [| 1; 2 |] (fileFor "plain"))
                expectMentions e.Message [ plain; "funcflow.model" ]
                let custom = Path.Combine(folder, "custom.safetensors")
                Safetensors.saveWithMetadata custom (Map [ "funcflow.model", "Sequential(Linear(2, 2, He), Bilinear)" ]) []
                let e = throws<DataFormatException>(fun () -> Onnx.exportFile custom [| 1; 2 |] (fileFor "custom"))
                expectMentions e.Message [ custom; "unknown layer 'Bilinear'" ]
            }

            test "a node inside a fused group that is also read elsewhere is written as well" {
                let x = Expr.var "x" [| 2; 3 |]
                let w = Expr.var "w" [| 4; 3 |]
                let b = Expr.var "b" [| 4 |]
                let product = Expr.matmul x (Expr.transpose w)
                let y = product + b
                let wv, bv = Tensor.randNormal Float64 1 [| 4; 3 |] 0.0 1.0, Tensor.randNormal Float64 2 [| 4 |] 0.0 1.0
                let path = fileFor "inner"
                Onnx.exportGraph [ "x", x ] [ "y", y; "product", Expr.tanh product ] (Map [ "w", wv; "b", bv ]) path
                let m = ModelProto.Parser.ParseFrom(File.ReadAllBytes path)
                Expect.equal (m.Graph.Node |> Seq.map (fun n -> n.OpType) |> List.ofSeq) [ "Gemm"; "Gemm"; "Tanh" ] "operators"
                let xv = Tensor.randNormal Float64 3 [| 2; 3 |] 0.0 1.0
                let out = Ort.run path [ "x", xv ]
                let env = Eval.bindings [ "x", xv; "w", wv; "b", bv ]
                assertClose "y" 1e-12 ((Eval.evaluate env y).ToArray()) (out["y"].ToArray())
                assertClose "product" 1e-12 ((Eval.evaluate env (Expr.tanh product)).ToArray()) (out["product"].ToArray())
            }

            test "every exported file passes ONNX's checker with full shape inference" {
                Ort.check
                    [
                        for dtype in [ Float32; Float64 ] do
                            for name, inputs, f in cases do
                                let path, _, _ = exportCase name dtype inputs f
                                yield path
                            yield exportModel "mlp" (Model.Create(mlp (), 11, dtype)) [| 4; 6 |]
                            yield exportModel "lenet5" (Model.Create(Models.lenet5 (), 3, dtype)) [| 2; 1; 28; 28 |]
                            yield exportModel "cnn" (Model.Create(cnn (), 8, dtype)) [| 2; 3; 16; 16 |]
                            yield exportModel "cnn1d" (Model.Create(cnn1d (), 9, dtype)) [| 3; 2; 7 |]
                            yield exportModel "transformer" (Model.Create(transformer (), 12, dtype)) [| 2; 5; 4 |]
                            yield exportModel "lstm" (Model.Create(lstm (), 13, dtype)) [| 2; 6; 3 |]
                    ]
            }
        ]
