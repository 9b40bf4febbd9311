namespace FuncFlow.Onnx

open System
open System.Collections.Generic
open FuncFlow
open FuncFlow.Data
open global.Onnx

/// A value of a graph being imported: its expression, its ONNX element type, and its value when it is known at
/// import time (constants, integer initializers, shapes), from which shape-like inputs such as Reshape's shape are
/// read. Integers are float64 expressions (exact below 2^53): FuncFlow computes in floats.
type internal OnnxValue = { Expr: Expr; ElemType: int; Known: Tensor option }

/// ONNX's element types beyond OnnxTensor's float codes.
module internal ElemType =
    let int64 = int TensorProto.Types.DataType.Int64
    let bool = int TensorProto.Types.DataType.Bool

    /// Integer and boolean types: values FuncFlow holds only as import-time constants.
    let isExact (code: int) = (OnnxTensor.exactWidth code).IsSome

/// One node being imported: its attributes and inputs, read with errors that name the node.
/// `read` gives a TensorProto attribute's values and element type (Constant's value), resolving external data;
/// `parameter` a float initializer's value by its variable, for inputs that must be known (Resize's scales).
type internal OnnxNode
    (
        proto: NodeProto,
        label: string,
        inputs: OnnxValue option[],
        opset: int64,
        read: TensorProto -> Tensor * int,
        parameter: Expr -> Tensor option
    ) =
    let attributes = proto.Attribute |> Seq.map (fun a -> a.Name, a) |> dict

    /// The node as messages name it, e.g. "model.onnx: node 'conv1' (#3, Conv)".
    member _.OpType = proto.OpType
    /// The version of the default ONNX operator set the model imports.
    member _.Opset = opset
    member _.InputCount = inputs.Length
    /// How many outputs the node names (an empty name is an output not asked for).
    member _.OutputCount = proto.Output.Count
    member _.Wants(i: int) = i < proto.Output.Count && proto.Output[i] <> ""

    /// An error in the file: the node does not follow ONNX's definition of its operator.
    member _.Fail(message: string) : 'a = raise (DataFormatException(sprintf "%s: %s" label message))

    /// An operator's feature that FuncFlow does not import.
    member _.Unsupported(message: string) : 'a = raise (NotSupportedException(sprintf "%s: %s" label message))

    /// An optional input (None where it is absent or named "").
    member _.Optional(i: int) = if i < inputs.Length then inputs[i] else None

    /// A required input.
    member n.Input(i: int) =
        match n.Optional i with
        | Some v -> v
        | None -> n.Fail(sprintf "input %d is required but absent (the node has %d inputs)" i inputs.Length)

    /// All inputs, each required.
    member n.All = List.init inputs.Length n.Input

    member n.Attribute(name: string, expected: AttributeProto.Types.AttributeType) =
        match attributes.TryGetValue name with
        | true, a ->
            if a.Type <> expected then
                n.Fail(sprintf "attribute '%s' has type %O, expected %O" name a.Type expected)
            Some a
        | _ -> None

    member n.HasAttribute(name: string) = attributes.ContainsKey name

    member n.Int(name: string, fallback: int64) =
        match n.Attribute(name, AttributeProto.Types.AttributeType.Int) with
        | Some a -> a.I
        | None -> fallback

    member n.Float(name: string, fallback: float) =
        match n.Attribute(name, AttributeProto.Types.AttributeType.Float) with
        | Some a -> float a.F
        | None -> fallback

    member n.String(name: string, fallback: string) =
        match n.Attribute(name, AttributeProto.Types.AttributeType.String) with
        | Some a -> a.S.ToStringUtf8()
        | None -> fallback

    member n.Int64s(name: string) =
        n.Attribute(name, AttributeProto.Types.AttributeType.Ints)
        |> Option.map (fun a -> Array.ofSeq a.Ints)

    /// An integers attribute as ints; huge values (INT64_MAX as "to the end") are clamped to the int range.
    member n.Ints(name: string) =
        n.Int64s name
        |> Option.map (Array.map (fun v -> int (Math.Clamp(v, int64 Int32.MinValue, int64 Int32.MaxValue))))

    member n.Floats(name: string) =
        n.Attribute(name, AttributeProto.Types.AttributeType.Floats)
        |> Option.map (fun a -> a.Floats |> Seq.map float |> Array.ofSeq)

    /// A tensor attribute's values and element type.
    member n.Tensor(name: string) = n.Attribute(name, AttributeProto.Types.AttributeType.Tensor) |> Option.map (fun a -> read a.T)

    /// An attribute that is a count or an axis, as an int.
    member n.Small(name: string, fallback: int) =
        let v = n.Int(name, int64 fallback)
        if v < int64 Int32.MinValue || v > int64 Int32.MaxValue then
            n.Fail(sprintf "attribute '%s' = %d is out of range" name v)
        int v

    /// An input whose value must be known at import time (an initializer, a Constant node or a value computed
    /// from those), e.g. Reshape's shape.
    member n.KnownInput(i: int) : Tensor =
        let v = n.Input i
        match v.Known |> Option.orElse (parameter v.Expr) with
        | Some t -> t
        | None ->
            n.Unsupported(
                sprintf
                    "input %d must be known when the model is imported (an initializer, a Constant node or a value computed from them such as a shape); FuncFlow builds fixed-shape graphs"
                    i
            )

    /// A known input's values as ints; huge values (INT64_MAX as "to the end") are clamped to the int range.
    member n.KnownInts(i: int) : int[] =
        n.KnownInput i
        |> Tensor.toArray
        |> Array.map (fun v ->
            if Double.IsNaN v then
                n.Fail(sprintf "input %d holds NaN, expected integers" i)
            else
                int (Math.Clamp(v, float Int32.MinValue, float Int32.MaxValue)))

    /// Integers from an attribute or, from the given opset on, an optional input (axes moved to inputs in opset 13).
    member n.IntsFrom(name: string, input: int, inputSince: int64) : int[] option =
        if n.Opset >= inputSince then
            n.Optional input |> Option.map (fun _ -> n.KnownInts input)
        else
            n.Ints name
