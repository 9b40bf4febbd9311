namespace FuncFlow.Data

open System
open System.Collections.Generic
open System.IO
open System.Text
open System.Text.RegularExpressions
open FuncFlow

/// What a tokenizer cuts text into.
[<RequireQualifiedAccess>]
type TokenLevel =
    /// One token per character (Unicode scalar value).
    | Characters
    /// Words (runs of letters and digits, with inner apostrophes), each whitespace character, and each other
    /// character on its own, so that decoding an encoding gives the text back when every piece is known.
    | Words

/// A vocabulary of tokens with ids 0..VocabularySize-1; id 0 is the unknown token, which every piece outside
/// the vocabulary encodes to.
[<Sealed>]
type Tokenizer internal (level: TokenLevel, tokens: string[]) =
    let ids =
        let d = Dictionary<string, int>(StringComparer.Ordinal)
        tokens |> Array.iteri (fun i t -> d[t] <- i)
        d

    /// What the text is cut into.
    member _.Level = level
    /// The tokens by id; Tokens[0] is the unknown token.
    member _.Tokens: IReadOnlyList<string> = tokens
    /// The number of ids, the unknown token included.
    member _.VocabularySize = tokens.Length
    /// The id of the unknown token.
    member _.UnknownId = 0
    /// The id of a token, or UnknownId when it is not in the vocabulary.
    member _.Id(token: string) =
        match ids.TryGetValue token with
        | true, i -> i
        | _ -> 0

/// Character- and word-level tokenizers whose vocabulary comes from a training text.
[<RequireQualifiedAccess>]
module Tokenizer =
    /// The unknown token of a character tokenizer: U+FFFD, the replacement character.
    let unknownCharacter = "\uFFFD"

    /// The unknown token of a word tokenizer.
    let unknownWord = "<unk>"

    let private wordPattern =
        Regex(@"[\p{L}\p{N}]+(?:['\u2019][\p{L}\p{N}]+)*|\s|.", RegexOptions.Compiled ||| RegexOptions.Singleline)

    /// The pieces of a text at a level, in order; concatenated they are the text.
    let pieces (level: TokenLevel) (text: string) : string seq =
        match level with
        | TokenLevel.Characters -> text.EnumerateRunes() |> Seq.map (fun r -> r.ToString())
        | TokenLevel.Words -> wordPattern.Matches text |> Seq.map (fun m -> m.Value)

    let private unknownOf level =
        match level with
        | TokenLevel.Characters -> unknownCharacter
        | TokenLevel.Words -> unknownWord

    /// A tokenizer whose vocabulary is the unknown token (id 0), then every piece of `text` seen at least
    /// minCount times, in ordinal order. Raises ArgumentException for minCount < 1.
    let fit (level: TokenLevel) (minCount: int) (text: string) : Tokenizer =
        if minCount < 1 then
            invalidArg "minCount" (sprintf "Tokenizer.fit: minCount must be at least 1, got %d" minCount)
        let unknown = unknownOf level
        let known =
            pieces level text
            |> Seq.countBy id
            |> Seq.filter (fun (piece, count) -> count >= minCount && piece <> unknown)
            |> Seq.map fst
            |> Seq.toArray
        Array.sortInPlaceWith (fun (a: string) b -> String.CompareOrdinal(a, b)) known
        Tokenizer(level, Array.append [| unknown |] known)

    /// A character tokenizer with every character of the training text.
    let characters (trainingText: string) : Tokenizer = fit TokenLevel.Characters 1 trainingText

    /// A word tokenizer with every piece seen at least minCount times in the training text.
    let words (minCount: int) (trainingText: string) : Tokenizer = fit TokenLevel.Words minCount trainingText

    /// The ids of a text's pieces; a piece outside the vocabulary gives UnknownId.
    let encode (tokenizer: Tokenizer) (text: string) : int[] = pieces tokenizer.Level text |> Seq.map tokenizer.Id |> Seq.toArray

    /// The text of a sequence of ids (the unknown token's text for UnknownId). Raises ArgumentOutOfRangeException
    /// for an id outside [0, VocabularySize).
    let decode (tokenizer: Tokenizer) (ids: int seq) : string =
        let sb = StringBuilder()
        for i in ids do
            if i < 0 || i >= tokenizer.VocabularySize then
                raise (
                    ArgumentOutOfRangeException(
                        "ids",
                        sprintf "Tokenizer.decode: id %d is outside the vocabulary [0, %d)" i tokenizer.VocabularySize
                    )
                )
            sb.Append(tokenizer.Tokens[i]) |> ignore
        sb.ToString()

/// A text cut into a training and a validation part by position, encoded with a tokenizer fitted on the
/// training part only.
type TextCorpus =
    {
        /// Fitted on the training segments.
        Tokenizer: Tokenizer
        /// The training part: runs of consecutive text, encoded, in text order.
        Train: int[][]
        /// The validation part: runs of consecutive text, encoded, in text order.
        Validation: int[][]
    }

