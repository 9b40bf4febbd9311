/// Standardization, train/test splits and batching.
module FuncFlow.Tests.Data.PreprocessTests

open System
open Xunit
open FsCheck
open FsCheck.Xunit
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests.Fixtures

let private boston = lazy (Datasets.boston (dataPath "small/boston_house_prices.csv"))

/// n rows whose single feature is the row index and whose target is twice it, to track rows through shuffles.
let private indexed (n: int) =
    Dataset.create (Tensor.create [| n; 1 |] (Array.init n float)) (Tensor.ofArray (Array.init n (fun i -> 2.0 * float i)))

let private ids (ds: Dataset) = ds.Features.ToArray() |> Array.map int

let private aligned (ds: Dataset) =
    Array.forall2 (fun f t -> t = 2.0 * f) (ds.Features.ToArray()) (ds.Targets.ToArray())

let private columnStats (t: Tensor) =
    let n, d = t.Shape[0], t.Shape[1]
    let x = t.ToArray()
    Array.init d (fun j ->
        let col = Array.init n (fun i -> x[i * d + j])
        let m = Array.average col
        m, sqrt (col |> Array.averageBy (fun v -> (v - m) ** 2.0)))

[<Fact>]
let ``a standardizer fitted on train gives train columns mean 0 and std 1`` () =
    let train, test = Datasets.split 42 0.2 boston.Value
    let s = Standardizer.fit train.Features
    for m, sd in columnStats (Standardizer.apply s train.Features) do
        Assert.InRange(m, -1e-12, 1e-12)
        Assert.InRange(sd, 1.0 - 1e-12, 1.0 + 1e-12)
    // The test split uses the train statistics, so it is close to but not exactly standard.
    let testStats = columnStats (Standardizer.apply s test.Features)
    Assert.True(testStats |> Array.exists (fun (m, _) -> abs m > 1e-6))
    Assert.True(testStats |> Array.forall (fun (m, _) -> abs m < 1.0))

[<Fact>]
let ``a constant column gets std 1 and stays finite`` () =
    let x = Tensor.create [| 3; 2 |] [| 0.1; 1.0; 0.1; 2.0; 0.1; 3.0 |]
    let s = Standardizer.fit x
    Assert.Equal(1.0, s.Std[0])
    Assert.Equal(sqrt (2.0 / 3.0), s.Std[1], 12)
    let y = (Standardizer.apply s x).ToArray()
    Assert.True(y |> Array.forall Double.IsFinite)
    Assert.InRange(abs y[0], 0.0, 1e-15)

[<Fact>]
let ``standardizing keeps float32 features float32`` () =
    let x = Tensor.create32 [| 2; 1 |] [| 1.0f; 3.0f |]
    let y = Standardizer.apply (Standardizer.fit x) x
    Assert.Equal(Float32, y.DType)
    Assert.Equal<float32[]>([| -1.0f; 1.0f |], y.ToArray32())

[<Fact>]
let ``a standardizer refuses features with another column count`` () =
    let s = Standardizer.fit (Tensor.create [| 2; 2 |] [| 1.0; 2.0; 3.0; 4.0 |])
    let e = Assert.Throws<ArgumentException>(fun () -> Standardizer.apply s (Tensor.create [| 1; 3 |] [| 1.0; 2.0; 3.0 |]) |> ignore)
    Assert.Contains("Standardizer.apply", e.Message)
    Assert.Contains("3 columns", e.Message)

[<Fact>]
let ``split sizes follow ceil of the test fraction and partition the rows`` () =
    let train, test = Datasets.split 7 0.2 (indexed 506)
    Assert.Equal(102, test.Count)
    Assert.Equal(404, train.Count)
    Assert.Equal<int[]>(Array.init 506 id, Array.append (ids train) (ids test) |> Array.sort)
    Assert.True(aligned train && aligned test)

[<Fact>]
let ``the same seed gives the same split and another seed a different one`` () =
    let a = Datasets.split 1 0.25 boston.Value
    let b = Datasets.split 1 0.25 boston.Value
    let c = Datasets.split 2 0.25 boston.Value
    Assert.Equal<float[]>((fst a).Features.ToArray(), (fst b).Features.ToArray())
    Assert.Equal<float[]>((snd a).Targets.ToArray(), (snd b).Targets.ToArray())
    Assert.NotEqual<float[]>((snd a).Targets.ToArray(), (snd c).Targets.ToArray())

[<Theory>]
[<InlineData(0.0)>]
[<InlineData(1.0)>]
[<InlineData(-0.5)>]
[<InlineData(1.5)>]
[<InlineData(Double.NaN)>]
let ``split refuses a test fraction outside 0 to 1`` (fraction: float) =
    let e = Assert.Throws<ArgumentException>(fun () -> Datasets.split 0 fraction (indexed 10) |> ignore)
    Assert.Contains("Datasets.split", e.Message)
    Assert.Contains(sprintf "%g" fraction, e.Message)

