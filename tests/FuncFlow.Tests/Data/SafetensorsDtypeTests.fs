/// Safetensors decoding of every dtype Safetensors.load reads, from a file encoded by Python's struct module
/// (reference/dtypes.safetensors, written by reference/make_safetensors_fixture.py) whose data section holds
/// the tensors in the reverse of the header's order. The expected values are written out here, as numbers
/// or as the formulas that define them, never decoded with .NET's own readers.
module FuncFlow.Tests.Data.SafetensorsDtypeTests

open System
open System.IO
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests
open FuncFlow.Tests.Data.DataTestHelpers
open FuncFlow.Tests.Support

let private fixture =
    lazy (Safetensors.load (Path.Combine(AppContext.BaseDirectory, "reference", "dtypes.safetensors")))

/// Values compared bit for bit, so that -0.0, NaN and infinities count, and shown as numbers on failure.
let private assertFloat64 (name: string) (shape: int[]) (expected: float[]) =
    let t = fixture.Value[name]
    Expect.equal t.DType Float64 (name + ": dtype")
    Expect.equal t.Shape shape (name + ": shape")
    let actual = t.ToArray()
    Expect.isTrue
        (Array.map BitConverter.DoubleToInt64Bits expected = Array.map BitConverter.DoubleToInt64Bits actual)
        (sprintf "%s: expected %A, got %A" name expected actual)

let private assertFloat32 (name: string) (shape: int[]) (expected: float32[]) =
    let t = fixture.Value[name]
    Expect.equal t.DType Float32 (name + ": dtype")
    Expect.equal t.Shape shape (name + ": shape")
    let actual = t.ToArray32()
    Expect.isTrue
        (Array.map BitConverter.SingleToInt32Bits expected = Array.map BitConverter.SingleToInt32Bits actual)
        (sprintf "%s: expected %A, got %A" name expected actual)