/// Text for language models: a split by position, sequence windows with targets shifted by one, and the
/// shipped corpus.
[<RequireQualifiedAccess>]
module TextData =
    /// A seeded split by position: the text is cut into blocks of blockLength characters (the last possibly
    /// shorter), ceil(validationFraction * blocks) of them chosen at random for validation, and neighbouring
    /// blocks of the same part joined. Returns (train, validation) runs in text order; no character is in both,
    /// so windows taken within runs never overlap across the parts. Raises ArgumentException for a fraction not
    /// strictly between 0 and 1, blockLength < 1, or a text with too few blocks for both parts.
    let split (seed: int) (validationFraction: float) (blockLength: int) (text: string) : string[] * string[] =
        if not (validationFraction > 0.0 && validationFraction < 1.0) then
            invalidArg
                "validationFraction"
                (sprintf "TextData.split: validationFraction must be strictly between 0 and 1, got %g" validationFraction)
        if blockLength < 1 then
            invalidArg "blockLength" (sprintf "TextData.split: blockLength must be positive, got %d" blockLength)
        let blocks = (text.Length + blockLength - 1) / blockLength
        let nValidation = int (ceil (validationFraction * float blocks))
        if nValidation >= blocks then
            invalidArg
                "text"
                (sprintf
                    "TextData.split: a text of %d characters has %d blocks of %d; a validation fraction of %g leaves none for training"
                    text.Length
                    blocks
                    blockLength
                    validationFraction)
        let isValidation = Array.zeroCreate blocks
        for b in (Dataset.permutation seed blocks)[.. nValidation - 1] do
            isValidation[b] <- true
        let train = ResizeArray()
        let validation = ResizeArray()
        let mutable start = 0
        for b in 1..blocks do
            if b = blocks || isValidation[b] <> isValidation[start] then
                let from = start * blockLength
                let run = text.Substring(from, min text.Length (b * blockLength) - from)
                (if isValidation[start] then validation else train).Add run
                start <- b
        train.ToArray(), validation.ToArray()

    /// Splits a text by position (see split), fits a tokenizer on the training part with `fit`, and encodes
    /// both parts with it.
    let corpus (fit: string -> Tokenizer) (seed: int) (validationFraction: float) (blockLength: int) (text: string) : TextCorpus =
        let train, validation = split seed validationFraction blockLength text
        let tokenizer = fit (String.Concat train)
        {
            Tokenizer = tokenizer
            Train = train |> Array.map (Tokenizer.encode tokenizer)
            Validation = validation |> Array.map (Tokenizer.encode tokenizer)
        }

    /// Every window of `length` ids within a run, starting at 0, length, 2 length...: features [n; length] are
    /// the ids at p..p+length-1 and targets [n; length] the ids at p+1..p+length, both float32. A window never
    /// spans two runs; a run shorter than length + 1 gives none. Batch them with Batches.shuffledWith.
    /// Raises ArgumentException for length < 1 or when no run holds a window.
    let windows (length: int) (runs: int[][]) : Dataset =
        if length < 1 then
            invalidArg "length" (sprintf "TextData.windows: length must be positive, got %d" length)
        let starts =
            [|
                for r in 0 .. runs.Length - 1 do
                    for p in 0..length .. runs[r].Length - length - 1 -> r, p
            |]
        if starts.Length = 0 then
            invalidArg
                "runs"
                (sprintf
                    "TextData.windows: no run is longer than the window length %d (run lengths %s)"
                    length
                    (runs |> Array.map (fun r -> string r.Length) |> String.concat ", "))
        let read offset =
            let a = Array.zeroCreate<float32>(starts.Length * length)
            starts
            |> Array.iteri (fun w (r, p) ->
                let run = runs[r]
                for t in 0 .. length - 1 do
                    a[w * length + t] <- float32 run[p + offset + t])
            Tensor.ofStorage [| starts.Length; length |] (TensorData.F32 a)
        { Features = read 0; Targets = read 1 }

    /// Reads a UTF-8 text file, gzipped or plain. Raises DataFormatException naming the file when it is
    /// missing, is not valid UTF-8 (rather than reading replacement characters), or holds damaged gzip data.
    let read (path: string) : string =
        use reader = new StreamReader(DataFile.openRead path, UTF8Encoding(false, true))
        try
            reader.ReadToEnd()
        with :? DecoderFallbackException as e ->
            raise (DataFormatException(sprintf "%s: not UTF-8 text: %s" path e.Message, e))

    /// The English collections of Debian's fortunes package (data/fortunes/fortunes.txt, about 2.6 million
    /// characters) from the default data folder (see Datasets.defaultDataDir).
    let fortunesDefault () : string = read (Path.Combine(Datasets.defaultDataDir (), "fortunes", "fortunes.txt"))
