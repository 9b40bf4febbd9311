/// ONNX's own node tests (Debian's libonnx-testdata) through the importer: every float32/float64 test of a claimed
/// operator must pass, and the per-operator table in docs/onnx.md must equal the one computed here.
module FuncFlow.Onnx.Tests.NodeSuiteTests

open System
open System.IO
open Expecto
open FuncFlow
open FuncFlow.Onnx
open FuncFlow.Tests
open FuncFlow.Onnx.Tests.Support
open global.Onnx

type Outcome =
    | Passed
    | Failed of string
    | Skipped of string

/// ONNX's backend tests compare with numpy's assert_allclose(rtol=1e-3, atol=1e-7).
let private close (expected: Tensor) (actual: Tensor) =
    if expected.Shape <> actual.Shape then
        Some(sprintf "shape %s, expected %s" (Shape.show actual.Shape) (Shape.show expected.Shape))
    else
        let e, a = Tensor.toArray expected, Tensor.toArray actual
        Array.zip e a
        |> Array.tryFindIndex (fun (e, a) -> not (abs (a - e) <= 1e-7 + 1e-3 * abs e || (Double.IsNaN e && Double.IsNaN a) || e = a))
        |> Option.map (fun i -> sprintf "element %d is %g, expected %g" i a[i] e[i])

let private floatCode (code: int) = (OnnxTensor.dtypeOf code).IsSome

let private typeOf (v: ValueInfoProto) = if isNull v.Type || isNull v.Type.TensorType then None else Some v.Type.TensorType.ElemType

/// Why a test is not run, if it is not: types FuncFlow does not compute in, training mode, unclaimed operators.
let private skipReason (model: ModelProto) =
    let graph = model.Graph
    let nonFloat (values: ValueInfoProto seq) =
        values
        |> Seq.tryPick (fun v ->
            match typeOf v with
            | None -> Some "sequence or optional values"
            | Some code when not (floatCode code) -> Some(OnnxTensor.codeName code)
            | _ -> None)
    let training =
        graph.Node
        |> Seq.exists (fun n ->
            n.Attribute |> Seq.exists (fun a -> a.Name = "training_mode" && a.I <> 0L)
            || n.OpType = "Dropout" && n.Input.Count > 2 && n.Input[2] <> "")
    let unclaimed =
        graph.Node
        |> Seq.tryFind (fun n -> (n.Domain <> "" && n.Domain <> "ai.onnx") || not (List.contains n.OpType Onnx.operators))
    match nonFloat graph.Output with
    | Some t -> Some(sprintf "%s outputs" t)
    | None ->
        match
            graph.Input
            |> Seq.choose typeOf
            |> Seq.tryFind (fun c -> not (floatCode c) && not (ElemType.isExact c)),
            nonFloat graph.Input
        with
        | Some c, _ -> Some(sprintf "%s inputs" (OnnxTensor.codeName c))
        | None, Some "sequence or optional values" -> Some "sequence or optional values"
        | _ ->
            if training then
                Some "training mode"
            else
                unclaimed |> Option.map (fun n -> sprintf "unclaimed operator %s" n.OpType)

/// Runs one test folder: the model imported with its integer and boolean inputs, and the float inputs named in
/// `initialized`, bound as initializers from each data set (real models hold such values in initializers),
/// evaluated on the other float inputs, compared with the outputs.
let private read (set: string) (prefix: string) =
    Directory.GetFiles(set, prefix + "_*.pb")
    |> Array.sortBy (fun f -> int (Path.GetFileNameWithoutExtension(f).Substring(prefix.Length + 1)))
    |> Array.map (fun f -> OnnxTensor.parseFile TensorProto.Parser f)

/// The model with a data set's integer and boolean inputs, and the float inputs named in `initialized`, as
/// initializers, and the values of the other inputs.
let private bind (initialized: string list) (set: string) (model: ModelProto) =
    let bound = model.Clone()
    let env = Collections.Generic.Dictionary<string, Tensor>()
    read set "input"
    |> Array.iteri (fun i proto ->
        let name = model.Graph.Input[i].Name
        if floatCode proto.DataType && not (List.contains name initialized) then
            env[name] <- OnnxTensor.toTensor set proto
        else
            let constant = proto.Clone()
            constant.Name <- name
            bound.Graph.Initializer.Add constant)
    bound, env

let private runWith (initialized: string list) (folder: string) (model: ModelProto) : Outcome =
    let path = Path.Combine(folder, "model.onnx")
    let sets = Directory.GetDirectories(folder, "test_data_set_*") |> Array.sort
    let results =
        sets
        |> Array.map (fun set ->
            let outputs = read set "output"
            let bound, env = bind initialized set model
            try
                let imported = Import.build path Map.empty bound
                let values = Onnx.evaluate imported (env |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq)
                outputs
                |> Array.mapi (fun i proto ->
                    let name = model.Graph.Output[i].Name
                    close (OnnxTensor.toTensor set proto) values[name] |> Option.map (sprintf "output '%s': %s" name))
                |> Array.tryPick id
            with e ->
                Some(sprintf "%s: %s" (e.GetType().Name) e.Message))
    match results |> Array.tryPick id with
    | Some message -> Failed message
    | None -> Passed

