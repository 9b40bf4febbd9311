namespace FuncFlow.Data

open System
open System.IO
open FuncFlow

/// Loaders for the data sets shipped in the repository's data/ folder, and the train/test split.
[<RequireQualifiedAccess>]
module Datasets =
    let private fail (msg: string) = raise (DataFormatException msg)

    /// The data folder of the FuncFlow.Datasets package of this FuncFlow's version in the NuGet package cache
    /// (NUGET_PACKAGES, else ~/.nuget/packages), where restoring a project that references the package puts it.
    let packageDataDir () : string =
        let cache =
            match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
            | dir when not (String.IsNullOrWhiteSpace dir) -> dir
            | _ -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
        let version =
            let assembly = typeof<DataFormatException>.Assembly
            match Attribute.GetCustomAttribute(assembly, typeof<Reflection.AssemblyInformationalVersionAttribute>) with
            // SourceLink appends "+commit"; the package folder has the version alone.
            | :? Reflection.AssemblyInformationalVersionAttribute as a -> a.InformationalVersion.Split('+')[0]
            | _ -> string (assembly.GetName().Version)
        Path.Combine(cache, "funcflow.datasets", version, "data")

    /// The data folder: FUNCFLOW_DATA when set, else the first folder named data that contains mnist/, found by
    /// walking up from the program's directory and then from the current directory, else the FuncFlow.Datasets
    /// package's folder in the NuGet cache (packageDataDir). Raises DataFormatException saying where it looked
    /// when there is none.
    let defaultDataDir () : string =
        match Environment.GetEnvironmentVariable "FUNCFLOW_DATA" with
        | dir when not (String.IsNullOrWhiteSpace dir) ->
            if Directory.Exists dir then
                Path.GetFullPath dir
            else
                fail (
                    sprintf
                        "FUNCFLOW_DATA is set to %s, which is not a folder (it should hold mnist/, fashion-mnist/ and small/ as the repository's data/ does)"
                        dir
                )
        | _ ->
            let starts = [ AppContext.BaseDirectory; Environment.CurrentDirectory ]
            let rec up (d: DirectoryInfo) =
                if isNull d then
                    None
                elif Directory.Exists(Path.Combine(d.FullName, "data", "mnist")) then
                    Some(Path.Combine(d.FullName, "data"))
                else
                    up d.Parent
            let package = packageDataDir ()
            match starts |> List.tryPick (fun s -> up (DirectoryInfo s)) with
            | Some dir -> dir
            | None when Directory.Exists(Path.Combine(package, "mnist")) -> package
            | None ->
                fail (
                    sprintf
                        "No data folder found: looked for data/mnist in %s and every folder above them, and in %s. The data ships in the repository's data/ folder and in the FuncFlow.Datasets package (reference it, and restore); set the environment variable FUNCFLOW_DATA to a folder holding mnist/, fashion-mnist/ and small/ to load it from elsewhere."
                        (String.Join(" and ", starts))
                        package
                )

    /// The path of an IDX file in a folder, gzipped (name.gz) or raw (name).
    let private idxFile (dir: string) (name: string) =
        let gz = Path.Combine(dir, name + ".gz")
        let raw = Path.Combine(dir, name)
        if File.Exists gz then gz
        elif File.Exists raw then raw
        else raise (DataFile.notFoundAny [ gz; raw ])

    /// Reads one MNIST-format split: images scaled to [0, 1] as float32 [n; rows*cols], labels as float32 [n].
    let private mnistSplit (dir: string) (prefix: string) : Dataset =
        let imagesPath = idxFile dir (prefix + "-images-idx3-ubyte")
        let labelsPath = idxFile dir (prefix + "-labels-idx1-ubyte")
        let images = Idx.readRaw imagesPath
        let labels = Idx.readRaw labelsPath
        if images.TypeCode <> 0x08uy || images.Shape.Length <> 3 then
            fail (
                sprintf
                    "%s: expected an image file of unsigned bytes with 3 axes (magic 2051 = 0x00000803), got type 0x%02X with shape %s"
                    imagesPath
                    images.TypeCode
                    (Shape.show images.Shape)
            )
        if labels.TypeCode <> 0x08uy || labels.Shape.Length <> 1 then
            fail (
                sprintf
                    "%s: expected a label file of unsigned bytes with 1 axis (magic 2049 = 0x00000801), got type 0x%02X with shape %s"
                    labelsPath
                    labels.TypeCode
                    (Shape.show labels.Shape)
            )
        let n = images.Shape[0]
        if labels.Shape[0] <> n then
            fail (sprintf "%s has %d images but %s has %d labels; they must match" imagesPath n labelsPath labels.Shape[0])
        let pixels = images.Bytes |> Array.map (fun b -> float32 b / 255.0f)
        let classes = labels.Bytes |> Array.map float32
        {
            Features = Tensor.ofStorage [| n; images.Shape[1] * images.Shape[2] |] (TensorData.F32 pixels)
            Targets = Tensor.ofStorage [| n |] (TensorData.F32 classes)
        }

    /// MNIST (or Fashion-MNIST) from a folder holding train-/t10k-images-idx3-ubyte and -labels-idx1-ubyte,
    /// gzipped or raw: (train, test), features float32 [n; 784] in [0, 1], targets float32 class indices [n].
    let mnist (dir: string) : Dataset * Dataset = mnistSplit dir "train", mnistSplit dir "t10k"

    /// MNIST from the default data folder (see defaultDataDir): (train, test).
    let mnistDefault () : Dataset * Dataset = mnist (Path.Combine(defaultDataDir (), "mnist"))

    /// Fashion-MNIST (Zalando; 10 clothing classes, 0 T-shirt/top ... 9 ankle boot) from a folder in MNIST's
    /// layout: (train, test), features float32 [n; 784] in [0, 1], targets float32 class indices [n].
    let fashionMnist (dir: string) : Dataset * Dataset = mnist dir

    /// Fashion-MNIST from the default data folder (see defaultDataDir): (train, test).
    let fashionMnistDefault () : Dataset * Dataset = fashionMnist (Path.Combine(defaultDataDir (), "fashion-mnist"))

    /// Reads a scikit-learn CSV whose first line starts with the number of rows and of features, checking both.
    let private sklearnCsv (path: string) (skipLines: int) : float[][] * int =
        let rows = Csv.read path skipLines
        use reader = new StreamReader(DataFile.openRead path)
        let header = (reader.ReadLine() |> Option.ofObj |> Option.defaultValue "").Split(',')
        let count (i: int) =
            match Int32.TryParse(if header.Length > i then header[i].Trim() else "") with
            | true, v -> v
            | _ ->
                fail (sprintf "%s: line 1 should start with the number of rows and of features, got \"%s\"" path (String.Join(",", header)))
        let n, d = count 0, count 1
        if rows.Length <> n then
            fail (sprintf "%s: line 1 announces %d rows but the file has %d" path n rows.Length)
        if rows.Length > 0 && rows[0].Length <> d + 1 then
            fail (sprintf "%s: line 1 announces %d features plus a target, but rows have %d columns" path d rows[0].Length)
        rows, d

    /// Features [n; d] and targets [n] from rows whose last column is the target (a class index), all float64.
    let private classification (rows: float[][]) (d: int) : Dataset =
        {
            Features = Tensor.ofStorage [| rows.Length; d |] (TensorData.F64(rows |> Array.collect (fun r -> r[.. d - 1])))
            Targets = Tensor.ofStorage [| rows.Length |] (TensorData.F64(rows |> Array.map (fun r -> r[d])))
        }

    /// Boston housing from scikit-learn's boston_house_prices.csv: features float64 [506; 13], target MEDV [506; 1].
    let boston (path: string) : Dataset =
        let ds = sklearnCsv path 2 ||> classification
        // A regression target, as a column.
        { ds with Targets = Tensor.reshape [| ds.Count; 1 |] ds.Targets }

    /// Boston housing from the default data folder.
    let bostonDefault () : Dataset = boston (Path.Combine(defaultDataDir (), "small", "boston_house_prices.csv"))

    /// Iris from scikit-learn's iris.csv: features float64 [150; 4], targets class indices 0-2 [150].
    let iris (path: string) : Dataset = sklearnCsv path 1 ||> classification

    /// Iris from the default data folder.
    let irisDefault () : Dataset = iris (Path.Combine(defaultDataDir (), "small", "iris.csv"))

    /// Wine from scikit-learn's wine_data.csv: features float64 [178; 13], targets class indices 0-2 [178].
    let wine (path: string) : Dataset = sklearnCsv path 1 ||> classification

    /// Wine from the default data folder.
    let wineDefault () : Dataset = wine (Path.Combine(defaultDataDir (), "small", "wine_data.csv"))

    /// Breast cancer from scikit-learn's breast_cancer.csv: features float64 [569; 30], targets 0 (malignant) or 1 (benign) [569].
    let breastCancer (path: string) : Dataset = sklearnCsv path 1 ||> classification

    /// Breast cancer from the default data folder.
    let breastCancerDefault () : Dataset = breastCancer (Path.Combine(defaultDataDir (), "small", "breast_cancer.csv"))

    /// 8x8 digits from scikit-learn's digits.csv.gz (no header; 64 pixels 0-16, then the class):
    /// features float64 [1797; 64], targets class indices 0-9 [1797].
    let digits (path: string) : Dataset =
        let rows = Csv.read path 0
        if rows.Length = 0 then fail (sprintf "%s: no data rows" path)
        if rows[0].Length <> 65 then
            fail (sprintf "%s: expected 64 pixel columns and a class column, got %d columns" path rows[0].Length)
        classification rows 64

    /// 8x8 digits from the default data folder.
    let digitsDefault () : Dataset = digits (Path.Combine(defaultDataDir (), "small", "digits.csv.gz"))

    /// A seeded random split into (train, test): ceil(testFraction * n) rows go to test, the rest to train,
    /// both in shuffled order. The same seed gives the same split. Raises ArgumentException when testFraction
    /// is not strictly between 0 and 1, or when either part would be empty.
    let split (seed: int) (testFraction: float) (ds: Dataset) : Dataset * Dataset =
        if not (testFraction > 0.0 && testFraction < 1.0) then
            invalidArg "testFraction" (sprintf "Datasets.split: testFraction must be strictly between 0 and 1, got %g" testFraction)
        let n = Dataset.rows "Datasets.split" ds
        let nTest = int (ceil (testFraction * float n))
        if nTest >= n then
            invalidArg "testFraction" (sprintf "Datasets.split: testFraction %g of %d rows leaves no training rows" testFraction n)
        let p = Dataset.permutation seed n
        Dataset.takeIn "Datasets.split" p[nTest..] ds, Dataset.takeIn "Datasets.split" p[.. nTest - 1] ds
