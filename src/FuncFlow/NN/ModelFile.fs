namespace FuncFlow.NN

open System
open FuncFlow
open FuncFlow.Data

/// Model files: safetensors files of a state dict (PyTorch's names and layouts) whose metadata records the
/// architecture and the format version. Reading converts files of earlier FuncFlow formats.
[<RequireQualifiedAccess>]
module ModelFile =
    /// The metadata key of the architecture's description (Layer.Describe).
    [<Literal>]
    let ArchitectureKey = "funcflow.model"

    /// The metadata key of the format version; FuncFlow files without it are format 1.
    [<Literal>]
    let FormatKey = "funcflow.format"

    /// The format version written now. 1: Linear weights [in, out] (FuncFlow before PyTorch's layout);
    /// 2: PyTorch's state-dict layout (Linear weights [out, in]).
    [<Literal>]
    let Version = 2

    /// The names of the parameters that format 1 stored transposed (Linear weights, then [in, out]), found by
    /// walking the layer's tree; Error names the layers whose insides cannot be seen (a custom layer with 2-D
    /// parameters may hold a Linear).
    let private transposedInFormat1 (layer: Layer) : Result<string list, string list> =
        let names = ResizeArray<string>()
        let opaque = ResizeArray<string>()
        let pending = Collections.Generic.Stack<string * Layer>()
        pending.Push("", layer)
        while pending.Count > 0 do
            let prefix, l = pending.Pop()
            match l with
            | :? Linear -> names.Add(prefix + "weight")
            | :? Sequential as s -> s.Layers |> List.iteri (fun i child -> pending.Push(sprintf "%s%d." prefix i, child))
            // An embedding's table is [count; dim] in both formats.
            | :? Embedding -> ()
            | _ -> if l.Parameters 0 |> List.exists (fun (_, t) -> t.Rank = 2) then opaque.Add(l.Describe())
        if opaque.Count = 0 then Ok(List.ofSeq names) else Error(List.ofSeq opaque)

    /// The tensors and metadata of a model file for a model of the given architecture, in the current
    /// format: a format-1 file has its Linear weights transposed to [out, in]. Raises DataFormatException for
    /// a format newer than this FuncFlow reads, or a format-1 file of layers whose Linear weights cannot be
    /// found, saying how to convert it.
    let read (layer: Layer) (path: string) : Map<string, Tensor> * Map<string, string> =
        let metadata = Safetensors.loadMetadata path
        let values = Safetensors.load path
        let version =
            match metadata.TryFind FormatKey, metadata.TryFind ArchitectureKey with
            | Some v, _ ->
                match Int32.TryParse v with
                | true, n when n >= 1 -> n
                | _ -> raise (DataFormatException(sprintf "%s: metadata '%s' is '%s', not a format version" path FormatKey v))
            // Written by FuncFlow before files carried a version.
            | None, Some _ -> 1
            // Not FuncFlow's (PyTorch's save_file): a state dict in the current layout.
            | None, None -> 2
        match version with
        | 2 -> values, metadata
        | 1 ->
            match transposedInFormat1 layer with
            | Ok names ->
                let converted =
                    names
                    |> List.fold
                        (fun (acc: Map<string, Tensor>) name ->
                            match acc.TryFind name with
                            | Some w when w.Rank = 2 ->
                                let a = Tensor.toArray2D w
                                let t = Tensor.ofArray2D (Array2D.init (Array2D.length2 a) (Array2D.length1 a) (fun i j -> a[j, i]))
                                acc.Add(name, Tensor.cast w.DType t)
                            | _ -> acc)
                        values
                converted, metadata
            | Error opaque ->
                raise (
                    DataFormatException(
                        sprintf
                            "%s: a FuncFlow model file of format 1 (Linear weights stored [in, out]) for layers whose Linear weights cannot be found (%s). Convert it: read it with Safetensors.load, transpose each Linear weight to [out, in], give the values to Model.WithParameters and WithBuffers, and Save"
                            path
                            (String.Join(", ", opaque))
                    )
                )
        | v ->
            raise (
                DataFormatException(
                    sprintf "%s: model file format %d is newer than this FuncFlow reads (%d); update FuncFlow" path v Version
                )
            )
