/// The IDX reader and the MNIST loader, on the shipped files and on corrupted copies.
module FuncFlow.Tests.Data.IdxTests

open System
open System.IO
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests
open FuncFlow.Tests.Fixtures
open FuncFlow.Tests.Data.DataTestHelpers
open FuncFlow.Tests.Support

let private mnist = lazy (Datasets.mnist (dataPath "mnist"))
let private fashion = lazy (Datasets.fashionMnistDefault ())

let private counts (t: Tensor) =
    let c = Array.zeroCreate 10
    for v in t.ToArray32() do
        c[int v] <- c[int v] + 1
    c

/// An MNIST-layout folder of tiny synthetic files, with nLabels train labels for 3 train images.
let private fakeMnist (dir: TempDir) (nLabels: int) =
    let images n = idxBytes [| n; 2; 2 |] (Array.init (4 * n) (fun i -> byte (i * 17)))
    let labels n = idxBytes [| n |] (Array.init n byte)
    File.WriteAllBytes(dir.File "train-images-idx3-ubyte.gz", gzip (images 3))
    File.WriteAllBytes(dir.File "train-labels-idx1-ubyte", labels nLabels)
    File.WriteAllBytes(dir.File "t10k-images-idx3-ubyte", images 2)
    File.WriteAllBytes(dir.File "t10k-labels-idx1-ubyte.gz", gzip (labels 2))

