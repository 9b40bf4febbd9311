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

    /// The shape of a TensorProto's dims: each within 0..Int32.MaxValue, and their product too (checked before
    /// anything is allocated, so a declared size cannot ask for more than an array can hold).
    let shapeOf (source: string) (proto: TensorProto) : int[] =
        let what = if String.IsNullOrEmpty proto.Name then "a tensor" else sprintf "tensor '%s'" proto.Name
        let dims = proto.Dims |> Array.ofSeq
        if dims |> Array.exists (fun d -> d < 0L || d > int64 Int32.MaxValue) then
            raise (DataFormatException(sprintf "%s: %s has dims %A, expected each in 0..%d" source what dims Int32.MaxValue))
        let size = dims |> Array.fold (fun (n: decimal) d -> n * decimal d) 1m
        if size > decimal Int32.MaxValue then
            raise (DataFormatException(sprintf "%s: %s has dims %A, %M elements, more than a tensor can hold" source what dims size))
        dims |> Array.map int

    /// The tensor a TensorProto holds; `source` (the file) names it in errors. Values come from raw_data when it is
    /// set, from float_data/double_data otherwise; their count must be the dims' product, so the tensor is never
    /// bigger than the data the file holds.
    let toTensor (source: string) (proto: TensorProto) : Tensor =
        let what = if String.IsNullOrEmpty proto.Name then "a tensor" else sprintf "tensor '%s'" proto.Name
        if proto.DataLocation = TensorProto.Types.DataLocation.External then
            raise (DataFormatException(sprintf "%s: %s keeps its values in an external file, which this reader does not read" source what))
        let shape = shapeOf source proto
        let size = Shape.size shape
        let check (count: int) (field: string) =
            if count <> size then
                raise (
                    DataFormatException(
                        sprintf "%s: %s of shape %s holds %d values in %s, expected %d" source what (Shape.show shape) count field size
                    )
                )
        let raw = proto.RawData.Memory
        let fromRaw (width: int) =
            if raw.Length % width <> 0 then
                raise (DataFormatException(sprintf "%s: %s has %d bytes of raw_data, not a multiple of %d" source what raw.Length width))
            check (raw.Length / width) "raw_data"
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
