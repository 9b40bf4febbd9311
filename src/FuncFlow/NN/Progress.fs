namespace FuncFlow.NN

open System
open System.Diagnostics
open Spectre.Console

/// Where training reports its progress: a live bar in a terminal, plain lines otherwise. Internal, as are the
/// reporters below: Trainer picks one from FitOptions (LiveProgress, Quiet) and takes none from users.
[<AbstractClass>]
type internal ProgressReporter() =
    /// An epoch of `steps` steps begins.
    abstract EpochStarted: title: string * steps: int -> unit
    /// `count` more steps are done; `describe` gives the live status text, called only when it is shown.
    abstract Advance: count: int * describe: Func<string> -> unit
    /// The epoch is done; `summary` is its one-line result.
    abstract EpochFinished: summary: string -> unit

/// Reports nothing.
[<Sealed>]
type internal SilentProgress() =
    inherit ProgressReporter()
    override _.EpochStarted(_, _) = ()
    override _.Advance(_, _) = ()
    override _.EpochFinished _ = ()

/// One line per finished epoch, for logs and redirected output.
[<Sealed>]
type internal LineProgress(write: Action<string>) =
    inherit ProgressReporter()
    /// Lines to standard output.
    new() = LineProgress(Action<string>(fun s -> Console.WriteLine s))
    override _.EpochStarted(_, _) = ()
    override _.Advance(_, _) = ()
    override _.EpochFinished summary = write.Invoke summary

/// A Spectre.Console bar per epoch, its description refreshed at most ten times a second.
[<Sealed>]
type internal BarProgress(ctx: ProgressContext) =
    inherit ProgressReporter()
    let clock = Stopwatch.StartNew()
    let mutable task: ProgressTask option = None
    let mutable title = ""
    let mutable lastShown = -1000L
    /// Steps not yet given to the bar.
    let mutable pending = 0
    override _.EpochStarted(t, steps) =
        title <- t
        task <- Some(ctx.AddTask(Markup.Escape t, true, float (max 1 steps)))
    override _.Advance(count, describe) =
        match task with
        | Some bar ->
            pending <- pending + count
            // The bar is touched at most ten times a second (Spectre redraws at that rate anyway): formatting the
            // status, and even Increment (a lock and a speed sample), cost more than a step of a small model.
            if clock.ElapsedMilliseconds - lastShown >= 100L then
                lastShown <- clock.ElapsedMilliseconds
                bar.Increment(float pending)
                pending <- 0
                bar.Description <- Markup.Escape(title + "  " + describe.Invoke())
        | None -> ()
    override _.EpochFinished summary =
        match task with
        | Some bar ->
            pending <- 0
            bar.Value <- bar.MaxValue
            bar.Description <- Markup.Escape summary
            bar.StopTask()
        | None -> ()

/// Choosing and running a progress display.
[<RequireQualifiedAccess>]
module internal Progress =
    /// True when standard output is a terminal and the CI variable is unset: a live bar is useful.
    let isInteractive () = not Console.IsOutputRedirected && String.IsNullOrEmpty(Environment.GetEnvironmentVariable "CI")

    /// Runs `body` with a live bar when `live` is true, else with plain lines on standard output.
    let run (live: bool) (body: ProgressReporter -> 'T) : 'T =
        if live then
            AnsiConsole
                .Progress()
                .AutoClear(false)
                .Columns(
                    [|
                        TaskDescriptionColumn() :> ProgressColumn
                        ProgressBarColumn()
                        PercentageColumn()
                        RemainingTimeColumn()
                    |]
                )
                .Start(fun ctx -> body (BarProgress ctx))
        else
            body (LineProgress())
