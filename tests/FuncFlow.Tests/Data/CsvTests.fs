/// The CSV reader and the scikit-learn data set loaders.
module FuncFlow.Tests.Data.CsvTests

open System
open System.Globalization
open System.IO
open Xunit
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests.Fixtures
open FuncFlow.Tests.Data.DataTestHelpers

[<Fact>]
let ``Csv.read parses numbers with the invariant culture, skipping lines and blank lines`` () =
    use dir = new TempDir()
    let path = dir.File "plain.csv"
    File.WriteAllText(path, "a,b\n1.5, -2e3\n\n  0.25 ,4\n")
    Assert.Equal<float[][]>([| [| 1.5; -2000.0 |]; [| 0.25; 4.0 |] |], Csv.read path 1)
    File.WriteAllBytes(path + ".gz", gzip (File.ReadAllBytes path))
    Assert.Equal<float[][]>([| [| 1.5; -2000.0 |]; [| 0.25; 4.0 |] |], Csv.read (path + ".gz") 1)

[<Fact>]
let ``a non-numeric cell names the file, line, column and text`` () =
    use dir = new TempDir()
    let path = dir.File "words.csv"
    File.WriteAllText(path, "x,y,z\n1,2,3\n4,five,6\n")
    expectFormatError [ "words.csv"; "line 3"; "column 2"; "\"five\""; "not a number" ] (fun () -> Csv.read path 1) |> ignore
    // A decimal comma is not a number in the invariant culture; it splits the cell instead, so the row is ragged.
    File.WriteAllText(path, "1.5;2\n")
    expectFormatError [ "words.csv"; "line 1"; "column 1"; "\"1.5;2\"" ] (fun () -> Csv.read path 0) |> ignore

[<Fact>]
let ``a ragged row names the file, the line and both lengths`` () =
    use dir = new TempDir()
    let path = dir.File "ragged.csv"
    File.WriteAllText(path, "1,2,3\n4,5,6\n7,8\n")
    expectFormatError [ "ragged.csv"; "line 3 has 2 cells"; "line 1"; "has 3" ] (fun () -> Csv.read path 0) |> ignore

[<Fact>]
let ``Boston has 506 rows of 13 features and MEDV, the first row as in the CSV text`` () =
    let path = dataPath "small/boston_house_prices.csv"
    let ds = Datasets.boston path
    Assert.Equal<int[]>([| 506; 13 |], ds.Features.Shape)
    Assert.Equal<int[]>([| 506; 1 |], ds.Targets.Shape)
    Assert.Equal(Float64, ds.Features.DType)
    let firstRow = File.ReadLines path |> Seq.item 2
    Assert.Equal("0.00632,18,2.31,0,0.538,6.575,65.2,4.09,1,296,15.3,396.9,4.98,24", firstRow)
    let expected = firstRow.Split(',') |> Array.map (fun s -> Double.Parse(s, CultureInfo.InvariantCulture))
    Assert.Equal<float[]>(expected[.. 12], ds.Features.ToArray()[.. 12])
    Assert.Equal(24.0, ds.Targets.ToArray()[0])
    Assert.Equal(50.0, Array.max (ds.Targets.ToArray()))

[<Fact>]
let ``the classification sets have the documented shapes and classes`` () =
    let check (ds: Dataset) n d classes =
        Assert.Equal<int[]>([| n; d |], ds.Features.Shape)
        Assert.Equal<int[]>([| n |], ds.Targets.Shape)
        Assert.Equal<float[]>(Array.init classes float, ds.Targets.ToArray() |> Array.distinct |> Array.sort)
    check (Datasets.iris (dataPath "small/iris.csv")) 150 4 3
    check (Datasets.wine (dataPath "small/wine_data.csv")) 178 13 3
    check (Datasets.breastCancer (dataPath "small/breast_cancer.csv")) 569 30 2
    let digits = Datasets.digits (dataPath "small/digits.csv.gz")
    check digits 1797 64 10
    Assert.Equal(16.0, Array.max (digits.Features.ToArray()))
    Assert.Equal<float[]>([| 5.1; 3.5; 1.4; 0.2 |], (Datasets.iris (dataPath "small/iris.csv")).Features.ToArray()[..3])

[<Fact>]
let ``a scikit-learn CSV with fewer rows than its first line announces is an error`` () =
    use dir = new TempDir()
    let path = dir.File "iris.csv"
    File.WriteAllLines(path, File.ReadLines(dataPath "small/iris.csv") |> Seq.take 100)
    expectFormatError [ "iris.csv"; "announces 150 rows"; "has 99" ] (fun () -> Datasets.iris path) |> ignore

[<Fact>]
let ``the default data folder is the repository's data folder`` () =
    Assert.Equal(Path.Combine(repoRoot.Value, "data"), Datasets.defaultDataDir ())
    Assert.Equal<int[]>([| 506; 13 |], (Datasets.bostonDefault ()).Features.Shape)
    Assert.Equal<int[]>([| 150; 4 |], (Datasets.irisDefault ()).Features.Shape)
