/// Files from strangers: each reader refuses a damaged or hostile file with a DataFormatException naming the
/// file and the problem, without allocating what a lying header asks for; and the fuzzer's corpus replays
/// through every reader with no other outcome.
module FuncFlow.Tests.Data.HostileFileTests

open System
open System.IO
open System.Text
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Data.DataTestHelpers
open FuncFlow.Tests.Support

/// Writes bytes to a file of the given name in a fresh folder and runs the check on its path.
let private withFile (name: string) (bytes: byte[]) (check: string -> unit) =
    use dir = new TempDir()
    let path = dir.File name
    File.WriteAllBytes(path, bytes)
    check path

/// Expects the reader to refuse the file, naming it and every fragment, and to allocate less than `limit`
/// bytes on the way.
let private refusedWithin (limit: int64) (fragments: string list) (read: unit -> 'a) =
    let before = GC.GetAllocatedBytesForCurrentThread()
    expectFormatError fragments read |> ignore
    let allocated = GC.GetAllocatedBytesForCurrentThread() - before
    Expect.isLessThan allocated limit (sprintf "allocated %d bytes for a refused file" allocated)

/// A safetensors file from header text and data bytes (the header's length written as given).
let private safetensors (json: string) (data: byte[]) =
    let head = Encoding.UTF8.GetBytes json
    Array.concat [ BitConverter.GetBytes(uint64 head.Length); head; data ]

/// A gzip file cut short: its trailer and the end of its deflate data are gone.
let private cut (gz: byte[]) = gz[.. gz.Length - 12]

let private seeds = lazy (FuncFlow.Fuzz.Seeds.all () |> Map.ofList)

/// The bytes of a seed file of a target (a valid file that FuncFlow's writers made).
let private seed (target: string) (name: string) = seeds.Value[target] |> List.find (fst >> (=) name) |> snd

/// The corpus folder of a target, in the repository.
let private corpusOf (target: string) = Path.Combine(FuncFlow.Tests.Fixtures.repoRoot.Value, "tests", "FuncFlow.Tests", "corpus", target)

[<Tests>]
let tests =
    moduleTests
        "HostileFileTests"
        [
            testCase "idx: a header promising far more than a raw file holds is refused before allocating it"
            <| fun () ->
                withFile "liar.idx" (idxBytes [| 200_000_000 |] [| 1uy; 2uy; 3uy |]) (fun path ->
                    refusedWithin 1_000_000L [ "liar.idx"; "truncated file"; "expected 200000000 bytes"; "found 3" ] (fun () ->
                        Idx.read path))
            testCase "idx: a gzipped file promising far more than it decompresses to allocates only what it holds"
            <| fun () ->
                withFile "liar.idx.gz" (gzip (idxBytes [| 2_000_000_000 |] (Array.create 5000 7uy))) (fun path ->
                    refusedWithin 8_000_000L [ "liar.idx.gz"; "truncated file"; "expected 2000000000 bytes"; "found 5000" ] (fun () ->
                        Idx.read path))
            testCase "idx: a negative axis size is refused"
            <| fun () ->
                withFile "negative.idx" (idxBytes [| 2; -1 |] [||]) (fun path ->
                    expectFormatError [ "negative.idx"; "negative axis size"; "(2, -1)" ] (fun () -> Idx.read path)
                    |> ignore)
            testCase "idx: axis sizes whose product overflows int64 are refused"
            <| fun () ->
                let dims = Array.create 4 Int32.MaxValue
                withFile "overflow.idx" (Array.append (idxBytes dims [||]) [| 0uy |]) (fun path ->
                    expectFormatError [ "overflow.idx"; "more bytes than one array can hold" ] (fun () -> Idx.read path)
                    |> ignore)
            testCase "idx: an empty file is a truncated magic number"
            <| fun () ->
                withFile "empty.idx" [||] (fun path ->
                    expectFormatError [ "empty.idx"; "truncated file"; "magic number"; "found 0" ] (fun () -> Idx.read path)
                    |> ignore)
            testCase "idx: gzip data cut short is refused, not read as a shorter file"
            <| fun () ->
                // The cut keeps every value byte's deflate data but loses the trailer: only the trailer check sees it.
                let gz = gzip (idxBytes [| 3 |] [| 1uy; 2uy; 3uy |])
                withFile "cut.idx.gz" gz[.. gz.Length - 5] (fun path ->
                    expectFormatError [ "cut.idx.gz"; "corrupt or truncated gzip data" ] (fun () -> Idx.read path)
                    |> ignore)
            testCase "idx: damaged gzip data names the file"
            <| fun () ->
                let gz = gzip (idxBytes [| 64 |] (Array.init 64 byte))
                gz[3] <- 0xFFuy // reserved header flags
                withFile "damaged.idx.gz" gz (fun path ->
                    expectFormatError [ "damaged.idx.gz"; "corrupt or truncated gzip data" ] (fun () -> Idx.read path)
                    |> ignore)
            testCase "idx: a gzip file shorter than a gzip header and trailer is refused"
            <| fun () ->
                withFile "stub.idx.gz" [| 0x1fuy; 0x8buy; 8uy |] (fun path ->
                    expectFormatError [ "stub.idx.gz"; "3 bytes, shorter than a gzip header and trailer" ] (fun () -> Idx.read path)
                    |> ignore)
            testCase "csv: an empty file, or one of blank and skipped lines only, has no data rows"
            <| fun () ->
                withFile "empty.csv" [||] (fun path ->
                    expectFormatError [ "empty.csv"; "no data rows"; "0 lines" ] (fun () -> Csv.read path 0) |> ignore)
                withFile "header-only.csv" (Encoding.UTF8.GetBytes "a,b\n\n  \n") (fun path ->
                    expectFormatError [ "header-only.csv"; "no data rows"; "3 lines"; "1 skipped" ] (fun () -> Csv.read path 1)
                    |> ignore)
            testCase "csv: gzip data cut short is refused, not read as fewer rows"
            <| fun () ->
                let rows = String.Join("\n", Array.init 2000 (fun i -> sprintf "%d,%d" i (i * i)))
                withFile "cut.csv.gz" (cut (gzip (Encoding.UTF8.GetBytes rows))) (fun path ->
                    expectFormatError [ "cut.csv.gz"; "corrupt or truncated gzip data"; "trailer records" ] (fun () -> Csv.read path 0)
                    |> ignore)
            testCase "csv: a missing file names the path"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "absent.csv"
                expectFormatError [ path; "file not found" ] (fun () -> Csv.read path 0) |> ignore
            testCase "text: bytes that are not UTF-8 are refused rather than read as replacement characters"
            <| fun () ->
                withFile "latin1.txt" [| byte 'c'; byte 'a'; byte 'f'; 0xE9uy; byte '\n' |] (fun path ->
                    expectFormatError [ "latin1.txt"; "not UTF-8 text" ] (fun () -> TextData.read path) |> ignore)
            testCase "text: gzip data cut short is refused, not read as a shorter text"
            <| fun () ->
                let text = String.replicate 500 "the quick brown fox jumps over the lazy dog\n"
                withFile "cut.txt.gz" (cut (gzip (Encoding.UTF8.GetBytes text))) (fun path ->
                    expectFormatError [ "cut.txt.gz"; "corrupt or truncated gzip data" ] (fun () -> TextData.read path)
                    |> ignore)
            testCase "text: a missing file names the path"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "absent.txt"
                expectFormatError [ path; "file not found" ] (fun () -> TextData.read path) |> ignore
            testCase "safetensors: a header length beyond the file, even near 2^64, is refused before allocating"
            <| fun () ->
                let bytes = safetensors "{}" [||]
                Array.blit (BitConverter.GetBytes UInt64.MaxValue) 0 bytes 0 8
                withFile "huge-header.safetensors" bytes (fun path ->
                    refusedWithin
                        100_000L
                        [ "huge-header.safetensors"; "bad header length 18446744073709551615"; "larger than the 2 bytes" ]
                        (fun () -> Safetensors.load path))
            testCase "safetensors: a header that is not UTF-8 is a corrupt header"
            <| fun () ->
                let bytes = safetensors """{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}""" [||]
                bytes[10] <- 0xC3uy // a lead byte followed by an ASCII letter
                withFile "latin1.safetensors" bytes (fun path ->
                    expectFormatError [ "latin1.safetensors"; "corrupt header"; "not UTF-8" ] (fun () -> Safetensors.load path)
                    |> ignore)
            testCase "safetensors: a name given twice in the header is refused, not resolved by picking one"
            <| fun () ->
                let json =
                    """{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"""
                withFile "twice.safetensors" (safetensors json [| 1uy; 2uy |]) (fun path ->
                    expectFormatError [ "twice.safetensors"; "corrupt header"; "\"w\" appears twice" ] (fun () ->
                        Safetensors.loadMetadata path)
                    |> ignore)
            testCase "safetensors: a gap between tensors, or a first tensor not at 0, is refused"
            <| fun () ->
                let json =
                    """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"""
                withFile "gap.safetensors" (safetensors json [| 1uy; 0uy; 2uy |]) (fun path ->
                    expectFormatError [ "gap.safetensors"; "a gap of 1 bytes"; "\"a\" [0, 1]"; "\"b\" [2, 3]" ] (fun () ->
                        Safetensors.load path)
                    |> ignore)
                withFile
                    "late.safetensors"
                    (safetensors """{"a":{"dtype":"U8","shape":[1],"data_offsets":[4,5]}}""" (Array.zeroCreate 5))
                    (fun path ->
                        expectFormatError [ "late.safetensors"; "\"a\" begins at 4, not at 0" ] (fun () -> Safetensors.load path)
                        |> ignore)
            testCase "safetensors: bytes after the last tensor are refused"
            <| fun () ->
                withFile
                    "tail.safetensors"
                    (safetensors """{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}""" [| 1uy; 2uy; 3uy |])
                    (fun path ->
                        expectFormatError [ "tail.safetensors"; "3 bytes but the tensors cover 2" ] (fun () -> Safetensors.load path)
                        |> ignore)
            testCase "safetensors: a dimension above int32, or an offset above int64, is refused"
            <| fun () ->
                withFile
                    "wide.safetensors"
                    (safetensors """{"a":{"dtype":"U8","shape":[0,4294967296],"data_offsets":[0,0]}}""" [||])
                    (fun path ->
                        expectFormatError [ "wide.safetensors"; "tensor \"a\""; "a dimension is too large" ] (fun () ->
                            Safetensors.load path)
                        |> ignore)
                withFile
                    "far.safetensors"
                    (safetensors """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1e30]}}""" [| 1uy |])
                    (fun path ->
                        expectFormatError [ "far.safetensors"; "tensor \"a\""; "\"data_offsets\" holds 1e30" ] (fun () ->
                            Safetensors.load path)
                        |> ignore)
            testCase "model file and checkpoint: a missing file names the path"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "absent.safetensors"
                expectFormatError [ path; "file not found" ] (fun () -> Model.Create(FuncFlow.Fuzz.Targets.layer (), 0).Load path)
                |> ignore
                expectFormatError [ path; "file not found" ] (fun () -> FuncFlow.Fuzz.Targets.trainer().Resume path)
                |> ignore
            testCase "model file: a format that is not a number is named"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "model.safetensors"
                let model = Model.Create(FuncFlow.Fuzz.Targets.layer (), 0)
                Safetensors.saveWithMetadata path (Map [ ModelFile.FormatKey, "two" ]) (Map.toSeq model.Parameters)
                expectFormatError [ "model.safetensors"; "'funcflow.format' is 'two', not a format version" ] (fun () -> model.Load path)
                |> ignore
            testCase "model file: a truncated file names the file and the tensor past the end"
            <| fun () ->
                let bytes = seed "modelfile" "seed-format2.safetensors"
                withFile "cut-model.safetensors" bytes[.. bytes.Length - 3] (fun path ->
                    expectFormatError [ "cut-model.safetensors"; "truncated" ] (fun () ->
                        Model.Create(FuncFlow.Fuzz.Targets.layer (), 0).Load path)
                    |> ignore)
            testCase "model file: a format-1 weight that is not 2-D is reported as a shape mismatch"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "flat.safetensors"
                let model = Model.Create(FuncFlow.Fuzz.Targets.layer (), 0)
                let values = model.Parameters |> Map.add "0.weight" (Tensor.ofArray (Array.zeroCreate 6))
                Safetensors.saveWithMetadata path (Map [ ModelFile.ArchitectureKey, model.Layer.Describe() ]) (Map.toSeq values)
                expectFormatError [ "flat.safetensors"; "'0.weight' has shape (6,) in the file, expected (3, 2)" ] (fun () ->
                    model.Load path)
                |> ignore
            testCase
                "checkpoint: metadata that is not a number or below its least value, a bad generator state or a missing step count is named"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "ckpt.safetensors"
                File.WriteAllBytes(path, seed "checkpoint" "seed-checkpoint.safetensors")
                let metadata = Safetensors.loadMetadata path
                let values = Safetensors.load path
                let rewrite (metadata: Map<string, string>) (values: Map<string, Tensor>) =
                    Safetensors.saveWithMetadata path metadata (Map.toSeq values)
                rewrite (metadata.Add("trainer.epoch", "1.5")) values
                expectFormatError [ "ckpt.safetensors"; "'trainer.epoch' is '1.5', not a number" ] (fun () ->
                    FuncFlow.Fuzz.Targets.trainer().Resume path)
                |> ignore
                for key, value, least in [ "trainer.epoch", "0", 1; "trainer.batch", "-3", 0; "trainer.waited", "-1", 0 ] do
                    rewrite (metadata.Add(key, value)) values
                    expectFormatError [ "ckpt.safetensors"; sprintf "'%s' is %s, below its least value %d" key value least ] (fun () ->
                        FuncFlow.Fuzz.Targets.trainer().Resume path)
                    |> ignore
                rewrite (metadata.Add("trainer.rng", "0 0 0 0")) values
                expectFormatError [ "ckpt.safetensors"; "'trainer.rng'"; "not all zero" ] (fun () ->
                    FuncFlow.Fuzz.Targets.trainer().Resume path)
                |> ignore
                rewrite metadata (values |> Map.filter (fun name _ -> not (name.Contains "step")))
                expectFormatError [ "ckpt.safetensors"; "the checkpoint has no" ] (fun () -> FuncFlow.Fuzz.Targets.trainer().Resume path)
                |> ignore
            testCase "checkpoint: a step count that is not one whole number is refused at Resume, not at StepsTaken"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "steps.safetensors"
                File.WriteAllBytes(path, seed "checkpoint" "seed-checkpoint.safetensors")
                let metadata = Safetensors.loadMetadata path
                let values = Safetensors.load path
                for count, shown in
                    [
                        Tensor.ofArray [| 1.0; 2.0 |], "shape (2,)"
                        Tensor.scalar -1.0, "holding -1"
                        Tensor.scalar 2.5, "holding 2.5"
                        Tensor.scalar 1e12, "holding 1e+12"
                    ] do
                    Safetensors.saveWithMetadata path metadata (Map.toSeq (values.Add("optimizer.step", count)))
                    expectFormatError [ "steps.safetensors"; "'optimizer.step' must be one whole number"; shown ] (fun () ->
                        let t = FuncFlow.Fuzz.Targets.trainer ()
                        t.Resume path
                        t.StepsTaken)
                    |> ignore
            testCase "checkpoint: optimiser state that is missing or of another size is named at the first step"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "state.safetensors"
                File.WriteAllBytes(path, seed "checkpoint" "seed-checkpoint.safetensors")
                let metadata = Safetensors.loadMetadata path
                let values = Safetensors.load path
                let x = Tensor.ofArray2D (array2D [ [ 0.5; -1.0 ] ])
                let y = Tensor.ofArray2D (array2D [ [ 1.0 ] ])
                // The optimiser's state is known only once the step plan is compiled, so Resume cannot check it.
                let firstStep () =
                    let t = FuncFlow.Fuzz.Targets.trainer ()
                    t.Resume path
                    t.Step(x, y)
                Safetensors.saveWithMetadata path metadata (Map.toSeq (values.Add("0.weight.adam_m", Tensor.ofArray [| 1.0; 2.0 |])))
                expectFormatError [ "state.safetensors"; "'0.weight.adam_m' does not fit the optimiser's state" ] firstStep
                |> ignore
                Safetensors.saveWithMetadata path metadata (Map.toSeq (values.Remove "2.bias.adam_v"))
                expectFormatError [ "state.safetensors"; "no value for '2.bias.adam_v'"; "another optimiser" ] firstStep
                |> ignore
            testCase "checkpoint: a batch beyond the epoch's batches under the resuming Fit's options is named"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "far.safetensors"
                File.WriteAllBytes(path, seed "checkpoint" "seed-checkpoint.safetensors")
                let metadata = Safetensors.loadMetadata path
                Safetensors.saveWithMetadata path (metadata.Add("trainer.batch", "50")) (Map.toSeq (Safetensors.load path))
                let data = Dataset.create (Tensor.ones Float64 [| 4; 2 |]) (Tensor.zeros Float64 [| 4; 1 |])
                for options in [ FitOptions.Create(1, 2).Quietly(); FitOptions.Create(1, 2).Quietly().WithReplacement 3 ] do
                    let t = FuncFlow.Fuzz.Targets.trainer ()
                    t.Resume path
                    let e = throws<ArgumentException>(fun () -> t.Fit(data, options) |> ignore)
                    Expect.stringContains e.Message "stands after batch 50 of epoch 1" "the checkpoint's position"
                    Expect.stringContains
                        e.Message
                        (sprintf "give %d batches" (if options.Sampling = Shuffled then 2 else 3))
                        "the epoch's batches"
            testCase "checkpoint: a truncated checkpoint names the file"
            <| fun () ->
                let bytes = seed "checkpoint" "seed-checkpoint.safetensors"
                withFile "cut-ckpt.safetensors" bytes[.. bytes.Length / 2] (fun path ->
                    expectFormatError [ "cut-ckpt.safetensors"; "truncated" ] (fun () -> FuncFlow.Fuzz.Targets.trainer().Resume path)
                    |> ignore)
            testCase "writers: a write that fails part-way leaves the previous file and no temporary file"
            <| fun () ->
                use dir = new TempDir()
                let path = dir.File "data.bin"
                File.WriteAllBytes(path, [| 1uy; 2uy; 3uy |])
                let e =
                    throws<IOException>(fun () ->
                        DataFile.writeAtomically ignore path (fun s ->
                            s.Write([| 9uy; 9uy |], 0, 2)
                            raise (IOException "disk full")))
                Expect.equal e.Message "disk full" "the writer's own error"
                Expect.equal (File.ReadAllBytes path) [| 1uy; 2uy; 3uy |] "the previous file"
                Expect.equal (Directory.GetFiles dir.Path |> Array.map Path.GetFileName) [| "data.bin" |] "no temporary file"
            testCase "the seed files, written by FuncFlow's writers, read back as files"
            <| fun () ->
                for target, files in FuncFlow.Fuzz.Seeds.all () do
                    let read = (FuncFlow.Fuzz.Targets.tryFind target).Value
                    for name, bytes in files do
                        withFile name bytes read
                // And through the readers' values, not only without errors: the IDX seed's bytes and shape.
                withFile "u8.idx" (seed "idx" "seed-u8.idx") (fun path ->
                    let t = Idx.read path
                    Expect.equal t.Shape [| 2; 3 |] "shape"
                    Expect.equal (t.ToArray32()) [| 0f; 1f; 2f; 127f; 128f; 255f |] "values")
                withFile "seed.csv.gz" (seed "csv" "seed.csv.gz") (fun path ->
                    let rows = Csv.read path 0
                    Expect.equal rows.Length 2 "rows"
                    Expect.equal rows[0] [| 1.0; 2.5; -3.0 |] "first row"
                    let second = rows[1]
                    Expect.equal second[..1] [| 400.0; 0.125 |] "second row"
                    Expect.isTrue (Double.IsNaN second[2]) "NaN is a number")
            testList
                "the committed corpus replays through each reader: a value or a DataFormatException, nothing else"
                [
                    for target, read in FuncFlow.Fuzz.Targets.all ->
                        testCase target
                        <| fun () ->
                            let dir = corpusOf target
                            Expect.isTrue (Directory.Exists dir) (sprintf "%s is missing (every target needs seeds)" dir)
                            let files = Directory.GetFiles dir |> Array.sort
                            Expect.isNonEmpty files (sprintf "corpus/%s has no files (every target needs seeds)" target)
                            // A seed is a valid file and must read; the fuzzer's inputs may be refused, naming the file.
                            let failure (file: string) =
                                try
                                    read file
                                    None
                                with
                                | :? DataFormatException as e when e.Message.Contains file && not (Path.GetFileName(file).StartsWith "seed") ->
                                    None
                                | e -> Some(sprintf "%s: %s: %s" (Path.GetFileName file) (e.GetType().Name) e.Message)
                            let failures = files |> Array.choose failure
                            Expect.isEmpty failures (sprintf "corpus/%s: %d of %d files" target failures.Length files.Length)
                ]
        ]
