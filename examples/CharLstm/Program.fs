/// A character-level LSTM language model on the fortunes corpus (Grokking Deep Learning, chapter 14): embedding
/// 32, one LSTM layer of 128 units over 64-character windows, a linear read-out at every step, Adam (lr 3e-3
/// decaying linearly to 0) with gradients clipped to global norm 1, float32. Prints the unigram baseline's
/// validation perplexity, the model's, and a sample from a seeded prompt.
/// dotnet run -c Release --project examples/CharLstm [-- --steps N --seed S]
module CharLstm

open System
open System.Diagnostics
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN

/// The per-character perplexity on the validation text of counts from the training text, each count plus one
/// (so a character unseen in training keeps a finite cost).
let unigramPerplexity (corpus: TextCorpus) =
    let counts = Array.create corpus.Tokenizer.VocabularySize 1.0
    for run in corpus.Train do
        for id in run do
            counts[id] <- counts[id] + 1.0
    let total = Array.sum counts
    let validation = Array.concat corpus.Validation
    exp (-(validation |> Array.averageBy (fun id -> log (counts[id] / total))))

[<EntryPoint>]
let main argv =
    let option = CommandLine.intOption argv
    let steps, seed = option "--steps" 1200, option "--seed" 1
    let window, batch, hidden = 64, 32, 128
    let corpus, train, validation = FortunesCharacters.load window
    let vocabulary = corpus.Tokenizer.VocabularySize
    printfn "unigram baseline perplexity: %.2f" (unigramPerplexity corpus)
    let layers =
        Sequential(
            Embedding(vocabulary, 32),
            LSTM(32, hidden, { RecurrentOptions.Default with BatchFirst = true }),
            Linear(hidden, vocabulary)
        )
    let model = Model.Create(layers, seed, Float32)
    let loss = Loss.SequenceCrossEntropy -100
    let optimizer = ClipGradNorm(Scheduled(Adam 3e-3, LinearDecay steps), 1.0)
    printfn "%O, %d steps of %d windows" model steps batch
    let step = TrainStep.Compile(model, loss, optimizer, [| batch; window |], [| batch; window |], seed)
    let clock = Stopwatch.StartNew()
    // Epochs of shuffled windows, each epoch reshuffled, for as many steps as asked.
    let batches =
        Seq.initInfinite (fun epoch -> Batches.shuffledWith true (seed + epoch) batch train)
        |> Seq.concat
        |> Seq.truncate steps
    let mutable recent = 0.0
    for i, b in Seq.indexed batches do
        recent <- recent + step.Run(b.Features, b.Targets)
        if (i + 1) % 100 = 0 then
            printfn "step %d: training loss %.4f (%.1f s)" (i + 1) (recent / 100.0) clock.Elapsed.TotalSeconds
            recent <- 0.0
    printfn "trained in %.1f s (%.1f ms per step)" clock.Elapsed.TotalSeconds (clock.Elapsed.TotalMilliseconds / float steps)
    let trained = step.Model
    printfn "sample: %s" (TextGeneration.generate trained corpus.Tokenizer window 0.8 seed 300 "The meaning of life is")
    printfn "validation perplexity: %.2f" (FortunesCharacters.validationPerplexity trained loss batch validation)
    0
