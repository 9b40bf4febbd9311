namespace FuncFlow.Data

open System
open System.Buffers.Binary
open System.Collections.Generic
open System.IO
open System.Runtime.InteropServices
open System.Text.Json
open FuncFlow

/// One tensor of a safetensors file as its header declares it.
type SafetensorsEntry =
    {
        /// The tensor's name.
        Name: string
        /// The dtype as the file names it: "F64", "F32", "F16", "BF16", "I64", ..., "BOOL".
        DType: string
        /// The shape.
        Shape: int[]
        /// The size of its data in bytes.
        Bytes: int64
    }

/// What a safetensors file holds, read from its header.
type SafetensorsInfo =
    {
        /// The tensors, in the order the header lists them.
        Tensors: SafetensorsEntry list
        /// The string metadata ("__metadata__"), empty when the file has none.
        Metadata: Map<string, string>
    }

/// Reads and writes parameter files in the safetensors format (as Hugging Face's safetensors library):
/// an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// {"name": {"dtype": "F64", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}},
/// then the raw little-endian values, offsets counted from the start of that data section.
[<RequireQualifiedAccess>]
module Safetensors =
    /// Headers above this size are refused before allocating, as the reference implementation does.
    let private maxHeader = 100_000_000L

    let private fail (msg: string) = raise (DataFormatException msg)

    /// Writes an array's values little-endian, straight from its memory on a little-endian machine.
    let private writeValues<'T when 'T: unmanaged and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (s: Stream) (a: 'T[]) =
        if BitConverter.IsLittleEndian then
            s.Write(MemoryMarshal.AsBytes(ReadOnlySpan<'T>(a)))
        else
            // A big-endian machine swaps each value's bytes.
            let b = MemoryMarshal.AsBytes(ReadOnlySpan<'T>(a)).ToArray()
            let size = sizeof<'T>
            for i in 0 .. a.Length - 1 do
                Array.Reverse(b, i * size, size)
            s.Write(b, 0, b.Length)

    /// A tensor's dtype name, its data size in bytes, and a writer for its data.
    let private encode (t: Tensor) : string * int64 * (Stream -> unit) =
        match t.Storage with
        | TensorData.F64 a -> "F64", 8L * int64 a.Length, (fun s -> writeValues s a)
        | TensorData.F32 a -> "F32", 4L * int64 a.Length, (fun s -> writeValues s a)

    let private header (metadata: Map<string, string>) (entries: (string * string * int[] * int64 * int64) list) : byte[] =
        use ms = new MemoryStream()
        do
            // Names are written as UTF-8 rather than \u escapes, as the reference writer does; the header is never HTML.
            use w =
                new Utf8JsonWriter(ms, JsonWriterOptions(Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping))
            w.WriteStartObject()
            if not metadata.IsEmpty then
                w.WriteStartObject "__metadata__"
                for KeyValue(k, v) in metadata do
                    w.WriteString(k, v)
                w.WriteEndObject()
            for name, dtype, shape, b, e in entries do
                w.WriteStartObject name
                w.WriteString("dtype", dtype)
                w.WriteStartArray "shape"
                for d in shape do
                    w.WriteNumberValue d
                w.WriteEndArray()
                w.WriteStartArray "data_offsets"
                w.WriteNumberValue b
                w.WriteNumberValue e
                w.WriteEndArray()
                w.WriteEndObject()
            w.WriteEndObject()
        let json = ms.ToArray()
        // Padding with spaces to a multiple of 8 keeps the data section aligned for readers that map the file.
        let padded = (json.Length + 7) / 8 * 8
        Array.append json (Array.create (padded - json.Length) (byte ' '))

    /// save with a hook run on the complete, flushed temporary file just before it replaces the target;
    /// internal so that tests can make the commit fail and check that nothing is left behind.
    let internal saveCore
        (beforeCommit: string -> unit)
        (path: string)
        (metadata: Map<string, string>)
        (tensors: seq<string * Tensor>)
        : unit =
        let items = Seq.toList tensors
        let seen = HashSet<string>()
        for name, _ in items do
            if name = "__metadata__" then
                invalidArg "tensors" "Safetensors.save: the name __metadata__ is reserved for the metadata"
            if not (seen.Add name) then
                invalidArg "tensors" (sprintf "Safetensors.save: the name \"%s\" appears twice" name)
        let encoded = items |> List.map (fun (name, t) -> name, t.ShapeRef, encode t)
        let entries, _ =
            encoded
            |> List.mapFold
                (fun (offset: int64) (name, shape, (dtype, length, _)) -> (name, dtype, shape, offset, offset + length), offset + length)
                0L
        let head = header metadata entries
        DataFile.writeAtomically beforeCommit path (fun fs ->
            let len = Array.zeroCreate<byte> 8
            BinaryPrimitives.WriteUInt64LittleEndian(Span len, uint64 head.Length)
            fs.Write(len, 0, 8)
            fs.Write(head, 0, head.Length)
            for _, _, (_, _, write) in encoded do
                write fs)

    /// Writes named tensors (float64 as F64, float32 as F32) and string metadata to a safetensors file, atomically:
    /// the file is written beside the target under a temporary name and moved over it only when complete, so a
    /// failure leaves any previous file intact. Raises ArgumentException for a repeated or reserved name.
    let saveWithMetadata (path: string) (metadata: Map<string, string>) (tensors: seq<string * Tensor>) : unit =
        saveCore ignore path metadata tensors

    /// Writes named tensors to a safetensors file atomically (see saveWithMetadata).
    let save (path: string) (tensors: seq<string * Tensor>) : unit = saveCore ignore path Map.empty tensors

    /// Writes a dictionary of named tensors to a safetensors file atomically (see saveWithMetadata); for C# callers.
    let saveDictionary (path: string) (tensors: IReadOnlyDictionary<string, Tensor>) : unit =
        saveCore ignore path Map.empty [ for KeyValue(k, v) in tensors -> k, v ]

    /// One tensor's header entry, checked.
    type private Entry = { Name: string; DType: string; Shape: int[]; Begin: int64; End: int64 }

    let private itemSize (dtype: string) =
        match dtype with
        | "F64"
        | "I64"
        | "U64" -> Some 8
        | "F32"
        | "I32"
        | "U32" -> Some 4
        | "F16"
        | "BF16"
        | "I16"
        | "U16" -> Some 2
        | "I8"
        | "U8"
        | "BOOL" -> Some 1
        | _ -> None

    /// Decodes little-endian values: F64 stays float64, F32/F16/BF16 become float32, integer types and BOOL float64.
    let private decode (dtype: string) (b: byte[]) : TensorData =
        match dtype with
        | "F64" -> TensorData.F64(Array.init (b.Length / 8) (fun i -> BinaryPrimitives.ReadDoubleLittleEndian(ReadOnlySpan(b, 8 * i, 8))))
        | "F32" -> TensorData.F32(Array.init (b.Length / 4) (fun i -> BinaryPrimitives.ReadSingleLittleEndian(ReadOnlySpan(b, 4 * i, 4))))
        | "F16" ->
            TensorData.F32(Array.init (b.Length / 2) (fun i -> float32 (BinaryPrimitives.ReadHalfLittleEndian(ReadOnlySpan(b, 2 * i, 2)))))
        // bfloat16 is the top half of a float32.
        | "BF16" ->
            TensorData.F32(
                Array.init (b.Length / 2) (fun i ->
                    BitConverter.Int32BitsToSingle(int (BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan(b, 2 * i, 2))) <<< 16))
            )
        | "I64" ->
            TensorData.F64(Array.init (b.Length / 8) (fun i -> float (BinaryPrimitives.ReadInt64LittleEndian(ReadOnlySpan(b, 8 * i, 8)))))
        | "U64" ->
            TensorData.F64(Array.init (b.Length / 8) (fun i -> float (BinaryPrimitives.ReadUInt64LittleEndian(ReadOnlySpan(b, 8 * i, 8)))))
        | "I32" ->
            TensorData.F64(Array.init (b.Length / 4) (fun i -> float (BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan(b, 4 * i, 4)))))
        | "U32" ->
            TensorData.F64(Array.init (b.Length / 4) (fun i -> float (BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan(b, 4 * i, 4)))))
        | "I16" ->
            TensorData.F64(Array.init (b.Length / 2) (fun i -> float (BinaryPrimitives.ReadInt16LittleEndian(ReadOnlySpan(b, 2 * i, 2)))))
        | "U16" ->
            TensorData.F64(Array.init (b.Length / 2) (fun i -> float (BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan(b, 2 * i, 2)))))
        | "I8" -> TensorData.F64(Array.init b.Length (fun i -> float (sbyte b[i])))
        | _ -> TensorData.F64(Array.init b.Length (fun i -> float b[i]))

    let private parseEntry (path: string) (dataLength: int64) (name: string) (e: JsonElement) : Entry =
        let bad (what: string) = fail (sprintf "%s: tensor \"%s\": %s" path name what)
        if e.ValueKind <> JsonValueKind.Object then bad "header entry is not a JSON object"
        let prop (key: string) =
            match e.TryGetProperty key with
            | true, v -> v
            | _ -> bad (sprintf "header entry has no \"%s\"" key)
        let ints (key: string) =
            let v = prop key
            if v.ValueKind <> JsonValueKind.Array then bad (sprintf "\"%s\" is not an array" key)
            [|
                for x in v.EnumerateArray() ->
                    match x.ValueKind, x.TryGetInt64() with
                    | JsonValueKind.Number, (true, n) when n >= 0L -> n
                    | _ -> bad (sprintf "\"%s\" holds %s, not a non-negative integer" key (x.GetRawText()))
            |]
        let dtypeElement = prop "dtype"
        let dtype =
            if dtypeElement.ValueKind = JsonValueKind.String then
                dtypeElement.GetString()
            else
                dtypeElement.GetRawText()
        let size =
            match itemSize dtype with
            | Some s -> s
            | None ->
                bad (sprintf "unknown dtype \"%s\" (supported: F64, F32, F16, BF16, I64, U64, I32, U32, I16, U16, I8, U8, BOOL)" dtype)
        let shape64 = ints "shape"
        let offsets = ints "data_offsets"
        if offsets.Length <> 2 then
            bad (sprintf "data_offsets must be [begin, end], got %d numbers" offsets.Length)
        let b, en = offsets[0], offsets[1]
        if shape64 |> Array.exists (fun d -> d > int64 Int32.MaxValue) then bad "a dimension is too large"
        let shape = shape64 |> Array.map int
        let bytes =
            match DataFile.byteCount size shape64 with
            | Some n -> n
            | None -> bad (sprintf "shape %s of %s is larger than one array can hold" (Shape.show shape) dtype)
        if en < b then bad (sprintf "data_offsets [%d, %d] end before they begin" b en)
        if en - b <> bytes then
            bad (sprintf "data_offsets [%d, %d] span %d bytes but shape %s of %s needs %d" b en (en - b) (Shape.show shape) dtype bytes)
        if en > dataLength then
            bad (
                sprintf
                    "data_offsets [%d, %d] run past the end of the data section (%d bytes): the file is truncated or the offsets are wrong"
                    b
                    en
                    dataLength
            )
        { Name = name; DType = dtype; Shape = shape; Begin = b; End = en }

    /// Reads the header: the entries in file order and the metadata. The stream is left after the header.
    let private readHeader (path: string) (fs: FileStream) : Entry list * Map<string, string> * int64 =
        let fileLength = fs.Length
        if fileLength < 8L then
            fail (sprintf "%s: truncated file: %d bytes, shorter than the 8-byte header length" path fileLength)
        let lenBytes = Array.zeroCreate<byte> 8
        fs.ReadExactly(lenBytes, 0, 8)
        let n = BinaryPrimitives.ReadUInt64LittleEndian(ReadOnlySpan lenBytes)
        if n > uint64 (fileLength - 8L) then
            fail (
                sprintf
                    "%s: bad header length %d: larger than the %d bytes that follow it (truncated or not a safetensors file)"
                    path
                    n
                    (fileLength - 8L)
            )
        if n > uint64 maxHeader then
            fail (sprintf "%s: bad header length %d: above the %d-byte limit" path n maxHeader)
        let head = Array.zeroCreate<byte>(int n)
        fs.ReadExactly(head, 0, head.Length)
        let dataLength = fileLength - 8L - int64 n
        // JSON parsing leaves invalid UTF-8 in names and strings for later, where it would raise another exception.
        try
            Text.UTF8Encoding(false, true).GetCharCount head |> ignore
        with :? Text.DecoderFallbackException as e ->
            raise (DataFormatException(sprintf "%s: corrupt header: not UTF-8 text (%s)" path e.Message, e))
        let doc =
            try
                JsonDocument.Parse(ReadOnlyMemory head)
            with :? JsonException as e ->
                raise (DataFormatException(sprintf "%s: invalid JSON header: %s" path e.Message, e))
        use doc = doc
        let root = doc.RootElement
        if root.ValueKind <> JsonValueKind.Object then
            fail (sprintf "%s: invalid header: expected a JSON object, got %A" path root.ValueKind)
        let mutable metadata = Map.empty
        let entries = ResizeArray()
        let names = HashSet<string>()
        for p in root.EnumerateObject() do
            // JSON allows a repeated name, and which one a reader keeps is up to it: refuse the ambiguity.
            if not (names.Add p.Name) then
                fail (sprintf "%s: corrupt header: the name \"%s\" appears twice" path p.Name)
            if p.Name = "__metadata__" then
                if p.Value.ValueKind <> JsonValueKind.Object then
                    fail (sprintf "%s: __metadata__ is not a JSON object" path)
                for m in p.Value.EnumerateObject() do
                    if m.Value.ValueKind <> JsonValueKind.String then
                        fail (sprintf "%s: __metadata__ value \"%s\" is not a string" path m.Name)
                    metadata <- metadata.Add(m.Name, m.Value.GetString())
            else
                entries.Add(parseEntry path dataLength p.Name p.Value)
        // As the reference reader requires: the tensors tile the data section from its start, in offset order,
        // without gaps or overlaps, and nothing follows the last one.
        let sorted = entries |> Seq.sortBy (fun e -> e.Begin, e.End) |> Seq.toList
        sorted
        |> List.pairwise
        |> List.iter (fun (a, b) ->
            if b.Begin < a.End then
                fail (sprintf "%s: tensors \"%s\" [%d, %d] and \"%s\" [%d, %d] overlap" path a.Name a.Begin a.End b.Name b.Begin b.End)
            elif b.Begin > a.End then
                fail (
                    sprintf
                        "%s: corrupt header: a gap of %d bytes between tensors \"%s\" [%d, %d] and \"%s\" [%d, %d]"
                        path
                        (b.Begin - a.End)
                        a.Name
                        a.Begin
                        a.End
                        b.Name
                        b.Begin
                        b.End
                ))
        match sorted with
        | first :: _ when first.Begin > 0L ->
            fail (sprintf "%s: corrupt header: the first tensor \"%s\" begins at %d, not at 0" path first.Name first.Begin)
        | _ -> ()
        let covered = sorted |> List.fold (fun _ e -> e.End) 0L
        if covered <> dataLength then
            fail (
                sprintf
                    "%s: the data section has %d bytes but the tensors cover %d: %d bytes follow the last tensor"
                    path
                    dataLength
                    covered
                    (dataLength - covered)
            )
        List.ofSeq entries, metadata, 8L + int64 n

    /// Reads every tensor of a safetensors file: F64 as float64, F32 (and F16, BF16) as float32, integer and BOOL
    /// dtypes as float64. Raises DataFormatException naming the file (and the tensor) for a missing file, a bad
    /// header length, a header that is not UTF-8 JSON or repeats a name, an unknown dtype, offsets that overlap,
    /// leave gaps, run past the data or disagree with the shape, bytes after the last tensor, or truncated data;
    /// nothing is returned from a damaged file, and nothing is allocated before the sizes are checked against
    /// the file's length.
    let load (path: string) : Map<string, Tensor> =
        if not (File.Exists path) then
            fail (sprintf "%s: file not found (looked for %s)" path (Path.GetFullPath path))
        use fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read)
        let entries, _, dataStart = readHeader path fs
        entries
        |> List.map (fun e ->
            let bytes = Array.zeroCreate<byte>(int (e.End - e.Begin))
            fs.Position <- dataStart + e.Begin
            fs.ReadExactly(bytes, 0, bytes.Length)
            e.Name, Tensor.ofStorage e.Shape (decode e.DType bytes))
        |> Map.ofList

    /// What a safetensors file holds, from its header alone (no tensor data is read), checked as load checks it:
    /// each tensor's name, dtype ("F32", "BF16", ...) and shape in file order, and the metadata.
    let inspect (path: string) : SafetensorsInfo =
        if not (File.Exists path) then
            fail (sprintf "%s: file not found (looked for %s)" path (Path.GetFullPath path))
        use fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read)
        let entries, metadata, _ = readHeader path fs
        {
            Tensors =
                entries
                |> List.map (fun e -> { Name = e.Name; DType = e.DType; Shape = e.Shape; Bytes = e.End - e.Begin })
            Metadata = metadata
        }

    /// The string metadata of a safetensors file (empty when it has none), checked as load checks the header.
    let loadMetadata (path: string) : Map<string, string> = (inspect path).Metadata

    /// Reads every tensor of a safetensors file as a read-only dictionary (see load); for C# callers.
    let loadDictionary (path: string) : IReadOnlyDictionary<string, Tensor> = load path :> IReadOnlyDictionary<string, Tensor>
