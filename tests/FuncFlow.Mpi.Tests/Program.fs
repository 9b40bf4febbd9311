/// The MPI tests: a console program, since its cases need processes started by mpirun. Run without arguments (and not
/// under mpirun) it is the driver: it runs the single-process case itself, starts `mpirun -np 2` on itself for the
/// multi-rank cases, and writes the results as JUnit XML (--junit-summary PATH) for build.fsx's count. Under mpirun
/// it runs one mode: `equivalence`, `fault` or `crash`.
module FuncFlow.Mpi.Tests.Program

open System
open System.Diagnostics
open System.IO
open System.Xml.Linq
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Distributed

/// A classification data set of `n` rows (5 features, labels of 3 classes) from a seed.
let data (n: int) =
    let rng = Random 11
    let features = Array.init n (fun _ -> Array.init 5 (fun _ -> rng.NextDouble() * 2.0 - 1.0))
    let labels =
        features
        |> Array.map (fun x ->
            if x[0] + x[1] > 0.3 then 0.0
            elif x[2] > 0.0 then 1.0
            else 2.0)
    { Features = Tensor.ofRows features; Targets = Tensor.ofArray labels }

let layers () = Sequential(Linear(5, 8), Tanh(), Linear(8, 3))

/// The rows of a data set, as a new data set (gathered here, independently of the library's own gather).
let rowsOf (ds: Dataset) (rows: int[]) =
    let pick (t: Tensor) =
        let width = t.Size / t.Shape[0]
        let all = t.ToArray()
        Tensor.create
            (Array.append [| rows.Length |] t.Shape[1..])
            (rows |> Array.collect (fun r -> all[r * width .. r * width + width - 1]))
    { Features = pick ds.Features; Targets = pick ds.Targets }

let maxDiff (a: Model) (b: Model) =
    a.Parameters
    |> Seq.map (fun kv ->
        Array.map2 (fun x y -> abs (x - y)) (kv.Value.ToArray()) (b.Parameters[kv.Key].ToArray())
        |> Array.max)
    |> Seq.max