let private run = runWith []

/// Every node test: (test name, operator, outcome). A test's operator is its model's first node's op type; an
/// "_expanded" test (the operator as its ONNX function body) counts for the operator it expands.
let private suite =
    lazy
        (Directory.GetDirectories Support.nodeTests
         |> Array.sort
         |> Array.map (fun folder ->
             let name = Path.GetFileName folder
             let model = Import.read (Path.Combine(folder, "model.onnx"))
             let operator =
                 let original = Path.Combine(Support.nodeTests, name.Replace("_expanded", ""), "model.onnx")
                 let source = if name.EndsWith "_expanded" && File.Exists original then Import.read original else model
                 source.Graph.Node[0].OpType
             let partial =
                 model.Graph.Node
                 |> Seq.tryPick (fun n -> Operators.partial |> List.tryFind (fun (op, _) -> op = n.OpType))
             let outcome =
                 match skipReason model, partial with
                 | Some reason, _ -> Skipped reason
                 | None, None -> run folder model
                 | None, Some(op, what) ->
                     // A test of the part an operator lacks is skipped, the rest must pass.
                     match run folder model with
                     | Failed message when message.StartsWith "NotSupportedException" && message.Contains(sprintf ", %s):" op) ->
                         Skipped(sprintf "%s: not imported: %s" op (what.Split(" (")[0]))
                     | outcome -> outcome
             name, operator, outcome))

/// The per-operator table as docs/onnx.md holds it.
let private table () =
    let rows =
        suite.Value
        |> Array.groupBy (fun (_, op, _) -> op)
        |> Array.sortBy fst
        |> Array.map (fun (op, tests) ->
            let count f = tests |> Array.filter (fun (_, _, o) -> f o) |> Array.length
            let passed = count (fun o -> o = Passed)
            let failed =
                count (function
                    | Failed _ -> true
                    | _ -> false)
            let reasons =
                tests
                |> Array.choose (fun (_, _, o) ->
                    match o with
                    | Skipped r -> Some r
                    | _ -> None)
                |> Array.countBy id
                |> Array.map (fun (r, c) -> sprintf "%d %s" c r)
            let claimed =
                if Operators.partial |> List.exists (fun (p, _) -> p = op) then "partly"
                elif List.contains op Onnx.operators then "yes"
                else "no"
            sprintf
                "| %s | %s | %d | %d | %d | %s |"
                op
                claimed
                passed
                failed
                (tests.Length - passed - failed)
                (String.Join("; ", reasons)))
    String.Join(
        "\n",
        [|
            "| operator | claimed | passed | failed | skipped | why skipped |"
            "|---|---|---|---|---|---|"
            yield! rows
        |]
    )

let private startMarker, endMarker = "<!-- import-table: start -->", "<!-- import-table: end -->"

let private docsPath () =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then
            failtest "the repository root (FuncFlow.sln) is not above the test program"
        elif File.Exists(Path.Combine(dir.FullName, "FuncFlow.sln")) then
            Path.Combine(dir.FullName, "docs", "onnx.md")
        else
            up dir.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

