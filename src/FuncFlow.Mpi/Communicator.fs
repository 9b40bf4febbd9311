namespace FuncFlow.Distributed

open System
open System.Runtime.InteropServices

/// How a communicator reaches the other ranks: MPI, or nothing for a process alone.
type internal Transport =
    inherit IDisposable
    abstract Rank: int
    abstract Size: int
    abstract Sum: Array -> unit
    abstract Broadcast: Array * int -> unit
    abstract Barrier: unit -> unit
    abstract Abort: int -> unit

/// One process alone: the collectives leave the values as they are.
type internal LocalTransport() =
    interface Transport with
        member _.Rank = 0
        member _.Size = 1
        member _.Sum _ = ()
        member _.Broadcast(_, _) = ()
        member _.Barrier() = ()
        member _.Abort code = exit code
        member _.Dispose() = ()

/// MPI_COMM_WORLD of OpenMPI; disposing it calls MPI_Finalize.
type internal MpiTransport(handles: Native.Handles) =
    let rank, size =
        let mutable r = 0
        let mutable s = 0
        Native.MPI_Comm_rank(handles.CommWorld, &r) |> Native.check "MPI_Comm_rank"
        Native.MPI_Comm_size(handles.CommWorld, &s) |> Native.check "MPI_Comm_size"
        r, s
    let mutable finalized = false

    // The array is pinned only for the call; MPI keeps no reference to it afterwards (blocking collectives).
    let pinned (call: string) (values: Array) (f: nativeint -> int -> nativeint -> int) =
        let handle = GCHandle.Alloc(values, GCHandleType.Pinned)
        try
            let datatype = if values :? float[] then handles.Double else handles.Float
            f (handle.AddrOfPinnedObject()) values.Length datatype |> Native.check call
        finally
            handle.Free()

    interface Transport with
        member _.Rank = rank
        member _.Size = size

        member _.Sum values =
            pinned "MPI_Allreduce" values (fun p n t -> Native.MPI_Allreduce(Native.InPlace, p, n, t, handles.Sum, handles.CommWorld))

        member _.Broadcast(values, root) = pinned "MPI_Bcast" values (fun p n t -> Native.MPI_Bcast(p, n, t, root, handles.CommWorld))

        member _.Barrier() = Native.MPI_Barrier handles.CommWorld |> Native.check "MPI_Barrier"
        member _.Abort code = Native.MPI_Abort(handles.CommWorld, code) |> ignore

        member _.Dispose() =
            if not finalized then
                finalized <- true
                Native.MPI_Finalize() |> Native.check "MPI_Finalize"

/// The processes training together: this one's rank among Size ranks, and the collective operations data-parallel
/// training uses on float64 or float32 arrays. Every collective must be called by every rank, in the same order.
/// The counters record how often this rank took part in each, so tests can check how training communicates.
/// Made by Mpi.init (or Communicator.Local()); disposing an MPI one calls MPI_Finalize.
[<Sealed>]
type Communicator internal (transport: Transport) =
    let mutable allreduces = 0
    let mutable broadcasts = 0

    static let checkValues (op: string) (values: Array) =
        match values with
        | null -> nullArg "values"
        | :? (float[])
        | :? (float32[]) -> ()
        | _ -> invalidArg "values" (sprintf "Communicator.%s: pass float[] or float32[], got %s" op (values.GetType().Name))

    /// A communicator for one process alone (rank 0 of 1): the collectives leave the values as they are.
    static member Local() = new Communicator(new LocalTransport())

    /// This process's rank, from 0.
    member _.Rank = transport.Rank
    /// The number of ranks.
    member _.Size = transport.Size
    /// True on rank 0, the rank that prints and saves.
    member _.IsRoot = transport.Rank = 0

    /// Replaces the values, on every rank, by their elementwise sum over the ranks (MPI_Allreduce, MPI_SUM, in place).
    member _.AllreduceSum(values: Array) =
        checkValues "AllreduceSum" values
        allreduces <- allreduces + 1
        transport.Sum values

    /// Replaces the values on every rank by those of rank `root` (MPI_Bcast).
    member _.Broadcast(values: Array, root: int) =
        checkValues "Broadcast" values
        if root < 0 || root >= transport.Size then
            raise (ArgumentOutOfRangeException("root", sprintf "Communicator.Broadcast: root %d is not a rank of %d" root transport.Size))
        broadcasts <- broadcasts + 1
        transport.Broadcast(values, root)

    /// Waits until every rank has called Barrier.
    member _.Barrier() = transport.Barrier()

    /// Ends every rank's process with the given exit code (MPI_Abort); used when one rank fails, so that the others
    /// do not wait for it forever.
    member _.Abort(code: int) = transport.Abort code

    /// The number of AllreduceSum calls this rank made.
    member _.AllreduceCount = allreduces
    /// The number of Broadcast calls this rank made.
    member _.BroadcastCount = broadcasts

    interface IDisposable with
        member _.Dispose() = transport.Dispose()

