/// Shared test fixtures: the seeds' worked examples and the paths of the shipped data.
module FuncFlow.Tests.Fixtures

open System
open System.IO
open System.Text.Json

/// The seeds' worked examples (copied from the project's conformance file).
let seedExamples: Lazy<JsonDocument> =
    lazy (JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "seed-examples.json"))))

/// The repository's root, found by walking up from the test binaries to FuncFlow.sln.
let repoRoot: Lazy<string> =
    lazy
        (let rec up (d: DirectoryInfo) =
            if isNull d then failwith "FuncFlow.sln not found above the test binaries"
            elif File.Exists(Path.Combine(d.FullName, "FuncFlow.sln")) then d.FullName
            else up d.Parent
         up (DirectoryInfo AppContext.BaseDirectory))

/// A path inside the repository's data/ folder.
let dataPath (relative: string) = Path.Combine(repoRoot.Value, "data", relative)

/// Reads a JSON array of numbers.
let numbers (e: JsonElement) = [| for x in e.EnumerateArray() -> x.GetDouble() |]

/// Reads a JSON array of arrays of numbers.
let matrix (e: JsonElement) = [| for row in e.EnumerateArray() -> numbers row |]
