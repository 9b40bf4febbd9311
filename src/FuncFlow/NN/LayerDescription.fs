namespace FuncFlow.NN

open System
open System.Globalization
open FuncFlow

/// Built-in layers back from their descriptions (Layer.Describe), which model files record under the metadata
/// "funcflow.model": `LayerDescription.parse (layer.Describe())` builds a layer that describes itself the same way.
/// Numbers that Describe prints with %g (slopes, eps, momentum, dropout rates) come back as printed, to 6
/// significant digits. A layer defined outside FuncFlow has no description to parse back.
[<RequireQualifiedAccess>]
module LayerDescription =
    /// Deeper nesting than this is refused rather than followed (descriptions come from files).
    let private maxDepth = 64

    let private fail (description: string) (message: string) : 'a =
        invalidArg "description" (sprintf "LayerDescription.parse: %s (in '%s')" message description)

    /// The parts of a comma-separated list, split at the commas outside parentheses, trimmed.
    let private split (description: string) (text: string) : string list =
        let parts = ResizeArray<string>()
        let mutable depth = 0
        let mutable start = 0
        for i in 0 .. text.Length - 1 do
            match text[i] with
            | '(' -> depth <- depth + 1
            | ')' ->
                depth <- depth - 1
                if depth < 0 then fail description "unbalanced parentheses"
            | ',' when depth = 0 ->
                parts.Add(text[start .. i - 1].Trim())
                start <- i + 1
            | _ -> ()
        if depth <> 0 then fail description "unbalanced parentheses"
        let last = text[start..].Trim()
        if last <> "" || parts.Count > 0 then parts.Add last
        List.ofSeq parts

    // Names that hold parentheses of their own.
    let private parenthesisedNames = [ "RNN(tanh)Cell"; "RNN(relu)Cell"; "RNN(tanh)"; "RNN(relu)" ]

    /// The name and the argument list of "Name(a, b, key=value)"; a bare "Name" has none.
    let private call (description: string) (text: string) : string * string list =
        let text = text.Trim()
        let nameEnd =
            match
                parenthesisedNames
                |> List.tryFind (fun n -> text.StartsWith(n + "(", StringComparison.Ordinal) || text = n)
            with
            | Some n -> n.Length
            | None ->
                match text.IndexOf '(' with
                | -1 -> text.Length
                | i -> i
        let name = text[.. nameEnd - 1].Trim()
        if name = "" then fail description "a layer without a name"
        if nameEnd = text.Length then
            name, []
        elif not (text.EndsWith ")") then
            fail description (sprintf "'%s' does not end its argument list with ')'" text)
        else
            name, split description text[nameEnd + 1 .. text.Length - 2]

    /// One layer's arguments: positional ones, key=value ones and bare flags, each read at most once and
    /// checked against what the layer takes.
    type private Arguments(description: string, layer: string, items: string list) =
        let keyed =
            items
            |> List.choose (fun a ->
                match a.IndexOf '=' with
                | -1 -> None
                | i -> Some(a[.. i - 1].Trim(), a[i + 1 ..].Trim()))
            |> Map.ofList
        let bare = items |> List.filter (fun a -> not (a.Contains '='))

        member _.Fail(message: string) : 'a = fail description (sprintf "%s: %s" layer message)

        /// Fails unless there are `positional` bare arguments besides the given flags, and only the given keys.
        member a.Expect(positional: int, keys: string list, flags: string list) =
            let values = bare |> List.filter (fun b -> not (List.contains b flags))
            if values.Length <> positional then
                a.Fail(sprintf "expected %d positional arguments, got %d (%s)" positional values.Length (String.Join(", ", values)))
            match keyed.Keys |> Seq.tryFind (fun k -> not (List.contains k keys)) with
            | Some k -> a.Fail(sprintf "unknown argument '%s' (expected %s)" k (if keys.IsEmpty then "none" else String.Join(", ", keys)))
            | None -> ()

        /// The i-th bare argument.
        member _.Text(i: int) = bare[i]

        member _.TryKey(name: string) = keyed.TryFind name

        member a.Key(name: string) =
            match keyed.TryFind name with
            | Some v -> v
            | None -> a.Fail(sprintf "missing argument '%s'" name)

        member _.Flag(name: string) = List.contains name bare

        member a.Int(text: string) =
            match Int32.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) with
            | true, v -> v
            | _ -> a.Fail(sprintf "'%s' is not a whole number" text)

        member a.Float(text: string) =
            match Double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture) with
            | true, v -> v
            | _ -> a.Fail(sprintf "'%s' is not a number" text)

        member a.Bool(text: string) =
            match text with
            | "true" -> true
            | "false" -> false
            | _ -> a.Fail(sprintf "'%s' is not true or false" text)

        /// A shape as Shape.show prints it: "(3, 3)" or "(3,)".
        member a.Ints(text: string) =
            if not (text.StartsWith "(" && text.EndsWith ")") then
                a.Fail(sprintf "'%s' is not a list of sizes like (3, 3)" text)
            text[1 .. text.Length - 2].Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
            |> Array.map a.Int
            |> List.ofArray

    let private init (args: Arguments) (text: string) =
        match text.Split(' ', StringSplitOptions.RemoveEmptyEntries) with
        | [| "He" |] -> He
        | [| "Xavier" |] -> Xavier
        | [| "Normal"; std |] -> Normal(args.Float std)
        | _ -> args.Fail(sprintf "'%s' is not an initialisation (He, Xavier or Normal std)" text)

    let private known =
        [
            "Linear"
            "Sigmoid"
            "Tanh"
            "ReLU"
            "GELU"
            "SiLU"
            "LogSigmoid"
            "Softplus"
            "Softmax"
            "LeakyReLU"
            "ELU"
            "Dropout"
            "Embedding"
            "BatchNorm1d"
            "BatchNorm2d"
            "LayerNorm"
            "GroupNorm"
            "Flatten"
            "Conv1d"
            "Conv2d"
            "MaxPool2d"
            "AvgPool2d"
            "AdaptiveAvgPool2d"
            "MultiheadAttention"
            "SinusoidalPositionalEncoding"
            "LearnedPositionalEmbedding"
            "TransformerBlock"
            "RNN(tanh)Cell"
            "RNN(relu)Cell"
            "GRUCell"
            "LSTMCell"
            "RNN(tanh)"
            "RNN(relu)"
            "GRU"
            "LSTM"
            "Sequential"
        ]

    /// The layer of one description, its Sequential children parsed to at most maxDepth levels.
    let rec private layerOf (description: string) (depth: int) (text: string) : Layer =
        if depth > maxDepth then fail description (sprintf "layers nested more than %d deep" maxDepth)
        let name, items = call description text
        let args = Arguments(description, name, items)
        let positional n = args.Expect(n, [], [])
        let intAt i = args.Int(args.Text i)
        let floatAt i = args.Float(args.Text i)
        match name with
        | "Sequential" -> Sequential(items |> List.map (layerOf description (depth + 1)) |> Array.ofList) :> Layer
        | "Linear" ->
            args.Expect(3, [ "bias" ], [])
            let useBias = args.TryKey "bias" |> Option.map args.Bool |> Option.defaultValue true
            Linear(intAt 0, intAt 1, init args (args.Text 2), useBias)
        | "Sigmoid" ->
            positional 0
            Sigmoid()
        | "Tanh" ->
            positional 0
            Tanh()
        | "ReLU" ->
            positional 0
            ReLU()
        | "GELU" ->
            positional 0
            GELU()
        | "SiLU" ->
            positional 0
            SiLU()
        | "LogSigmoid" ->
            positional 0
            LogSigmoid()
        | "Softplus" ->
            positional 0
            Softplus()
        | "Softmax" ->
            positional 1
            Softmax(intAt 0)
        | "LeakyReLU" ->
            positional 1
            LeakyReLU(floatAt 0)
        | "ELU" ->
            positional 1
            ELU(floatAt 0)
        | "Dropout" ->
            positional 1
            Dropout(floatAt 0)
        | "Embedding" ->
            positional 2
            Embedding(intAt 0, intAt 1)
        | "Flatten" ->
            positional 1
            Flatten(intAt 0)
        | "BatchNorm1d"
        | "BatchNorm2d" ->
            args.Expect(1, [ "eps"; "momentum"; "affine" ], [])
            let features, eps, affine = intAt 0, args.Float(args.Key "eps"), args.Bool(args.Key "affine")
            match args.Key "momentum", name with
            | "None", "BatchNorm1d" -> BatchNorm1d.CumulativeAverage(features, eps, affine)
            | "None", _ -> BatchNorm2d.CumulativeAverage(features, eps, affine)
            | m, "BatchNorm1d" -> BatchNorm1d(features, eps, args.Float m, affine)
            | m, _ -> BatchNorm2d(features, eps, args.Float m, affine)
        | "LayerNorm" ->
            args.Expect(1, [ "eps"; "affine" ], [])
            LayerNorm(Array.ofList (args.Ints(args.Text 0)), args.Float(args.Key "eps"), args.Bool(args.Key "affine"))
        | "GroupNorm" ->
            args.Expect(2, [ "eps"; "affine" ], [])
            GroupNorm(intAt 0, intAt 1, args.Float(args.Key "eps"), args.Bool(args.Key "affine"))
        | "Conv1d"
        | "Conv2d" ->
            args.Expect(2, [ "kernel"; "stride"; "padding"; "dilation"; "groups"; "bias" ], [])
            let spec =
                {
                    Stride = args.Ints(args.Key "stride")
                    Padding = args.Ints(args.Key "padding")
                    Dilation = args.Ints(args.Key "dilation")
                    Groups = args.Int(args.Key "groups")
                }
            let kernel, useBias = args.Ints(args.Key "kernel"), args.Bool(args.Key "bias")
            if name = "Conv1d" then
                match kernel with
                | [ k ] -> Conv1d(intAt 0, intAt 1, k, spec, useBias)
                | _ -> args.Fail(sprintf "kernel %A has %d sizes, expected 1" kernel kernel.Length)
            else
                Conv2d(intAt 0, intAt 1, kernel, spec, useBias)
        | "MaxPool2d"
        | "AvgPool2d" ->
            args.Expect(0, [ "kernel"; "stride"; "padding" ], [])
            let spec =
                {
                    Kernel = args.Ints(args.Key "kernel")
                    Stride = args.Ints(args.Key "stride")
                    Padding = args.Ints(args.Key "padding")
                }
            if name = "MaxPool2d" then MaxPool2d spec else AvgPool2d spec
        | "AdaptiveAvgPool2d" ->
            positional 2
            AdaptiveAvgPool2d(intAt 0, intAt 1)
        | "MultiheadAttention" ->
            args.Expect(1, [ "heads" ], [ "causal" ])
            MultiheadAttention(intAt 0, args.Int(args.Key "heads"), args.Flag "causal")
        | "SinusoidalPositionalEncoding" ->
            positional 2
            SinusoidalPositionalEncoding(intAt 0, intAt 1)
        | "LearnedPositionalEmbedding" ->
            positional 2
            LearnedPositionalEmbedding(intAt 0, intAt 1)
        | "TransformerBlock" ->
            args.Expect(1, [ "heads"; "hidden" ], [ "causal"; "tanh GELU" ])
            let activation = if args.Flag "tanh GELU" then BlockActivation.GeluTanh else BlockActivation.Gelu
            TransformerBlock(intAt 0, args.Int(args.Key "heads"), args.Int(args.Key "hidden"), args.Flag "causal", activation)
        | "RNN(tanh)Cell"
        | "RNN(relu)Cell" ->
            positional 2
            RNNCell(intAt 0, intAt 1, (name = "RNN(relu)Cell"), true)
        | "GRUCell" ->
            positional 2
            GRUCell(intAt 0, intAt 1)
        | "LSTMCell" ->
            positional 2
            LSTMCell(intAt 0, intAt 1)
        | "RNN(tanh)"
        | "RNN(relu)"
        | "GRU"
        | "LSTM" ->
            args.Expect(2, [ "layers" ], [ "bidirectional"; "batch first" ])
            let options =
                {
                    Layers = args.Int(args.Key "layers")
                    Bidirectional = args.Flag "bidirectional"
                    BatchFirst = args.Flag "batch first"
                    Bias = true
                }
            match name with
            | "GRU" -> GRU(intAt 0, intAt 1, options)
            | "LSTM" -> LSTM(intAt 0, intAt 1, options)
            | _ -> RNN(intAt 0, intAt 1, (name = "RNN(relu)"), options)
        | _ ->
            fail
                description
                (sprintf
                    "unknown layer '%s'; the built-in layers are %s (a layer of your own has no description to read back)"
                    name
                    (String.Join(", ", known)))

    /// The built-in layer a description (Layer.Describe) was written from. Raises ArgumentException naming an
    /// unknown layer, or an argument that is missing, unknown or malformed.
    let parse (description: string) : Layer =
        if String.IsNullOrWhiteSpace description then
            invalidArg "description" "LayerDescription.parse: the description is empty"
        layerOf description 0 description
