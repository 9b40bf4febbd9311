/// Both GEMM providers (OpenBLAS and the managed fallback) give the same products.
module FuncFlow.Tests.BlasTests

open System
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

let private withProvider p f = Blas.withProvider p f

let private openBlasPresent () =
    try
        withProvider OpenBlas ignore
        true
    with :? InvalidOperationException ->
        false

// m, n, k chosen so that no dimension equals another and the managed kernel's threaded path is hit too.
let private cases =
    [
        for transA in [ false; true ] do
            for transB in [ false; true ] do
                for (m, n, k) in [ (3, 5, 7); (67, 45, 129) ] -> transA, transB, m, n, k
    ]

// Operands stored at an offset inside larger arrays, with leading dimensions wider than the matrices.
let private layout (trans: bool) (rows: int) (cols: int) (off: int) =
    let stored, ld = (if trans then cols, rows + 2 else rows, cols + 3)
    ld, off + stored * ld

// Runs a GEMM under both providers for every case, with operands at offsets (aOff, bOff, cOff) inside wider
// arrays and C's rows padded by cPad, and checks that the results agree to `tol` relative.
let private providersAgree
    (seed: int)
    (aOff: int, bOff: int, cOff: int, cPad: int)
    (tol: float)
    (ofFloat: float -> 'T)
    (toFloat: 'T -> float)
    (gemm: bool * bool * int * int * int * 'T[] * int * int * 'T[] * int * int * 'T[] * int * int -> unit)
    =
    // Without OpenBLAS there is nothing to compare: the test is reported as skipped, not passed.
    if not (openBlasPresent ()) then
        skiptest "OpenBLAS (libopenblas0-pthread) is not installed: only the managed GEMM is available"
    let rng = Random seed
    for (transA, transB, m, n, k) in cases do
        let lda, aLen = layout transA m k aOff
        let ldb, bLen = layout transB k n bOff
        let ldc, cLen = n + cPad, cOff + m * (n + cPad)
        let a = Array.init aLen (fun _ -> ofFloat (rng.NextDouble() - 0.5))
        let b = Array.init bLen (fun _ -> ofFloat (rng.NextDouble() - 0.5))
        let c0 = Array.init cLen (fun _ -> ofFloat (rng.NextDouble()))
        let run p =
            withProvider p (fun () ->
                let c = Array.copy c0
                gemm (transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc)
                c |> Array.map toFloat)
        let viaOpenBlas, viaManaged = run OpenBlas, run Managed
        for i in 0 .. cLen - 1 do
            Expect.isTrue
                (abs (viaOpenBlas[i] - viaManaged[i]) <= tol * (1.0 + abs viaManaged[i]))
                (sprintf
                    "transA=%b transB=%b m=%d n=%d k=%d: index %d differs (%g vs %g)"
                    transA
                    transB
                    m
                    n
                    k
                    i
                    viaOpenBlas[i]
                    viaManaged[i])

[<Tests>]
let tests =
    moduleTests
        "BlasTests"
        [
            testCase "dgemm: OpenBLAS and managed agree for every transpose combination, with offsets"
            <| fun () ->
                providersAgree 11 (5, 3, 2, 1) 1e-12 id id (fun (tA, tB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc) ->
                    Blas.dgemm (tA, tB, m, n, k, 0.7, a, aOff, lda, b, bOff, ldb, 0.3, c, cOff, ldc))
            testCase "sgemm: OpenBLAS and managed agree for every transpose combination, with offsets"
            <| fun () ->
                // float32 rounding: the bound is float32's 1e-4, compared in float64 after the exact widening of both results.
                providersAgree
                    12
                    (4, 1, 3, 2)
                    (float 1e-4f)
                    float32
                    float
                    (fun (tA, tB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc) ->
                        Blas.sgemm (tA, tB, m, n, k, 0.7f, a, aOff, lda, b, bOff, ldb, 0.3f, c, cOff, ldc))
            testCase "the managed GEMM gives the same bits for a product in every transposed form, and adds C last"
            <| fun () ->
                // Plans and Eval may compute one product in different forms (A B, or (B^T A^T)^T after a
                // rewrite); tests compare them bit for bit, also where OpenBLAS is missing.
                withProvider Managed (fun () ->
                    for (m, n, k) in [ (3, 5, 7); (67, 45, 129) ] do
                        let rng = Random(m + k)
                        let a = Array.init (m * k) (fun _ -> rng.NextDouble() - 0.5)
                        let b = Array.init (k * n) (fun _ -> rng.NextDouble() - 0.5)
                        let c0 = Array.init (m * n) (fun _ -> rng.NextDouble() - 0.5)
                        let transpose rows cols (x: float[]) = Array.init (rows * cols) (fun i -> x[(i % rows) * cols + i / rows])
                        let aT, bT = transpose m k a, transpose k n b
                        let gemm transA transB (x: float[]) (y: float[]) rows cols beta (c: float[]) =
                            let c = Array.copy c
                            let ldx = if transA then rows else k
                            let ldy = if transB then k else cols
                            Blas.dgemm (transA, transB, rows, cols, k, 1.0, x, 0, ldx, y, 0, ldy, beta, c, 0, cols)
                            c
                        let zeros = Array.zeroCreate (m * n)
                        let product = gemm false false a b m n 0.0 zeros
                        let bits (x: float[]) = Array.map BitConverter.DoubleToInt64Bits x
                        for (transA, transB) in [ (false, true); (true, false); (true, true) ] do
                            let x = if transA then aT else a
                            let y = if transB then bT else b
                            Expect.equal
                                (bits (gemm transA transB x y m n 0.0 zeros))
                                (bits product)
                                (sprintf "A B, transA=%b transB=%b" transA transB)
                        // C^T = B^T A^T, from B stored transposed and A stored transposed, read back transposed.
                        let viaTranspose = gemm false false bT aT n m 0.0 (Array.zeroCreate (m * n)) |> transpose n m
                        Expect.equal (bits viaTranspose) (bits product) "(B^T A^T)^T"
                        Expect.equal (bits (gemm false false a b m n 1.0 c0)) (bits (Array.map2 (+) product c0)) "A B + C"
                        Expect.equal
                            (bits (gemm true true aT bT m n 0.5 c0))
                            (bits (Array.map2 (fun p c -> p + 0.5 * c) product c0))
                            "A B + 0.5 C")
            testCase "a product big enough to be split between the cores equals the plain triple loop"
            <| fun () ->
                // Above 2^20 multiply-adds a plan's product runs in two halves, by rows when it has more rows
                // than columns and by columns otherwise; odd sizes give halves of unequal size.
                for (m, k, n) in [ (131, 97, 113); (103, 89, 157) ] do
                    for transA in [ false; true ] do
                        for transB in [ false; true ] do
                            let rng = Random(m + n)
                            let values count = Array.init count (fun _ -> rng.NextDouble() - 0.5)
                            let aValues, bValues = values (m * k), values (k * n)
                            let stored trans rows cols = if trans then [| cols; rows |] else [| rows; cols |]
                            let a = Expr.var "a" (stored transA m k)
                            let b = Expr.var "b" (stored transB k n)
                            let op trans (e: Expr) = if trans then Expr.transpose e else e
                            let plan = Plan.compile [ Expr.matmul (op transA a) (op transB b) ]
                            plan.Set("a", Tensor.create (stored transA m k) aValues)
                            plan.Set("b", Tensor.create (stored transB k n) bValues)
                            plan.Execute()
                            let at i p = if transA then aValues[p * m + i] else aValues[i * k + p]
                            let bt p j = if transB then bValues[j * k + p] else bValues[p * n + j]
                            let expected =
                                Array.init (m * n) (fun ij ->
                                    let i, j = ij / n, ij % n
                                    Seq.sum (seq { for p in 0 .. k - 1 -> at i p * bt p j }))
                            assertClose 1e-12 expected (plan.Output(0).ToArray())
            testCase "withProvider switches the provider for its own flow only, and restores it"
            <| fun () ->
                let before = Blas.provider ()
                withProvider Managed (fun () ->
                    Expect.equal (Blas.provider ()) Managed "Blas.provider ()"
                    // A thread started without this flow's context keeps the process-wide choice.
                    let mutable elsewhere = Managed
                    let thread = Threading.Thread(fun () -> elsewhere <- Blas.provider ())
                    thread.UnsafeStart()
                    thread.Join()
                    Expect.equal elsewhere before "elsewhere")
                Expect.equal (Blas.provider ()) before "Blas.provider ()"
        ]
