/// The CSV reader and the scikit-learn data set loaders.
module FuncFlow.Tests.Data.CsvTests

open System
open System.Globalization
open System.IO
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests
open FuncFlow.Tests.Fixtures
open FuncFlow.Tests.Data.DataTestHelpers
open FuncFlow.Tests.Support

[<Tests>]
let tests =
    moduleTests
        "CsvTests"
        [
            testCase "Csv.read parses numbers with the invariant culture, skipping lines and blank lines"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "plain.csv"
                File.WriteAllText(path, "a,b\n1.5, -2e3\n\n  0.25 ,4\n")
                Expect.equal (Csv.read path 1) ([| [| 1.5; -2000.0 |]; [| 0.25; 4.0 |] |]) "Csv.read path 1"
                File.WriteAllBytes(path + ".gz", gzip (File.ReadAllBytes path))
                Expect.equal (Csv.read (path + ".gz") 1) ([| [| 1.5; -2000.0 |]; [| 0.25; 4.0 |] |]) "Csv.read (path + \".gz\") 1"
            testCase "a non-numeric cell names the file, line, column and text"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "words.csv"
                File.WriteAllText(path, "x,y,z\n1,2,3\n4,five,6\n")
                expectFormatError [ "words.csv"; "line 3"; "column 2"; "\"five\""; "not a number" ] (fun () -> Csv.read path 1)
                |> ignore
                // A decimal comma is not a number in the invariant culture; it splits the cell instead, so the row is ragged.
                File.WriteAllText(path, "1.5;2\n")
                expectFormatError [ "words.csv"; "line 1"; "column 1"; "\"1.5;2\"" ] (fun () -> Csv.read path 0)
                |> ignore
            testCase "a ragged row names the file, the line and both lengths"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "ragged.csv"
                File.WriteAllText(path, "1,2,3\n4,5,6\n7,8\n")
                expectFormatError [ "ragged.csv"; "line 3 has 2 cells"; "line 1"; "has 3" ] (fun () -> Csv.read path 0)
                |> ignore
            testCase "Boston has 506 rows of 13 features and MEDV, the first row as in the CSV text"
            <| fun () ->
                let path = dataPath "small/boston_house_prices.csv"
                let ds = Datasets.boston path
                Expect.equal ds.Features.Shape ([| 506; 13 |]) "ds.Features.Shape"
                Expect.equal ds.Targets.Shape ([| 506; 1 |]) "ds.Targets.Shape"
                Expect.equal ds.Features.DType Float64 "ds.Features.DType"
                let firstRow = File.ReadLines path |> Seq.item 2
                Expect.equal firstRow "0.00632,18,2.31,0,0.538,6.575,65.2,4.09,1,296,15.3,396.9,4.98,24" "firstRow"
                let expected = firstRow.Split(',') |> Array.map (fun s -> Double.Parse(s, CultureInfo.InvariantCulture))
                Expect.equal (ds.Features.ToArray()[..12]) (expected[..12]) "ds.Features.ToArray()[.. 12]"
                Expect.equal (ds.Targets.ToArray()[0]) 24.0 "ds.Targets.ToArray()[0]"
                Expect.equal (Array.max (ds.Targets.ToArray())) 50.0 "Array.max (ds.Targets.ToArray())"
            testCase "the classification sets have the documented shapes and classes"
            <| fun () ->
                let check (ds: Dataset) n d classes =
                    Expect.equal ds.Features.Shape ([| n; d |]) "ds.Features.Shape"
                    Expect.equal ds.Targets.Shape ([| n |]) "ds.Targets.Shape"
                    Expect.equal
                        (ds.Targets.ToArray() |> Array.distinct |> Array.sort)
                        (Array.init classes float)
                        "ds.Targets.ToArray() |> Array.distinct |> Array.sort"
                check (Datasets.iris (dataPath "small/iris.csv")) 150 4 3
                check (Datasets.wine (dataPath "small/wine_data.csv")) 178 13 3
                check (Datasets.breastCancer (dataPath "small/breast_cancer.csv")) 569 30 2
                let digits = Datasets.digits (dataPath "small/digits.csv.gz")
                check digits 1797 64 10
                Expect.equal (Array.max (digits.Features.ToArray())) 16.0 "Array.max (digits.Features.ToArray())"
                Expect.equal
                    ((Datasets.iris (dataPath "small/iris.csv")).Features.ToArray()[..3])
                    ([| 5.1; 3.5; 1.4; 0.2 |])
                    "(Datasets.iris (dataPath \"small/iris.csv\")).Features.ToArray()[..3]"
            testCase "a scikit-learn CSV with fewer rows than its first line announces is an error"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "iris.csv"
                File.WriteAllLines(path, File.ReadLines(dataPath "small/iris.csv") |> Seq.take 100)
                expectFormatError [ "iris.csv"; "announces 150 rows"; "has 99" ] (fun () -> Datasets.iris path)
                |> ignore
            testCase "the default data folder is the repository's data folder"
            <| fun () ->
                Expect.equal (Datasets.defaultDataDir ()) (Path.Combine(repoRoot.Value, "data")) "Datasets.defaultDataDir ()"
                Expect.equal ((Datasets.bostonDefault ()).Features.Shape) ([| 506; 13 |]) "(Datasets.bostonDefault ()).Features.Shape"
                Expect.equal ((Datasets.irisDefault ()).Features.Shape) ([| 150; 4 |]) "(Datasets.irisDefault ()).Features.Shape"
        ]