/// k steps of DistributedTrainer on `comm` against k steps of Trainer in this process on the same global batches
/// (47 rows in batches of 12: the last is 11 rows, so 2 ranks get shards of 5 and 6). Each rank starts from a model
/// of its own seed: rank 0's must be broadcast. Returns the failures seen by this rank.
let equivalence (comm: Communicator) : string list =
    let ds = data 47
    let rng = Random 7
    let order = Array.init 47 id |> Array.sortBy (fun _ -> rng.Next())
    let batches = order |> Array.chunkBySize 12
    let reference = Trainer(Model.Create(layers (), 1), Loss.CrossEntropy, Adam 0.05)
    let broadcasts = comm.BroadcastCount
    let trainer =
        DistributedTrainer(comm, Model.Create(layers (), 1 + comm.Rank), Loss.CrossEntropy, Adam 0.05)
    let failures = ResizeArray<string>()
    let fail fmt = Printf.kprintf failures.Add fmt
    // One broadcast of rank 0's parameters, when there are other ranks to send them to.
    if comm.BroadcastCount - broadcasts <> (if comm.Size > 1 then 1 else 0) then
        fail "%d broadcasts on %d ranks" (comm.BroadcastCount - broadcasts) comm.Size
    let before = comm.AllreduceCount
    let mutable expectedRows = 0L
    for step, rows in Array.indexed batches do
        let batch = rowsOf ds rows
        let expectedLoss = reference.Step(batch.Features, batch.Targets)
        let allreduces = comm.AllreduceCount
        let loss = trainer.Step(ds, rows)
        if comm.AllreduceCount - allreduces <> 1 then
            fail "step %d: %d allreduces, expected 1" step (comm.AllreduceCount - allreduces)
        // This rank's shard: rows [rank B / N, (rank + 1) B / N) of the global batch, and nothing else.
        let b = rows.Length
        let shard = rows[comm.Rank * b / comm.Size .. (comm.Rank + 1) * b / comm.Size - 1]
        expectedRows <- expectedRows + int64 shard.Length
        if trainer.LastRows <> shard then
            fail "step %d: rank %d read rows %A, expected its shard %A" step comm.Rank trainer.LastRows shard
        if abs (loss - expectedLoss) > 1e-9 then
            fail "step %d: loss %.17g, one process %.17g" step loss expectedLoss
        if trainer.LastCorrect <> reference.LastCorrect then
            fail "step %d: %g correct rows, one process %g" step trainer.LastCorrect reference.LastCorrect
    if trainer.RowsRead <> expectedRows then
        fail "rank %d read %d rows in all, expected %d" comm.Rank trainer.RowsRead expectedRows
    if comm.AllreduceCount - before <> batches.Length then
        fail "%d allreduces for %d steps" (comm.AllreduceCount - before) batches.Length
    let diff = maxDiff trainer.Model reference.Model
    if not (diff <= 1e-9) then
        fail "parameters differ from one process's by %g after %d steps" diff batches.Length
    // The parameters must have moved, or the comparison above proves nothing.
    let moved = maxDiff trainer.Model (Model.Create(layers (), 1))
    if not (moved > 1e-3) then fail "training did not change the parameters (max change %g)" moved
    // Fit shuffles as Trainer.Fit does, from the seed: one epoch of each must agree too.
    let options = FitOptions.Create(2, 10).Quietly()
    let fitted = DistributedTrainer(comm, Model.Create(layers (), 3), Loss.CrossEntropy, SGD(0.1, 0.9), 5)
    let history = fitted.Fit(ds, options)
    let single = Trainer(Model.Create(layers (), 3), Loss.CrossEntropy, SGD(0.1, 0.9), 5)
    let singleHistory = single.Fit(ds, options)
    let fitDiff = maxDiff fitted.Model single.Model
    if not (fitDiff <= 1e-9) then fail "Fit: parameters differ from Trainer.Fit's by %g" fitDiff
    for e, s in List.zip history.Epochs singleHistory.Epochs do
        if abs (e.Loss - s.Loss) > 1e-9 || e.Accuracy <> s.Accuracy then
            fail "Fit epoch %d: loss %g accuracy %A, Trainer.Fit %g %A" e.Epoch e.Loss e.Accuracy s.Loss s.Accuracy
    let evaluation = fitted.Evaluate(ds, 7)
    let expected = single.Evaluate(ds, 7)
    if abs (evaluation.Loss - expected.Loss) > 1e-9 || evaluation.Accuracy <> expected.Accuracy then
        fail "Evaluate: %A, one process %A" evaluation expected
    List.ofSeq failures

/// Under mpirun: rank 1 fails in its third step while rank 0 goes on training, so rank 0 waits in an allreduce that
/// rank 1 will never join. With `throws`, rank 1 throws and Mpi.run's abort must end both; without, rank 1's process
/// exits at once without MPI_Finalize (as a rank that dies), and mpirun must end rank 0.
let faultMode (throws: bool) =
    Mpi.run (fun comm ->
        let ds = data 40
        let trainer = DistributedTrainer(comm, Model.Create(layers (), 1), Loss.CrossEntropy, Adam 0.05)
        for step in 0..1000 do
            if comm.Rank = 1 && step = 2 then
                if throws then
                    invalidOp "deliberate failure on rank 1"
                else
                    eprintfn "rank 1 exits without finalizing"
                    Environment.Exit 3
            trainer.Step(ds, [| 0..7 |]) |> ignore
        printfn "fault: training finished on rank %d" comm.Rank
        0)

/// Float32 on this communicator against Trainer in one process: the same global batches, to float32's precision.
let float32Agrees (comm: Communicator) : string list =
    let ds = data 30
    let model () = Model.Create(layers (), 2, Float32)
    let reference = Trainer(model (), Loss.CrossEntropy, Adam 0.05)
    let trainer = DistributedTrainer(comm, model (), Loss.CrossEntropy, Adam 0.05)
    for rows in Array.init 30 id |> Array.chunkBySize 10 do
        let batch = rowsOf ds rows
        reference.Step(batch.Features, batch.Targets) |> ignore
        trainer.Step(ds, rows) |> ignore
    let diff = maxDiff trainer.Model reference.Model
    if diff <= 1e-5 then [] else [ sprintf "float32: parameters differ from one process's by %g" diff ]

