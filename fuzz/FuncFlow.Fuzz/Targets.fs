/// The readers of files from strangers, by name. The fuzzer (dotnet fsi build.fsx fuzz <name>) runs one on its
/// inputs, and the test suite replays the committed corpus (tests/FuncFlow.Tests/corpus/<name>/) through each.
/// A reader either returns or raises DataFormatException; any other exception is a bug.
/// Adding a reader is one line in `all` and a folder of seed files in the corpus.
module FuncFlow.Fuzz.Targets

open System
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Onnx

/// The architecture that the model-file and checkpoint targets read files for (the seeds are of it).
let layer () = Sequential(Linear(2, 3), Tanh(), Linear(3, 1))

/// A trainer whose checkpoints the checkpoint target resumes: Adam, so that they hold optimiser state.
let trainer () = Trainer(Model.Create(layer (), 0), Loss.MSE, Adam 0.01)

/// Each target's name and its reader of a file path.
let all: (string * (string -> unit)) list =
    [
        "safetensors",
        (fun path ->
            Safetensors.loadMetadata path |> ignore
            Safetensors.load path |> ignore)
        "idx", (fun path -> Idx.read path |> ignore)
        "csv", (fun path -> Csv.read path 0 |> ignore)
        "text", (fun path -> TextData.read path |> ignore)
        "modelfile", (fun path -> Model.Create(layer (), 0).Load path |> ignore)
        "checkpoint",
        (fun path ->
            let t = trainer ()
            t.Resume path
            // The step count is read from the resumed state (compiling a step plan per input would be too slow).
            t.StepsTaken |> ignore)
        "onnx",
        (fun path ->
            let info = Onnx.inspect path
            let dims =
                info.Inputs
                |> List.collect (fun s ->
                    s.Dims
                    |> List.choose (fun d ->
                        match d with
                        | OnnxDim.Named n -> Some(n, 1)
                        | OnnxDim.Known _ -> None))
                |> Map.ofList
            // A well-formed graph of an operator or dtype FuncFlow does not import is refused as unsupported, by name.
            try
                Onnx.load dims path |> ignore
            with :? NotSupportedException ->
                ())
    ]

/// The reader of a target, or None for an unknown name.
let tryFind (name: string) = all |> List.tryFind (fst >> (=) name) |> Option.map snd
