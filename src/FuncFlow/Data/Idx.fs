namespace FuncFlow.Data

open System
open System.Buffers.Binary
open FuncFlow

/// Reads IDX files, the format of MNIST and Fashion-MNIST, gzipped or raw.
/// An IDX file is a big-endian magic number (two zero bytes, a type byte, a rank byte), one 32-bit
/// big-endian size per axis, then the values, big-endian, row-major.
[<RequireQualifiedAccess>]
module Idx =
    /// A file's shape, element type byte and undecoded data.
    type internal Raw = { Shape: int[]; TypeCode: byte; Bytes: byte[] }

    let private layout =
        "an IDX file starts with 0x00 0x00, a type byte (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and a rank byte, e.g. 2049 = 0x00000801 for labels or 2051 = 0x00000803 for images"

    let private itemSize (code: byte) =
        match code with
        | 0x08uy
        | 0x09uy -> Some 1
        | 0x0Buy -> Some 2
        | 0x0Cuy
        | 0x0Duy -> Some 4
        | 0x0Euy -> Some 8
        | _ -> None

    let private fail (msg: string) = raise (DataFormatException msg)

    /// Reads and checks the whole file; the data is returned only when every byte the header promises is there.
    let internal readRaw (path: string) : Raw =
        use s = DataFile.openRead path
        let readExactly (what: string) (n: int) =
            let buf = Array.zeroCreate<byte> n
            let got = DataFile.readFully s buf 0 n
            if got < n then
                fail (sprintf "%s: truncated file: expected %d bytes of %s, found %d" path n what got)
            buf
        let magic = readExactly "magic number" 4
        let magicValue = BinaryPrimitives.ReadInt32BigEndian(ReadOnlySpan magic)
        if magic[0] <> 0uy || magic[1] <> 0uy then
            fail (sprintf "%s: wrong magic number %d (0x%08X): %s" path magicValue magicValue layout)
        let code = magic[2]
        let size =
            match itemSize code with
            | Some n -> n
            | None ->
                fail (sprintf "%s: wrong magic number %d (0x%08X): unknown type byte 0x%02X; %s" path magicValue magicValue code layout)
        let rank = int magic[3]
        let dims = readExactly (sprintf "header (%d axis sizes of 4 bytes)" rank) (4 * rank)
        let shape = Array.init rank (fun i -> BinaryPrimitives.ReadInt32BigEndian(ReadOnlySpan(dims, 4 * i, 4)))
        if shape |> Array.exists (fun d -> d < 0) then
            fail (sprintf "%s: header gives a negative axis size in shape %s" path (Shape.show shape))
        let total =
            match DataFile.byteCount size (shape |> Seq.map int64) with
            | Some n -> n
            | None -> fail (sprintf "%s: shape %s needs more bytes than one array can hold" path (Shape.show shape))
        let truncated (found: int64) =
            fail (sprintf "%s: truncated file: expected %d bytes of data for shape %s, found %d" path total (Shape.show shape) found)
        // A raw file's length is known: a header promising more than it holds is refused before allocating.
        match DataFile.remaining s with
        | Some left when left < total -> truncated left
        | _ -> ()
        let bytes = DataFile.readUpTo s (int total)
        if int64 bytes.Length < total then truncated (int64 bytes.Length)
        // Trailing bytes mean the header and the data disagree, so the file is not what it claims to be.
        if DataFile.readFully s (Array.zeroCreate 1) 0 1 > 0 then
            fail (sprintf "%s: the file has more than the %d bytes of data that shape %s needs" path bytes.Length (Shape.show shape))
        { Shape = shape; TypeCode = code; Bytes = bytes }

    /// Decodes raw IDX data: float32 for byte, int16 and float32 files, float64 for int32 and float64 files
    /// (float32 cannot hold every int32 exactly).
    let internal decode (raw: Raw) : Tensor =
        let b = raw.Bytes
        let data =
            match raw.TypeCode with
            | 0x08uy -> TensorData.F32(Array.init b.Length (fun i -> float32 b[i]))
            | 0x09uy -> TensorData.F32(Array.init b.Length (fun i -> float32 (sbyte b[i])))
            | 0x0Buy ->
                TensorData.F32(
                    Array.init (b.Length / 2) (fun i -> float32 (BinaryPrimitives.ReadInt16BigEndian(ReadOnlySpan(b, 2 * i, 2))))
                )
            | 0x0Cuy ->
                TensorData.F64(Array.init (b.Length / 4) (fun i -> float (BinaryPrimitives.ReadInt32BigEndian(ReadOnlySpan(b, 4 * i, 4)))))
            | 0x0Duy -> TensorData.F32(Array.init (b.Length / 4) (fun i -> BinaryPrimitives.ReadSingleBigEndian(ReadOnlySpan(b, 4 * i, 4))))
            | _ -> TensorData.F64(Array.init (b.Length / 8) (fun i -> BinaryPrimitives.ReadDoubleBigEndian(ReadOnlySpan(b, 8 * i, 8))))
        Tensor.ofStorage raw.Shape data

    /// Reads an IDX file (gzipped or raw, detected by the gzip magic bytes) into a tensor of the file's shape.
    /// Unsigned-byte files (type 0x08, as MNIST) give float32 values 0-255; signed-byte, int16 and float32 files
    /// give float32; int32 and float64 files give float64. Raises DataFormatException naming the file when it is
    /// missing, has a wrong magic number, a negative or oversized axis, is truncated or longer than its header
    /// says, or holds damaged gzip data; never returns part of a file, and never allocates more than it holds.
    let read (path: string) : Tensor = decode (readRaw path)
