/// The IDX reader and the MNIST loader, on the shipped files and on corrupted copies.
module FuncFlow.Tests.Data.IdxTests

open System
open System.IO
open Xunit
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests.Fixtures
open FuncFlow.Tests.Data.DataTestHelpers

let private mnist = lazy (Datasets.mnist (dataPath "mnist"))

let private counts (t: Tensor) =
    let c = Array.zeroCreate 10
    for v in t.ToArray32() do
        c[int v] <- c[int v] + 1
    c

[<Fact>]
let ``MNIST train has 60000 images of 784 pixels and the known label counts`` () =
    let train, _ = mnist.Value
    Assert.Equal<int[]>([| 60000; 784 |], train.Features.Shape)
    Assert.Equal<int[]>([| 60000 |], train.Targets.Shape)
    Assert.Equal(Float32, train.Features.DType)
    Assert.Equal<int[]>([| 5923; 6742; 5958; 6131; 5842; 5421; 5918; 6265; 5851; 5949 |], counts train.Targets)
    Assert.Equal<float32[]>([| 5f; 0f; 4f; 1f; 9f |], train.Targets.ToArray32()[..4])

[<Fact>]
let ``MNIST test has 10000 images and the known label counts`` () =
    let _, test = mnist.Value
    Assert.Equal<int[]>([| 10000; 784 |], test.Features.Shape)
    Assert.Equal<int[]>([| 980; 1135; 1032; 1010; 982; 892; 958; 1028; 974; 1009 |], counts test.Targets)
    Assert.Equal<float32[]>([| 7f; 2f; 1f; 0f; 4f |], test.Targets.ToArray32()[..4])

[<Fact>]
let ``MNIST pixels are scaled into 0 to 1 and use the whole range`` () =
    let train, test = mnist.Value
    for ds in [ train; test ] do
        let px = ds.Features.ToArray32()
        Assert.True(px |> Array.forall (fun v -> v >= 0f && v <= 1f))
        Assert.Equal(0f, Array.min px)
        Assert.Equal(1f, Array.max px)

[<Fact>]
let ``Idx.read gives raw byte values in the file's shape`` () =
    let labels = Idx.read (dataPath "mnist/t10k-labels-idx1-ubyte.gz")
    Assert.Equal<int[]>([| 10000 |], labels.Shape)
    Assert.Equal<float32[]>([| 7f; 2f; 1f; 0f; 4f |], labels.ToArray32()[..4])
    let images = Idx.read (dataPath "mnist/t10k-images-idx3-ubyte.gz")
    Assert.Equal<int[]>([| 10000; 28; 28 |], images.Shape)
    let px = images.ToArray32()
    Assert.Equal(255f, Array.max px)
    Assert.True(px |> Array.forall (fun v -> v = floor v))
    // Scaling by 255 is the only difference between the raw file and the loader's features.
    let _, test = mnist.Value
    Assert.Equal<float32[]>(px[.. 783] |> Array.map (fun v -> v / 255f), test.Features.ToArray32()[.. 783])

[<Fact>]
let ``Idx.read decodes raw and gzipped files of every element type`` () =
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
        Assert.Equal<float32[]>([| 0f; 1f; 128f; 255f |], (read "u8").ToArray32())
        Assert.Equal<int[]>([| 2; 2 |], (read "u8").Shape)
        Assert.Equal<float32[]>([| -1f; 127f; -128f |], (read "i8").ToArray32())
        Assert.Equal<float32[]>([| -2f; 256f |], (read "i16").ToArray32())
        Assert.Equal(Float64, (read "i32").DType)
        Assert.Equal<float[]>([| -123456789.0 |], (read "i32").ToArray())
        Assert.Equal<float32[]>([| 1.5f |], (read "f32").ToArray32())
        Assert.Equal<float[]>([| -0.1 |], (read "f64").ToArray())

[<Fact>]
let ``a wrong magic number names the file and the expected layout`` () =
    use dir = new TempDir()
    let bytes = gunzip (File.ReadAllBytes(dataPath "mnist/t10k-labels-idx1-ubyte.gz"))
    bytes[0] <- 0x12uy
    bytes[1] <- 0x34uy
    let path = dir.File "bad-magic-labels"
    File.WriteAllBytes(path, bytes)
    expectFormatError [ "bad-magic-labels"; "wrong magic number"; "2049"; "0x00" ] (fun () -> Idx.read path) |> ignore
    File.WriteAllBytes(path + ".gz", gzip bytes)
    expectFormatError [ "bad-magic-labels.gz"; "wrong magic number" ] (fun () -> Idx.read (path + ".gz")) |> ignore

[<Fact>]
let ``an unknown element type is a wrong magic number`` () =
    use dir = new TempDir()
    let path = dir.File "type-0x42"
    File.WriteAllBytes(path, Array.concat [ [| 0uy; 0uy; 0x42uy; 1uy |]; be32 1; [| 0uy |] ])
    expectFormatError [ "type-0x42"; "wrong magic number"; "unknown type byte 0x42" ] (fun () -> Idx.read path) |> ignore

