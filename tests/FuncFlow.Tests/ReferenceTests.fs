/// Every operation's forward value and vector-Jacobian product against PyTorch (float64), from
/// reference/reference.json, written by reference/make_reference.py. Gradient checks compare a rule with
/// its own forward, so a wrong forward with a consistent rule passes them; this independent reference
/// does not. Each case runs through one-shot evaluation and through a compiled plan.
/// Tolerance: |actual - expected| <= 1e-12 (1 + |expected|), on values and gradients alike.
module FuncFlow.Tests.ReferenceTests

open System.Text.Json
open FuncFlow
open FuncFlow.NN
open FuncFlow.Tests.Support
open FuncFlow.Tests.TorchReference
open Expecto

let private tolerance = 1e-12

let private reference = lazy (load "reference.json")

let private cases () = (field "cases" reference.Value).EnumerateArray() |> List.ofSeq

let private window (p: JsonElement) : Window =
    let list (name: string) = List.ofArray (ints (field name p))
    {
        Kernel = list "kernel"
        Stride = list "stride"
        Padding = list "padding"
        Dilation = list "dilation"
    }

let private poolSpec (p: JsonElement) : PoolSpec =
    let list (name: string) = List.ofArray (ints (field name p))
    { Kernel = list "kernel"; Stride = list "stride"; Padding = list "padding" }

