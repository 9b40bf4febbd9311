namespace FuncFlow.Distributed

open System
open System.Runtime.InteropServices

/// The few calls of OpenMPI's C library that data-parallel training needs, bound by P/Invoke. The library is
/// loaded only when a process was started by mpirun, so FuncFlow runs without OpenMPI installed.
module internal Native =
    [<Literal>]
    let Library = "libmpi.so.40"

    [<DllImport(Library)>]
    extern int MPI_Initialized(int& flag)

    // MPI-2 allows null argc and argv: .NET has no C main's arguments to hand over.
    [<DllImport(Library)>]
    extern int MPI_Init(nativeint argc, nativeint argv)

    [<DllImport(Library)>]
    extern int MPI_Finalize()

    [<DllImport(Library)>]
    extern int MPI_Comm_rank(nativeint comm, int& rank)

    [<DllImport(Library)>]
    extern int MPI_Comm_size(nativeint comm, int& size)

    [<DllImport(Library)>]
    extern int MPI_Bcast(nativeint buffer, int count, nativeint datatype, int root, nativeint comm)

    [<DllImport(Library)>]
    extern int MPI_Allreduce(nativeint sendbuf, nativeint recvbuf, int count, nativeint datatype, nativeint op, nativeint comm)

    [<DllImport(Library)>]
    extern int MPI_Barrier(nativeint comm)

    [<DllImport(Library)>]
    extern int MPI_Abort(nativeint comm, int errorcode)

    /// OpenMPI's MPI_IN_PLACE is the address 1 (mpi.h: `#define MPI_IN_PLACE ((void *) 1)`).
    let InPlace = nativeint 1

    /// OpenMPI's predefined handles (MPI_COMM_WORLD, MPI_DOUBLE...) are the addresses of exported objects
    /// (mpi.h: `#define MPI_COMM_WORLD OMPI_PREDEFINED_GLOBAL(MPI_Comm, ompi_mpi_comm_world)`), not constants.
    type Handles = { CommWorld: nativeint; Double: nativeint; Float: nativeint; Sum: nativeint }

    /// Loads libmpi.so.40 and reads its handles; None when the library is not installed.
    let tryLoad () : Handles option =
        match NativeLibrary.TryLoad Library with
        | true, lib ->
            let export name = NativeLibrary.GetExport(lib, name)
            Some
                {
                    CommWorld = export "ompi_mpi_comm_world"
                    Double = export "ompi_mpi_double"
                    Float = export "ompi_mpi_float"
                    Sum = export "ompi_mpi_op_sum"
                }
        | _ -> None

    /// Raises when an MPI call returns an error code (with MPI's default handler, errors abort before this).
    let check (call: string) (code: int) =
        if code <> 0 then
            raise (InvalidOperationException(sprintf "%s failed with MPI error code %d" call code))
