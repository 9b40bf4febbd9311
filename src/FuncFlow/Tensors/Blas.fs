// Pinning arrays for the native call is the point of this file.
#nowarn "9"

namespace FuncFlow

open System
open System.Buffers
open System.Numerics
open System.Numerics.Tensors
open System.Runtime.InteropServices
open System.Threading
open System.Threading.Tasks
open Microsoft.FSharp.NativeInterop

/// Which GEMM implementation FuncFlow uses. Internal: users choose with FUNCFLOW_BLAS=managed, not in code.
type internal BlasProvider =
    /// OpenBLAS, loaded from the system (Debian's libopenblas0).
    | OpenBlas
    /// A managed, cache-blocked GEMM used when OpenBLAS is absent or FUNCFLOW_BLAS=managed.
    | Managed

module internal OpenBlasNative =
    // CBLAS enums: row-major 101; no transpose 111, transpose 112.
    [<Literal>]
    let RowMajor = 101

    [<DllImport("libopenblas.so.0", EntryPoint = "cblas_dgemm")>]
    extern void dgemm(
        int order,
        int transA,
        int transB,
        int m,
        int n,
        int k,
        double alpha,
        nativeint a,
        int lda,
        nativeint b,
        int ldb,
        double beta,
        nativeint c,
        int ldc
    )

    [<DllImport("libopenblas.so.0")>]
    extern void openblas_set_num_threads(int threads)

    [<DllImport("libopenblas.so.0", EntryPoint = "cblas_sgemm")>]
    extern void sgemm(
        int order,
        int transA,
        int transB,
        int m,
        int n,
        int k,
        float32 alpha,
        nativeint a,
        int lda,
        nativeint b,
        int ldb,
        float32 beta,
        nativeint c,
        int ldc
    )

