/// Tokenizers, the split by position, sequence windows and the shipped fortunes corpus.
module FuncFlow.Tests.Data.TextTests

open System
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests
open FuncFlow.Tests.Fixtures
open FuncFlow.Tests.Support

let private fortunes = lazy (TextData.read (dataPath "fortunes/fortunes.txt"))

let private rows (t: Tensor) =
    let n, w = t.Shape[0], t.Shape[1]
    let a = t.ToArray() |> Array.map int
    Array.init n (fun i -> a[i * w .. i * w + w - 1])

/// A text of n distinct characters (CJK ideographs from U+4E00), so a run's position is IndexOf of its first character.
let private distinct (n: int) = String(Array.init n (fun i -> char (0x4E00 + i)))

[<Tests>]
let tests =
    moduleTests
        "TextTests"
        [
            testCase "a character tokenizer lists the unknown token, then the training characters in ordinal order"
            <| fun () ->
                let t = Tokenizer.characters "banana, cab"
                Expect.equal (List.ofSeq t.Tokens) [ "\uFFFD"; " "; ","; "a"; "b"; "c"; "n" ] "t.Tokens"
                Expect.equal (Tokenizer.encode t "cabbage") [| 5; 3; 4; 4; 3; 0; 0 |] "encode \"cabbage\" (g and e unknown)"
                Expect.equal (Tokenizer.decode t [ 5; 3; 4; 4; 3; 0; 0 ]) "cabba\uFFFD\uFFFD" "decode"
            testCase "word pieces keep inner apostrophes and make every space and mark a piece, so decode undoes encode"
            <| fun () ->
                let text = "Don't panic,  don't!\n"
                Expect.equal
                    (Tokenizer.pieces TokenLevel.Words text |> List.ofSeq)
                    [ "Don't"; " "; "panic"; ","; " "; " "; "don't"; "!"; "\n" ]
                    "pieces"
                let t = Tokenizer.words 1 text
                Expect.equal (Tokenizer.decode t (Tokenizer.encode t text)) text "round trip"
            testCase "a word tokenizer with minCount 2 keeps only repeated pieces; the rest decode as <unk>"
            <| fun () ->
                let t = Tokenizer.words 2 "the cat and the dog"
                Expect.equal (List.ofSeq t.Tokens) [ "<unk>"; " "; "the" ] "t.Tokens"
                Expect.equal (Tokenizer.encode t "the cat") [| 2; 1; 0 |] "encode \"the cat\""
                Expect.equal (Tokenizer.decode t (Tokenizer.encode t "the cow and the dog")) "the <unk> <unk> the <unk>" "decode"
            testCase "the characters of a fortunes slice round-trip, and its vocabulary has every distinct character"
            <| fun () ->
                let slice = fortunes.Value.Substring(0, 20000)
                let t = Tokenizer.characters slice
                Expect.equal t.VocabularySize (Seq.length (Seq.distinct slice) + 1) "VocabularySize"
                let ids = Tokenizer.encode t slice
                Expect.equal ids.Length 20000 "one id per character"
                Expect.isFalse (Array.contains 0 ids) "no unknown id in the training text"
                Expect.equal (Tokenizer.decode t ids) slice "round trip"
            testCase "decode names the operation and the range for an id outside the vocabulary"
            <| fun () ->
                let t = Tokenizer.characters "ab"
                let e = throws<ArgumentOutOfRangeException>(fun () -> Tokenizer.decode t [ 1; 3 ] |> ignore)
                Expect.stringContains e.Message "Tokenizer.decode: id 3 is outside the vocabulary [0, 3)" "message"
                let e = throws<ArgumentException>(fun () -> Tokenizer.words 0 "a" |> ignore)
                Expect.stringContains e.Message "minCount must be at least 1, got 0" "message"
            testCase "windows start every length ids within a run, with targets the next ids, never across runs"
            <| fun () ->
                let ds = TextData.windows 3 [| Array.init 10 id; Array.init 5 ((+) 100); [| 7; 8; 9 |] |]
                Expect.equal ds.Features.DType DType.Float32 "float32 ids"
                Expect.equal (rows ds.Features) [| [| 0; 1; 2 |]; [| 3; 4; 5 |]; [| 6; 7; 8 |]; [| 100; 101; 102 |] |] "features"
                Expect.equal (rows ds.Targets) [| [| 1; 2; 3 |]; [| 4; 5; 6 |]; [| 7; 8; 9 |]; [| 101; 102; 103 |] |] "targets"
                let e = throws<ArgumentException>(fun () -> TextData.windows 3 [| [| 1; 2; 3 |] |] |> ignore)
                Expect.stringContains e.Message "no run is longer than the window length 3 (run lengths 3)" "message"
            testCase "the split cuts whole blocks, gives ceil(fraction x blocks) to validation and covers the text once"
            <| fun () ->
                let text = distinct 1050
                let train, validation = TextData.split 5 0.25 100 text
                // 11 blocks (the last of 50 characters): ceil(2.75) = 3 for validation.
                let blocks (runs: string[]) =
                    runs
                    |> Array.collect (fun r ->
                        let p = text.IndexOf r[0]
                        Expect.equal (text.Substring(p, r.Length)) r "a run is a substring at its position"
                        Expect.equal (p % 100) 0 "a run starts on a block"
                        Array.init ((r.Length + 99) / 100) (fun b -> p / 100 + b))
                let v = blocks validation
                Expect.equal v.Length 3 "validation blocks"
                Expect.equal (Array.sort (Array.append (blocks train) v)) (Array.init 11 id) "every block in exactly one part"
                Expect.equal (train |> Array.sumBy String.length) (1050 - (validation |> Array.sumBy String.length)) "characters"
                // Neighbouring blocks of one part are one run.
                for runs in [ train; validation ] do
                    let starts = runs |> Array.map (fun r -> text.IndexOf r[0] / 100)
                    let ends = runs |> Array.map (fun r -> (text.IndexOf r[0] + r.Length - 1) / 100)
                    for i in 1 .. runs.Length - 1 do
                        Expect.isGreaterThan starts[i] (ends[i - 1] + 1) "runs of one part are separated by the other"
            testCase "the same seed gives the same split and the same batches; another seed another"
            <| fun () ->
                let text = distinct 2000
                Expect.equal (TextData.split 3 0.2 50 text) (TextData.split 3 0.2 50 text) "same seed"
                Expect.notEqual (fst (TextData.split 3 0.2 50 text)) (fst (TextData.split 4 0.2 50 text)) "another seed"
                let c = TextData.corpus Tokenizer.characters 3 0.2 50 text
                let ds = TextData.windows 8 c.Train
                let epoch seed =
                    Batches.shuffledWith true seed 5 ds
                    |> Seq.map (fun b -> rows b.Features, rows b.Targets)
                    |> List.ofSeq
                Expect.equal (epoch 1) (epoch 1) "same batches"
                Expect.notEqual (epoch 1) (epoch 2) "other batches"
                for f, t in epoch 1 do
                    Array.iter2 (fun (fr: int[]) (tr: int[]) -> Expect.equal fr[1..] tr[..6] "targets shifted by one") f t
            testCase "validation characters missing from the training part encode as unknown"
            <| fun () ->
                let text = distinct 400
                let c = TextData.corpus Tokenizer.characters 0 0.25 100 text
                // All 400 characters are distinct, so none of validation's is in the vocabulary.
                Expect.equal c.Tokenizer.VocabularySize 301 "300 training characters and the unknown token"
                Expect.isTrue (c.Validation |> Array.forall (Array.forall ((=) 0))) "validation ids are all unknown"
                Expect.isFalse (c.Train |> Array.exists (Array.contains 0)) "training ids are all known"
            testCase "the shipped corpus: 2,570,750 characters, 113 distinct, 15,206 separators"
            <| fun () ->
                let text = fortunes.Value
                Expect.equal text.Length 2570750 "characters"
                Expect.equal (Seq.length (Seq.distinct text)) 113 "distinct characters"
                Expect.isTrue (text.StartsWith "7:30, Channel 5: The Bionic Dog (Action/Adventure)\n") "first line"
                let separators = text.Split('\n') |> Array.filter ((=) "%") |> Array.length
                Expect.equal separators 15206 "lines holding only %"
                let c = TextData.corpus Tokenizer.characters 7 0.1 10000 text
                let trainLength = c.Train |> Array.sumBy Array.length
                let validationLength = c.Validation |> Array.sumBy Array.length
                Expect.equal (trainLength + validationLength) text.Length "every character in one part"
                // 258 blocks, ceil(25.8) = 26 for validation, none of them the last (shorter) block, else fewer.
                Expect.isTrue (validationLength <= 260000 && validationLength > 250000) (sprintf "validation %d" validationLength)
            testCase "TextGeneration.sample draws from softmax(logits / temperature), seeded"
            <| fun () ->
                let logits = [| 1.0; 0.0; 2.0; -1.0 |]
                for temperature in [ 1.0; 0.5 ] do
                    let rng = Random 3
                    let counts = Array.zeroCreate<float> 4
                    for _ in 1..40_000 do
                        let i = FuncFlow.NN.TextGeneration.sample rng temperature logits
                        counts[i] <- counts[i] + 1.0
                    let weights = logits |> Array.map (fun l -> exp (l / temperature))
                    for i in 0..3 do
                        let p = weights[i] / Array.sum weights
                        // Four standard deviations of a binomial proportion over 40,000 draws.
                        expectWithin
                            (4.0 * sqrt (p * (1.0 - p) / 40_000.0))
                            p
                            (counts[i] / 40_000.0)
                            (sprintf "T=%g, index %d" temperature i)
                let again (seed: int) = Array.init 20 (fun _ -> FuncFlow.NN.TextGeneration.sample (Random seed) 1.0 logits)
                Expect.equal (again 5) (again 5) "the same seed draws the same"
                Expect.equal (FuncFlow.NN.TextGeneration.sample (Random 1) 1e-3 logits) 2 "a small temperature takes the largest"
                let e =
                    throwsAny<ArgumentException>(fun () -> FuncFlow.NN.TextGeneration.sample (Random 1) 0.0 logits |> ignore)
                Expect.stringContains e.Message "temperature" "a zero temperature is refused by name"
        ]