/// Joining the ranks that mpirun started, or running alone.
[<RequireQualifiedAccess>]
module Mpi =
    /// The number of ranks in this job, from the OMPI_COMM_WORLD_SIZE that OpenMPI's mpirun sets for each rank;
    /// None when this process was not started by mpirun.
    let launchedSize () =
        match Int32.TryParse(Environment.GetEnvironmentVariable "OMPI_COMM_WORLD_SIZE") with
        | true, n -> Some n
        | _ -> None

    let mutable private world: Communicator option = None

    /// The communicator of this process's job: MPI_COMM_WORLD when started by mpirun (MPI_Init is called once), else a
    /// Communicator.Local(), so the same program trains alone when started without mpirun or without OpenMPI. Raises
    /// InvalidOperationException when mpirun started several ranks but libmpi.so.40 cannot be loaded (each would
    /// otherwise train alone, silently). Also makes an unhandled exception on any thread abort the whole job.
    let init () : Communicator =
        lock typeof<Communicator> (fun () ->
            match world with
            | Some c -> c
            | None ->
                let c =
                    match launchedSize () with
                    | None -> Communicator.Local()
                    | Some n ->
                        match Native.tryLoad () with
                        | None when n <= 1 -> Communicator.Local()
                        | None ->
                            raise (
                                InvalidOperationException(
                                    sprintf
                                        "Mpi.init: mpirun started %d ranks but %s could not be loaded; install OpenMPI (openmpi-bin, libopenmpi-dev)"
                                        n
                                        Native.Library
                                )
                            )
                        | Some handles ->
                            let mutable flag = 0
                            Native.MPI_Initialized(&flag) |> Native.check "MPI_Initialized"
                            if flag = 0 then Native.MPI_Init(0n, 0n) |> Native.check "MPI_Init"
                            let c = new Communicator(new MpiTransport(handles))
                            // A rank that dies of an exception outside Mpi.run must not leave the others waiting in a
                            // collective: MPI_Abort makes mpirun end them all.
                            AppDomain.CurrentDomain.UnhandledException.Add(fun e ->
                                eprintfn "rank %d of %d: unhandled exception, aborting the job: %O" c.Rank c.Size e.ExceptionObject
                                c.Abort 1)
                            c
                world <- Some c
                c)

    /// Runs a program's body on this job's communicator (Mpi.init) and returns its exit code. When the body throws
    /// on any rank, that rank prints the error with its rank and calls MPI_Abort, so mpirun ends every rank with a
    /// non-zero code instead of leaving the others blocked in their next collective. MPI_Finalize runs at the end.
    let run (body: Communicator -> int) : int =
        let comm = init ()
        let code =
            try
                body comm
            with e ->
                eprintfn "rank %d of %d failed, aborting the job: %O" comm.Rank comm.Size e
                Console.Error.Flush()
                comm.Abort 1
                1
        (comm :> IDisposable).Dispose()
        code
