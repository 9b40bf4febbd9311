namespace FuncFlow

open System
open System.Runtime.ExceptionServices
open System.Threading

/// Work over a range [0, count) that can be run in pieces.
type internal IRangeJob =
    abstract Run: start: int * stop: int -> unit

/// Fork-join in two halves for kernels made of many independent small pieces (a convolution's per-sample
/// GEMMs, too small for OpenBLAS to thread, or its planes of im2col and pooling), so that both cores work
/// without a task or closure per call: plans must allocate nothing. One persistent worker thread takes the
/// second half; the caller runs the first, then waits. One fork-join at a time: a caller that finds the
/// worker busy (another plan on another thread) runs the whole range itself.
module internal Halves =
    type private Worker() as worker =
        let start = new SemaphoreSlim(0)
        let finished = new SemaphoreSlim(0)
        [<DefaultValue>]
        val mutable Job: IRangeJob
        [<DefaultValue>]
        val mutable First: int
        [<DefaultValue>]
        val mutable Stop: int
        [<DefaultValue>]
        val mutable Failure: exn
        do
            let thread = Thread((fun () -> worker.Loop()), IsBackground = true, Name = "FuncFlow kernel half")
            thread.Start()

        member private w.Loop() =
            while true do
                start.Wait()
                try
                    w.Job.Run(w.First, w.Stop)
                with e ->
                    w.Failure <- e
                finished.Release() |> ignore

        member w.Fork(job: IRangeJob, first: int, stop: int) =
            w.Job <- job
            w.First <- first
            w.Stop <- stop
            w.Failure <- null
            start.Release() |> ignore

        /// Waits for the worker's half; its exception, if any, is rethrown here as it was thrown.
        member w.Join() =
            finished.Wait()
            w.Job <- Unchecked.defaultof<_>
            if not (isNull w.Failure) then
                let e = w.Failure
                w.Failure <- null
                ExceptionDispatchInfo.Capture(e).Throw()

    let private worker = lazy (Worker())
    let private gate = obj ()

    /// True when a second core is there to take half of a job (FUNCFLOW_KERNEL_THREADS=1 keeps kernels on
    /// the calling thread, as OMP_NUM_THREADS=1 does PyTorch's).
    let available =
        Environment.ProcessorCount >= 2
        && Environment.GetEnvironmentVariable "FUNCFLOW_KERNEL_THREADS" <> "1"

    /// Runs job over [0, count): [split, count) on the worker, [0, split) here, when the worker is free;
    /// otherwise the whole range here.
    let run (job: IRangeJob) (count: int) (split: int) =
        if not available || split <= 0 || split >= count || not (Monitor.TryEnter gate) then
            job.Run(0, count)
        else
            try
                let w = worker.Force()
                w.Fork(job, split, count)
                try
                    job.Run(0, split)
                finally
                    w.Join()
            finally
                Monitor.Exit gate
