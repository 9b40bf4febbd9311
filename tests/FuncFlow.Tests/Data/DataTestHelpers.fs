/// Helpers for the data-layer tests: temporary folders and hand-made files.
module FuncFlow.Tests.Data.DataTestHelpers

open System
open System.IO
open System.IO.Compression
open Expecto
open FuncFlow.Data
open FuncFlow.Tests
open FuncFlow.Tests.Support

/// A temporary folder deleted with everything in it when disposed.
type TempDir() =
    let dir = Directory.CreateTempSubdirectory("funcflow-data-test-")
    /// The folder's full path.
    member _.Path = dir.FullName
    /// A path inside the folder.
    member _.File(name: string) = System.IO.Path.Combine(dir.FullName, name)
    interface IDisposable with
        member _.Dispose() = dir.Delete true

/// Gzip-compresses bytes.
let gzip (bytes: byte[]) =
    use ms = new MemoryStream()
    do
        use gz = new GZipStream(ms, CompressionLevel.Optimal)
        gz.Write(bytes, 0, bytes.Length)
    ms.ToArray()

/// Decompresses gzip bytes.
let gunzip (bytes: byte[]) =
    use input = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress)
    use out = new MemoryStream()
    input.CopyTo out
    out.ToArray()

/// A big-endian 32-bit integer's bytes.
let be32 (n: int) = [| byte (n >>> 24); byte (n >>> 16); byte (n >>> 8); byte n |]

/// An IDX file of unsigned bytes with the given shape.
let idxBytes (shape: int[]) (data: byte[]) = Array.concat [ [| 0uy; 0uy; 0x08uy; byte shape.Length |]; Array.collect be32 shape; data ]

/// Runs f, expecting a DataFormatException whose message contains every fragment; returns the message.
let expectFormatError (fragments: string list) (f: unit -> 'a) =
    let e = throws<DataFormatException>(fun () -> f () |> ignore)
    for frag in fragments do
        Expect.isTrue (e.Message.Contains frag) (sprintf "expected the message to contain \"%s\", got: %s" frag e.Message)
    e.Message