/// Alone, with dropout: rank 0's noise comes from `seed`, as Trainer's does, so the masks and the parameters agree
/// (on several ranks each draws its own masks, so only one rank can be compared with one process).
let dropoutAlone (comm: Communicator) : string list =
    let ds = data 24
    let model () = Model.Create(Sequential(Linear(5, 16), ReLU(), Dropout 0.5, Linear(16, 3)), 4)
    let reference = Trainer(model (), Loss.CrossEntropy, SGD 0.1, 9)
    let trainer = DistributedTrainer(comm, model (), Loss.CrossEntropy, SGD 0.1, 9)
    for rows in Array.init 24 id |> Array.chunkBySize 8 do
        let batch = rowsOf ds rows
        reference.Step(batch.Features, batch.Targets) |> ignore
        trainer.Step(ds, rows) |> ignore
    let diff = maxDiff trainer.Model reference.Model
    // Without the same masks the first layer's gradients differ by far more than rounding.
    if diff <= 1e-12 then [] else [ sprintf "dropout: parameters differ from Trainer's by %g" diff ]

/// Bad arguments are refused with an error that names the operation.
let badInput (comm: Communicator) : string list =
    let ds = data 10
    let expectArgument (what: string) (f: unit -> unit) =
        try
            f ()
            [ sprintf "%s: no error" what ]
        with
        | :? ArgumentException as e when e.Message.Contains "DistributedTrainer" -> []
        | e ->
            [
                sprintf "%s: %s instead of an ArgumentException naming DistributedTrainer" what (e.GetType().Name)
            ]
    let make loss = DistributedTrainer(comm, Model.Create(layers (), 1), loss, Adam 0.05)
    expectArgument "a sum loss" (fun () -> make Loss.SumSquaredError |> ignore)
    @ expectArgument "an empty batch" (fun () -> (make Loss.CrossEntropy).Step(ds, [||]) |> ignore)
    @ expectArgument "a row outside the data" (fun () -> (make Loss.CrossEntropy).Step(ds, [| 3; 10 |]) |> ignore)
    @ expectArgument "sampling with replacement" (fun () ->
        (make Loss.CrossEntropy).Fit(ds, FitOptions.Create(1, 4).WithReplacement(2).Quietly()) |> ignore)

/// Under mpirun: every rank checks, the failures are counted over the ranks, and rank 0 reports.
let equivalenceMode () =
    Mpi.run (fun comm ->
        let failures = equivalence comm @ float32Agrees comm
        for f in failures do
            eprintfn "rank %d: %s" comm.Rank f
        let count = [| float failures.Length |]
        // Every rank has finished its checks before the counts are combined.
        comm.Barrier()
        comm.AllreduceSum count
        if comm.IsRoot then
            printfn "equivalence on %d ranks: %s" comm.Size (if count[0] = 0.0 then "ok" else sprintf "%g failures" count[0])
        if count[0] = 0.0 then 0 else 1)

type Outcome =
    | Passed
    | Failed of string
    | Skipped of string

let mpirunPath () =
    (Environment.GetEnvironmentVariable "PATH").Split(':')
    |> Array.map (fun dir -> Path.Combine(dir, "mpirun"))
    |> Array.tryFind File.Exists

/// Runs this program under `mpirun -np 2` in a mode; returns the exit code (None on timeout), the output and seconds.
let launch (mpirun: string) (mode: string) (timeoutSeconds: int) =
    let args =
        [
            // As root (containers, CI), OpenMPI refuses to start without this; --oversubscribe lets 2 ranks run on
            // a machine that reports one slot.
            if Environment.UserName = "root" then "--allow-run-as-root"
            "--oversubscribe"
            "-np"
            "2"
            Environment.ProcessPath
            Reflection.Assembly.GetEntryAssembly().Location
            mode
        ]
    let info = ProcessStartInfo(mpirun, args, RedirectStandardOutput = true, RedirectStandardError = true)
    let clock = Stopwatch.StartNew()
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    let finished = p.WaitForExit(timeoutSeconds * 1000)
    if not finished then p.Kill true
    p.WaitForExit()
    let output = out.Result + err.Result
    printfn "--- mpirun -np 2 ... %s (%.1f s) ---\n%s" mode clock.Elapsed.TotalSeconds output
    (if finished then Some p.ExitCode else None), output, clock.Elapsed.TotalSeconds

