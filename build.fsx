// FuncFlow's build script: dotnet fsi build.fsx <target>
// Targets: build, test, examples, bench, pack, consumer, fuzz <target> [seconds] (a job of its own, not CI's).
// Plain .NET only, so it runs on a fresh machine.
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
    // The docs' C# snippets are a project of their own, compiled against the C# surface alone.
    let csharpCode =
        [ "tests/FuncFlow.CSharp.Tests"; "tests/FuncFlow.CSharp.DocTests" ]
        |> List.map (fun project ->
            run "dotnet" (sprintf "test %s -c Release --no-build --logger trx --results-directory \"%s\"" project results))
        |> List.max
    let csharp = if Directory.Exists results then countTrx results else (0, 0, 0)
    let junit = Path.Combine(results, "expecto.xml")
    let fsharpCode =
        run "dotnet" (sprintf "tests/FuncFlow.Tests/bin/Release/net10.0/FuncFlow.Tests.dll --no-spinner --junit-summary \"%s\"" junit)
    let fsharp = if File.Exists junit then countJUnit junit else (0, 0, 0)
    // The MPI tests are a console program that starts `mpirun -np 2` on itself (skipped, with a note, when OpenMPI
    // is not installed) and writes JUnit XML too.
    let mpiJunit = Path.Combine(results, "mpi.xml")
    let mpiCode =
        run "dotnet" (sprintf "tests/FuncFlow.Mpi.Tests/bin/Release/net10.0/FuncFlow.Mpi.Tests.dll --junit-summary \"%s\"" mpiJunit)
    let mpi = if File.Exists mpiJunit then countJUnit mpiJunit else (0, 0, 0)
    // The ONNX tests are an Expecto program too (they run exports in ONNX Runtime; those that need Debian's
    // python3-onnx or libonnx-testdata are skipped, with a note, without them).
    let onnxJunit = Path.Combine(results, "onnx.xml")
    let onnxCode =
        run
            "dotnet"
            (sprintf "tests/FuncFlow.Onnx.Tests/bin/Release/net10.0/FuncFlow.Onnx.Tests.dll --no-spinner --junit-summary \"%s\"" onnxJunit)
    let onnx = if File.Exists onnxJunit then countJUnit onnxJunit else (0, 0, 0)
    let line (passed, failed, skipped) =
        sprintf "%d passed, %d failed%s" passed failed (if skipped > 0 then sprintf ", %d skipped" skipped else "")
    printfn "C# tests (xunit): %s" (line csharp)
    printfn "F# tests (Expecto): %s" (line fsharp)
    printfn "MPI tests (mpirun): %s" (line mpi)
    printfn "ONNX tests (Expecto): %s" (line onnx)
    let (p1, f1, s1), (p2, f2, s2), (p3, f3, s3), (p4, f4, s4) = csharp, fsharp, mpi, onnx
    let passed, failed = p1 + p2 + p3 + p4, f1 + f2 + f3 + f4
    printfn "%s" (line (passed, failed, s1 + s2 + s3 + s4))
    if csharpCode <> 0 || fsharpCode <> 0 || mpiCode <> 0 || onnxCode <> 0 || failed > 0 || passed = 0 then
        exit 1

let examples () =
    for project in
        [
            "examples/GrokkingNetwork"
            "examples/BostonHousing"
            "examples/SeedsWalkthrough"
            "examples/MnistSoftmax"
            "examples/MnistMlp"
            "examples/DistributedMnist"
            "examples/LeNet"
            "examples/FashionMnistCnn"
            "examples/CSharpTraining"
            "examples/CSharpLeNet"
            "examples/CSharpCustomLayer"
            "examples/CSharpGradients"
            "examples/CSharpGradCheck"
            "examples/CharLstm"
            "examples/CSharpRnn"
            "examples/CharTransformer"
            "examples/CSharpCheckpoints"
        ] do
        if Directory.Exists(Path.Combine(root, project)) then
            runOrFail "dotnet" (sprintf "run -c Release --project %s" project)
    runOrFail "dotnet" "fsi examples/grad.fsx"
    runOrFail "dotnet" "fsi examples/transforms.fsx"
    runOrFail "dotnet" "fsi examples/vmap.fsx"

