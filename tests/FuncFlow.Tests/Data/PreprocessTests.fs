/// Standardization, train/test splits and batching.
module FuncFlow.Tests.Data.PreprocessTests

open System
open Expecto
open FsCheck
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests
open FuncFlow.Tests.Fixtures
open FuncFlow.Tests.Support

let private boston = lazy (Datasets.boston (dataPath "small/boston_house_prices.csv"))

/// n rows whose single feature is the row index and whose target is twice it, to track rows through shuffles.
let private indexed (n: int) =
    Dataset.create (Tensor.create [| n; 1 |] (Array.init n float)) (Tensor.ofArray (Array.init n (fun i -> 2.0 * float i)))

let private ids (ds: Dataset) = ds.Features.ToArray() |> Array.map int

let private aligned (ds: Dataset) = Array.forall2 (fun f t -> t = 2.0 * f) (ds.Features.ToArray()) (ds.Targets.ToArray())

let private columnStats (t: Tensor) =
    let n, d = t.Shape[0], t.Shape[1]
    let x = t.ToArray()
    Array.init d (fun j ->
        let col = Array.init n (fun i -> x[i * d + j])
        let m = Array.average col
        m, sqrt (col |> Array.averageBy (fun v -> (v - m) ** 2.0)))

[<Tests>]
let tests =
    moduleTests
        "PreprocessTests"
        [
            testCase "a standardizer fitted on train gives train columns mean 0 and std 1"
            <| fun () ->
                let train, test = Datasets.split 42 0.2 boston.Value
                let s = Standardizer.fit train.Features
                for m, sd in columnStats (Standardizer.apply s train.Features) do
                    Expect.isTrue (-1e-12 <= m && m <= 1e-12) (sprintf "column mean %g in [-1e-12, 1e-12]" m)
                    Expect.isTrue (1.0 - 1e-12 <= sd && sd <= 1.0 + 1e-12) (sprintf "column std %.17g in [1 - 1e-12, 1 + 1e-12]" sd)
                // The test split uses the train statistics, so it is close to but not exactly standard.
                let testStats = columnStats (Standardizer.apply s test.Features)
                Expect.isTrue
                    (testStats |> Array.exists (fun (m, _) -> abs m > 1e-6))
                    "testStats |> Array.exists (fun (m, _) -> abs m > 1e-6)"
                Expect.isTrue
                    (testStats |> Array.forall (fun (m, _) -> abs m < 1.0))
                    "testStats |> Array.forall (fun (m, _) -> abs m < 1.0)"
            testCase "a constant column gets std 1 and stays finite"
            <| fun () ->
                let x = Tensor.create [| 3; 2 |] [| 0.1; 1.0; 0.1; 2.0; 0.1; 3.0 |]
                let s = Standardizer.fit x
                Expect.equal (s.Std[0]) 1.0 "s.Std[0]"
                expectRounded 12 (sqrt (2.0 / 3.0)) s.Std[1] "s.Std[1]"
                let y = (Standardizer.apply s x).ToArray()
                Expect.isTrue (y |> Array.forall Double.IsFinite) "y |> Array.forall Double.IsFinite"
                Expect.isTrue (abs y[0] <= 1e-15) (sprintf "|y[0]| = %g <= 1e-15" (abs y[0]))
            testCase "standardizing keeps float32 features float32"
            <| fun () ->
                let x = Tensor.create32 [| 2; 1 |] [| 1.0f; 3.0f |]
                let y = Standardizer.apply (Standardizer.fit x) x
                Expect.equal y.DType Float32 "y.DType"
                Expect.equal (y.ToArray32()) ([| -1.0f; 1.0f |]) "y.ToArray32()"
            testCase "a standardizer refuses features with another column count"
            <| fun () ->
                let s = Standardizer.fit (Tensor.create [| 2; 2 |] [| 1.0; 2.0; 3.0; 4.0 |])
                let e =
                    (throws<ArgumentException>(fun () -> Standardizer.apply s (Tensor.create [| 1; 3 |] [| 1.0; 2.0; 3.0 |]) |> ignore))
                Expect.stringContains e.Message "Standardizer.apply" "e.Message"
                Expect.stringContains e.Message "3 columns" "e.Message"
            testCase "normalize maps each feature to (x - mean) / std in the features' dtype and keeps the targets"
            <| fun () ->
                let ds =
                    Dataset.create (Tensor.create32 [| 2; 2 |] [| 0.0f; 255.0f; 1.0f; 0.5f |]) (Tensor.ofArray [| 3.0; 7.0 |])
                let n = Dataset.normalize 0.1307 0.3081 ds
                Expect.equal n.Features.DType Float32 "dtype"
                Expect.equal n.Features.Shape [| 2; 2 |] "shape"
                // As torchvision computes it on float32 pixels: (x - 0.1307f) / 0.3081f, in float32.
                let expected = [| 0.0f; 255.0f; 1.0f; 0.5f |] |> Array.map (fun v -> (v - 0.1307f) / 0.3081f)
                Expect.equal (n.Features.ToArray32()) expected "values"
                Expect.floatClose Accuracy.high (float expected[1]) ((255.0 - 0.1307) / 0.3081) "255 by hand"
                Expect.equal (n.Targets.ToArray()) [| 3.0; 7.0 |] "targets"
                let d =
                    Dataset.normalize 2.0 4.0 (Dataset.create (Tensor.create [| 1; 2 |] [| 10.0; -2.0 |]) (Tensor.ofArray [| 0.0 |]))
                Expect.equal (d.Features.ToArray()) [| 2.0; -1.0 |] "float64 values"
                for std in [ 0.0; -1.0; nan; infinity ] do
                    let e = throws<ArgumentException>(fun () -> Dataset.normalize 0.0 std ds |> ignore)
                    Expect.stringContains e.Message "Dataset.normalize: mean must be finite and std finite and positive" "message"
            testCase "split sizes follow ceil of the test fraction and partition the rows"
            <| fun () ->
                let train, test = Datasets.split 7 0.2 (indexed 506)
                Expect.equal test.Count 102 "test.Count"
                Expect.equal train.Count 404 "train.Count"
                Expect.equal
                    (Array.append (ids train) (ids test) |> Array.sort)
                    (Array.init 506 id)
                    "Array.append (ids train) (ids test) |> Array.sort"
                Expect.isTrue (aligned train && aligned test) "aligned train && aligned test"
            testCase "the same seed gives the same split and another seed a different one"
            <| fun () ->
                let a = Datasets.split 1 0.25 boston.Value
                let b = Datasets.split 1 0.25 boston.Value
                let c = Datasets.split 2 0.25 boston.Value
                Expect.equal ((fst b).Features.ToArray()) ((fst a).Features.ToArray()) "(fst b).Features.ToArray()"
                Expect.equal ((snd b).Targets.ToArray()) ((snd a).Targets.ToArray()) "(snd b).Targets.ToArray()"
                Expect.notEqual ((snd c).Targets.ToArray()) ((snd a).Targets.ToArray()) "(snd c).Targets.ToArray()"
            for fraction in [ 0.0; 1.0; -0.5; 1.5; nan ] do
                testCase (sprintf "split refuses a test fraction outside 0 to 1 %g" fraction)
                <| fun () ->
                    let e = (throws<ArgumentException>(fun () -> Datasets.split 0 fraction (indexed 10) |> ignore))
                    Expect.stringContains e.Message "Datasets.split" "e.Message"
                    Expect.stringContains e.Message (sprintf "%g" fraction) "e.Message"
            testCase "mismatched row counts are refused with both counts"
            <| fun () ->
                let ds =
                    { Features = Tensor.create [| 3; 1 |] [| 1.0; 2.0; 3.0 |]; Targets = Tensor.ofArray [| 1.0; 2.0 |] }
                for f in [ (fun () -> Datasets.split 0 0.5 ds |> ignore); (fun () -> Batches.shuffled 0 2 ds |> ignore) ] do
                    let e = (throws<ArgumentException> f)
                    Expect.stringContains e.Message "3 rows" "e.Message"
                    Expect.stringContains e.Message "targets have 2" "e.Message"
                (throws<ArgumentException>(fun () -> Dataset.create ds.Features ds.Targets |> ignore)) |> ignore
            testCase "shuffled batches cover every row once, deterministically per seed"
            <| fun () ->
                let ds = indexed 23
                let epoch seed = Batches.shuffled seed 4 ds |> Seq.toList
                let batches = epoch 3
                Expect.equal (batches |> List.map (fun b -> b.Count)) ([ 4; 4; 4; 4; 4; 3 ]) "batches |> List.map (fun b -> b.Count)"
                let order = batches |> List.collect (ids >> List.ofArray)
                Expect.equal (List.sort order) ([ 0..22 ]) "List.sort order"
                Expect.notEqual order ([ 0..22 ]) "order"
                Expect.isTrue (batches |> List.forall aligned) "batches |> List.forall aligned"
                Expect.equal (epoch 3 |> List.collect (ids >> List.ofArray)) order "epoch 3 |> List.collect (ids >> List.ofArray)"
                Expect.notEqual (epoch 4 |> List.collect (ids >> List.ofArray)) order "epoch 4 |> List.collect (ids >> List.ofArray)"
            testCase "shuffling is uniform: over 6000 seeds each of the 6 orders of 3 rows comes about 1000 times"
            <| fun () ->
                // Fisher-Yates draws the swap partner of position i from [0, i]; drawing it from [0, i) (Sattolo's
                // algorithm) makes only the 2 cyclic orders. 1000 +- 150 is over 5 standard deviations (28.9).
                let counts =
                    [ 0..5999 ]
                    |> List.countBy (fun seed -> Batches.shuffled seed 3 (indexed 3) |> Seq.exactlyOne |> ids |> List.ofArray)
                Expect.equal
                    (counts |> List.map fst |> List.sort)
                    [ [ 0; 1; 2 ]; [ 0; 2; 1 ]; [ 1; 0; 2 ]; [ 1; 2; 0 ]; [ 2; 0; 1 ]; [ 2; 1; 0 ] ]
                    "every order of 3 rows appears"
                for order, count in counts do
                    Expect.isTrue (abs (count - 1000) <= 150) (sprintf "order %A came %d times in 6000 shuffles" order count)
            testCase "dropLast leaves out a short final batch"
            <| fun () ->
                let ds = indexed 23
                Expect.equal
                    (Batches.shuffledWith true 3 4 ds |> Seq.map (fun b -> b.Count) |> List.ofSeq)
                    ([ 4; 4; 4; 4; 4 ])
                    "Batches.shuffledWith true 3 4 ds |> Seq.map (fun b -> b.Count) |> List.ofSeq"
                Expect.equal
                    (Batches.sequentialWith true 5 (indexed 20) |> Seq.map (fun b -> b.Count) |> List.ofSeq)
                    ([ 5; 5; 5; 5 ])
                    "Batches.sequentialWith true 5 (indexed 20) |> Seq.map (fun b -> b.Count) |> List.ofSeq"
                Expect.equal
                    (Batches.sequentialWith true 5 (indexed 23) |> Seq.collect ids |> List.ofSeq)
                    ([ 0..19 ])
                    "Batches.sequentialWith true 5 (indexed 23) |> Seq.collect ids |> List.ofSeq"
            testCase "the trainer's batches in reused buffers hold Batches.shuffledWith's rows, each read before the next"
            <| fun () ->
                let ds = indexed 10
                let expected =
                    Batches.shuffledWith false 7 4 ds |> Seq.map (fun b -> ids b, b.Targets.ToArray()) |> List.ofSeq
                let reused =
                    Dataset.batchesInto (Dataset.permutation 7 10) 4 (Batches.count false 4 10) ds
                    |> Seq.map (fun b -> ids b, b.Targets.ToArray())
                    |> List.ofSeq
                Expect.equal reused expected "batches"
                Expect.equal (List.map (fst >> Array.length) reused) [ 4; 4; 2 ] "batch sizes"
            testCase "sequential batches keep the data set's order"
            <| fun () ->
                let batches = Batches.sequential 10 (indexed 25) |> Seq.toList
                Expect.equal (batches |> List.map (fun b -> b.Count)) ([ 10; 10; 5 ]) "batches |> List.map (fun b -> b.Count)"
                Expect.equal (batches |> List.collect (ids >> List.ofArray)) ([ 0..24 ]) "batches |> List.collect (ids >> List.ofArray)"
                Expect.equal (batches[2].Features.Shape) ([| 5; 1 |]) "batches[2].Features.Shape"
            testPropertyWithConfig (propertyConfig 100) "every epoch is a permutation of the rows"
            <| fun (seed: int) (PositiveInt n) (PositiveInt batchSize) ->
                let n, batchSize = 1 + n % 60, 1 + batchSize % 20
                let batches = Batches.shuffled seed batchSize (indexed n) |> Seq.toList
                (batches |> List.collect (ids >> List.ofArray) |> List.sort) = [ 0 .. n - 1 ]
                && batches |> List.forall (fun b -> b.Count <= batchSize && aligned b)
                && batches.Length = (n + batchSize - 1) / batchSize
            for batchSize in [ 0; -3 ] do
                testCase (sprintf "a batch size that is not positive is refused %d" batchSize)
                <| fun () ->
                    let ds = indexed 5
                    let calls: (string * (unit -> unit)) list =
                        [
                            "Batches.shuffled", (fun () -> Batches.shuffled 0 batchSize ds |> ignore)
                            "Batches.sequential", (fun () -> Batches.sequential batchSize ds |> ignore)
                            "Batches.sampleWithReplacement", (fun () -> Batches.sampleWithReplacement (Random 0) batchSize ds |> ignore)
                        ]
                    for name, call in calls do
                        let e = (throws<ArgumentException> call)
                        Expect.stringContains e.Message name "e.Message"
                        Expect.stringContains e.Message (sprintf "got %d" batchSize) "e.Message"
            testCase "sampling with replacement draws whole rows of the data set"
            <| fun () ->
                let ds = indexed 10
                let sample = Batches.sampleWithReplacement (Random 0) 50 ds
                Expect.equal sample.Count 50 "sample.Count"
                Expect.equal sample.Features.Shape ([| 50; 1 |]) "sample.Features.Shape"
                Expect.isTrue
                    (ids sample |> Array.forall (fun i -> i >= 0 && i < 10))
                    "ids sample |> Array.forall (fun i -> i >= 0 && i < 10)"
                Expect.isTrue (aligned sample) "aligned sample"
                // 50 draws from 10 rows repeat some rows: it samples with replacement.
                Expect.isTrue ((ids sample |> Array.distinct).Length < 50) "(ids sample |> Array.distinct).Length < 50"
                Expect.equal
                    (ids (Batches.sampleWithReplacement (Random 0) 50 ds))
                    (ids sample)
                    "ids (Batches.sampleWithReplacement (Random 0) 50 ds)"
        ]
