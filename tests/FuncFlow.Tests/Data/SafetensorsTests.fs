/// The safetensors parameter file format: round trips, files written by hand as other tools write them,
/// damaged files and atomic saves.
module FuncFlow.Tests.Data.SafetensorsTests

open System
open System.IO
open System.Text
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests
open FuncFlow.Tests.Data.DataTestHelpers
open FuncFlow.Tests.Support

/// A safetensors file from a header JSON string and data bytes, the header padded with spaces to a multiple of 8.
let private build (json: string) (data: byte[]) =
    let head = Encoding.UTF8.GetBytes json
    let padded = Array.append head (Array.create ((8 - head.Length % 8) % 8) (byte ' '))
    Array.concat [ BitConverter.GetBytes(uint64 padded.Length); padded; data ]

let private bits64 (t: Tensor) = t.ToArray() |> Array.map BitConverter.DoubleToInt64Bits
let private bits32 (t: Tensor) = t.ToArray32() |> Array.map BitConverter.SingleToInt32Bits

let private good () =
    build
        """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"""
        (Array.append (BitConverter.GetBytes 1.5f) (BitConverter.GetBytes -2.25f))

let private expectLoadError (bytes: byte[]) (fragments: string list) =
    use dir = new TempDir()
    let path = dir.File "broken.safetensors"
    File.WriteAllBytes(path, bytes)
    expectFormatError ("broken.safetensors" :: fragments) (fun () -> Safetensors.load path) |> ignore