[<Fact>]
let ``mismatched row counts are refused with both counts`` () =
    let ds = { Features = Tensor.create [| 3; 1 |] [| 1.0; 2.0; 3.0 |]; Targets = Tensor.ofArray [| 1.0; 2.0 |] }
    for f in [ (fun () -> Datasets.split 0 0.5 ds |> ignore); (fun () -> Batches.shuffled 0 2 ds |> ignore) ] do
        let e = Assert.Throws<ArgumentException>(f)
        Assert.Contains("3 rows", e.Message)
        Assert.Contains("targets have 2", e.Message)
    Assert.Throws<ArgumentException>(fun () -> Dataset.create ds.Features ds.Targets |> ignore) |> ignore

[<Fact>]
let ``shuffled batches cover every row once, deterministically per seed`` () =
    let ds = indexed 23
    let epoch seed = Batches.shuffled seed 4 ds |> Seq.toList
    let batches = epoch 3
    Assert.Equal<int list>([ 4; 4; 4; 4; 4; 3 ], batches |> List.map (fun b -> b.Count))
    let order = batches |> List.collect (ids >> List.ofArray)
    Assert.Equal<int list>([ 0 .. 22 ], List.sort order)
    Assert.NotEqual<int list>([ 0 .. 22 ], order)
    Assert.True(batches |> List.forall aligned)
    Assert.Equal<int list>(order, epoch 3 |> List.collect (ids >> List.ofArray))
    Assert.NotEqual<int list>(order, epoch 4 |> List.collect (ids >> List.ofArray))

[<Fact>]
let ``dropLast leaves out a short final batch`` () =
    let ds = indexed 23
    Assert.Equal<int list>([ 4; 4; 4; 4; 4 ], Batches.shuffledWith true 3 4 ds |> Seq.map (fun b -> b.Count) |> List.ofSeq)
    Assert.Equal<int list>([ 5; 5; 5; 5 ], Batches.sequentialWith true 5 (indexed 20) |> Seq.map (fun b -> b.Count) |> List.ofSeq)
    Assert.Equal<int list>([ 0 .. 19 ], Batches.sequentialWith true 5 (indexed 23) |> Seq.collect ids |> List.ofSeq)

[<Fact>]
let ``sequential batches keep the data set's order`` () =
    let batches = Batches.sequential 10 (indexed 25) |> Seq.toList
    Assert.Equal<int list>([ 10; 10; 5 ], batches |> List.map (fun b -> b.Count))
    Assert.Equal<int list>([ 0 .. 24 ], batches |> List.collect (ids >> List.ofArray))
    Assert.Equal<int[]>([| 5; 1 |], batches[2].Features.Shape)

[<Property>]
let ``every epoch is a permutation of the rows`` (seed: int) (PositiveInt n) (PositiveInt batchSize) =
    let n, batchSize = 1 + n % 60, 1 + batchSize % 20
    let batches = Batches.shuffled seed batchSize (indexed n) |> Seq.toList
    (batches |> List.collect (ids >> List.ofArray) |> List.sort) = [ 0 .. n - 1 ]
    && batches |> List.forall (fun b -> b.Count <= batchSize && aligned b)
    && batches.Length = (n + batchSize - 1) / batchSize

[<Theory>]
[<InlineData(0)>]
[<InlineData(-3)>]
let ``a batch size that is not positive is refused`` (batchSize: int) =
    let ds = indexed 5
    let calls: (string * (unit -> unit)) list =
        [ "Batches.shuffled", (fun () -> Batches.shuffled 0 batchSize ds |> ignore)
          "Batches.sequential", (fun () -> Batches.sequential batchSize ds |> ignore)
          "Batches.sampleWithReplacement", (fun () -> Batches.sampleWithReplacement (Random 0) batchSize ds |> ignore) ]
    for name, call in calls do
        let e = Assert.Throws<ArgumentException>(call)
        Assert.Contains(name, e.Message)
        Assert.Contains(sprintf "got %d" batchSize, e.Message)

[<Fact>]
let ``sampling with replacement draws whole rows of the data set`` () =
    let ds = indexed 10
    let sample = Batches.sampleWithReplacement (Random 0) 50 ds
    Assert.Equal(50, sample.Count)
    Assert.Equal<int[]>([| 50; 1 |], sample.Features.Shape)
    Assert.True(ids sample |> Array.forall (fun i -> i >= 0 && i < 10))
    Assert.True(aligned sample)
    // 50 draws from 10 rows repeat some rows: it samples with replacement.
    Assert.True((ids sample |> Array.distinct).Length < 50)
    Assert.Equal<int[]>(ids sample, ids (Batches.sampleWithReplacement (Random 0) 50 ds))
