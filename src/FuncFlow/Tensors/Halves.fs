namespace FuncFlow

open System
open System.Runtime.ExceptionServices
open System.Threading

/// Work over a range [0, count) that can be run in pieces. thread is 0 on the calling thread and 1 on the
/// worker, for a job that keeps scratch space per thread.
type internal IRangeJob =
    abstract Run: start: int * stop: int * thread: int -> unit

/// Fork-join on two cores for kernels made of many independent small pieces (a convolution's per-sample
/// GEMMs, too small for OpenBLAS to thread, its planes of im2col and pooling, a fused group's blocks), without
/// a task or closure per call: plans must allocate nothing. The caller claims a job's pieces one at a time
/// from the front and one persistent worker thread from the back until they meet: each thread keeps the
/// same half of the data from one kernel to the next (in its core's cache), and a worker that wakes late,
/// or a core the host takes away for a while, leaves its share to the other thread instead of making it
/// wait. One fork-join at a time: a caller that finds the worker busy (another plan on another thread) runs
/// the whole range itself.
module internal Halves =
    // The claim word: the fork's number (bits 33-63, reused only after 2^30 forks), whether the worker
    // claimed a piece of it (bit 32), the end of the pieces not yet claimed from the back (bits 16-31) and the
    // next piece from the front (bits 0-15). A claim is a compare-exchange of the whole word, so one that
    // succeeds was made while that fork's job was the current one.
    let private frontOf (claim: int64) = int (claim &&& 0xFFFFL)
    let private backOf (claim: int64) = int ((claim >>> 16) &&& 0xFFFFL)
    let private workerClaimed = 1L <<< 32
    let private forkUnit = 1L <<< 33

    type private Worker() as worker =
        let start = new SemaphoreSlim(0)
        let finished = new SemaphoreSlim(0)
        [<DefaultValue>]
        val mutable Job: IRangeJob
        [<DefaultValue>]
        val mutable Count: int
        [<DefaultValue>]
        val mutable Pieces: int
        [<DefaultValue>]
        val mutable Claim: int64
        [<DefaultValue>]
        val mutable Failure: exn
        do
            let thread = Thread((fun () -> worker.Loop()), IsBackground = true, Name = "FuncFlow kernel half")
            thread.Start()

        member private w.Loop() =
            while true do
                start.Wait()
                // Woken for a fork that is over, it claims nothing and owes no signal.
                if w.Share 1 then finished.Release() |> ignore

        /// Claims pieces of the current fork (thread 0 from the front, the worker from the back) and runs them
        /// until none is left; true if it ran any. A piece that throws on the worker is recorded for the
        /// caller, which rethrows it.
        member w.Share(thread: int) : bool =
            let mutable ran = false
            let mutable claim = Volatile.Read(&w.Claim)
            while frontOf claim < backOf claim do
                let job, count, pieces = w.Job, int64 w.Count, int64 w.Pieces
                let piece, claimed =
                    if thread = 0 then
                        frontOf claim, claim + 1L
                    else
                        backOf claim - 1, (claim - (1L <<< 16)) ||| workerClaimed
                let seen = Interlocked.CompareExchange(&w.Claim, claimed, claim)
                if seen = claim then
                    ran <- true
                    let first, stop = int (count * int64 piece / pieces), int (count * int64 (piece + 1) / pieces)
                    if thread = 0 then
                        job.Run(first, stop, thread)
                    else
                        try
                            job.Run(first, stop, thread)
                        with e ->
                            w.Failure <- e
                    claim <- Volatile.Read(&w.Claim)
                else
                    claim <- seen
            ran

        /// Opens a fork of job over [0, count) in pieces and wakes the worker.
        member w.Fork(job: IRangeJob, count: int, pieces: int) =
            w.Job <- job
            w.Count <- count
            w.Pieces <- pieces
            w.Failure <- null
            let fork = (Volatile.Read(&w.Claim) &&& ~~~(forkUnit - 1L)) + forkUnit
            Volatile.Write(&w.Claim, fork ||| (int64 pieces <<< 16))
            start.Release() |> ignore

        /// Closes the fork to further claims (pieces left after an exception stay undone), waits for the
        /// worker's pieces, and rethrows the worker's exception, if any, as it was thrown.
        member w.Join() =
            let mutable claim = Volatile.Read(&w.Claim)
            while frontOf claim < backOf claim do
                let closed = (claim &&& ~~~0xFFFFL) ||| int64 (backOf claim)
                let seen = Interlocked.CompareExchange(&w.Claim, closed, claim)
                claim <- if seen = claim then closed else seen
            if claim &&& workerClaimed <> 0L then finished.Wait()
            w.Job <- Unchecked.defaultof<_>
            if not (isNull w.Failure) then
                let e = w.Failure
                w.Failure <- null
                ExceptionDispatchInfo.Capture(e).Throw()

    let private worker = lazy (Worker())
    let private gate = obj ()

    /// True when a second core is there to take pieces of a job (FUNCFLOW_KERNEL_THREADS=1 keeps kernels on
    /// the calling thread, as OMP_NUM_THREADS=1 does PyTorch's).
    let available =
        Environment.ProcessorCount >= 2
        && Environment.GetEnvironmentVariable "FUNCFLOW_KERNEL_THREADS" <> "1"

    /// Runs job over [0, count) in up to `pieces` equal pieces (at most one per element, at most 65535)
    /// shared between this thread and the worker when the worker is free; otherwise the whole range here.
    let run (job: IRangeJob) (count: int) (pieces: int) =
        let pieces = min (min pieces count) 0xFFFF
        if not available || pieces < 2 || not (Monitor.TryEnter gate) then
            job.Run(0, count, 0)
        else
            try
                let w = worker.Force()
                w.Fork(job, count, pieces)
                try
                    w.Share 0 |> ignore
                finally
                    w.Join()
            finally
                Monitor.Exit gate