/// The case's operation built with FuncFlow's builders from its operands.
let private build (op: string) (p: JsonElement) (xs: Expr list) : Expr =
    let int (name: string) = (field name p).GetInt32()
    let axes () = List.ofArray (ints (field "axes" p))
    let keepDim () = (field "keepDim" p).GetBoolean()
    let reduce (all: Expr -> Expr) (dropped: int -> Expr -> Expr) (kept: int -> Expr -> Expr) =
        match (field "axis" p).ValueKind, (field "keepDim" p).GetBoolean() with
        | JsonValueKind.Null, false -> all xs[0]
        | JsonValueKind.Null, true -> failwith "reference: FuncFlow reduces over all axes without keepDim only"
        | _, false -> dropped (int "axis") xs[0]
        | _, true -> kept (int "axis") xs[0]
    match List.tryFind (fst >> (=) op) unaryOps, List.tryFind (fst >> (=) op) binaryOps with
    | Some(_, f), _ -> f xs[0]
    | _, Some(_, f) -> f xs[0] xs[1]
    | None, None ->
        match op with
        | "powScalar" -> Expr.powScalar (number (field "p" p)) xs[0]
        | "matmul" -> Expr.matmul xs[0] xs[1]
        | "permute" -> Expr.permute (ints (field "perm" p)) xs[0]
        | "reshape" -> Expr.reshape (ints (field "shape" p)) xs[0]
        | "broadcastTo" -> Expr.broadcastTo (ints (field "shape" p)) xs[0]
        | "sum" -> reduce Expr.sum Expr.sumAxis Expr.sumAxisKeep
        | "mean" -> reduce Expr.mean Expr.meanAxis Expr.meanAxisKeep
        | "max" -> reduce Expr.max Expr.maxAxis Expr.maxAxisKeep
        // ops group.
        | "prod" -> reduce Expr.prod Expr.prodAxis Expr.prodAxisKeep
        | "min" -> reduce Expr.min Expr.minAxis Expr.minAxisKeep
        | "logSumExp" -> reduce Expr.logSumExp Expr.logSumExpAxis Expr.logSumExpAxisKeep
        | "sumAxes" -> Expr.sumAxes (axes ()) (keepDim ()) xs[0]
        | "meanAxes" -> Expr.meanAxes (axes ()) (keepDim ()) xs[0]
        | "variance"
        | "std" ->
            let unbiased = (field "unbiased" p).GetBoolean()
            match (field "axes" p).ValueKind, op with
            | JsonValueKind.Null, "variance" -> Expr.variance unbiased xs[0]
            | JsonValueKind.Null, _ -> Expr.std unbiased xs[0]
            | _, "variance" -> Expr.varianceAxes unbiased (axes ()) (keepDim ()) xs[0]
            | _ -> Expr.stdAxes unbiased (axes ()) (keepDim ()) xs[0]
        | "concat" -> Expr.concat (int "axis") xs
        | "slice" -> Expr.slice (int "axis") (int "start") (int "length") xs[0]
        | "pad" -> Expr.pad (int "axis") (int "before") (int "after") xs[0]
        | "gather" -> Expr.gather xs[1] xs[0]
        | "scatterAdd" -> Expr.scatterAdd (int "rows") xs[1] xs[0]
        | "oneHot" -> Expr.oneHot (int "classes") xs[0]
        | "softmax" -> Expr.softmax (int "axis") xs[0]
        | "logSoftmax" -> Expr.logSoftmax (int "axis") xs[0]
        | "addN" -> Expr.addN xs
        // ops group.
        | "where" -> Expr.where xs[0] xs[1] xs[2]
        | "expand" -> Expr.expand (int "dim") (int "copies") xs[0]
        | "mse" -> Losses.mse xs[0] xs[1]
        | "sumSquaredError" -> Losses.sumSquaredError xs[0] xs[1]
        | "crossEntropy" -> Losses.crossEntropy xs[0] xs[1]
        | "binaryCrossEntropy" -> Losses.binaryCrossEntropy xs[0] xs[1]
        | "binaryCrossEntropyWithLogits" -> Losses.binaryCrossEntropyWithLogits xs[0] xs[1]
        // Convolution and pooling (the conv group).
        | "conv1d"
        | "conv2d" ->
            let spec =
                {
                    Stride = List.ofArray (ints (field "stride" p))
                    Padding = List.ofArray (ints (field "padding" p))
                    Dilation = List.ofArray (ints (field "dilation" p))
                    Groups = int "groups"
                }
            (if op = "conv1d" then Expr.conv1d else Expr.conv2d) spec xs[0] xs[1]
        | "unfold" -> Expr.unfold (window p) xs[0]
        | "fold" -> Expr.fold (List.ofArray (ints (field "size" p))) (window p) xs[0]
        | "maxPool2d" -> Expr.maxPool2d (poolSpec p) xs[0]
        // max pooling's gradient at x as an expression of the cotangent (the second operand).
        | "maxPool2dBackward" -> (Grad.vjp xs[1] [ xs[0] ] (Expr.maxPool2d (poolSpec p) xs[0]))[xs[0]]
        | "avgPool2d" -> Expr.avgPool2d (poolSpec p) xs[0]
        | "globalAvgPool2d" -> Expr.globalAvgPool2d xs[0]
        // shapeops group.
        | "indexSelect" -> Expr.indexSelect (int "axis") xs[1] xs[0]
        | "indexAdd" -> Expr.indexAdd (int "axis") (int "rows") xs[1] xs[0]
        | "flip" -> Expr.flip (List.ofArray (ints (field "axes" p))) xs[0]
        | "cumsum" -> Expr.cumsum (int "axis") xs[0]
        | "reverseCumsum" -> Expr.reverseCumsum (int "axis") xs[0]
        | "padWith" -> Expr.padWith (number (field "value" p)) (int "axis") (int "before") (int "after") xs[0]
        | "stridedSlice" ->
            let optional (name: string) = if (field name p).ValueKind = JsonValueKind.Null then None else Some(int name)
            Expr.stridedSlice (int "axis") (optional "start") (optional "stop") (int "step") xs[0]
        | _ -> failwithf "reference: no FuncFlow builder for operation '%s'" op