let driver (junit: string option) =
    let failuresOutcome =
        function
        | [] -> Passed
        | failures -> Failed(String.concat "; " failures)
    let single () =
        use comm = Mpi.init ()
        if comm.Size <> 1 || comm.Rank <> 0 then
            Failed(sprintf "without mpirun, Mpi.init gave rank %d of %d, expected 0 of 1" comm.Rank comm.Size)
        else
            failuresOutcome (equivalence comm @ float32Agrees comm @ dropoutAlone comm)
    let notInstalled =
        Skipped "mpirun not found: OpenMPI is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    // A job with a failing rank must end, with a non-zero code and the failure in its output, before rank 0 finishes.
    let fault mode (explains: string -> bool) =
        match mpirunPath () with
        | None -> notInstalled
        | Some mpirun ->
            match launch mpirun mode 120 with
            | None, _, _ -> Failed "the job hung: still running after 120 s"
            | Some 0, _, _ -> Failed "the job exited with code 0"
            | Some _, output, seconds ->
                if not (explains output) then
                    Failed "the output does not name rank 1 and its failure"
                elif output.Contains "training finished" then
                    Failed "rank 0 finished training although rank 1 had failed"
                elif seconds > 60.0 then
                    Failed(sprintf "the job took %.0f s to end" seconds)
                else
                    Passed
    let cases =
        [
            "single process without mpirun equals Trainer (float64, float32, dropout)", single
            "2 ranks under mpirun equal one process to 1e-9, one allreduce per step, B/N rows per rank",
            fun () ->
                match mpirunPath () with
                | None -> notInstalled
                | Some mpirun ->
                    match launch mpirun "equivalence" 300 with
                    | Some 0, output, _ when output.Contains "equivalence on 2 ranks: ok" -> Passed
                    | code, _, _ -> Failed(sprintf "mpirun ended with %A; see its output above" code)
            "a rank that throws ends the job with its error within 60 s",
            fun () -> fault "fault" (fun output -> output.Contains "rank 1 of 2 failed" && output.Contains "deliberate failure on rank 1")
            "a rank that exits without finalizing ends the job within 60 s",
            fun () -> fault "crash" (fun output -> output.Contains "rank 1 exits without finalizing")
            "bad input is refused", (fun () -> failuresOutcome (badInput (Communicator.Local())))
        ]
    let results =
        [
            for name, case in cases do
                let outcome =
                    try
                        case ()
                    with e ->
                        Failed(e.ToString())
                match outcome with
                | Passed -> printfn "passed: %s" name
                | Failed why -> printfn "FAILED: %s: %s" name why
                | Skipped why -> printfn "skipped: %s: %s" name why
                yield name, outcome
        ]
    junit
    |> Option.iter (fun path ->
        let case (name: string, outcome) =
            XElement(
                XName.Get "testcase",
                XAttribute(XName.Get "name", name),
                XAttribute(XName.Get "classname", "FuncFlow.Mpi.Tests"),
                (match outcome with
                 | Passed -> null
                 | Failed why -> XElement(XName.Get "failure", XAttribute(XName.Get "message", why))
                 | Skipped why -> XElement(XName.Get "skipped", XAttribute(XName.Get "message", why)))
            )
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path)) |> ignore
        XDocument(XElement(XName.Get "testsuite", results |> List.map case)).Save path)
    if results |> List.exists (fun (_, o) -> o.IsFailed) then 1 else 0

[<EntryPoint>]
let main argv =
    match List.ofArray argv with
    | [ "equivalence" ] -> equivalenceMode ()
    | [ "fault" ] -> faultMode true
    | [ "crash" ] -> faultMode false
    | [] -> driver None
    | [ "--junit-summary"; path ] -> driver (Some path)
    | _ ->
        eprintfn "usage: FuncFlow.Mpi.Tests [--junit-summary PATH] | equivalence | fault | crash (the last three under mpirun)"
        2
