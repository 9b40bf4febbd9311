// The mutation pass: plants each bug of mutants.fsx in the source, one at a time, builds, runs both test
// suites, records which tests caught it, and restores the file. Writes docs/mutation.md.
//   dotnet fsi tests/mutation/mutate.fsx            (all mutants; about a minute each on 2 cores)
//   dotnet fsi tests/mutation/mutate.fsx M07 M12    (some of them)
// Run it on a clean work tree: it rewrites source files while it runs and restores each one after.
#load "mutants.fsx"

open System
open System.Diagnostics
open System.IO
open System.Xml.Linq
open Mutants

let root = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "..", ".."))
let results = Path.Combine(root, "TestResults", "mutation")

let run (exe: string) (args: string) =
    let info =
        ProcessStartInfo(exe, args, WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true)
    use p = Process.Start info
    let output = p.StandardOutput.ReadToEndAsync()
    let errors = p.StandardError.ReadToEndAsync()
    p.WaitForExit()
    p.ExitCode, output.Result + errors.Result

/// The names of the tests that failed or errored in the Expecto program's JUnit file and the C# run's TRX files.
let failedTests () =
    let junit = Path.Combine(results, "expecto.xml")
    let fsharp =
        if File.Exists junit then
            XDocument.Load(junit).Descendants(XName.Get "testcase")
            |> Seq.filter (fun c -> not (isNull (c.Element(XName.Get "failure"))) || not (isNull (c.Element(XName.Get "error"))))
            |> Seq.map (fun c -> c.Attribute(XName.Get "name").Value)
            |> List.ofSeq
        else
            [ "(the F# test program wrote no results)" ]
    let ns = XNamespace.Get "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"
    let csharp =
        Directory.GetFiles(results, "*.trx", SearchOption.AllDirectories)
        |> Seq.collect (fun f -> XDocument.Load(f).Descendants(ns + "UnitTestResult"))
        |> Seq.filter (fun r -> r.Attribute(XName.Get "outcome").Value = "Failed")
        |> Seq.map (fun r -> "C#: " + r.Attribute(XName.Get "testName").Value)
        |> List.ofSeq
    fsharp @ csharp

type Outcome =
    | Caught of tests: string list
    | Survived
    | DoesNotCompile of error: string

let tryMutant (m: Mutant) =
    let path = Path.Combine(root, m.File)
    let original = File.ReadAllText path
    let count = (original.Length - original.Replace(m.Find, "").Length) / m.Find.Length
    if count <> 1 then
        failwithf "%s: '%s' occurs %d times in %s; it must occur once" m.Id m.Find count m.File
    File.WriteAllText(path, original.Replace(m.Find, m.Replace))
    try
        if Directory.Exists results then Directory.Delete(results, true)
        Directory.CreateDirectory results |> ignore
        let built, log =
            [ "tests/FuncFlow.Tests"; "tests/FuncFlow.CSharp.Tests" ]
            |> List.fold
                (fun (ok, log) p ->
                    if ok then
                        (let code, out = run "dotnet" (sprintf "build %s -c Release -v q --nologo" p) in code = 0, log + out)
                    else
                        ok, log)
                (true, "")
        if not built then
            DoesNotCompile(log.Split('\n') |> Array.tryFind (fun l -> l.Contains "error") |> Option.defaultValue "build failed")
        else
            run
                "dotnet"
                (sprintf
                    "tests/FuncFlow.Tests/bin/Release/net10.0/FuncFlow.Tests.dll --no-spinner --junit-summary \"%s\""
                    (Path.Combine(results, "expecto.xml")))
            |> ignore
            run "dotnet" (sprintf "test tests/FuncFlow.CSharp.Tests -c Release --no-build --logger trx --results-directory \"%s\"" results)
            |> ignore
            match failedTests () with
            | [] -> Survived
            | tests -> Caught tests
    finally
        File.WriteAllText(path, original)

let chosen =
    match fsi.CommandLineArgs |> Array.skip 1 with
    | [||] -> mutants
    | ids -> mutants |> List.filter (fun m -> Array.contains m.Id ids)

let outcomes =
    chosen
    |> List.map (fun m ->
        let clock = Stopwatch.StartNew()
        let outcome = tryMutant m
        printfn
            "%s %-60s %s (%.0f s)"
            m.Id
            m.What
            (match outcome with
             | Caught t -> sprintf "caught by %d" t.Length
             | Survived -> "SURVIVED"
             | DoesNotCompile e -> "does not compile: " + e)
            clock.Elapsed.TotalSeconds
        m, outcome)

let cell (s: string) = s.Replace("|", "\\|").Replace("\n", " ")
let row (m: Mutant, outcome) =
    let verdict, by =
        match outcome with
        | Caught tests ->
            let shown = tests |> List.truncate 3 |> List.map (fun t -> "`" + cell t + "`") |> String.concat "; "
            "caught", (if tests.Length > 3 then sprintf "%s; and %d more" shown (tests.Length - 3) else shown)
        | Survived -> "**survived**", ""
        | DoesNotCompile e -> "does not compile", cell e
    sprintf
        "| %s | `%s` | %s | %s | %d: %s |"
        m.Id
        (Path.GetDirectoryName(m.File).Replace('\\', '/'))
        (cell m.What)
        verdict
        (match outcome with
         | Caught t -> t.Length
         | _ -> 0)
        by

let caught =
    outcomes
    |> List.filter (fun (_, o) ->
        match o with
        | Caught _ -> true
        | _ -> false)
    |> List.length
let survived = outcomes |> List.filter (fun (_, o) -> o = Survived) |> List.length
printfn "%d mutants: %d caught, %d survived, %d did not compile" outcomes.Length caught survived (outcomes.Length - caught - survived)

if chosen.Length = mutants.Length then
    let table =
        [ "| id | folder | planted bug | verdict | tests that failed |"; "|---|---|---|---|---|" ]
        @ (outcomes |> List.map row)
    let header = File.ReadAllText(Path.Combine(__SOURCE_DIRECTORY__, "header.md"))
    let summary =
        sprintf
            "\n%d mutants: %d caught, %d survived, %d did not compile.\n\n"
            outcomes.Length
            caught
            survived
            (outcomes.Length - caught - survived)
    File.WriteAllText(Path.Combine(root, "docs", "mutation.md"), header + summary + String.Join("\n", table) + "\n")
    printfn "wrote docs/mutation.md"