/// A case's operands as variables, their values, and its output built from them.
let private instantiate (case: JsonElement) =
    let inputs = (field "inputs" case).EnumerateArray() |> List.ofSeq
    let vars = inputs |> List.mapi (fun i input -> Expr.var (sprintf "x%d" i) (ints (field "shape" input)))
    let values =
        List.map2 (fun (v: Expr) input -> tensor Float64 v.Shape (numbers (field "data" input))) vars inputs
    let output = build ((field "op" case).GetString()) (field "params" case) vars
    vars, values, output

/// The mismatches of one case: its output's shape, then its value and the gradients PyTorch records,
/// evaluated once and through a plan.
let internal check (case: JsonElement) : string list =
    let name = (field "name" case).GetString()
    let vars, values, output = instantiate case
    let expected = field "output" case
    let shape = ints (field "shape" expected)
    if output.Shape <> shape then
        [ sprintf "%s: shape %s, PyTorch's %s" name (Shape.show output.Shape) (Shape.show shape) ]
    else
        let cotangent = Expr.constant (tensor Float64 shape (numbers (field "cotangent" case)))
        let withGrads =
            List.zip vars ((field "grads" case).EnumerateArray() |> List.ofSeq)
            |> List.filter (fun (_, g) -> g.ValueKind <> JsonValueKind.Null)
        let grads = Grad.vjp cotangent (List.map fst withGrads) output
        let outputs = output :: (withGrads |> List.map (fun (v, _) -> grads[v]))
        let expectations =
            ("value", numbers (field "data" expected))
            :: (withGrads |> List.map (fun (v, g) -> sprintf "gradient of %s" (Expr.tryName v).Value, numbers g))
        let env = Eval.bindings (List.map2 (fun v t -> (Expr.tryName v).Value, t) vars values)
        [
            for path, results in [ "eval", Eval.many env outputs; "plan", Plan.compile outputs |> Plan.run env ] do
                for (what, want), got in List.zip expectations results do
                    yield! mismatches tolerance tolerance (sprintf "%s (%s) %s" name path what) want (got.ToArray())
        ]

/// The operations each test below covers, by the names the script gives them.
let internal families: (string * string list) list =
    [
        "unary", List.map fst unaryOps
        "binary", List.map fst binaryOps
        "powScalar", [ "powScalar" ]
        "matmul", [ "matmul" ]
        "shape", [ "permute"; "reshape"; "broadcastTo"; "expand" ]
        "reductions", [ "sum"; "mean"; "max"; "prod"; "min"; "logSumExp" ]
        "axis pieces", [ "concat"; "slice"; "pad" ]
        "indexing", [ "gather"; "scatterAdd"; "oneHot" ]
        "softmax", [ "softmax"; "logSoftmax" ]
        "addN", [ "addN" ]
        // ops group.
        "where", [ "where" ]
        "several axes", [ "sumAxes"; "meanAxes"; "variance"; "std" ]
        "losses", [ "mse"; "sumSquaredError"; "crossEntropy"; "binaryCrossEntropy"; "binaryCrossEntropyWithLogits" ]
        "convolution", [ "conv1d"; "conv2d"; "unfold"; "fold" ]
        "pooling", [ "maxPool2d"; "maxPool2dBackward"; "avgPool2d"; "globalAvgPool2d" ]
        // shapeops group.
        "strided and indexed", [ "indexSelect"; "indexAdd"; "flip"; "cumsum"; "reverseCumsum"; "padWith"; "stridedSlice" ]
    ]

/// Checks every case of a family; fails with all mismatches at once.
let internal checkFamily (family: string) =
    let ops = families |> List.find (fst >> (=) family) |> snd
    let chosen = cases () |> List.filter (fun c -> List.contains ((field "op" c).GetString()) ops)
    if chosen.IsEmpty then failtestf "reference: no cases for %s" family
    assertNone family (chosen |> List.collect check)

