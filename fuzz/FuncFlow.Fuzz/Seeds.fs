/// The seed files of the corpus: small valid files of each target, written by FuncFlow's own writers where it has
/// one, so that the fuzzer starts from inputs that reach the readers' deepest paths. Committed in the corpus; this
/// writes them again (dotnet run --project fuzz/FuncFlow.Fuzz -- seeds tests/FuncFlow.Tests/corpus).
module FuncFlow.Fuzz.Seeds

open System
open System.IO
open System.IO.Compression
open System.Text
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Onnx

let private gzip (bytes: byte[]) =
    use ms = new MemoryStream()
    do
        use gz = new GZipStream(ms, CompressionLevel.Optimal)
        gz.Write(bytes, 0, bytes.Length)
    ms.ToArray()

let private idx (code: byte) (shape: int[]) (data: byte[]) =
    let bigEndian (n: int) = [| byte (n >>> 24); byte (n >>> 16); byte (n >>> 8); byte n |]
    Array.concat [ [| 0uy; 0uy; code; byte shape.Length |]; Array.collect bigEndian shape; data ]

/// A safetensors file written by hand, with dtypes FuncFlow reads but does not write.
let private otherDtypes () =
    let json =
        """{"__metadata__":{"format":"pt"},"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},"i":{"dtype":"I64","shape":[1,1],"data_offsets":[6,14]},"u":{"dtype":"U8","shape":[2],"data_offsets":[14,16]}}"""
    let head = Encoding.UTF8.GetBytes json
    let head = Array.append head (Array.create ((8 - head.Length % 8) % 8) (byte ' '))
    let data =
        Array.concat
            [
                BitConverter.GetBytes(Half.op_Explicit 1.5f: Half)
                BitConverter.GetBytes(Half.op_Explicit -2.0f: Half)
                [| 0x80uy; 0x3Fuy |]
                BitConverter.GetBytes -7L
                [| 0uy; 255uy |]
            ]
    Array.concat [ BitConverter.GetBytes(uint64 head.Length); head; data ]

/// Writes through a writer that takes a path, and returns the bytes.
let private written (write: string -> unit) =
    let path = Path.Combine(Path.GetTempPath(), sprintf "funcflow-seed-%s" (Guid.NewGuid().ToString "N"))
    try
        write path
        File.ReadAllBytes path
    finally
        File.Delete path

/// A model file of Targets.layer in format 1 (Linear weights [in, out], no format key), which reading converts.
let private format1 () =
    let model = Model.Create(Targets.layer (), 3)
    let transposed =
        model.Parameters
        |> Map.map (fun name t ->
            if name.EndsWith ".weight" then
                let a = Tensor.toArray2D t
                Tensor.ofArray2D (Array2D.init (Array2D.length2 a) (Array2D.length1 a) (fun i j -> a[j, i]))
            else
                t)
    written (fun path ->
        Safetensors.saveWithMetadata path (Map [ ModelFile.ArchitectureKey, model.Layer.Describe() ]) (Map.toSeq transposed))

/// A checkpoint of Targets.trainer after two steps.
let private checkpoint () =
    let t = Targets.trainer ()
    let x = Tensor.ofArray2D (array2D [ [ 0.5; -1.0 ]; [ 2.0; 0.25 ] ])
    let y = Tensor.ofArray2D (array2D [ [ 1.0 ]; [ -1.0 ] ])
    t.Step(x, y) |> ignore
    t.Step(x, y) |> ignore
    written t.SaveCheckpoint

/// The seed files of each target, by name.
let all () : (string * (string * byte[]) list) list =
    let csv = Encoding.UTF8.GetBytes "1,2.5,-3\n\n4e2, 0.125 ,NaN\n"
    let text = Encoding.UTF8.GetBytes "To be, or not to be.\n\u00c9t\u00e9 \u2603\n"
    [
        "safetensors",
        [
            "seed-funcflow.safetensors",
            written (fun path ->
                Safetensors.saveWithMetadata
                    path
                    (Map [ "note", "seed" ])
                    [
                        "w", Tensor.ofArray2D (array2D [ [ 1.0; -2.0 ] ])
                        "v", Tensor.cast Float32 (Tensor.ofArray [| 0.5; 3.0 |])
                    ])
            "seed-dtypes.safetensors", otherDtypes ()
        ]
        "idx",
        [
            "seed-u8.idx", idx 0x08uy [| 2; 3 |] [| 0uy; 1uy; 2uy; 127uy; 128uy; 255uy |]
            "seed-f32.idx", idx 0x0Duy [| 1 |] (BitConverter.GetBytes 1.5f |> Array.rev)
            "seed-i16.idx.gz", gzip (idx 0x0Buy [| 2 |] [| 0xFFuy; 0xFEuy; 0x01uy; 0x00uy |])
        ]
        "csv", [ "seed.csv", csv; "seed.csv.gz", gzip csv ]
        "text", [ "seed.txt", text; "seed.txt.gz", gzip text ]
        "modelfile",
        [
            "seed-format2.safetensors", written (Model.Create(Targets.layer (), 2).Save)
            "seed-format1.safetensors", format1 ()
        ]
        "checkpoint", [ "seed-checkpoint.safetensors", checkpoint () ]
        // With seed-torch-cnn.onnx, which PyTorch wrote (tests/FuncFlow.Onnx.Tests/fixtures/torch_cnn.onnx).
        "onnx",
        [
            "seed-mlp.onnx", written (fun path -> Onnx.exportModel (Model.Create(Targets.layer (), 4)) [| 1; 2 |] path)
            "seed-cnn.onnx",
            written (fun path ->
                let cnn = Sequential(Conv2d(1, 2, 3), BatchNorm2d 2, ReLU(), MaxPool2d 2, Flatten(), Linear(8, 3))
                Onnx.exportModel (Model.Create(cnn, 5)) [| 1; 1; 6; 6 |] path)
        ]
    ]

/// Writes the seeds into corpus/<target>/, replacing files of the same names.
let write (corpus: string) =
    for target, files in all () do
        let dir = Path.Combine(corpus, target)
        Directory.CreateDirectory dir |> ignore
        for name, bytes in files do
            File.WriteAllBytes(Path.Combine(dir, name), bytes)
            printfn "%s/%s: %d bytes" target name bytes.Length
