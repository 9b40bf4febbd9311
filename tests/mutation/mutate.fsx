// The mutation pass: plants each bug of mutants.fsx in the source, one at a time, builds, runs both test
// suites, records which tests caught it, and restores the file. Writes docs/mutation.md.
//   dotnet fsi tests/mutation/mutate.fsx            (all mutants; about a minute each on 2 cores)
//   dotnet fsi tests/mutation/mutate.fsx M07 M12    (some of them)
// Run it on a clean work tree: it rewrites source files while it runs and restores each one after (also when it
// is interrupted with Ctrl-C or killed with SIGTERM). It first checks that every mutant's text occurs once and
// that the unmutated tree builds and passes both suites, since a failing test would count every mutant as caught.
#load "mutants.fsx"

open System
open System.Diagnostics
open System.IO
open System.Runtime.InteropServices
open System.Xml.Linq
open Mutants

let root = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "..", ".."))
let results = Path.Combine(root, "TestResults", "mutation")

/// How long one suite may run before the mutant counts as caught by a hang (the suites take well under a minute).
let suiteTimeout = TimeSpan.FromMinutes 5.0

/// Runs a command to the end, or kills it with its children after `timeout`: the exit code (None when killed) and
/// its output.
let run (timeout: TimeSpan) (exe: string) (args: string) =
    let info =
        ProcessStartInfo(exe, args, WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true)
    use p = Process.Start info
    let output = p.StandardOutput.ReadToEndAsync()
    let errors = p.StandardError.ReadToEndAsync()
    let finished = p.WaitForExit timeout
    if not finished then p.Kill true
    p.WaitForExit()
    (if finished then Some p.ExitCode else None), output.Result + errors.Result

/// An XML results file. Expecto writes failure messages with their terminal colour codes (ESC), which XML 1.0
/// forbids, so characters are not checked.
let loadXml (path: string) =
    use reader = Xml.XmlReader.Create(path, Xml.XmlReaderSettings(CheckCharacters = false))
    XDocument.Load reader

/// The names of the tests that failed or errored in the Expecto program's JUnit file and the C# run's TRX files.
let failedTests (fsharpFinished: bool) =
    let junit = Path.Combine(results, "expecto.xml")
    let fsharp =
        if File.Exists junit then
            (loadXml junit).Descendants(XName.Get "testcase")
            |> Seq.filter (fun c -> not (isNull (c.Element(XName.Get "failure"))) || not (isNull (c.Element(XName.Get "error"))))
            |> Seq.map (fun c -> c.Attribute(XName.Get "name").Value)
            |> List.ofSeq
        elif fsharpFinished then
            [ "(the F# test program crashed before writing its results)" ]
        else
            [ sprintf "(the F# tests ran past %.0f minutes and were stopped)" suiteTimeout.TotalMinutes ]
    let ns = XNamespace.Get "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"
    let csharp =
        Directory.GetFiles(results, "*.trx", SearchOption.AllDirectories)
        |> Seq.collect (fun f -> (loadXml f).Descendants(ns + "UnitTestResult"))
        |> Seq.filter (fun r -> r.Attribute(XName.Get "outcome").Value = "Failed")
        |> Seq.map (fun r -> "C#: " + r.Attribute(XName.Get "testName").Value)
        |> List.ofSeq
    fsharp @ csharp

/// Builds both test projects (and so the library): None, or the first error line.
let build () =
    [ "tests/FuncFlow.Tests"; "tests/FuncFlow.CSharp.Tests" ]
    |> List.fold
        (fun error project ->
            match error with
            | Some _ -> error
            | None ->
                match run (TimeSpan.FromMinutes 15.0) "dotnet" (sprintf "build %s -c Release -v q --nologo" project) with
                | Some 0, _ -> None
                | _, log -> Some(log.Split('\n') |> Array.tryFind (fun l -> l.Contains "error") |> Option.defaultValue "build failed"))
        None

