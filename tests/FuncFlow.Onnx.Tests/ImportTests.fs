/// Onnx.inspect, Onnx.load and Onnx.evaluate on small graphs written here, and files from strangers: each bad file
/// is refused with a DataFormatException naming it and the problem, allocating no more than its size justifies.
module FuncFlow.Onnx.Tests.ImportTests

open System
open System.IO
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.Onnx
open FuncFlow.Tests
open FuncFlow.Onnx.Tests.Support
open Google.Protobuf
open global.Onnx

let private valueInfo (name: string) (dims: obj list) =
    let shape = TensorShapeProto()
    for d in dims do
        match d with
        | :? int as n -> shape.Dim.Add(TensorShapeProto.Types.Dimension(DimValue = int64 n))
        | :? string as s -> shape.Dim.Add(TensorShapeProto.Types.Dimension(DimParam = s))
        | _ -> failwith "a dim is an int or a string"
    ValueInfoProto(Name = name, Type = TypeProto(TensorType = TypeProto.Types.Tensor(ElemType = OnnxTensor.floatCode, Shape = shape)))

let private node (op: string) (name: string) (inputs: string list) (outputs: string list) =
    let n = NodeProto(OpType = op, Name = name)
    n.Input.AddRange inputs
    n.Output.AddRange outputs
    n

/// A model of opset 13 with the given graph parts.
let private model (nodes: NodeProto list) (initializers: TensorProto list) (inputs: ValueInfoProto list) (outputs: ValueInfoProto list) =
    let graph = GraphProto(Name = "test")
    graph.Node.AddRange nodes
    graph.Initializer.AddRange initializers
    graph.Input.AddRange inputs
    graph.Output.AddRange outputs
    let m = ModelProto(IrVersion = 8L, Graph = graph, ProducerName = "FuncFlow tests")
    m.OpsetImport.Add(OperatorSetIdProto(Domain = "", Version = 13L))
    m

let private write (folder: string) (m: ModelProto) =
    let path = Path.Combine(folder, "model.onnx")
    File.WriteAllBytes(path, m.ToByteArray())
    path

/// x [batch; 3] times the initializer w [3; 2], plus the initializer b [2], through relu.
let private linear () =
    let w = OnnxTensor.ofTensor "w" (Tensor.create32 [| 3; 2 |] [| 1f; -1f; 2f; 0.5f; -3f; 1f |])
    let b = OnnxTensor.ofTensor "b" (Tensor.create32 [| 2 |] [| 0.25f; -0.5f |])
    model
        [
            node "MatMul" "product" [ "x"; "w" ] [ "xw" ]
            node "Add" "bias" [ "xw"; "b" ] [ "z" ]
            node "Relu" "relu" [ "z" ] [ "y" ]
        ]
        [ w; b ]
        [ valueInfo "x" [ box "batch"; box 3 ] ]
        [ valueInfo "y" [ box "batch"; box 2 ] ]

let private refused (path: string) (parts: string list) (f: unit -> unit) =
    let e = throws<DataFormatException> f
    expectMentions e.Message (path :: parts)

/// Bytes allocated on this thread while f runs.
let private allocated (f: unit -> unit) =
    let before = GC.GetAllocatedBytesForCurrentThread()
    f ()
    GC.GetAllocatedBytesForCurrentThread() - before