[<Tests>]
let tests =
    moduleTests
        "NodeSuiteTests"
        [
            test "every float32/float64 node test of a claimed operator passes" {
                requireNodeTests ()
                let failures =
                    suite.Value
                    |> Array.choose (fun (name, _, o) ->
                        match o with
                        | Failed m -> Some(name + ": " + m)
                        | _ -> None)
                if failures.Length > 0 then
                    failtestf "%d node tests fail:\n%s" failures.Length (String.Join("\n", failures))
                let passed = suite.Value |> Array.filter (fun (_, _, o) -> o = Passed) |> Array.length
                Expect.isGreaterThan passed 300 "node tests that ran and passed"
            }
            test "tests whose sizing inputs are graph inputs pass with those inputs in initializers" {
                // The table skips them (a value computed at run time cannot size an output); a model holds such
                // values in initializers, which the importer reads as known values.
                requireNodeTests ()
                let sizing =
                    [
                        "test_resize", [ "scales"; "roi" ]
                        "test_upsample", [ "scales" ]
                        "test_onehot", [ "depth" ]
                        "test_range_float", [ "start"; "limit"; "delta" ]
                    ]
                let runs =
                    [
                        for folder in Directory.GetDirectories Support.nodeTests |> Array.sort do
                            let name = Path.GetFileName folder
                            match sizing |> List.tryFind (fun (prefix, _) -> name.StartsWith prefix) with
                            | Some(_, inputs) ->
                                let model = Import.read (Path.Combine(folder, "model.onnx"))
                                // Tests skipped for another reason (integer outputs, an unclaimed operator) stay skipped.
                                if (skipReason model).IsNone then yield name, runWith inputs folder model
                            | None -> ()
                    ]
                Expect.isGreaterThan runs.Length 25 "Resize's, Upsample's, OneHot's and Range's node tests"
                for name, outcome in runs do
                    if outcome <> Passed then failtestf "%s: %A" name outcome
            }
            test "node tests with mutated attributes, inputs and operators raise only the importer's documented errors" {
                // Files from strangers: every attribute of each claimed operator's node tests set to values
                // outside its range, an input dropped, the operator swapped for every other claimed one. Importing may refuse them
                // (DataFormatException or NotSupportedException, naming the node), never fail otherwise (an index out
                // of range, a null reference, a division by zero, an unnamed ArgumentException).
                requireNodeTests ()
                let claimed = Onnx.operators
                let variants (model: ModelProto) : (string * ModelProto) list =
                    let node = model.Graph.Node[0]
                    let edit (what: string) (change: NodeProto -> unit) =
                        let copy = model.Clone()
                        change copy.Graph.Node[0]
                        what, copy
                    [
                        for i in 0 .. node.Attribute.Count - 1 do
                            let a = node.Attribute[i]
                            match a.Type with
                            | AttributeProto.Types.AttributeType.Int ->
                                for v in [ -1L; 0L; 1L <<< 40; -(1L <<< 40) ] do
                                    yield edit (sprintf "%s=%d" a.Name v) (fun n -> n.Attribute[i].I <- v)
                            | AttributeProto.Types.AttributeType.Ints ->
                                yield edit (sprintf "%s=[]" a.Name) (fun n -> n.Attribute[i].Ints.Clear())
                                for v in [ -1L; 0L; 1L <<< 40 ] do
                                    yield edit (sprintf "%s+[%d]" a.Name v) (fun n -> n.Attribute[i].Ints.Add v)
                                    yield
                                        edit (sprintf "%s all %d" a.Name v) (fun n ->
                                            for j in 0 .. n.Attribute[i].Ints.Count - 1 do
                                                n.Attribute[i].Ints[ j ] <- v)
                            | AttributeProto.Types.AttributeType.Float ->
                                for v in [ nan; -1.0; 0.0; infinity ] do
                                    yield edit (sprintf "%s=%g" a.Name v) (fun n -> n.Attribute[i].F <- float32 v)
                            | AttributeProto.Types.AttributeType.String ->
                                yield
                                    edit (sprintf "%s=bogus" a.Name) (fun n ->
                                        n.Attribute[i].S <- Google.Protobuf.ByteString.CopyFromUtf8 "bogus")
                            | _ -> ()
                        if node.Input.Count > 0 then
                            yield edit "last input dropped" (fun n -> n.Input.RemoveAt(n.Input.Count - 1))
                            yield edit "first input absent" (fun n -> n.Input[0] <- "")
                        for other in claimed do
                            if other <> node.OpType then yield edit (sprintf "as %s" other) (fun n -> n.OpType <- other)
                    ]
                let failures = Collections.Generic.List<string>()
                let mutable count = 0
                for folder in Directory.GetDirectories Support.nodeTests |> Array.sort do
                    let path = Path.Combine(folder, "model.onnx")
                    let model = Import.read path
                    let sets = Directory.GetDirectories(folder, "test_data_set_*")
                    if sets.Length > 0 && model.Graph.Node.Count = 1 && (skipReason model).IsNone then
                        for what, variant in variants model do
                            let bound, _ = bind [] (Array.min sets) variant
                            count <- count + 1
                            try
                                Import.build path Map.empty bound |> ignore
                            with
                            | :? FuncFlow.Data.DataFormatException
                            | :? NotSupportedException as e when e.Message.Contains(path + ": node '") -> ()
                            | e ->
                                let at = e.StackTrace.Split('\n') |> Array.tryHead |> Option.defaultValue ""
                                failures.Add(
                                    sprintf "%s (%s): %s: %s %s" (Path.GetFileName folder) what (e.GetType().Name) e.Message (at.Trim())
                                )
                Expect.isGreaterThan count 50000 "mutated models imported"
                if failures.Count > 0 then
                    failtestf
                        "%d of %d mutated models fail otherwise:\n%s"
                        failures.Count
                        count
                        (String.Join("\n", Seq.truncate 40 failures))
            }
            test "docs/onnx.md's import table is the computed one" {
                requireNodeTests ()
                let path = docsPath ()
                let text = File.ReadAllText path
                let first, last = text.IndexOf startMarker, text.IndexOf endMarker
                if first < 0 || last < first then
                    failtestf "%s lacks the markers %s ... %s" path startMarker endMarker
                let committed = text.Substring(first + startMarker.Length, last - first - startMarker.Length).Trim()
                let computed = table ()
                if committed <> computed then
                    if Environment.GetEnvironmentVariable "FUNCFLOW_UPDATE_ONNX_TABLE" = "1" then
                        File.WriteAllText(
                            path,
                            text.Substring(0, first + startMarker.Length) + "\n" + computed + "\n" + text.Substring last
                        )
                    else
                        failtestf
                            "docs/onnx.md's import table differs from the computed one; regenerate it with FUNCFLOW_UPDATE_ONNX_TABLE=1 (see docs/onnx.md). Computed:\n%s"
                            computed
            }
        ]