/// Every reference case belongs to a family, and the cases' graphs use every operation FuncFlow has.
let internal checkCoverage () =
    let all = cases ()
    let covered = families |> List.collect snd |> Set.ofList
    let orphans =
        all
        |> List.map (fun c -> (field "op" c).GetString())
        |> List.filter (covered.Contains >> not)
        |> List.distinct
    if not orphans.IsEmpty then failtestf "reference: operations in no test: %A" orphans
    let names (op: Op) =
        match op with
        | Op.Unary u -> "Unary " + (Reflection.FSharpValue.GetUnionFields(u, typeof<UnaryOp>) |> fst).Name
        | Op.Binary b -> sprintf "Binary %A" b
        | Op.Reduce(kind, _, _) -> sprintf "Reduce %A" kind
        | other -> (Reflection.FSharpValue.GetUnionFields(other, typeof<Op>) |> fst).Name
    let used =
        all
        |> List.collect (fun c -> let _, _, output = instantiate c in Graph.topoSort [ output ] |> Array.toList)
        |> List.map (fun e -> names e.Op)
        |> Set.ofList
    let cases (t: System.Type) = Reflection.FSharpType.GetUnionCases t |> Array.map (fun c -> c.Name)
    let every =
        [
            for c in cases typeof<Op> do
                match c with
                | "Var"
                | "Const" -> ()
                // A user-defined operation has no PyTorch twin: its values are its author's kernel
                // (CustomOpTests checks them against hand computations and its rules with GradCheck).
                | "Custom" -> ()
                | "Unary" -> yield! cases typeof<UnaryOp> |> Array.map (sprintf "Unary %s")
                | "Binary" -> yield! cases typeof<BinaryOp> |> Array.map (sprintf "Binary %s")
                | "Reduce" -> yield! cases typeof<ReduceOp> |> Array.map (sprintf "Reduce %s")
                | other -> other
        ]
    let missing = every |> List.filter (used.Contains >> not)
    if not missing.IsEmpty then failtestf "reference: no case exercises %A" missing

[<Tests>]
let tests =
    moduleTests
        "ReferenceTests"
        [
            testCase "the reference covers every operation, and every case is tested"
            <| fun () -> checkCoverage ()
            testCase "unary operations match PyTorch" <| fun () -> checkFamily "unary"
            testCase "binary operations with broadcasting match PyTorch" <| fun () -> checkFamily "binary"
            testCase "powScalar matches PyTorch" <| fun () -> checkFamily "powScalar"
            testCase "matmul, 2-D, batched, 1-D and with broadcast or missing batch axes, matches PyTorch"
            <| fun () -> checkFamily "matmul"
            testCase "permute, reshape, broadcastTo and expand match PyTorch" <| fun () -> checkFamily "shape"
            testCase "sum, mean and max over every axis and over all match PyTorch"
            <| fun () -> checkFamily "reductions"
            testCase "concat, slice and pad match PyTorch" <| fun () -> checkFamily "axis pieces"
            testCase "gather, scatterAdd and oneHot match PyTorch" <| fun () -> checkFamily "indexing"
            testCase "softmax and logSoftmax over every axis match PyTorch" <| fun () -> checkFamily "softmax"
            testCase "addN matches PyTorch" <| fun () -> checkFamily "addN"
            testCase "where with broadcast operands matches PyTorch" <| fun () -> checkFamily "where"
            testCase "sum and mean over several axes, variance and std match PyTorch"
            <| fun () -> checkFamily "several axes"
            testCase "losses match PyTorch" <| fun () -> checkFamily "losses"
            testCase "conv1d and conv2d (stride, padding, dilation, groups), unfold and fold match PyTorch"
            <| fun () -> checkFamily "convolution"
            testCase "max pooling with ties and its gradient, average and global average pooling match PyTorch"
            <| fun () -> checkFamily "pooling"
            // shapeops group.
            testCase "indexSelect and indexAdd on any axis, flip, cumsum both ways, padWith and strided slices match PyTorch"
            <| fun () -> checkFamily "strided and indexed"
        ]