[<Tests>]
let tests =
    moduleTests
        "IdxTests"
        [
            testCase "MNIST train has 60000 images of 784 pixels and the known label counts"
            <| fun () ->
                let train, _ = mnist.Value
                Expect.equal train.Features.Shape ([| 60000; 784 |]) "train.Features.Shape"
                Expect.equal train.Targets.Shape ([| 60000 |]) "train.Targets.Shape"
                Expect.equal train.Features.DType Float32 "train.Features.DType"
                Expect.equal
                    (counts train.Targets)
                    ([| 5923; 6742; 5958; 6131; 5842; 5421; 5918; 6265; 5851; 5949 |])
                    "counts train.Targets"
                Expect.equal (train.Targets.ToArray32()[..4]) ([| 5f; 0f; 4f; 1f; 9f |]) "train.Targets.ToArray32()[..4]"
            testCase "MNIST test has 10000 images and the known label counts"
            <| fun () ->
                let _, test = mnist.Value
                Expect.equal test.Features.Shape ([| 10000; 784 |]) "test.Features.Shape"
                Expect.equal (counts test.Targets) ([| 980; 1135; 1032; 1010; 982; 892; 958; 1028; 974; 1009 |]) "counts test.Targets"
                Expect.equal (test.Targets.ToArray32()[..4]) ([| 7f; 2f; 1f; 0f; 4f |]) "test.Targets.ToArray32()[..4]"
            testCase "MNIST pixels are scaled into 0 to 1 and use the whole range"
            <| fun () ->
                let train, test = mnist.Value
                for ds in [ train; test ] do
                    let px = ds.Features.ToArray32()
                    Expect.isTrue (px |> Array.forall (fun v -> v >= 0f && v <= 1f)) "px |> Array.forall (fun v -> v >= 0f && v <= 1f)"
                    Expect.equal (Array.min px) 0f "Array.min px"
                    Expect.equal (Array.max px) 1f "Array.max px"
            testCase "Fashion-MNIST has 60000 train and 10000 test images of 784 pixels, 6000 and 1000 per class"
            <| fun () ->
                let train, test = fashion.Value
                Expect.equal train.Features.Shape ([| 60000; 784 |]) "train.Features.Shape"
                Expect.equal test.Features.Shape ([| 10000; 784 |]) "test.Features.Shape"
                Expect.equal (counts train.Targets) (Array.create 10 6000) "counts train.Targets"
                Expect.equal (counts test.Targets) (Array.create 10 1000) "counts test.Targets"
                // The first labels, as Zalando's mnist_reader reads them (ankle boot, T-shirt, ...).
                Expect.equal (train.Targets.ToArray32()[..4]) ([| 9f; 0f; 0f; 3f; 0f |]) "train.Targets.ToArray32()[..4]"
                Expect.equal (test.Targets.ToArray32()[..4]) ([| 9f; 2f; 1f; 1f; 6f |]) "test.Targets.ToArray32()[..4]"
                for ds in [ train; test ] do
                    let px = ds.Features.ToArray32()
                    Expect.equal (Array.min px) 0f "Array.min px"
                    Expect.equal (Array.max px) 1f "Array.max px"
                // Mean pixel of the train images, from NumPy on the same files: 0.2860406.
                Expect.floatClose
                    Accuracy.medium
                    (train.Features.ToArray32() |> Array.averageBy float)
                    0.2860405969887955
                    "mean train pixel"
            testCase "Idx.read gives raw byte values in the file's shape"
            <| fun () ->
                let labels = Idx.read (dataPath "mnist/t10k-labels-idx1-ubyte.gz")
                Expect.equal labels.Shape ([| 10000 |]) "labels.Shape"
                Expect.equal (labels.ToArray32()[..4]) ([| 7f; 2f; 1f; 0f; 4f |]) "labels.ToArray32()[..4]"
                let images = Idx.read (dataPath "mnist/t10k-images-idx3-ubyte.gz")
                Expect.equal images.Shape ([| 10000; 28; 28 |]) "images.Shape"
                let px = images.ToArray32()
                Expect.equal (Array.max px) 255f "Array.max px"
                Expect.isTrue (px |> Array.forall (fun v -> v = floor v)) "px |> Array.forall (fun v -> v = floor v)"
                // Scaling by 255 is the only difference between the raw file and the loader's features.
                let _, test = mnist.Value
                Expect.equal
                    (test.Features.ToArray32()[..783])
                    (px[..783] |> Array.map (fun v -> v / 255f))
                    "test.Features.ToArray32()[.. 783]"
            testCase "Idx.read decodes raw and gzipped files of every element type"
            <| fun () ->
                use dir = new TempDir()
                let write name (code: byte) (shape: int[]) (data: byte[]) =
                    let bytes = Array.concat [ [| 0uy; 0uy; code; byte shape.Length |]; Array.collect be32 shape; data ]
                    File.WriteAllBytes(dir.File name, bytes)
                    File.WriteAllBytes(dir.File(name + ".gz"), gzip bytes)
                write "u8" 0x08uy [| 2; 2 |] [| 0uy; 1uy; 128uy; 255uy |]
                write "i8" 0x09uy [| 3 |] [| 0xFFuy; 0x7Fuy; 0x80uy |]
                write "i16" 0x0Buy [| 2 |] [| 0xFFuy; 0xFEuy; 0x01uy; 0x00uy |]
                write "i32" 0x0Cuy [| 1 |] (be32 -123456789)
                write "f32" 0x0Duy [| 1 |] (BitConverter.GetBytes 1.5f |> Array.rev)
                write "f64" 0x0Euy [| 1; 1 |] (BitConverter.GetBytes -0.1 |> Array.rev)
                for suffix in [ ""; ".gz" ] do
                    let read name = Idx.read (dir.File(name + suffix))
                    Expect.equal ((read "u8").ToArray32()) ([| 0f; 1f; 128f; 255f |]) "(read \"u8\").ToArray32()"
                    Expect.equal ((read "u8").Shape) ([| 2; 2 |]) "(read \"u8\").Shape"
                    Expect.equal ((read "i8").ToArray32()) ([| -1f; 127f; -128f |]) "(read \"i8\").ToArray32()"
                    Expect.equal ((read "i16").ToArray32()) ([| -2f; 256f |]) "(read \"i16\").ToArray32()"
                    Expect.equal ((read "i32").DType) Float64 "(read \"i32\").DType"
                    Expect.equal ((read "i32").ToArray()) ([| -123456789.0 |]) "(read \"i32\").ToArray()"
                    Expect.equal ((read "f32").ToArray32()) ([| 1.5f |]) "(read \"f32\").ToArray32()"
                    Expect.equal ((read "f64").ToArray()) ([| -0.1 |]) "(read \"f64\").ToArray()"
            testCase "a wrong magic number names the file and the expected layout"
            <| fun () ->
                use dir = new TempDir()
                let bytes = gunzip (File.ReadAllBytes(dataPath "mnist/t10k-labels-idx1-ubyte.gz"))
                bytes[0] <- 0x12uy
                bytes[1] <- 0x34uy
                let path = dir.File "bad-magic-labels"
                File.WriteAllBytes(path, bytes)
                expectFormatError [ "bad-magic-labels"; "wrong magic number"; "2049"; "0x00" ] (fun () -> Idx.read path)
                |> ignore
                File.WriteAllBytes(path + ".gz", gzip bytes)
                expectFormatError [ "bad-magic-labels.gz"; "wrong magic number" ] (fun () -> Idx.read (path + ".gz"))
                |> ignore
            testCase "an unknown element type is a wrong magic number"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "type-0x42"
                File.WriteAllBytes(path, Array.concat [ [| 0uy; 0uy; 0x42uy; 1uy |]; be32 1; [| 0uy |] ])
                expectFormatError [ "type-0x42"; "wrong magic number"; "unknown type byte 0x42" ] (fun () -> Idx.read path)
                |> ignore
            testCase "a truncated raw IDX file says how many bytes were expected and found"
            <| fun () ->
                use dir = new TempDir()
                let bytes = gunzip (File.ReadAllBytes(dataPath "mnist/t10k-labels-idx1-ubyte.gz"))
                let path = dir.File "cut-labels-idx1-ubyte"
                File.WriteAllBytes(path, bytes[.. 8 + 4999])
                expectFormatError [ "cut-labels-idx1-ubyte"; "truncated"; "expected 10000 bytes"; "found 5000" ] (fun () -> Idx.read path)
                |> ignore
                File.WriteAllBytes(path, bytes[..5])
                expectFormatError [ "cut-labels-idx1-ubyte"; "truncated"; "header" ] (fun () -> Idx.read path)
                |> ignore
            testCase "a truncated gzipped IDX file is reported as truncated"
            <| fun () ->
                use dir = new TempDir()
                let gz = File.ReadAllBytes(dataPath "mnist/t10k-images-idx3-ubyte.gz")
                let path = dir.File "t10k-images-idx3-ubyte.gz"
                File.WriteAllBytes(path, gz[.. gz.Length / 2])
                expectFormatError [ "t10k-images-idx3-ubyte.gz"; "truncated" ] (fun () -> Idx.read path) |> ignore
            testCase "data after the promised values is an error"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "long.idx"
                File.WriteAllBytes(path, idxBytes [| 2 |] [| 1uy; 2uy; 3uy |])
                expectFormatError [ "long.idx"; "more than the 2 bytes" ] (fun () -> Idx.read path) |> ignore
            testCase "a missing file names the path and the data folder"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "no-such-idx.gz"
                expectFormatError [ path; "file not found"; "data/" ] (fun () -> Idx.read path) |> ignore
                expectFormatError [ "train-images-idx3-ubyte"; "file not found"; "FUNCFLOW_DATA" ] (fun () -> Datasets.mnist dir.Path)
                |> ignore
            testCase "the MNIST loader reads raw and gzipped files alike"
            <| fun () ->
                use dir = new TempDir()
                fakeMnist dir 3
                let train, test = Datasets.mnist dir.Path
                Expect.equal train.Features.Shape ([| 3; 4 |]) "train.Features.Shape"
                Expect.equal (train.Features.ToArray32()) (Array.init 12 (fun i -> float32 (i * 17) / 255f)) "train.Features.ToArray32()"
                Expect.equal (train.Targets.ToArray32()) ([| 0f; 1f; 2f |]) "train.Targets.ToArray32()"
                Expect.equal test.Features.Shape ([| 2; 4 |]) "test.Features.Shape"
            testCase "an image and label count mismatch names both files and counts"
            <| fun () ->
                use dir = new TempDir()
                fakeMnist dir 2
                expectFormatError [ "train-images-idx3-ubyte.gz"; "train-labels-idx1-ubyte"; "3 images"; "2 labels" ] (fun () ->
                    Datasets.mnist dir.Path)
                |> ignore
            testCase "swapped image and label files are rejected by their magic numbers"
            <| fun () ->
                use dir = new TempDir()
                fakeMnist dir 3
                File.Copy(dir.File "t10k-labels-idx1-ubyte.gz", dir.File "train-images-idx3-ubyte.gz", true)
                expectFormatError [ "train-images-idx3-ubyte.gz"; "2051" ] (fun () -> Datasets.mnist dir.Path)
                |> ignore
            testCase "a header promising more data than memory holds is rejected without allocating"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "huge.idx"
                File.WriteAllBytes(
                    path,
                    Array.concat [ [| 0uy; 0uy; 0x08uy; 3uy |]; be32 Int32.MaxValue; be32 Int32.MaxValue; be32 Int32.MaxValue ]
                )
                expectFormatError [ "huge.idx"; "more bytes than one array can hold" ] (fun () -> Idx.read path)
                |> ignore
        ]
