/// A small GPT-style character model on the fortunes corpus, with CharLstm's split and windows: embedding 64
/// plus a learned position embedding, two pre-norm causal transformer blocks (4 heads, MLP 256, GPT-2's tanh
/// GELU), a final
/// LayerNorm and a linear read-out at every position; Adam (lr 3e-3 decaying linearly to 0) with gradients
/// clipped to global norm 1, float32, one epoch of shuffled 64-character windows. Prints the parameter count,
/// the time per epoch, a sample from a seeded prompt and the validation perplexity.
/// dotnet run -c Release --project examples/CharTransformer [-- --epochs N --seed S --steps N (per epoch, for a quick check)]
module CharTransformer

open System
open System.Diagnostics
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN

/// The GPT-style model: token and position embeddings, causal pre-norm blocks, a final norm, the read-out.
let gpt (vocabulary: int) (window: int) (dim: int) (heads: int) (blocks: int) =
    Sequential(
        [|
            yield Embedding(vocabulary, dim, Normal 0.02) :> Layer
            yield LearnedPositionalEmbedding(window, dim)
            for _ in 1..blocks do
                yield TransformerBlock(dim, heads, 4 * dim, true, BlockActivation.GeluTanh)
            yield LayerNorm dim
            yield Linear(dim, vocabulary, Xavier)
        |]
    )

[<EntryPoint>]
let main argv =
    let option = CommandLine.intOption argv
    let epochs, seed = option "--epochs" 1, option "--seed" 1
    let window, batch = 64, 32
    let corpus, train, validation = FortunesCharacters.load window
    let vocabulary = corpus.Tokenizer.VocabularySize
    let model = Model.Create(gpt vocabulary window 64 4 2, seed, Float32)
    let stepsPerEpoch = option "--steps" (train.Count / batch)
    let steps = epochs * stepsPerEpoch
    let loss = Loss.SequenceCrossEntropy -100
    let optimizer = ClipGradNorm(Scheduled(Adam 3e-3, LinearDecay steps), 1.0)
    printfn "%O" model
    printfn "parameters: %d" model.ParameterCount
    let step = TrainStep.Compile(model, loss, optimizer, [| batch; window |], [| batch; window |], seed)
    let clock = Stopwatch.StartNew()
    for epoch in 1..epochs do
        let mutable recent = 0.0
        // Whole batches only: the plan is compiled for one batch shape.
        for i, b in Batches.shuffledWith true (seed + epoch) batch train |> Seq.truncate stepsPerEpoch |> Seq.indexed do
            recent <- recent + step.Run(b.Features, b.Targets)
            if (i + 1) % 100 = 0 then
                printfn "epoch %d, step %d: training loss %.4f (%.1f s)" epoch (i + 1) (recent / 100.0) clock.Elapsed.TotalSeconds
                recent <- 0.0
    printfn
        "time per epoch: %.1f s (%d steps of %d windows, %.1f ms per step)"
        (clock.Elapsed.TotalSeconds / float epochs)
        stepsPerEpoch
        batch
        (clock.Elapsed.TotalMilliseconds / float steps)
    let trained = step.Model
    printfn "sample: %s" (TextGeneration.generate trained corpus.Tokenizer window 0.8 seed 300 "The meaning of life is")
    printfn "validation perplexity: %.2f" (FortunesCharacters.validationPerplexity trained loss batch validation)
    0
