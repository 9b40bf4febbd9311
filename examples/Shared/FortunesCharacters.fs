/// What the character-level examples (CharLstm, CharTransformer) share, so that their perplexities compare: the
/// fortunes corpus with one split and windowing, and the validation perplexity over whole batches of windows.
module FortunesCharacters

open FuncFlow.Data
open FuncFlow.NN

/// The fortunes corpus as characters (seeded split by position: 10% validation in blocks of 10,000), its training
/// and validation windows of `window` characters with targets shifted by one; prints their sizes.
let load (window: int) =
    let corpus = TextData.corpus Tokenizer.characters 1 0.1 10_000 (TextData.fortunesDefault ())
    let train = TextData.windows window corpus.Train
    let validation = TextData.windows window corpus.Validation
    printfn
        "fortunes: %d training and %d validation characters, %d symbols (with the unknown one); %d and %d windows of %d"
        (corpus.Train |> Array.sumBy Array.length)
        (corpus.Validation |> Array.sumBy Array.length)
        corpus.Tokenizer.VocabularySize
        train.Count
        validation.Count
        window
    corpus, train, validation

/// exp of the mean loss over whole batches of validation windows (the last partial batch left out).
let validationPerplexity (model: Model) (loss: Loss) (batch: int) (validation: Dataset) =
    let evaluator = Evaluator loss
    Batches.sequentialWith true batch validation
    |> Seq.map (fun b ->
        let struct (l, _) = evaluator.Batch(model, b.Features, b.Targets)
        l)
    |> Seq.average
    |> exp