/// The managed GEMM: one row of C at a time, vectorised along rows with TensorPrimitives; rows are
/// independent, so large products split them across threads. Each entry sums its k terms in order and C is
/// added last, whatever the transpositions: a product and its transposed form (A B against (B^T A^T)^T,
/// which plans and Eval may choose differently) give the same bits, as with OpenBLAS's packed kernels. (MathNet's
/// managed provider takes whole column-major arrays, without offsets or leading dimensions, so batched
/// products would need copies.)
type internal ManagedGemm<'T when 'T :> IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType> =
    /// Row i of alpha op(A) B into row[rowOff ..], B not transposed: the row gains alpha a(i, p) B[p, :] for
    /// each p along contiguous rows of B.
    static member private Product
        (i: int, transA: bool, n: int, k: int, alpha: 'T, a: 'T[], aOff: int, lda: int, b: 'T[], bOff: int, ldb: int, row: 'T[], rowOff: int) : unit =
        let row = Span<'T>(row, rowOff, n)
        row.Clear()
        for p in 0 .. k - 1 do
            let aip = if transA then a[aOff + p * lda + i] else a[aOff + i * lda + p]
            if not ('T.IsZero aip) then
                TensorPrimitives.MultiplyAdd(ReadOnlySpan<'T>(b, bOff + p * ldb, n), alpha * aip, Span<'T>.op_Implicit row, row)

    static member private Row
        (
            i: int,
            transA: bool,
            n: int,
            k: int,
            alpha: 'T,
            a: 'T[],
            aOff: int,
            lda: int,
            b: 'T[],
            bOff: int,
            ldb: int,
            beta: 'T,
            c: 'T[],
            cOff: int,
            ldc: int
        ) : unit =
        // beta = 0 overwrites C, NaNs included, as BLAS does.
        if 'T.IsZero beta then
            ManagedGemm<'T>.Product(i, transA, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff + i * ldc)
        else
            let product = ArrayPool<'T>.Shared.Rent n
            ManagedGemm<'T>.Product(i, transA, n, k, alpha, a, aOff, lda, b, bOff, ldb, product, 0)
            let cRow = Span<'T>(c, cOff + i * ldc, n)
            if not ('T.IsZero(beta - 'T.One)) then
                TensorPrimitives.Multiply(Span<'T>.op_Implicit cRow, beta, cRow)
            TensorPrimitives.Add(ReadOnlySpan<'T>(product, 0, n), Span<'T>.op_Implicit cRow, cRow)
            ArrayPool<'T>.Shared.Return product

    static member Run
        (
            transA: bool,
            transB: bool,
            m: int,
            n: int,
            k: int,
            alpha: 'T,
            a: 'T[],
            aOff: int,
            lda: int,
            b: 'T[],
            bOff: int,
            ldb: int,
            beta: 'T,
            c: 'T[],
            cOff: int,
            ldc: int
        ) : unit =
        if transB then
            // A transposed B is copied to k x n rows once, so every product runs along contiguous rows of B.
            let packed = ArrayPool<'T>.Shared.Rent(k * n)
            for p in 0 .. k - 1 do
                for j in 0 .. n - 1 do
                    packed[p * n + j] <- b[bOff + j * ldb + p]
            ManagedGemm<'T>.Run(transA, false, m, n, k, alpha, a, aOff, lda, packed, 0, n, beta, c, cOff, ldc)
            ArrayPool<'T>.Shared.Return packed
        elif int64 m * int64 n * int64 k >= 1_000_000L then
            Parallel.For(0, m, fun i -> ManagedGemm<'T>.Row(i, transA, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc))
            |> ignore
        else
            for i in 0 .. m - 1 do
                ManagedGemm<'T>.Row(i, transA, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc)

/// General matrix multiply, C = alpha op(A) op(B) + beta C, on row-major arrays with offsets.
/// OpenBLAS is probed once; without it a managed kernel gives the same results to rounding.
/// Internal: the kernels' building block, with no shape checks a user could read; tests and the bench see it.
module internal Blas =
    let private probe () =
        match Environment.GetEnvironmentVariable "FUNCFLOW_BLAS" with
        | "managed" -> Managed
        | _ ->
            let mutable handle = 0n
            if NativeLibrary.TryLoad("libopenblas.so.0", &handle) then OpenBlas else Managed

    // FuncFlow splits products between the cores itself (Halved.MatMul), so OpenBLAS runs on the calling
    // thread: its own threads, woken for products of any size, made small products slower 1 time in 2.
    let threadsProducts = Environment.GetEnvironmentVariable "FUNCFLOW_GEMM_SPLIT" <> "0"

    let private probed =
        lazy
            (let p = probe ()
             if p = OpenBlas && threadsProducts then OpenBlasNative.openblas_set_num_threads 1
             p)
    // A per-flow override, so that comparing implementations never changes what other threads use.
    let private scoped = AsyncLocal<BlasProvider voption>()

    /// The implementation in use on this thread: FUNCFLOW_BLAS=managed or the probe, unless withProvider overrides it.
    let provider () =
        match scoped.Value with
        | ValueSome p -> p
        | ValueNone -> probed.Value

    /// Runs f with the given implementation for this thread and the tasks it starts, other threads unaffected
    /// (tests compare both); OpenBlas fails if the library cannot be loaded.
    let withProvider (p: BlasProvider) (f: unit -> 'a) : 'a =
        if p = OpenBlas then
            let mutable handle = 0n
            if not (NativeLibrary.TryLoad("libopenblas.so.0", &handle)) then
                invalidOp "Blas.withProvider: libopenblas.so.0 could not be loaded (install Debian's libopenblas0-pthread)"
        let before = scoped.Value
        scoped.Value <- ValueSome p
        try
            f ()
        finally
            scoped.Value <- before

    let private checkRange op (name: string) (arr: Array) (off: int) (rows: int) (cols: int) (ld: int) =
        if isNull arr then nullArg name
        // In int64: a large leading dimension must not wrap around and pass.
        if
            rows > 0
            && cols > 0
            && (off < 0 || ld < cols || int64 off + int64 (rows - 1) * int64 ld + int64 cols > int64 arr.Length)
        then
            invalidArg
                name
                (sprintf
                    "%s: operand %s, a %dx%d matrix at offset %d with leading dimension %d, does not fit in its %d values (the leading dimension must be at least %d)"
                    op
                    name
                    rows
                    cols
                    off
                    ld
                    arr.Length
                    cols)

    let private check op transA transB m n k (a: Array) aOff lda (b: Array) bOff ldb (c: Array) cOff ldc =
        if m < 0 || n < 0 || k < 0 then
            invalidArg "m" (sprintf "%s: sizes must be non-negative, got m=%d n=%d k=%d" op m n k)
        (if transA then checkRange op "a" a aOff k m lda else checkRange op "a" a aOff m k lda)
        (if transB then checkRange op "b" b bOff n k ldb else checkRange op "b" b bOff k n ldb)
        checkRange op "c" c cOff m n ldc

    let private flag transposed = if transposed then 112 else 111

    // The shared driver: checks, then OpenBLAS (through `native`, inlined so that no closure is allocated)
    // or the managed kernel, which also covers k = 0 (C scaled by beta), a case BLAS need not handle.
    let inline private gemm<'T when 'T :> IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType>
        op
        ([<InlineIfLambda>] native: unit -> unit)
        transA
        transB
        m
        n
        k
        (alpha: 'T)
        (a: 'T[])
        aOff
        lda
        (b: 'T[])
        bOff
        ldb
        (beta: 'T)
        (c: 'T[])
        cOff
        ldc
        =
        check op transA transB m n k a aOff lda b bOff ldb c cOff ldc
        if m > 0 && n > 0 then
            if k > 0 && provider () = OpenBlas then
                native ()
            else
                ManagedGemm<'T>.Run(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc)

    /// Double-precision GEMM on row-major storage.
    let dgemm
        (
            transA: bool,
            transB: bool,
            m: int,
            n: int,
            k: int,
            alpha: float,
            a: float[],
            aOff: int,
            lda: int,
            b: float[],
            bOff: int,
            ldb: int,
            beta: float,
            c: float[],
            cOff: int,
            ldc: int
        ) =
        gemm
            "Blas.dgemm"
            (fun () ->
                use pa = fixed &a[aOff]
                use pb = fixed &b[bOff]
                use pc = fixed &c[cOff]
                OpenBlasNative.dgemm (
                    OpenBlasNative.RowMajor,
                    flag transA,
                    flag transB,
                    m,
                    n,
                    k,
                    alpha,
                    NativePtr.toNativeInt pa,
                    lda,
                    NativePtr.toNativeInt pb,
                    ldb,
                    beta,
                    NativePtr.toNativeInt pc,
                    ldc
                ))
            transA
            transB
            m
            n
            k
            alpha
            a
            aOff
            lda
            b
            bOff
            ldb
            beta
            c
            cOff
            ldc

    /// Single-precision GEMM on row-major storage.
    let sgemm
        (
            transA: bool,
            transB: bool,
            m: int,
            n: int,
            k: int,
            alpha: float32,
            a: float32[],
            aOff: int,
            lda: int,
            b: float32[],
            bOff: int,
            ldb: int,
            beta: float32,
            c: float32[],
            cOff: int,
            ldc: int
        ) =
        gemm
            "Blas.sgemm"
            (fun () ->
                use pa = fixed &a[aOff]
                use pb = fixed &b[bOff]
                use pc = fixed &c[cOff]
                OpenBlasNative.sgemm (
                    OpenBlasNative.RowMajor,
                    flag transA,
                    flag transB,
                    m,
                    n,
                    k,
                    alpha,
                    NativePtr.toNativeInt pa,
                    lda,
                    NativePtr.toNativeInt pb,
                    ldb,
                    beta,
                    NativePtr.toNativeInt pc,
                    ldc
                ))
            transA
            transB
            m
            n
            k
            alpha
            a
            aOff
            lda
            b
            bOff
            ldb
            beta
            c
            cOff
            ldc