[<Fact>]
let ``a truncated raw IDX file says how many bytes were expected and found`` () =
    use dir = new TempDir()
    let bytes = gunzip (File.ReadAllBytes(dataPath "mnist/t10k-labels-idx1-ubyte.gz"))
    let path = dir.File "cut-labels-idx1-ubyte"
    File.WriteAllBytes(path, bytes[.. 8 + 4999])
    expectFormatError [ "cut-labels-idx1-ubyte"; "truncated"; "expected 10000 bytes"; "found 5000" ] (fun () -> Idx.read path) |> ignore
    File.WriteAllBytes(path, bytes[.. 5])
    expectFormatError [ "cut-labels-idx1-ubyte"; "truncated"; "header" ] (fun () -> Idx.read path) |> ignore

[<Fact>]
let ``a truncated gzipped IDX file is reported as truncated`` () =
    use dir = new TempDir()
    let gz = File.ReadAllBytes(dataPath "mnist/t10k-images-idx3-ubyte.gz")
    let path = dir.File "t10k-images-idx3-ubyte.gz"
    File.WriteAllBytes(path, gz[.. gz.Length / 2])
    expectFormatError [ "t10k-images-idx3-ubyte.gz"; "truncated" ] (fun () -> Idx.read path) |> ignore

[<Fact>]
let ``data after the promised values is an error`` () =
    use dir = new TempDir()
    let path = dir.File "long.idx"
    File.WriteAllBytes(path, idxBytes [| 2 |] [| 1uy; 2uy; 3uy |])
    expectFormatError [ "long.idx"; "more than the 2 bytes" ] (fun () -> Idx.read path) |> ignore

[<Fact>]
let ``a missing file names the path and the data folder`` () =
    use dir = new TempDir()
    let path = dir.File "no-such-idx.gz"
    expectFormatError [ path; "file not found"; "data/" ] (fun () -> Idx.read path) |> ignore
    expectFormatError [ "train-images-idx3-ubyte"; "file not found"; "FUNCFLOW_DATA" ] (fun () -> Datasets.mnist dir.Path) |> ignore

/// An MNIST-layout folder of tiny synthetic files, with nLabels train labels for 3 train images.
let private fakeMnist (dir: TempDir) (nLabels: int) =
    let images n = idxBytes [| n; 2; 2 |] (Array.init (4 * n) (fun i -> byte (i * 17)))
    let labels n = idxBytes [| n |] (Array.init n byte)
    File.WriteAllBytes(dir.File "train-images-idx3-ubyte.gz", gzip (images 3))
    File.WriteAllBytes(dir.File "train-labels-idx1-ubyte", labels nLabels)
    File.WriteAllBytes(dir.File "t10k-images-idx3-ubyte", images 2)
    File.WriteAllBytes(dir.File "t10k-labels-idx1-ubyte.gz", gzip (labels 2))

[<Fact>]
let ``the MNIST loader reads raw and gzipped files alike`` () =
    use dir = new TempDir()
    fakeMnist dir 3
    let train, test = Datasets.mnist dir.Path
    Assert.Equal<int[]>([| 3; 4 |], train.Features.Shape)
    Assert.Equal<float32[]>(Array.init 12 (fun i -> float32 (i * 17) / 255f), train.Features.ToArray32())
    Assert.Equal<float32[]>([| 0f; 1f; 2f |], train.Targets.ToArray32())
    Assert.Equal<int[]>([| 2; 4 |], test.Features.Shape)

[<Fact>]
let ``an image and label count mismatch names both files and counts`` () =
    use dir = new TempDir()
    fakeMnist dir 2
    expectFormatError [ "train-images-idx3-ubyte.gz"; "train-labels-idx1-ubyte"; "3 images"; "2 labels" ] (fun () -> Datasets.mnist dir.Path)
    |> ignore

[<Fact>]
let ``swapped image and label files are rejected by their magic numbers`` () =
    use dir = new TempDir()
    fakeMnist dir 3
    File.Copy(dir.File "t10k-labels-idx1-ubyte.gz", dir.File "train-images-idx3-ubyte.gz", true)
    expectFormatError [ "train-images-idx3-ubyte.gz"; "2051" ] (fun () -> Datasets.mnist dir.Path) |> ignore

[<Fact>]
let ``a header promising more data than memory holds is rejected without allocating`` () =
    use dir = new TempDir()
    let path = dir.File "huge.idx"
    File.WriteAllBytes(path, Array.concat [ [| 0uy; 0uy; 0x08uy; 3uy |]; be32 Int32.MaxValue; be32 Int32.MaxValue; be32 Int32.MaxValue ])
    expectFormatError [ "huge.idx"; "more bytes than one array can hold" ] (fun () -> Idx.read path) |> ignore
