// FuncFlow's build script: dotnet fsi build.fsx <target>
// Targets: build, test, examples, bench, pack. Plain .NET only, so it runs on a fresh machine.
open System
open System.Diagnostics
open System.IO
open System.Xml.Linq

let root = __SOURCE_DIRECTORY__

let run (exe: string) (args: string) =
    printfn "> %s %s" exe args
    use p = Process.Start(ProcessStartInfo(exe, args, WorkingDirectory = root))
    p.WaitForExit()
    p.ExitCode

let runOrFail exe args =
    let code = run exe args
    if code <> 0 then
        eprintfn "build.fsx: '%s %s' failed with exit code %d" exe args code
        exit code

/// A test-results file, read without XML's character check: a failure's message can hold a terminal colour code
/// (ESC), which XML 1.0 does not allow as a character.
let loadResults (file: string) =
    use reader = System.Xml.XmlReader.Create(file, System.Xml.XmlReaderSettings(CheckCharacters = false))
    XDocument.Load reader

/// Passed, failed and skipped tests in the TRX files the C# test run wrote, not from dotnet test's text.
let countTrx (dir: string) =
    let ns = XNamespace.Get "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"
    let results =
        Directory.GetFiles(dir, "*.trx", SearchOption.AllDirectories)
        |> Array.collect (fun file -> (loadResults file).Descendants(ns + "UnitTestResult") |> Array.ofSeq)
    let count outcome = results |> Array.filter (fun r -> r.Attribute(XName.Get "outcome").Value = outcome) |> Array.length
    count "Passed", results.Length - count "Passed" - count "NotExecuted", count "NotExecuted"

/// Passed, failed and skipped tests in the JUnit XML the Expecto program wrote: a <testcase> holds a <failure> or an
/// <error> when it failed, a <skipped> when skipped, nothing when it passed.
let countJUnit (file: string) =
    let cases = (loadResults file).Descendants(XName.Get "testcase") |> Array.ofSeq
    let has name = cases |> Array.filter (fun c -> not (isNull (c.Element(XName.Get name)))) |> Array.length
    let failed, skipped = has "failure" + has "error", has "skipped"
    cases.Length - failed - skipped, failed, skipped

let test () =
    let results = Path.Combine(root, "TestResults")
    if Directory.Exists results then Directory.Delete(results, true)
    runOrFail "dotnet" "build FuncFlow.sln -c Release"
    // The C# tests run on xunit through dotnet test; the F# tests are an Expecto program, run directly.
    let csharpCode =
        run "dotnet" (sprintf "test tests/FuncFlow.CSharp.Tests -c Release --no-build --logger trx --results-directory \"%s\"" results)
    let csharp = if Directory.Exists results then countTrx results else (0, 0, 0)
    let junit = Path.Combine(results, "expecto.xml")
    let fsharpCode =
        run "dotnet" (sprintf "tests/FuncFlow.Tests/bin/Release/net10.0/FuncFlow.Tests.dll --no-spinner --junit-summary \"%s\"" junit)
    let fsharp = if File.Exists junit then countJUnit junit else (0, 0, 0)
    let line (passed, failed, skipped) =
        sprintf "%d passed, %d failed%s" passed failed (if skipped > 0 then sprintf ", %d skipped" skipped else "")
    printfn "C# tests (xunit): %s" (line csharp)
    printfn "F# tests (Expecto): %s" (line fsharp)
    let (p1, f1, s1), (p2, f2, s2) = csharp, fsharp
    let passed, failed = p1 + p2, f1 + f2
    printfn "%s" (line (passed, failed, s1 + s2))
    if csharpCode <> 0 || fsharpCode <> 0 || failed > 0 || passed = 0 then exit 1

let examples () =
    for project in
        [
            "examples/GrokkingNetwork"
            "examples/BostonHousing"
            "examples/SeedsWalkthrough"
            "examples/MnistSoftmax"
            "examples/MnistMlp"
            "examples/LeNet"
            "examples/FashionMnistCnn"
            "examples/CSharpTraining"
            "examples/CSharpLeNet"
            "examples/CSharpCustomLayer"
            "examples/CSharpGradients"
            "examples/CSharpGradCheck"
        ] do
        if Directory.Exists(Path.Combine(root, project)) then
            runOrFail "dotnet" (sprintf "run -c Release --project %s" project)
    runOrFail "dotnet" "fsi examples/grad.fsx"

match fsi.CommandLineArgs |> Array.skip 1 |> List.ofArray with
| [ "build" ] -> runOrFail "dotnet" "build FuncFlow.sln -c Release"
| [ "test" ] -> test ()
| [ "examples" ] -> examples ()
| [ "bench" ] -> runOrFail "bash" "bench/run.sh --torch"
| [ "pack" ] -> runOrFail "dotnet" "pack FuncFlow.sln -c Release -o out"
| args ->
    eprintfn "usage: dotnet fsi build.fsx <build|test|examples|bench|pack> (got %s)" (String.Join(" ", args))
    exit 2