[<Tests>]
let tests =
    moduleTests
        "ImportTests"
        [
            test "inspect reads what a file declares" {
                let path = write (tempFolder ()) (linear ())
                let info = Onnx.inspect path
                Expect.equal
                    info.Inputs
                    [ { Name = "x"; DType = Some Float32; Dims = [ OnnxDim.Named "batch"; OnnxDim.Known 3 ] } ]
                    "inputs"
                Expect.equal info.Outputs.Head.Dims [ OnnxDim.Named "batch"; OnnxDim.Known 2 ] "outputs"
                Expect.equal info.Initializers [ "w", Some Float32, [| 3; 2 |]; "b", Some Float32, [| 2 |] ] "initializers"
                Expect.equal info.OperatorCounts [ "MatMul", 1; "Add", 1; "Relu", 1 ] "operators"
                Expect.equal info.Opsets [ "", 13L ] "opsets"
                Expect.equal info.Producer "FuncFlow tests" "producer"
            }
            test "load builds the graph with the initializers as parameters, and evaluate computes it" {
                let path = write (tempFolder ()) (linear ())
                let m = Onnx.load (Map [ "batch", 2 ]) path
                Expect.equal (m.Parameters |> Map.toList |> List.map fst) [ "b"; "w" ] "parameters"
                Expect.equal (snd m.Inputs.Head).Shape [| 2; 3 |] "the input's shape, batch sized by dims"
                let x = Tensor.create32 [| 2; 3 |] [| 1f; 2f; 3f; -1f; 0f; 1f |]
                let y = (Onnx.evaluate m (Map [ "x", x ]))["y"]
                // relu(x w + b) by hand: row 1: (1 + 4 - 9, -1 + 1 + 3) + b; row 2: (-1 - 3, 1 + 1) + b.
                assertClose "relu(x w + b)" 1e-6 [| 0.0; 2.5; 0.0; 1.5 |] (Tensor.toArray y)
            }
            test "shapes computed in the graph and Constant nodes are known at import time" {
                // PyTorch's flatten as exporters write it: Reshape(x, Concat(Gather(Shape(x), 0), [-1])).
                let constant (name: string) (attribute: AttributeProto) =
                    let c = node "Constant" name [] [ name ]
                    c.Attribute.Add attribute
                    c
                let ints (values: int64 list) =
                    let a = AttributeProto(Name = "value_ints", Type = AttributeProto.Types.AttributeType.Ints)
                    a.Ints.AddRange values
                    a
                let floats = AttributeProto(Name = "value_floats", Type = AttributeProto.Types.AttributeType.Floats)
                floats.Floats.AddRange [ 1f; 2f; 3f; 4f; 5f; 6f ]
                let gather = node "Gather" "first" [ "shape"; "zero" ] [ "batch" ]
                gather.Attribute.Add(AttributeProto(Name = "axis", I = 0L, Type = AttributeProto.Types.AttributeType.Int))
                let concat = node "Concat" "target" [ "batch"; "minusOne" ] [ "target" ]
                concat.Attribute.Add(AttributeProto(Name = "axis", I = 0L, Type = AttributeProto.Types.AttributeType.Int))
                let m =
                    model
                        [
                            node "Shape" "shape" [ "x" ] [ "shape" ]
                            constant "zero" (ints [ 0L ])
                            gather
                            constant "minusOne" (ints [ -1L ])
                            concat
                            node "Reshape" "flat" [ "x"; "target" ] [ "flat" ]
                            constant "scale" floats
                            node "Mul" "scaled" [ "flat"; "scale" ] [ "scaled" ]
                            constant
                                "half"
                                (AttributeProto(Name = "value_float", F = 0.5f, Type = AttributeProto.Types.AttributeType.Float))
                            node "Add" "y" [ "scaled"; "half" ] [ "y" ]
                        ]
                        []
                        [ valueInfo "x" [ box "batch"; box 2; box 3 ] ]
                        [ valueInfo "y" [ box "batch"; box 6 ] ]
                let imported = Onnx.load (Map [ "batch", 2 ]) (write (tempFolder ()) m)
                let y = snd imported.Outputs.Head
                Expect.equal y.Shape [| 2; 6 |] "the reshape's target, computed from the input's shape"
                Expect.equal (Graph.variables [ y ] |> List.map Expr.tryName) [ Some "x" ] "only the input is a variable"
                let x = Tensor.create32 [| 2; 2; 3 |] (Array.init 12 float32)
                let expected = Array.init 12 (fun i -> float i * float (i % 6 + 1) + 0.5)
                let outputs = Onnx.evaluate imported (Map [ "x", x ])
                assertClose "y" 1e-6 expected (Tensor.toArray outputs["y"])
            }
            test "load names the named dimensions dims lacks" {
                let path = write (tempFolder ()) (linear ())
                let e = throws<ArgumentException>(fun () -> Onnx.load Map.empty path |> ignore)
                expectMentions e.Message [ path; "'batch'" ]
            }
            test "evaluate names the inputs it lacks" {
                let m = Onnx.load (Map [ "batch", 1 ]) (write (tempFolder ()) (linear ()))
                let e = throws<ArgumentException>(fun () -> Onnx.evaluate m Map.empty |> ignore)
                expectMentions e.Message [ "x" ]
            }
            test "an operator the importer lacks is a NotSupportedException naming it and its node" {
                let m = linear ()
                m.Graph.Node[2].OpType <- "Det"
                let path = write (tempFolder ()) m
                let e = throws<NotSupportedException>(fun () -> Onnx.load (Map [ "batch", 1 ]) path |> ignore)
                expectMentions e.Message [ path; "operator Det"; "node 'relu' (#2" ]
            }
            test "a node whose shapes do not fit is refused naming the node and the shapes" {
                let m = linear ()
                m.Graph.Input[0] <- valueInfo "x" [ box "batch"; box 4 ]
                let path = write (tempFolder ()) m
                refused path [ "node 'product'"; "matmul"; "(1, 4)"; "(3, 2)" ] (fun () -> Onnx.load (Map [ "batch", 1 ]) path |> ignore)
            }
            test "a missing file is refused naming it" {
                let path = Path.Combine(tempFolder (), "absent.onnx")
                refused path [ "not found" ] (fun () -> Onnx.inspect path |> ignore)
            }
            test "a truncated file is refused naming it" {
                let folder = tempFolder ()
                let bytes = (linear ()).ToByteArray()
                let path = Path.Combine(folder, "truncated.onnx")
                File.WriteAllBytes(path, bytes[.. bytes.Length / 2])
                refused path [ "not a valid ModelProto" ] (fun () -> Onnx.load (Map [ "batch", 1 ]) path |> ignore)
            }
            test "a corrupt file is refused naming it" {
                let path = Path.Combine(tempFolder (), "corrupt.onnx")
                // A length-delimited field (graph, field 7) that claims 2^31 bytes more than the file holds.
                File.WriteAllBytes(path, [| 0x3Auy; 0xFFuy; 0xFFuy; 0xFFuy; 0xFFuy; 0x07uy; 1uy; 2uy |])
                let bytes =
                    allocated (fun () -> refused path [ "not a valid ModelProto" ] (fun () -> Onnx.inspect path |> ignore))
                Expect.isLessThan bytes (1L <<< 24) "bytes allocated for an 8-byte file"
                // A graph holding an initializer whose raw_data claims 2^30 bytes, each length beyond the file.
                let big = [| 0x80uy; 0x80uy; 0x80uy; 0x80uy; 0x04uy |]
                File.WriteAllBytes(path, Array.concat [ [| 0x3Auy |]; big; [| 0x2Auy |]; big; [| 0x4Auy |]; big; Array.create 64 7uy ])
                let bytes =
                    allocated (fun () -> refused path [ "not a valid ModelProto" ] (fun () -> Onnx.inspect path |> ignore))
                Expect.isLessThan bytes (1L <<< 24) "bytes allocated for an 82-byte file claiming 1 GB"
            }
            test "a tensor whose dims exceed the data it carries is refused before allocating them" {
                let m = linear ()
                // 10^8 float32 values declared, 4 bytes carried.
                let huge =
                    TensorProto(
                        Name = "w",
                        DataType = OnnxTensor.floatCode,
                        RawData = Google.Protobuf.ByteString.CopyFrom(Array.zeroCreate<byte> 4)
                    )
                huge.Dims.AddRange [ 100_000_000L ]
                m.Graph.Initializer[0] <- huge
                let path = write (tempFolder ()) m
                let bytes =
                    allocated (fun () ->
                        refused path [ "tensor 'w'"; "holds 1 values in raw_data, expected 100000000" ] (fun () ->
                            Onnx.load (Map [ "batch", 1 ]) path |> ignore))
                Expect.isLessThan bytes (1L <<< 24) "bytes allocated (the declared tensor needs 400 MB)"
                huge.Dims[0] <- 1L <<< 40
                let path = write (tempFolder ()) m
                refused path [ "tensor 'w'"; "expected each in 0.." ] (fun () -> Onnx.inspect path |> ignore)
            }
            test "values computed while importing are bounded: a huge constant is left to evaluation or refused" {
                let shapeConstant (name: string) (values: int64 list) =
                    let c = node "Constant" name [] [ name ]
                    let a = AttributeProto(Name = "value_ints", Type = AttributeProto.Types.AttributeType.Ints)
                    a.Ints.AddRange values
                    c.Attribute.Add a
                    c
                let graph (nodes: NodeProto list) (output: string) =
                    model nodes [] [ valueInfo "x" [ box 2 ] ] [ valueInfo output [] ] |> write (tempFolder ())
                // 9 x 10^8 zeros (3.6 GB) declared by a file of a few bytes: no allocation until evaluated.
                let path =
                    graph [ shapeConstant "shape" [ 30_000L; 30_000L ]; node "ConstantOfShape" "zeros" [ "shape" ] [ "y" ] ] "y"
                let mutable imported = None
                let bytes = allocated (fun () -> imported <- Some(Onnx.load Map.empty path))
                Expect.equal (snd imported.Value.Outputs.Head).Shape [| 30_000; 30_000 |] "the declared shape"
                Expect.isLessThan bytes (1L <<< 24) "bytes allocated while importing"
                // Tile repeats whose product no tensor can hold.
                let path =
                    graph [ shapeConstant "repeats" [ 2_000_000_000L ]; node "Tile" "tiled" [ "x"; "repeats" ] [ "y" ] ] "y"
                refused path [ "node 'tiled'"; "elements" ] (fun () -> Onnx.load Map.empty path |> ignore)
                // A range of 10^12 known numbers.
                let scalarConstant (name: string) (v: float32) =
                    let c = node "Constant" name [] [ name ]
                    c.Attribute.Add(AttributeProto(Name = "value_float", F = v, Type = AttributeProto.Types.AttributeType.Float))
                    c
                let path =
                    graph
                        [
                            scalarConstant "start" 0f
                            scalarConstant "limit" 1e12f
                            scalarConstant "delta" 1f
                            node "Range" "numbers" [ "start"; "limit"; "delta" ] [ "y" ]
                        ]
                        "y"
                let e = throws<NotSupportedException>(fun () -> Onnx.load Map.empty path |> ignore)
                expectMentions e.Message [ path; "node 'numbers'"; "a range of 1e+12 elements" ]
            }
            test "a graph with a cycle is refused naming the nodes" {
                let m = linear ()
                // relu now feeds the product that feeds it.
                m.Graph.Node[0].Input[ 0 ] <- "y"
                m.Graph.Input.Clear()
                let path = write (tempFolder ()) m
                refused path [ "cycle"; "node 'product'"; "node 'bias'"; "node 'relu'" ] (fun () -> Onnx.load Map.empty path |> ignore)
            }
            test "a dangling input is refused naming the node and the name" {
                let m = linear ()
                m.Graph.Node[1].Input[ 1 ] <- "ghost"
                let path = write (tempFolder ()) m
                refused path [ "node 'bias'"; "'ghost'"; "dangling" ] (fun () -> Onnx.load (Map [ "batch", 1 ]) path |> ignore)
            }
            test "external data inside the model's folder is read; a location that leaves it is refused" {
                let folder = tempFolder ()
                let values = [| 1f; -1f; 2f; 0.5f; -3f; 1f |]
                let bytes = values |> Array.collect BitConverter.GetBytes
                File.WriteAllBytes(Path.Combine(folder, "weights.bin"), Array.append [| 9uy; 9uy |] bytes)
                let external (location: string) (offset: int) (length: int) =
                    let m = linear ()
                    let w =
                        TensorProto(Name = "w", DataType = OnnxTensor.floatCode, DataLocation = TensorProto.Types.DataLocation.External)
                    w.Dims.AddRange [ 3L; 2L ]
                    for key, value in [ "location", location; "offset", string offset; "length", string length ] do
                        w.ExternalData.Add(StringStringEntryProto(Key = key, Value = value))
                    m.Graph.Initializer[0] <- w
                    write folder m
                let path = external "weights.bin" 2 24
                let m = Onnx.load (Map [ "batch", 1 ]) path
                assertClose "the external weight" 0.0 (Array.map float values) (Tensor.toArray m.Parameters["w"])
                let load () = Onnx.load (Map [ "batch", 1 ]) path |> ignore
                let outside = tempFolder ()
                File.WriteAllBytes(Path.Combine(outside, "secret.bin"), bytes)
                let path = external (Path.Combine(outside, "secret.bin")) 0 24
                refused path [ "tensor 'w'"; "relative path inside the model's folder" ] load
                let path = external (Path.Combine("..", Path.GetFileName outside, "secret.bin")) 0 24
                refused path [ "tensor 'w'"; "'..'" ] load
                File.CreateSymbolicLink(Path.Combine(folder, "link.bin"), Path.Combine(outside, "secret.bin"))
                |> ignore
                let path = external "link.bin" 0 24
                refused path [ "tensor 'w'"; "leads outside the model's folder" ] load
                Directory.CreateSymbolicLink(Path.Combine(folder, "sub"), outside) |> ignore
                let path = external "sub/secret.bin" 0 24
                refused path [ "tensor 'w'"; "leads outside the model's folder" ] load
                let path = external "weights.bin" 8 24
                refused path [ "tensor 'w'"; "beyond the end" ] load
                let path = external "weights.bin" 0 20
                refused path [ "tensor 'w'"; "length 20 differs from the 24 bytes" ] load
            }
        ]
