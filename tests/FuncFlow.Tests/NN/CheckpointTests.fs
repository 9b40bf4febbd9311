/// Checkpoints: the whole training state saved atomically and resumed bit for bit, also after SIGKILL.
module FuncFlow.Tests.NN.CheckpointTests

open System
open System.Diagnostics
open System.IO
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support

/// The run both the child process and the tests make: dropout (noise from the generator), batches drawn
/// with replacement (also from the generator), Adam (moments) under a warm-up and cosine schedule (the step count).
let private data () =
    Dataset.create (Tensor.randNormal Float64 11 [| 24; 3 |] 0.0 1.0) (Tensor.randNormal Float64 12 [| 24; 2 |] 0.0 1.0)

let private trainer () =
    let model = Model.Create(Sequential(Linear(3, 8), Tanh(), Dropout 0.25, Linear(8, 2)), 2)
    Trainer(model, Loss.MSE, Scheduled(Adam 0.01, Warmup(3, 0.2, Cosine(12, 0.1))), 9)

/// Three epochs of five batches of four rows, drawn with replacement.
let private options () = FitOptions.Create(3, 4).Quietly().WithReplacement(5)

let private bits (m: Model) =
    [
        for KeyValue(name, t) in m.Parameters -> name, t.ToArray() |> Array.map BitConverter.DoubleToInt64Bits
    ]

/// The child's part: train with a checkpoint every 3 steps, and after step 8 (epoch 2, batch 3; the last
/// checkpoint was step 6) say so and wait to be killed.
let runChild (checkpoint: string) =
    let options =
        options()
            .WithCheckpoints(checkpoint, 3)
            .WithStepCallback(fun s ->
                if s.Step = 8 then
                    Console.Out.WriteLine "waiting at step 8"
                    Console.Out.Flush()
                    Threading.Thread.Sleep Threading.Timeout.Infinite)
    trainer().Fit(data (), options) |> ignore
    1

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), sprintf "funcflow-checkpoint-%s" (Guid.NewGuid().ToString "N"))
    Directory.CreateDirectory d |> ignore
    d

let private uninterrupted =
    lazy
        (let t = trainer ()
         t.Fit(data (), options ()) |> ignore
         bits t.Model)

[<Tests>]
let tests =
    moduleTests
        "CheckpointTests"
        [
            testCase "A run resumed from a checkpoint mid-epoch ends bit for bit where an uninterrupted run ends"
            <| fun () ->
                let dir = tempDir ()
                try
                    let path = Path.Combine(dir, "run.ckpt")
                    let first = trainer ()
                    let mutable saved = None
                    // Stop by hand after step 7 (epoch 2, batch 2): save, then throw away the trainer.
                    let stop =
                        options()
                            .WithStepCallback(fun s ->
                                if s.Step = 7 then
                                    first.SaveCheckpoint path
                                    saved <- Some(bits first.Model)
                                    raise (OperationCanceledException()))
                    throws<OperationCanceledException>(fun () -> first.Fit(data (), stop) |> ignore) |> ignore
                    let resumed = trainer ()
                    resumed.Resume path
                    Expect.equal (bits resumed.Model) saved.Value "the checkpoint's parameters"
                    Expect.equal resumed.StepsTaken 7 "steps taken"
                    let history = resumed.Fit(data (), options ())
                    Expect.equal [ for e in history.Epochs -> e.Epoch ] [ 2; 3 ] "epochs after the resumed one"
                    Expect.equal (bits resumed.Model) uninterrupted.Value "parameters after training"
                    Expect.equal (Directory.GetFiles dir |> Array.map Path.GetFileName) [| "run.ckpt" |] "no temporary file left"
                finally
                    Directory.Delete(dir, true)
            testCase "A training process killed with SIGKILL mid-epoch resumes from its last checkpoint to the same bits"
            <| fun () ->
                let dir = tempDir ()
                try
                    let path = Path.Combine(dir, "child.ckpt")
                    let start =
                        ProcessStartInfo(Environment.ProcessPath, RedirectStandardOutput = true, RedirectStandardError = true)
                    // The test program itself is the child (Main.fs: --checkpoint-child).
                    start.ArgumentList.Add(Reflection.Assembly.GetEntryAssembly().Location)
                    start.ArgumentList.Add "--checkpoint-child"
                    start.ArgumentList.Add path
                    use child = Process.Start start
                    let line = child.StandardOutput.ReadLineAsync()
                    if not (line.Wait(TimeSpan.FromSeconds 120.0)) || line.Result <> "waiting at step 8" then
                        child.Kill()
                        failtestf
                            "the child did not reach step 8: %A %s"
                            (if line.IsCompleted then line.Result else "(timeout)")
                            (child.StandardError.ReadToEnd())
                    // Process.Kill is SIGKILL on Unix: no handler, no flush, no finally.
                    child.Kill()
                    child.WaitForExit()
                    if OperatingSystem.IsLinux() then Expect.equal child.ExitCode 137 "killed by signal 9"
                    let resumed = trainer ()
                    resumed.Resume path
                    Expect.equal resumed.StepsTaken 6 "the last checkpoint is step 6 (epoch 2, batch 1)"
                    resumed.Fit(data (), options ()) |> ignore
                    Expect.equal (bits resumed.Model) uninterrupted.Value "parameters after training"
                finally
                    Directory.Delete(dir, true)
            testCase "Resume refuses a model file and another architecture's checkpoint, naming the key"
            <| fun () ->
                let dir = tempDir ()
                try
                    let path = Path.Combine(dir, "x.safetensors")
                    Model.Create(Linear(3, 2), 0).Save path
                    let ex = throws<DataFormatException>(fun () -> trainer().Resume path)
                    Expect.stringContains ex.Message "'funcflow.checkpoint'" "a model file"
                    let other = Trainer(Model.Create(Linear(3, 2), 0), Loss.MSE, SGD 0.1)
                    other.Step(Tensor.ones Float64 [| 1; 3 |], Tensor.ones Float64 [| 1; 2 |]) |> ignore
                    other.SaveCheckpoint path
                    let ex = throws<DataFormatException>(fun () -> trainer().Resume path)
                    Expect.stringContains ex.Message "'funcflow.model' records Linear(3, 2, He)" "another architecture"
                    let ex = throws<InvalidOperationException>(fun () -> trainer().SaveCheckpoint path)
                    Expect.stringContains ex.Message "no step" "before the first step"
                finally
                    Directory.Delete(dir, true)
        ]