/// The code blocks of one language in a Markdown file, in order.
let codeBlocks (language: string) (file: string) =
    let lines = File.ReadAllLines file
    [
        let mutable inside = false
        let block = Text.StringBuilder()
        for line in lines do
            if not inside && line.Trim() = "```" + language then
                inside <- true
                block.Clear() |> ignore
            elif inside && line.Trim() = "```" then
                inside <- false
                yield block.ToString()
            elif inside then
                block.AppendLine line |> ignore
    ]

/// The consumer test: packs the packages into a folder, then builds and runs the package README's C# program and
/// F# script against them, with an empty package cache of their own (NUGET_PACKAGES), so that a stale copy of the
/// same version cannot stand in. Other packages come from the machine's package cache, so it runs offline.
let consumer () =
    let work = Path.Combine(Path.GetTempPath(), "funcflow-consumer-" + Guid.NewGuid().ToString "N")
    let feed = Path.Combine(work, "feed")
    let version =
        XDocument.Load(Path.Combine(root, "Directory.Build.props")).Descendants(XName.Get "Version")
        |> Seq.head
        |> fun e -> e.Value
    for project in
        [
            "src/FuncFlow"
            "src/FuncFlow.Mpi"
            "src/FuncFlow.Onnx.Schema"
            "src/FuncFlow.Onnx"
            "src/FuncFlow.CSharp"
            "src/FuncFlow.Datasets"
            "src/FuncFlow.Cli"
        ] do
        runOrFail "dotnet" (sprintf "pack %s -c Release -o \"%s\"" project feed)
    let machineCache =
        match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
        | null
        | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
        | dir -> dir
    File.WriteAllText(
        Path.Combine(work, "nuget.config"),
        sprintf
            """<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="feed" value="%s" />
    <add key="machine" value="%s" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="feed"><package pattern="FuncFlow*" /></packageSource>
    <packageSource key="machine"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
"""
            feed
            machineCache
    )
    let readme = Path.Combine(root, "src", "PACKAGE.md")
    let cs = Path.Combine(work, "cs")
    Directory.CreateDirectory cs |> ignore
    File.WriteAllText(Path.Combine(cs, "Program.cs"), String.concat "\n" (codeBlocks "csharp" readme))
    File.WriteAllText(
        Path.Combine(cs, "Consumer.csproj"),
        sprintf
            """<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="FuncFlow" Version="%s" />
    <PackageReference Include="FuncFlow.CSharp" Version="%s" />
    <PackageReference Include="FuncFlow.Datasets" Version="%s" />
  </ItemGroup>
</Project>
"""
            version
            version
            version
    )
    let fs = Path.Combine(work, "fs")
    Directory.CreateDirectory fs |> ignore
    File.WriteAllText(Path.Combine(fs, "train.fsx"), String.concat "\n" (codeBlocks "fsharp" readme))
    /// Runs a command in the consumer's folder with its own package cache; fails unless it prints `expected`.
    let check (dir: string) (exe: string) (args: string) (expected: string list) =
        printfn "> (%s) %s %s" dir exe args
        let start = ProcessStartInfo(exe, args, WorkingDirectory = dir, RedirectStandardOutput = true)
        start.Environment["NUGET_PACKAGES"] <- Path.Combine(work, "packages")
        use p = Process.Start start
        let output = p.StandardOutput.ReadToEnd()
        p.WaitForExit()
        printf "%s" output
        let missing = expected |> List.filter (fun e -> not (output.Contains e))
        if p.ExitCode <> 0 || not missing.IsEmpty then
            eprintfn "build.fsx consumer: '%s %s' in %s exited with %d, missing %A" exe args dir p.ExitCode missing
            exit 1
    check cs "dotnet" "run -c Release" [ "C# accuracy" ]
    check fs "dotnet" "fsi train.fsx" [ "F# accuracy"; "F# reloaded accuracy" ]
    // The funcflow tool installs from the same folder and runs.
    let tools = Path.Combine(work, "tools")
    check work "dotnet" (sprintf "tool install FuncFlow.Cli --version %s --tool-path \"%s\"" version tools) [ "funcflow" ]
    check work (Path.Combine(tools, "funcflow")) "--help" [ "onnx"; "info" ]
    Directory.Delete(work, true)
    printfn "consumer test: passed (FuncFlow %s from a local folder, in C# and F#, and the funcflow tool)" version

