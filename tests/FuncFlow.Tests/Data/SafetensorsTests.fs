/// The safetensors parameter file format: round trips, files written by hand as other tools write them,
/// damaged files and atomic saves.
module FuncFlow.Tests.Data.SafetensorsTests

open System
open System.IO
open System.Text
open Xunit
open FsCheck.Xunit
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests.Data.DataTestHelpers

/// A safetensors file from a header JSON string and data bytes, the header padded with spaces to a multiple of 8.
let private build (json: string) (data: byte[]) =
    let head = Encoding.UTF8.GetBytes json
    let padded = Array.append head (Array.create ((8 - head.Length % 8) % 8) (byte ' '))
    Array.concat [ BitConverter.GetBytes(uint64 padded.Length); padded; data ]

let private bits64 (t: Tensor) = t.ToArray() |> Array.map BitConverter.DoubleToInt64Bits
let private bits32 (t: Tensor) = t.ToArray32() |> Array.map BitConverter.SingleToInt32Bits

let private good () =
    build """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""" (Array.append (BitConverter.GetBytes 1.5f) (BitConverter.GetBytes -2.25f))

let private expectLoadError (bytes: byte[]) (fragments: string list) =
    use dir = new TempDir()
    let path = dir.File "broken.safetensors"
    File.WriteAllBytes(path, bytes)
    expectFormatError ("broken.safetensors" :: fragments) (fun () -> Safetensors.load path) |> ignore

[<Fact>]
let ``float64 and float32 tensors round trip bit for bit`` () =
    use dir = new TempDir()
    let path = dir.File "params.safetensors"
    let w = Tensor.create [| 2; 3 |] [| 1.0; -0.0; nan; infinity; Double.Epsilon; 1.0 / 3.0 |]
    let b = Tensor.create32 [| 3 |] [| 0.1f; -1e-30f; Single.MaxValue |]
    let s = Tensor.scalar 2.5
    let e = Tensor.zeros Float32 [| 0; 4 |]
    Safetensors.save path [ "layer1.weight", w; "layer1.bias", b; "step", s; "empty", e ]
    let loaded = Safetensors.load path
    Assert.Equal<string list>([ "empty"; "layer1.bias"; "layer1.weight"; "step" ], loaded |> Map.toList |> List.map fst)
    Assert.Equal<int[]>([| 2; 3 |], loaded["layer1.weight"].Shape)
    Assert.Equal(Float64, loaded["layer1.weight"].DType)
    Assert.Equal<int64[]>(bits64 w, bits64 loaded["layer1.weight"])
    Assert.Equal(Float32, loaded["layer1.bias"].DType)
    Assert.Equal<int[]>(bits32 b, bits32 loaded["layer1.bias"])
    Assert.Equal<int[]>([||], loaded["step"].Shape)
    Assert.Equal(2.5, Tensor.item loaded["step"])
    Assert.Equal<int[]>([| 0; 4 |], loaded["empty"].Shape)
    Assert.Equal(Float32, loaded["empty"].DType)

[<Property>]
let ``any float64 values round trip bit for bit`` (values: float[]) (single: float32[]) =
    use dir = new TempDir()
    let path = dir.File "p.safetensors"
    Safetensors.save path [ "x", Tensor.ofArray values; "y", Tensor.ofArray32 single ]
    let loaded = Safetensors.load path
    bits64 loaded["x"] = bits64 (Tensor.ofArray values) && bits32 loaded["y"] = bits32 (Tensor.ofArray32 single)

[<Fact>]
let ``the written bytes are what other safetensors writers produce`` () =
    use dir = new TempDir()
    let path = dir.File "a.safetensors"
    Safetensors.save path [ "a", Tensor.create32 [| 2 |] [| 1.5f; -2.25f |] ]
    let expected =
        build """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""" (Array.append (BitConverter.GetBytes 1.5f) (BitConverter.GetBytes -2.25f))
    Assert.Equal<byte[]>(expected, File.ReadAllBytes path)

[<Fact>]
let ``names outside ASCII are written as UTF-8 and read back`` () =
    use dir = new TempDir()
    let path = dir.File "u.safetensors"
    Safetensors.save path [ "blocks.0/w+ü", Tensor.ofArray [| 1.0 |] ]
    Assert.Contains("\"blocks.0/w+ü\"", Encoding.UTF8.GetString(File.ReadAllBytes path))
    Assert.Equal<string list>([ "blocks.0/w+ü" ], Safetensors.load path |> Map.toList |> List.map fst)

[<Fact>]
let ``a shape too large for memory is rejected without allocating`` () =
    expectLoadError
        (build """{"w":{"dtype":"F64","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,8]}}""" (Array.zeroCreate 8))
        [ "tensor \"w\""; "larger than one array can hold" ]