[<Tests>]
let tests =
    moduleTests
        "SafetensorsDtypeTests"
        [
            testCase "F64 and F32 decode with their sign, extremes and subnormals"
            <| fun () ->
                assertFloat64 "f64" [| 4 |] [| -1.5; 1e300; 2.0 ** -1074.0; -0.1 |]
                assertFloat32 "f32" [| 3 |] [| -2.5f; Single.MaxValue; float32 (2.0 ** -149.0) |]
            testCase "F16 decodes with half precision's exponent bias, its largest value, smallest normal and subnormal"
            <| fun () ->
                // 65504 = (2 - 2^-10) 2^15 is the largest half; 2^-14 the smallest normal; 2^-24 the smallest subnormal;
                // 0.333251953125 = 1365 * 2^-12 the half nearest 1/3.
                assertFloat32
                    "f16"
                    [| 7 |]
                    [|
                        1.0f
                        -2.0f
                        65504.0f
                        float32 (2.0 ** -14.0)
                        float32 (2.0 ** -24.0)
                        0.333251953125f
                        Single.NegativeInfinity
                    |]
            testCase "BF16 decodes as the top half of a float32, with its largest value and smallest subnormal"
            <| fun () ->
                // (2 - 2^-7) 2^127 is the largest bfloat16; 2^-133 its smallest subnormal; 0.333984375 = 171 * 2^-9 the
                // bfloat16 nearest 1/3.
                assertFloat32
                    "bf16"
                    [| 6 |]
                    [|
                        1.0f
                        -2.0f
                        float32 ((2.0 - 2.0 ** -7.0) * 2.0 ** 127.0)
                        float32 (2.0 ** -133.0)
                        0.333984375f
                        Single.NegativeInfinity
                    |]
            testCase "signed integers decode with their sign, unsigned ones without"
            <| fun () ->
                assertFloat64 "i64" [| 4 |] [| -(2.0 ** 53.0); -1.0; 1234567890123.0; 2.0 ** 62.0 |]
                // 2^64 - 1 has no float64; the nearest is 2^64.
                assertFloat64 "u64" [| 3 |] [| 2.0 ** 64.0; 2.0 ** 63.0; 1.0 |]
                assertFloat64 "i32" [| 2; 2 |] [| -(2.0 ** 31.0); -1.0; 2.0 ** 31.0 - 1.0; 65536.0 |]
                assertFloat64 "u32" [| 3 |] [| 2.0 ** 32.0 - 1.0; 2.0 ** 31.0; 1.0 |]
                assertFloat64 "i16" [| 4 |] [| -32768.0; -1.0; 32767.0; 256.0 |]
                assertFloat64 "u16" [| 3 |] [| 65535.0; 32768.0; 1.0 |]
                assertFloat64 "i8" [| 4 |] [| -128.0; -1.0; 127.0; 0.0 |]
                assertFloat64 "u8" [| 4 |] [| 255.0; 128.0; 0.0; 1.0 |]
                assertFloat64 "bool" [| 3 |] [| 1.0; 0.0; 1.0 |]
            testCase "tensors are read at their data_offsets, not in the header's order"
            <| fun () ->
                // "first" and "second" have the same dtype and shape, and the data holds "second" first: a reader that
                // walks the header in order would swap them (and misread every other tensor too).
                assertFloat32 "first" [| 2 |] [| 1.25f; -3.5f |]
                assertFloat32 "second" [| 2 |] [| 7.75f; 0.5f |]
            testCase "the fixture holds one tensor of every dtype the loader supports"
            <| fun () ->
                // The loader's error for an unknown dtype lists what it supports; each must be in the fixture.
                use dir = new TempDir()
                let path = dir.File "unknown.safetensors"
                let json = Text.Encoding.UTF8.GetBytes """{"w":{"dtype":"X9","shape":[0],"data_offsets":[0,0]}}"""
                File.WriteAllBytes(path, Array.append (BitConverter.GetBytes(uint64 json.Length)) json)
                let message = expectFormatError [ "supported:" ] (fun () -> Safetensors.load path)
                let supported =
                    message.Substring(message.IndexOf "supported:" + "supported:".Length).TrimEnd(')').Split(',')
                    |> Array.map (fun s -> s.Trim())
                let fixtureDtypes =
                    set [ "F64"; "F32"; "F16"; "BF16"; "I64"; "U64"; "I32"; "U32"; "I16"; "U16"; "I8"; "U8"; "BOOL" ]
                Expect.equal (set supported) fixtureDtypes "the loader's dtypes"
                Expect.equal fixture.Value.Count 15 "tensors in the fixture"
            testCase "inspect lists the header's tensors in file order with the file's dtype names, shapes and sizes"
            <| fun () ->
                let info =
                    Safetensors.inspect (Path.Combine(AppContext.BaseDirectory, "reference", "dtypes.safetensors"))
                // As DTYPES in make_safetensors_fixture.py lists them; sizes are elements times the dtype's bytes.
                let expected =
                    [
                        "f64", "F64", [| 4 |], 32L
                        "f32", "F32", [| 3 |], 12L
                        "f16", "F16", [| 7 |], 14L
                        "bf16", "BF16", [| 6 |], 12L
                        "i64", "I64", [| 4 |], 32L
                        "u64", "U64", [| 3 |], 24L
                        "i32", "I32", [| 2; 2 |], 16L
                        "u32", "U32", [| 3 |], 12L
                        "i16", "I16", [| 4 |], 8L
                        "u16", "U16", [| 3 |], 6L
                        "i8", "I8", [| 4 |], 4L
                        "u8", "U8", [| 4 |], 4L
                        "bool", "BOOL", [| 3 |], 3L
                        "first", "F32", [| 2 |], 8L
                        "second", "F32", [| 2 |], 8L
                    ]
                Expect.equal [ for e in info.Tensors -> e.Name, e.DType, e.Shape, e.Bytes ] expected "entries"
        ]
