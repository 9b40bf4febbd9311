namespace FuncFlow.Onnx

open System
open System.Buffers.Binary
open System.IO
open FuncFlow
open FuncFlow.Data
open Google.Protobuf
open Onnx

/// ONNX's TensorProto and FuncFlow's Tensor, both ways: float32 and float64, from raw_data (little-endian) or the
/// typed fields (float_data, double_data); written with raw_data, as ONNX's own tools write initializers.
module internal OnnxTensor =
    /// TensorProto.DataType's codes for the dtypes FuncFlow computes in.
    let floatCode, doubleCode = int TensorProto.Types.DataType.Float, int TensorProto.Types.DataType.Double

    /// ONNX's element type code for a dtype.
    let code (dtype: DType) =
        match dtype with
        | Float32 -> floatCode
        | Float64 -> doubleCode

    /// The dtype of an ONNX element type code, or None for one FuncFlow does not compute in.
    let dtypeOf (code: int) =
        if code = floatCode then Some Float32
        elif code = doubleCode then Some Float64
        else None

    /// ONNX's name of an element type code ("FLOAT", "INT64"...), for messages.
    let codeName (code: int) =
        if Enum.IsDefined(typeof<TensorProto.Types.DataType>, code) then
            (enum<TensorProto.Types.DataType> code).ToString().ToUpperInvariant()
        else
            sprintf "unknown element type %d" code

    /// A tensor as a TensorProto named `name`, its values in raw_data, little-endian.
    let ofTensor (name: string) (t: Tensor) : TensorProto =
        let bytes =
            match t.DType with
            | Float32 ->
                let values = t.ToArray32()
                let bytes = Array.zeroCreate<byte>(values.Length * 4)
                values
                |> Array.iteri (fun i v -> BinaryPrimitives.WriteSingleLittleEndian(Span(bytes, i * 4, 4), v))
                bytes
            | Float64 ->
                let values = t.ToArray()
                let bytes = Array.zeroCreate<byte>(values.Length * 8)
                values
                |> Array.iteri (fun i v -> BinaryPrimitives.WriteDoubleLittleEndian(Span(bytes, i * 8, 8), v))
                bytes
        let proto = TensorProto(Name = name, DataType = code t.DType, RawData = ByteString.CopyFrom bytes)
        proto.Dims.AddRange(t.Shape |> Array.map int64)
        proto

    /// How messages name a tensor.
    let private nameOf (proto: TensorProto) = if String.IsNullOrEmpty proto.Name then "a tensor" else sprintf "tensor '%s'" proto.Name

    /// Checks that a field of the tensor holds as many values as its dims' product.
    let private expectCount (source: string) (what: string) (shape: int[]) (count: int) (field: string) =
        let size = Shape.size shape
        if count <> size then
            raise (
                DataFormatException(
                    sprintf "%s: %s of shape %s holds %d values in %s, expected %d" source what (Shape.show shape) count field size
                )
            )

    /// Checks raw_data: a whole number of values of `width` bytes, as many as the dims' product.
    let private expectRaw (source: string) (what: string) (shape: int[]) (raw: ReadOnlyMemory<byte>) (width: int) =
        if raw.Length % width <> 0 then
            raise (DataFormatException(sprintf "%s: %s has %d bytes of raw_data, not a multiple of %d" source what raw.Length width))
        expectCount source what shape (raw.Length / width) "raw_data"

    /// The shape of a TensorProto's dims: each within 0..Int32.MaxValue, and their product too (checked before
    /// anything is allocated, so a declared size cannot ask for more than an array can hold).
    let shapeOf (source: string) (proto: TensorProto) : int[] =
        let what = nameOf proto
        let dims = proto.Dims |> Array.ofSeq
        if dims |> Array.exists (fun d -> d < 0L || d > int64 Int32.MaxValue) then
            raise (DataFormatException(sprintf "%s: %s has dims %A, expected each in 0..%d" source what dims Int32.MaxValue))
        // A big integer: a file can declare many large dims, whose product overflows any fixed-size number.
        let size = dims |> Array.fold (fun (n: bigint) d -> n * bigint d) 1I
        if size > bigint Int32.MaxValue then
            raise (DataFormatException(sprintf "%s: %s has dims %A, %O elements, more than a tensor can hold" source what dims size))
        dims |> Array.map int

    /// The tensor a TensorProto holds; `source` (the file) names it in errors. Values come from raw_data when it is
    /// set, from float_data/double_data otherwise; their count must be the dims' product, so the tensor is never
    /// bigger than the data the file holds.
    let toTensor (source: string) (proto: TensorProto) : Tensor =
        let what = nameOf proto
        if proto.DataLocation = TensorProto.Types.DataLocation.External then
            raise (DataFormatException(sprintf "%s: %s keeps its values in an external file, which this reader does not read" source what))
        let shape = shapeOf source proto
        let size = Shape.size shape
        let check = expectCount source what shape
        let raw = proto.RawData.Memory
        let fromRaw = expectRaw source what shape raw
        match dtypeOf proto.DataType with
        | Some Float32 when not proto.RawData.IsEmpty ->
            fromRaw 4
            Tensor.create32 shape (Array.init size (fun i -> BinaryPrimitives.ReadSingleLittleEndian(raw.Span.Slice(i * 4, 4))))
        | Some Float32 ->
            check proto.FloatData.Count "float_data"
            Tensor.create32 shape (Array.ofSeq proto.FloatData)
        | Some Float64 when not proto.RawData.IsEmpty ->
            fromRaw 8
            Tensor.create shape (Array.init size (fun i -> BinaryPrimitives.ReadDoubleLittleEndian(raw.Span.Slice(i * 8, 8))))
        | Some Float64 ->
            check proto.DoubleData.Count "double_data"
            Tensor.create shape (Array.ofSeq proto.DoubleData)
        | None ->
            raise (
                DataFormatException(
                    sprintf "%s: %s has element type %s; FuncFlow reads FLOAT and DOUBLE" source what (codeName proto.DataType)
                )
            )

    /// Parses a protobuf message of a file, a truncated or malformed one being a DataFormatException naming it.
    let parseFile (parser: MessageParser<'T>) (path: string) : 'T =
        if not (File.Exists path) then raise (DataFormatException(sprintf "%s: file not found" path))
        try
            use stream = File.OpenRead path
            parser.ParseFrom stream
        with :? InvalidProtocolBufferException as e ->
            raise (DataFormatException(sprintf "%s: not a valid %s (%s)" path typeof<'T>.Name e.Message, e))

    /// Reads a TensorProto file (ONNX's test data sets' input_N.pb / output_N.pb): its name and its tensor.
    let readFile (path: string) : string * Tensor =
        let proto = parseFile TensorProto.Parser path
        proto.Name, toTensor path proto

    // Import: integer and boolean tensors (shapes, indices, axes) and values kept in external files.

    /// The byte width of an integer or boolean element type in raw_data, or None for other types.
    let exactWidth (code: int) =
        match enum<TensorProto.Types.DataType> code with
        | TensorProto.Types.DataType.Bool
        | TensorProto.Types.DataType.Int8
        | TensorProto.Types.DataType.Uint8 -> Some 1
        | TensorProto.Types.DataType.Int16
        | TensorProto.Types.DataType.Uint16 -> Some 2
        | TensorProto.Types.DataType.Int32
        | TensorProto.Types.DataType.Uint32 -> Some 4
        | TensorProto.Types.DataType.Int64
        | TensorProto.Types.DataType.Uint64 -> Some 8
        | _ -> None

    /// An integer or boolean tensor's values as float64 (exact below 2^53: shapes, axes and indices), from
    /// raw_data or the typed field ONNX keeps the type in; the count must be the dims' product.
    let toExactTensor (source: string) (proto: TensorProto) : Tensor =
        let what = nameOf proto
        let width =
            match exactWidth proto.DataType with
            | Some w -> w
            | None ->
                raise (
                    NotSupportedException(
                        sprintf "%s: %s has element type %s, which FuncFlow does not import" source what (codeName proto.DataType)
                    )
                )
        let shape = shapeOf source proto
        let size = Shape.size shape
        let check = expectCount source what shape
        let values =
            if not proto.RawData.IsEmpty then
                let raw = proto.RawData.Memory
                expectRaw source what shape raw width
                let signed =
                    proto.DataType <> int TensorProto.Types.DataType.Uint64
                    && proto.DataType <> int TensorProto.Types.DataType.Uint32
                Array.init size (fun i ->
                    let bytes = raw.Span.Slice(i * width, width)
                    match width with
                    | 1 when proto.DataType = int TensorProto.Types.DataType.Int8 -> float (sbyte bytes[0])
                    | 1 -> float bytes[0]
                    | 2 when proto.DataType = int TensorProto.Types.DataType.Int16 -> float (BinaryPrimitives.ReadInt16LittleEndian bytes)
                    | 2 -> float (BinaryPrimitives.ReadUInt16LittleEndian bytes)
                    | 4 when signed -> float (BinaryPrimitives.ReadInt32LittleEndian bytes)
                    | 4 -> float (BinaryPrimitives.ReadUInt32LittleEndian bytes)
                    | _ when signed -> float (BinaryPrimitives.ReadInt64LittleEndian bytes)
                    | _ -> float (BinaryPrimitives.ReadUInt64LittleEndian bytes))
            elif proto.DataType = int TensorProto.Types.DataType.Int64 then
                check proto.Int64Data.Count "int64_data"
                proto.Int64Data |> Seq.map float |> Array.ofSeq
            elif
                proto.DataType = int TensorProto.Types.DataType.Uint32
                || proto.DataType = int TensorProto.Types.DataType.Uint64
            then
                check proto.Uint64Data.Count "uint64_data"
                proto.Uint64Data |> Seq.map float |> Array.ofSeq
            else
                check proto.Int32Data.Count "int32_data"
                proto.Int32Data |> Seq.map float |> Array.ofSeq
        Tensor.create shape values

    /// A path's real location: each component that is a symbolic link replaced by its final target.
    let private realPath (path: string) =
        let full = Path.GetFullPath path
        let root = Path.GetPathRoot full
        full.Substring(root.Length).Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries)
        |> Array.fold
            (fun (acc: string) part ->
                let next = Path.Combine(acc, part)
                let info = FileInfo next
                if isNull info.LinkTarget then
                    next
                else
                    match info.ResolveLinkTarget true with
                    | null -> next
                    | target -> Path.GetFullPath target.FullName)
            root

    /// The TensorProto with the values it keeps in an external file (data_location EXTERNAL) read into raw_data.
    /// The file must lie inside the model's folder: a location that is absolute, climbs out with "..", or
    /// reaches outside through a symbolic link is refused, as is a range beyond the file's end or a length other
    /// than the dims' product times the element's width; nothing is read before those checks.
    let withExternalData (modelPath: string) (proto: TensorProto) : TensorProto =
        if proto.DataLocation <> TensorProto.Types.DataLocation.External then
            proto
        else
            let what = nameOf proto
            let fail (message: string) : 'a = raise (DataFormatException(sprintf "%s: %s: %s" modelPath what message))
            let entries = proto.ExternalData |> Seq.map (fun e -> e.Key, e.Value) |> Map.ofSeq
            let location =
                entries
                |> Map.tryFind "location"
                |> Option.defaultWith (fun () -> fail "external data without a location")
            let number (key: string) =
                match Map.tryFind key entries with
                | None -> None
                | Some text ->
                    match Int64.TryParse text with
                    | true, v when v >= 0L -> Some v
                    | _ -> fail (sprintf "external data %s '%s' is not a non-negative integer" key text)
            if Path.IsPathRooted location || location.Split([| '/'; '\\' |]) |> Array.contains ".." then
                fail (
                    sprintf
                        "external data location '%s' must be a relative path inside the model's folder (no absolute path, no '..')"
                        location
                )
            let folder = realPath (Path.GetDirectoryName(Path.GetFullPath modelPath))
            let file = realPath (Path.Combine(folder, location))
            if
                not (
                    file.StartsWith(
                        folder.TrimEnd(Path.DirectorySeparatorChar) + string Path.DirectorySeparatorChar,
                        StringComparison.Ordinal
                    )
                )
            then
                fail (sprintf "external data location '%s' leads outside the model's folder %s (to %s)" location folder file)
            if not (File.Exists file) then fail (sprintf "external data file '%s' not found" location)
            let width =
                match dtypeOf proto.DataType with
                | Some Float32 -> 4
                | Some Float64 -> 8
                | None ->
                    exactWidth proto.DataType
                    |> Option.defaultWith (fun () -> fail (sprintf "element type %s is not imported" (codeName proto.DataType)))
            let expected = int64 (Shape.size (shapeOf modelPath proto)) * int64 width
            let offset = number "offset" |> Option.defaultValue 0L
            let length = number "length" |> Option.defaultValue expected
            let fileLength = FileInfo(file).Length
            if length <> expected then
                fail (sprintf "external data length %d differs from the %d bytes its dims %A need" length expected (Array.ofSeq proto.Dims))
            if offset > fileLength || length > fileLength - offset then
                fail (
                    sprintf "external data range %d..%d lies beyond the end of '%s' (%d bytes)" offset (offset + length) location fileLength
                )
            let bytes = Array.zeroCreate<byte>(int length)
            do
                use stream = File.OpenRead file
                stream.Position <- offset
                stream.ReadExactly(bytes, 0, bytes.Length)
            let copy = proto.Clone()
            copy.ExternalData.Clear()
            copy.ClearDataLocation()
            copy.RawData <- ByteString.CopyFrom bytes
            copy
