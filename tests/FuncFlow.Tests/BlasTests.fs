/// Both GEMM providers (OpenBLAS and the managed fallback) give the same products.
module FuncFlow.Tests.BlasTests

open System
open Xunit
open FuncFlow

let private withProvider p f = Blas.withProvider p f

let private openBlasPresent () =
    try
        withProvider OpenBlas ignore
        true
    with :? InvalidOperationException -> false

// m, n, k chosen so that no dimension equals another and the managed kernel's threaded path is hit too.
let private cases =
    [ for transA in [ false; true ] do
          for transB in [ false; true ] do
              for (m, n, k) in [ (3, 5, 7); (67, 45, 129) ] -> transA, transB, m, n, k ]

// Operands stored at an offset inside larger arrays, with leading dimensions wider than the matrices.
let private layout (trans: bool) (rows: int) (cols: int) (off: int) =
    let stored, ld = (if trans then cols, rows + 2 else rows, cols + 3)
    ld, off + stored * ld

[<Fact>]
let ``dgemm: OpenBLAS and managed agree for every transpose combination, with offsets`` () =
    if openBlasPresent () then
        let rng = Random 11
        for (transA, transB, m, n, k) in cases do
            let lda, aLen = layout transA m k 5
            let ldb, bLen = layout transB k n 3
            let ldc, cLen = n + 1, 2 + m * (n + 1)
            let a = Array.init aLen (fun _ -> rng.NextDouble() - 0.5)
            let b = Array.init bLen (fun _ -> rng.NextDouble() - 0.5)
            let c0 = Array.init cLen (fun _ -> rng.NextDouble())
            let run p =
                withProvider p (fun () ->
                    let c = Array.copy c0
                    Blas.dgemm (transA, transB, m, n, k, 0.7, a, 5, lda, b, 3, ldb, 0.3, c, 2, ldc)
                    c)
            let viaOpenBlas, viaManaged = run OpenBlas, run Managed
            for i in 0 .. cLen - 1 do
                Assert.True(abs (viaOpenBlas[i] - viaManaged[i]) <= 1e-12 * (1.0 + abs viaManaged[i]),
                            sprintf "transA=%b transB=%b m=%d n=%d k=%d: index %d differs (%g vs %g)" transA transB m n k i viaOpenBlas[i] viaManaged[i])

[<Fact>]
let ``sgemm: OpenBLAS and managed agree for every transpose combination, with offsets`` () =
    if openBlasPresent () then
        let rng = Random 12
        for (transA, transB, m, n, k) in cases do
            let lda, aLen = layout transA m k 4
            let ldb, bLen = layout transB k n 1
            let ldc, cLen = n + 2, 3 + m * (n + 2)
            let a = Array.init aLen (fun _ -> float32 (rng.NextDouble() - 0.5))
            let b = Array.init bLen (fun _ -> float32 (rng.NextDouble() - 0.5))
            let c0 = Array.init cLen (fun _ -> float32 (rng.NextDouble()))
            let run p =
                withProvider p (fun () ->
                    let c = Array.copy c0
                    Blas.sgemm (transA, transB, m, n, k, 0.7f, a, 4, lda, b, 1, ldb, 0.3f, c, 3, ldc)
                    c)
            let viaOpenBlas, viaManaged = run OpenBlas, run Managed
            for i in 0 .. cLen - 1 do
                Assert.True(abs (viaOpenBlas[i] - viaManaged[i]) <= 1e-4f * (1.0f + abs viaManaged[i]),
                            sprintf "transA=%b transB=%b m=%d n=%d k=%d: index %d differs (%g vs %g)" transA transB m n k i viaOpenBlas[i] viaManaged[i])

[<Fact>]
let ``withProvider switches the provider for its own flow only, and restores it`` () =
    let before = Blas.provider ()
    withProvider Managed (fun () ->
        Assert.Equal(Managed, Blas.provider ())
        // A thread started without this flow's context keeps the process-wide choice.
        let mutable elsewhere = Managed
        let thread = Threading.Thread(fun () -> elsewhere <- Blas.provider ())
        thread.UnsafeStart()
        thread.Join()
        Assert.Equal(before, elsewhere))
    Assert.Equal(before, Blas.provider ())
