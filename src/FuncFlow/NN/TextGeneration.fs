namespace FuncFlow.NN

open System
open FuncFlow
open FuncFlow.Data

/// Text from a trained language model (a model from token ids [1; T] to next-token logits [1; T; vocabulary]):
/// sampling with a temperature, as the character-level examples print.
[<RequireQualifiedAccess>]
module TextGeneration =
    /// An index drawn from softmax(logits / temperature); the largest logit is subtracted first, so any logits work.
    let sample (rng: Random) (temperature: float) (logits: float[]) : int =
        if not (temperature > 0.0 && Double.IsFinite temperature) then
            invalidArg "temperature" (sprintf "TextGeneration.sample: the temperature must be positive and finite, got %g" temperature)
        if logits.Length = 0 then invalidArg "logits" "TextGeneration.sample: no logits to sample from"
        let top = Array.max logits
        let weights = logits |> Array.map (fun l -> exp ((l - top) / temperature))
        let mutable u = rng.NextDouble() * Array.sum weights
        let mutable i = 0
        while i < weights.Length - 1 && u >= weights[i] do
            u <- u - weights[i]
            i <- i + 1
        i

    /// The prompt extended by `count` tokens, each drawn (sample, at `temperature`, from a generator seeded with
    /// `seed`) from the model run on the last `window` tokens, decoded to text.
    let generate (model: Model) (tokenizer: Tokenizer) (window: int) (temperature: float) (seed: int) (count: int) (prompt: string) =
        if window < 1 then
            invalidArg "window" (sprintf "TextGeneration.generate: the window must hold at least one token, got %d" window)
        let rng = Random(seed)
        let ids = ResizeArray(Tokenizer.encode tokenizer prompt)
        if ids.Count = 0 then
            invalidArg "prompt" "TextGeneration.generate: the prompt encodes to no tokens; give at least one character"
        let v = tokenizer.VocabularySize
        for _ in 1..count do
            let context = ids.ToArray()[max 0 (ids.Count - window) ..]
            let input = Tensor.create32 [| 1; context.Length |] (context |> Array.map float32)
            let logits = (model.Predict input).ToArray()
            ids.Add(sample rng temperature logits[(context.Length - 1) * v ..])
        Tokenizer.decode tokenizer ids