[<Tests>]
let tests =
    moduleTests
        "SafetensorsTests"
        [
            testCase "float64 and float32 tensors round trip bit for bit"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "params.safetensors"
                let w = Tensor.create [| 2; 3 |] [| 1.0; -0.0; nan; infinity; Double.Epsilon; 1.0 / 3.0 |]
                let b = Tensor.create32 [| 3 |] [| 0.1f; -1e-30f; Single.MaxValue |]
                let s = Tensor.scalar 2.5
                let e = Tensor.zeros Float32 [| 0; 4 |]
                Safetensors.save path [ "layer1.weight", w; "layer1.bias", b; "step", s; "empty", e ]
                let loaded = Safetensors.load path
                Expect.equal
                    (loaded |> Map.toList |> List.map fst)
                    ([ "empty"; "layer1.bias"; "layer1.weight"; "step" ])
                    "loaded |> Map.toList |> List.map fst"
                Expect.equal (loaded["layer1.weight"].Shape) ([| 2; 3 |]) "loaded[\"layer1.weight\"].Shape"
                Expect.equal (loaded["layer1.weight"].DType) Float64 "loaded[\"layer1.weight\"].DType"
                Expect.equal (bits64 loaded["layer1.weight"]) (bits64 w) "bits64 loaded[\"layer1.weight\"]"
                Expect.equal (loaded["layer1.bias"].DType) Float32 "loaded[\"layer1.bias\"].DType"
                Expect.equal (bits32 loaded["layer1.bias"]) (bits32 b) "bits32 loaded[\"layer1.bias\"]"
                Expect.equal (loaded["step"].Shape) ([||]) "loaded[\"step\"].Shape"
                Expect.equal (Tensor.item loaded["step"]) 2.5 "Tensor.item loaded[\"step\"]"
                Expect.equal (loaded["empty"].Shape) ([| 0; 4 |]) "loaded[\"empty\"].Shape"
                Expect.equal (loaded["empty"].DType) Float32 "loaded[\"empty\"].DType"
            testPropertyWithConfig (propertyConfig 100) "any float64 values round trip bit for bit"
            <| fun (values: float[]) (single: float32[]) ->
                use dir = new TempDir()
                let path = dir.File "p.safetensors"
                Safetensors.save path [ "x", Tensor.ofArray values; "y", Tensor.ofArray32 single ]
                let loaded = Safetensors.load path
                bits64 loaded["x"] = bits64 (Tensor.ofArray values)
                && bits32 loaded["y"] = bits32 (Tensor.ofArray32 single)
            testCase "the written bytes are what other safetensors writers produce"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "a.safetensors"
                Safetensors.save path [ "a", Tensor.create32 [| 2 |] [| 1.5f; -2.25f |] ]
                let expected =
                    build
                        """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"""
                        (Array.append (BitConverter.GetBytes 1.5f) (BitConverter.GetBytes -2.25f))
                Expect.equal (File.ReadAllBytes path) expected "File.ReadAllBytes path"
            testCase "names outside ASCII are written as UTF-8 and read back"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "u.safetensors"
                Safetensors.save path [ "blocks.0/w+ü", Tensor.ofArray [| 1.0 |] ]
                Expect.stringContains
                    (Encoding.UTF8.GetString(File.ReadAllBytes path))
                    ("\"blocks.0/w+ü\"")
                    "Encoding.UTF8.GetString(File.ReadAllBytes path)"
                Expect.equal
                    (Safetensors.load path |> Map.toList |> List.map fst)
                    ([ "blocks.0/w+ü" ])
                    "Safetensors.load path |> Map.toList |> List.map fst"
            testCase "a shape too large for memory is rejected without allocating"
            <| fun () ->
                expectLoadError
                    (build """{"w":{"dtype":"F64","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,8]}}""" (Array.zeroCreate 8))
                    [ "tensor \"w\""; "larger than one array can hold" ]
            testCase "a hand-built file with several dtypes and metadata loads"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "hand.safetensors"
                let json =
                    """{"__metadata__":{"format":"pt","epoch":"3"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F64","shape":[1,1],"data_offsets":[8,16]},"c":{"dtype":"I64","shape":[2],"data_offsets":[16,32]},"d":{"dtype":"U8","shape":[3],"data_offsets":[32,35]}}"""
                let data =
                    Array.concat
                        [
                            BitConverter.GetBytes 1.5f
                            BitConverter.GetBytes -2.25f
                            BitConverter.GetBytes 3.125
                            BitConverter.GetBytes -7L
                            BitConverter.GetBytes 9000000000L
                            [| 0uy; 128uy; 255uy |]
                        ]
                File.WriteAllBytes(path, build json data)
                let t = Safetensors.load path
                Expect.equal (t["a"].ToArray32()) ([| 1.5f; -2.25f |]) "t[\"a\"].ToArray32()"
                Expect.equal (t["a"].DType) Float32 "t[\"a\"].DType"
                Expect.equal (t["b"].Shape) ([| 1; 1 |]) "t[\"b\"].Shape"
                Expect.equal (t["b"].ToArray()) ([| 3.125 |]) "t[\"b\"].ToArray()"
                Expect.equal (t["c"].ToArray()) ([| -7.0; 9e9 |]) "t[\"c\"].ToArray()"
                Expect.equal (t["d"].ToArray()) ([| 0.0; 128.0; 255.0 |]) "t[\"d\"].ToArray()"
                Expect.equal (Safetensors.loadMetadata path) (Map [ "format", "pt"; "epoch", "3" ]) "Safetensors.loadMetadata path"
                Expect.equal ((Safetensors.loadDictionary path).Count) 4 "(Safetensors.loadDictionary path).Count"
            testCase "metadata round trips"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "m.safetensors"
                Safetensors.saveWithMetadata path (Map [ "framework", "FuncFlow"; "note", "x\"y" ]) [ "w", Tensor.ofArray [| 1.0 |] ]
                Expect.equal
                    (Safetensors.loadMetadata path)
                    (Map [ "framework", "FuncFlow"; "note", "x\"y" ])
                    "Safetensors.loadMetadata path"
                let loaded = Safetensors.load path
                Expect.equal (loaded["w"].ToArray()) ([| 1.0 |]) "loaded[\"w\"].ToArray()"
            testCase "a truncated file names the tensor that runs past the end"
            <| fun () ->
                let bytes = good ()
                expectLoadError bytes[.. bytes.Length - 5] [ "tensor \"a\""; "truncated"; "[0, 8]" ]
                expectLoadError bytes[..4] [ "truncated"; "8-byte header length" ]
            testCase "a header length larger than the file is a bad header length"
            <| fun () ->
                let bytes = good ()
                Array.blit (BitConverter.GetBytes 1000000UL) 0 bytes 0 8
                expectLoadError bytes [ "bad header length 1000000" ]
            testCase "invalid JSON in the header is reported"
            <| fun () ->
                expectLoadError (build """{"a":{"dtype":"F32",""" [||]) [ "invalid JSON header" ]
                expectLoadError (build "[1, 2]" [||]) [ "expected a JSON object" ]
            testCase "an unknown dtype is named"
            <| fun () ->
                expectLoadError
                    (build """{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}""" (Array.zeroCreate 16))
                    [ "tensor \"w\""; "unknown dtype \"F128\"" ]
            testCase "offsets that disagree with the shape, run backwards or overlap are rejected"
            <| fun () ->
                let data = Array.zeroCreate<byte> 16
                expectLoadError
                    (build """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}""" data)
                    [ "tensor \"w\""; "span 12 bytes"; "needs 8" ]
                expectLoadError
                    (build """{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}""" data)
                    [ "tensor \"w\""; "end before they begin" ]
                expectLoadError (build """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""" data) [ "tensor \"w\""; "[begin, end]" ]
                expectLoadError
                    (build """{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""" data)
                    [ "tensor \"w\""; "not a non-negative integer" ]
                expectLoadError
                    (build
                        """{"u":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"""
                        data)
                    [ "\"u\" [0, 8]"; "\"v\" [4, 12]"; "overlap" ]
            testCase "a missing file is a DataFormatException naming the path"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "nothing.safetensors"
                expectFormatError [ path; "file not found" ] (fun () -> Safetensors.load path) |> ignore
            testCase "repeated and reserved names are refused before writing"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "dup.safetensors"
                let t = Tensor.ofArray [| 1.0 |]
                let e = (throws<ArgumentException>(fun () -> Safetensors.save path [ "w", t; "w", t ]))
                Expect.stringContains e.Message ("\"w\" appears twice") "e.Message"
                (throws<ArgumentException>(fun () -> Safetensors.save path [ "__metadata__", t ])) |> ignore
                Expect.isEmpty (Directory.GetFiles dir.Path) "files left in the folder"
            testCase "a save that fails part-way leaves the previous file intact and no temporary file"
            <| fun () ->
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
                    (throws<IOException>(fun () ->
                        Safetensors.saveCore failing path Map.empty [ "w", Tensor.ofArray (Array.create 1000 7.0) ]))
                Expect.equal e.Message "simulated disk failure" "e.Message"
                Expect.isTrue sawTemp "the hook saw the complete temporary file"
                Expect.equal (File.ReadAllBytes path) before "File.ReadAllBytes path"
                Expect.equal (Directory.GetFiles dir.Path) ([| path |]) "Directory.GetFiles dir.Path"
                // A save that succeeds replaces the file.
                Safetensors.save path [ "w", Tensor.ofArray [| 3.0 |] ]
                let replaced = Safetensors.load path
                Expect.equal (replaced["w"].ToArray()) ([| 3.0 |]) "replaced[\"w\"].ToArray()"
                Expect.equal (Directory.GetFiles dir.Path) ([| path |]) "Directory.GetFiles dir.Path"
        ]