/// The fuzz job, not CI's: afl-fuzz through SharpFuzz on one reader of fuzz/FuncFlow.Fuzz/Targets.fs for `seconds`,
/// seeded with the committed corpus (tests/FuncFlow.Tests/corpus/<target>); afterwards the small inputs that found new
/// coverage join the corpus, named by their content, afl-cmin reduces it to the fewest files that reach the same
/// edges (the seeds stay), and crashes are listed with the command that replays each.
let fuzz (target: string) (seconds: int) =
    let corpus = Path.Combine(root, "tests", "FuncFlow.Tests", "corpus", target)
    if not (Directory.Exists corpus) then
        eprintfn
            "build.fsx fuzz: no corpus folder %s; targets: %s"
            corpus
            (Directory.GetDirectories(Path.GetDirectoryName corpus)
             |> Array.map Path.GetFileName
             |> String.concat ", ")
        exit 2
    let shell (command: string) = run "sh" (sprintf "-c \"%s\"" command)
    if shell "command -v afl-fuzz >/dev/null" <> 0 then
        let sudo = if Environment.UserName = "root" then "" else "sudo "
        runOrFail "sh" (sprintf "-c \"%sapt-get install -y afl++\"" sudo)
    let out = Path.Combine(root, "fuzz", "out")
    let sharpfuzz = Path.Combine(out, "tools", "sharpfuzz")
    if not (File.Exists sharpfuzz) then
        runOrFail
            "dotnet"
            (sprintf "tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path \"%s\"" (Path.GetDirectoryName sharpfuzz))
    let bin = Path.Combine(out, "bin")
    if Directory.Exists bin then Directory.Delete(bin, true)
    runOrFail "dotnet" (sprintf "publish fuzz/FuncFlow.Fuzz -c Release -o \"%s\"" bin)
    // The readers live in FuncFlow's assemblies (FuncFlow.dll, and any FuncFlow.*.dll the harness references);
    // the harness itself and the framework are left uninstrumented.
    for dll in Directory.GetFiles(bin, "FuncFlow*.dll") do
        if Path.GetFileName dll <> "FuncFlow.Fuzz.dll" then runOrFail sharpfuzz (sprintf "\"%s\"" dll)
    let findings = Path.Combine(out, target)
    if Directory.Exists findings then Directory.Delete(findings, true)
    // afl-fuzz's running log goes to a file; its final statistics are printed below.
    let log = Path.Combine(out, target + ".log")
    let command =
        sprintf
            "nice -n 19 afl-fuzz -i \"%s\" -o \"%s\" -V %d -t 10000 -m none -- dotnet \"%s\" %s > \"%s\" 2>&1"
            corpus
            findings
            seconds
            (Path.Combine(bin, "FuncFlow.Fuzz.dll"))
            target
            log
    let afl = ProcessStartInfo("sh", WorkingDirectory = root)
    afl.ArgumentList.Add "-c"
    afl.ArgumentList.Add command
    // The target is the dotnet host, which afl-fuzz cannot see is instrumented; no status screen, no CPU pinning
    // on a shared machine.
    for name in
        [
            "AFL_SKIP_BIN_CHECK"
            "AFL_NO_UI"
            "AFL_NO_AFFINITY"
            "AFL_SKIP_CPUFREQ"
            "AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES"
        ] do
        afl.Environment[name] <- "1"
    printfn "> %s" command
    do
        use p = Process.Start afl
        p.WaitForExit()
    let stats = Path.Combine(findings, "default", "fuzzer_stats")
    if not (File.Exists stats) then
        eprintfn "build.fsx fuzz: afl-fuzz wrote no statistics; its log, %s, ends:" log
        for line in
            (if File.Exists log then File.ReadAllLines log else [||])
            |> Array.rev
            |> Array.truncate 20
            |> Array.rev do
            eprintfn "  %s" line
        exit 1
    for line in File.ReadAllLines stats do
        let key = (line.Split(':')[0]).Trim()
        if
            List.contains
                key
                [
                    "run_time"
                    "execs_done"
                    "execs_per_sec"
                    "corpus_count"
                    "bitmap_cvg"
                    "saved_crashes"
                    "saved_hangs"
                ]
        then
            printfn "  %s" line
    let files (folder: string) =
        let dir = Path.Combine(findings, "default", folder)
        if Directory.Exists dir then
            Directory.GetFiles dir |> Array.filter (fun f -> Path.GetFileName(f).StartsWith "id:")
        else
            [||]
    let hash (file: string) =
        Convert.ToHexString(Security.Cryptography.SHA256.HashData(File.ReadAllBytes file)).ToLowerInvariant().[..15]
    // The candidates: the corpus and the inputs that reached new edges (afl-fuzz marks them +cov), small ones only.
    let candidates = Path.Combine(out, target + "-candidates")
    let minimal = Path.Combine(out, target + "-min")
    for dir in [ candidates; minimal ] do
        if Directory.Exists dir then Directory.Delete(dir, true)
    Directory.CreateDirectory candidates |> ignore
    for f in Directory.GetFiles corpus do
        File.Copy(f, Path.Combine(candidates, Path.GetFileName f))
    let known = Directory.GetFiles corpus |> Array.map hash |> Set.ofArray
    for f in files "queue" do
        if Path.GetFileName(f).Contains "+cov" && FileInfo(f).Length <= 4096L && not (known.Contains(hash f)) then
            File.Copy(f, Path.Combine(candidates, "q-" + hash f), true)
    // afl-cmin keeps the fewest files that reach every edge the candidates reach; seeds stay whatever it says.
    let dotnet = Process.GetCurrentProcess().MainModule.FileName
    let cmin = ProcessStartInfo("sh", WorkingDirectory = root)
    cmin.ArgumentList.Add "-c"
    cmin.ArgumentList.Add(
        sprintf
            "nice -n 19 afl-cmin -i \"%s\" -o \"%s\" -t 10000 -m none -- \"%s\" \"%s\" %s > \"%s\" 2>&1"
            candidates
            minimal
            dotnet
            (Path.Combine(bin, "FuncFlow.Fuzz.dll"))
            target
            (Path.Combine(out, target + "-cmin.log"))
    )
    for name in [ "AFL_SKIP_BIN_CHECK"; "AFL_NO_AFFINITY" ] do
        cmin.Environment[name] <- "1"
    let minimised =
        use p = Process.Start cmin
        p.WaitForExit()
        p.ExitCode = 0 && Directory.Exists minimal
    let keep =
        if minimised then
            Directory.GetFiles minimal |> Array.map Path.GetFileName |> Set.ofArray
        else
            eprintfn "build.fsx fuzz: afl-cmin failed (see fuzz/out/%s-cmin.log); keeping every candidate" target
            Directory.GetFiles candidates |> Array.map Path.GetFileName |> Set.ofArray
    let before = Directory.GetFiles corpus |> Array.map Path.GetFileName |> Set.ofArray
    for name in before do
        if not (keep.Contains name || name.StartsWith "seed") then File.Delete(Path.Combine(corpus, name))
    for name in keep do
        if not (before.Contains name) then
            File.Copy(Path.Combine(candidates, name), Path.Combine(corpus, name))
    let after = Directory.GetFiles corpus
    printfn
        "fuzz %s: %d corpus files added, %d removed by afl-cmin; the corpus has %d files, %d bytes"
        target
        (after |> Array.filter (fun f -> not (before.Contains(Path.GetFileName f))) |> Array.length)
        (before |> Set.filter (fun n -> not (File.Exists(Path.Combine(corpus, n)))) |> Set.count)
        after.Length
        (after |> Array.sumBy (fun f -> FileInfo(f).Length))
    let crashes = Array.append (files "crashes") (files "hangs")
    for c in crashes do
        printfn "crash or hang: dotnet %s %s \"%s\"" (Path.Combine(bin, "FuncFlow.Fuzz.dll")) target c
    if crashes.Length > 0 then
        eprintfn "fuzz %s: %d crashes or hangs (listed above)" target crashes.Length
        exit 1

match fsi.CommandLineArgs |> Array.skip 1 |> List.ofArray with
| [ "build" ] -> runOrFail "dotnet" "build FuncFlow.sln -c Release"
| [ "test" ] -> test ()
| [ "examples" ] -> examples ()
| [ "bench" ] -> runOrFail "bash" "bench/run.sh --torch"
| [ "pack" ] -> runOrFail "dotnet" "pack FuncFlow.sln -c Release -o out"
| [ "consumer" ] -> consumer ()
| [ "fuzz"; target ] -> fuzz target 300
| [ "fuzz"; target; seconds ] -> fuzz target (int seconds)
| args ->
    eprintfn
        "usage: dotnet fsi build.fsx <build|test|examples|bench|pack|consumer|fuzz <target> [seconds]> (got %s)"
        (String.Join(" ", args))
    exit 2
