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

/// Counts passed and failed tests from the TRX files the test run wrote, not from dotnet test's text.
let countResults (dir: string) =
    let ns = XNamespace.Get "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"
    Directory.GetFiles(dir, "*.trx", SearchOption.AllDirectories)
    |> Array.map (fun file ->
        let results = XDocument.Load(file).Descendants(ns + "UnitTestResult") |> Array.ofSeq
        let count outcome = results |> Array.filter (fun r -> r.Attribute(XName.Get "outcome").Value = outcome) |> Array.length
        count "Passed", results.Length - count "Passed" - count "NotExecuted")
    |> Array.fold (fun (p, f) (p1, f1) -> p + p1, f + f1) (0, 0)

let test () =
    let results = Path.Combine(root, "TestResults")
    if Directory.Exists results then Directory.Delete(results, true)
    let code = run "dotnet" (sprintf "test FuncFlow.sln -c Release --logger trx --results-directory \"%s\"" results)
    let passed, failed = if Directory.Exists results then countResults results else 0, 0
    printfn "%d passed, %d failed" passed failed
    if code <> 0 || failed > 0 || passed = 0 then exit 1

let examples () =
    for project in [ "examples/GrokkingNetwork"; "examples/BostonHousing"; "examples/SeedsWalkthrough"; "examples/MnistSoftmax"; "examples/MnistMlp"; "examples/CSharpTraining" ] do
        if Directory.Exists(Path.Combine(root, project)) then runOrFail "dotnet" (sprintf "run -c Release --project %s" project)
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