/// Runs both suites on what was built; the tests that failed (a hang or a crash counts as one).
let runSuites () =
    if Directory.Exists results then Directory.Delete(results, true)
    Directory.CreateDirectory results |> ignore
    let fsharp, _ =
        run
            suiteTimeout
            "dotnet"
            (sprintf
                "tests/FuncFlow.Tests/bin/Release/net10.0/FuncFlow.Tests.dll --no-spinner --junit-summary \"%s\""
                (Path.Combine(results, "expecto.xml")))
    let csharp, _ =
        run
            suiteTimeout
            "dotnet"
            (sprintf "test tests/FuncFlow.CSharp.Tests -c Release --no-build --logger trx --results-directory \"%s\"" results)
    let hung =
        if csharp.IsNone then
            [ sprintf "(the C# tests ran past %.0f minutes and were stopped)" suiteTimeout.TotalMinutes ]
        else
            []
    failedTests fsharp.IsSome @ hung

type Outcome =
    | Caught of tests: string list
    | Survived
    | DoesNotCompile of error: string

/// The file a mutant is planted in and its original text, while one is: restored on Ctrl-C, SIGTERM or SIGHUP too.
let mutable planted: (string * string) option = None

let restore () =
    match planted with
    | Some(path, original) ->
        File.WriteAllText(path, original)
        planted <- None
    | None -> ()

let signals =
    [ PosixSignal.SIGINT; PosixSignal.SIGTERM; PosixSignal.SIGHUP ]
    |> List.map (fun s -> PosixSignalRegistration.Create(s, (fun _ -> restore ())))

/// How many times a mutant's text occurs in its file.
let occurrences (m: Mutant) =
    let text = File.ReadAllText(Path.Combine(root, m.File))
    (text.Length - text.Replace(m.Find, "").Length) / m.Find.Length

let tryMutant (m: Mutant) =
    let path = Path.Combine(root, m.File)
    let original = File.ReadAllText path
    planted <- Some(path, original)
    File.WriteAllText(path, original.Replace(m.Find, m.Replace))
    try
        match build () with
        | Some error -> DoesNotCompile error
        | None ->
            match runSuites () with
            | [] -> Survived
            | tests -> Caught tests
    finally
        restore ()

let chosen =
    match fsi.CommandLineArgs |> Array.skip 1 with
    | [||] -> mutants
    | ids ->
        match ids |> Array.filter (fun id -> not (mutants |> List.exists (fun m -> m.Id = id))) with
        | [||] -> mutants |> List.filter (fun m -> Array.contains m.Id ids)
        | unknown -> failwithf "no mutant has the id %s" (String.Join(", ", unknown))

// Every problem with the list is reported before any file is touched, not after an hour of building.
let problems =
    [
        for id, count in mutants |> List.countBy (fun m -> m.Id) do
            if count > 1 then yield sprintf "%s: the id is used %d times" id count
        for m in chosen do
            if not (File.Exists(Path.Combine(root, m.File))) then
                yield sprintf "%s: no file %s" m.Id m.File
            elif m.Find = "" || m.Find = m.Replace then
                yield sprintf "%s: the mutant changes nothing" m.Id
            else
                match occurrences m with
                | 1 -> ()
                | n -> yield sprintf "%s: '%s' occurs %d times in %s; it must occur once" m.Id m.Find n m.File
    ]
if not problems.IsEmpty then failwithf "mutants.fsx:\n%s" (String.Join("\n", problems))

match build () with
| Some error -> failwithf "the unmutated tree does not build: %s" error
| None ->
    match runSuites () with
    | [] -> printfn "the unmutated tree passes both suites"
    | failed -> failwithf "the unmutated tree fails %s; fix that before a mutation pass" (String.Join("; ", failed))

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
             | Caught t -> sprintf "caught by %d: %s" t.Length (String.Join("; ", List.truncate 3 t))
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
            "caught", sprintf "%d: %s%s" tests.Length shown (if tests.Length > 3 then sprintf "; and %d more" (tests.Length - 3) else "")
        | Survived -> "**survived**", ""
        | DoesNotCompile e -> "does not compile", cell e
    sprintf "| %s | `%s` | %s | %s | %s |" m.Id (Path.GetDirectoryName(m.File).Replace('\\', '/')) (cell m.What) verdict by

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