[<Fact>]
let ``a hand-built file with several dtypes and metadata loads`` () =
    use dir = new TempDir()
    let path = dir.File "hand.safetensors"
    let json =
        """{"__metadata__":{"format":"pt","epoch":"3"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F64","shape":[1,1],"data_offsets":[8,16]},"c":{"dtype":"I64","shape":[2],"data_offsets":[16,32]},"d":{"dtype":"U8","shape":[3],"data_offsets":[32,35]}}"""
    let data =
        Array.concat
            [ BitConverter.GetBytes 1.5f
              BitConverter.GetBytes -2.25f
              BitConverter.GetBytes 3.125
              BitConverter.GetBytes -7L
              BitConverter.GetBytes 9000000000L
              [| 0uy; 128uy; 255uy |] ]
    File.WriteAllBytes(path, build json data)
    let t = Safetensors.load path
    Assert.Equal<float32[]>([| 1.5f; -2.25f |], t["a"].ToArray32())
    Assert.Equal(Float32, t["a"].DType)
    Assert.Equal<int[]>([| 1; 1 |], t["b"].Shape)
    Assert.Equal<float[]>([| 3.125 |], t["b"].ToArray())
    Assert.Equal<float[]>([| -7.0; 9e9 |], t["c"].ToArray())
    Assert.Equal<float[]>([| 0.0; 128.0; 255.0 |], t["d"].ToArray())
    Assert.Equal<Map<string, string>>(Map [ "format", "pt"; "epoch", "3" ], Safetensors.loadMetadata path)
    Assert.Equal(4, (Safetensors.loadDictionary path).Count)

[<Fact>]
let ``metadata round trips`` () =
    use dir = new TempDir()
    let path = dir.File "m.safetensors"
    Safetensors.saveWithMetadata path (Map [ "framework", "FuncFlow"; "note", "x\"y" ]) [ "w", Tensor.ofArray [| 1.0 |] ]
    Assert.Equal<Map<string, string>>(Map [ "framework", "FuncFlow"; "note", "x\"y" ], Safetensors.loadMetadata path)
    let loaded = Safetensors.load path
    Assert.Equal<float[]>([| 1.0 |], loaded["w"].ToArray())

[<Fact>]
let ``a truncated file names the tensor that runs past the end`` () =
    let bytes = good ()
    expectLoadError bytes[.. bytes.Length - 5] [ "tensor \"a\""; "truncated"; "[0, 8]" ]
    expectLoadError bytes[.. 4] [ "truncated"; "8-byte header length" ]

[<Fact>]
let ``a header length larger than the file is a bad header length`` () =
    let bytes = good ()
    Array.blit (BitConverter.GetBytes 1000000UL) 0 bytes 0 8
    expectLoadError bytes [ "bad header length 1000000" ]

[<Fact>]
let ``invalid JSON in the header is reported`` () =
    expectLoadError (build """{"a":{"dtype":"F32",""" [||]) [ "invalid JSON header" ]
    expectLoadError (build "[1, 2]" [||]) [ "expected a JSON object" ]

[<Fact>]
let ``an unknown dtype is named`` () =
    expectLoadError (build """{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}""" (Array.zeroCreate 16)) [ "tensor \"w\""; "unknown dtype \"F128\"" ]

[<Fact>]
let ``offsets that disagree with the shape, run backwards or overlap are rejected`` () =
    let data = Array.zeroCreate<byte> 16
    expectLoadError (build """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}""" data) [ "tensor \"w\""; "span 12 bytes"; "needs 8" ]
    expectLoadError (build """{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}""" data) [ "tensor \"w\""; "end before they begin" ]
    expectLoadError (build """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""" data) [ "tensor \"w\""; "[begin, end]" ]
    expectLoadError (build """{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""" data) [ "tensor \"w\""; "not a non-negative integer" ]
    expectLoadError
        (build """{"u":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""" data)
        [ "\"u\" [0, 8]"; "\"v\" [4, 12]"; "overlap" ]

[<Fact>]
let ``a missing file is a DataFormatException naming the path`` () =
    use dir = new TempDir()
    let path = dir.File "nothing.safetensors"
    expectFormatError [ path; "file not found" ] (fun () -> Safetensors.load path) |> ignore

[<Fact>]
let ``repeated and reserved names are refused before writing`` () =
    use dir = new TempDir()
    let path = dir.File "dup.safetensors"
    let t = Tensor.ofArray [| 1.0 |]
    let e = Assert.Throws<ArgumentException>(fun () -> Safetensors.save path [ "w", t; "w", t ])
    Assert.Contains("\"w\" appears twice", e.Message)
    Assert.Throws<ArgumentException>(fun () -> Safetensors.save path [ "__metadata__", t ]) |> ignore
    Assert.Empty(Directory.GetFiles dir.Path)

[<Fact>]
let ``a save that fails part-way leaves the previous file intact and no temporary file`` () =
    use dir = new TempDir()
    let path = dir.File "model.safetensors"
    Safetensors.save path [ "w", Tensor.ofArray [| 1.0; 2.0 |] ]
    let before = File.ReadAllBytes path
    let mutable sawTemp = false
    let failing (tmp: string) =
        // The hook runs on the complete temporary file, beside the target, just before it would replace it.
        sawTemp <- File.Exists tmp && Path.GetDirectoryName tmp = dir.Path && (FileInfo tmp).Length > 0L
        raise (IOException "simulated disk failure")
    let e =
        Assert.Throws<IOException>(fun () -> Safetensors.saveCore failing path Map.empty [ "w", Tensor.ofArray (Array.create 1000 7.0) ])
    Assert.Equal("simulated disk failure", e.Message)
    Assert.True sawTemp
    Assert.Equal<byte[]>(before, File.ReadAllBytes path)
    Assert.Equal<string[]>([| path |], Directory.GetFiles dir.Path)
    // A save that succeeds replaces the file.
    Safetensors.save path [ "w", Tensor.ofArray [| 3.0 |] ]
    let replaced = Safetensors.load path
    Assert.Equal<float[]>([| 3.0 |], replaced["w"].ToArray())
    Assert.Equal<string[]>([| path |], Directory.GetFiles dir.Path)
