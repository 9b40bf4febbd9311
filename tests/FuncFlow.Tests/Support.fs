/// Helpers shared by the tests: property runs, value generators, gradient-check assertions.
module FuncFlow.Tests.Support

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FuncFlow

/// The seed of every property run: fixed so that CI is deterministic; set FUNCFLOW_FSCHECK_SEED to
/// explore other cases.
let private propertySeed =
    match Environment.GetEnvironmentVariable "FUNCFLOW_FSCHECK_SEED" with
    | null | "" -> 20250101UL
    | s -> UInt64.Parse s

/// Runs a property on `cases` values from a generator; a failing case throws with FsCheck's report.
let property (cases: int) (generator: Gen<'a>) (body: 'a -> unit) =
    let config =
        Config.QuickThrowOnFailure
            .WithMaxTest(cases)
            .WithQuietOnSuccess(true)
            .WithReplay(Some { Rnd = Rnd(propertySeed, 0x9E3779B97F4A7C15UL); Size = None })
    Check.One(config, Prop.forAll (Arb.fromGen generator) body)

/// A float uniform in [low, high), with 2^31 distinct values, so that ties and exact kinks are rare.
let genFloat (low: float) (high: float) : Gen<float> =
    Gen.choose (0, Int32.MaxValue - 1) |> Gen.map (fun i -> low + (high - low) * float i / float Int32.MaxValue)

/// A float with magnitude in [low, high) and a random sign: away from zero, for abs, relu and division.
let genAwayFromZero (low: float) (high: float) : Gen<float> =
    Gen.zip (genFloat low high) (Gen.elements [ 1.0; -1.0 ]) |> Gen.map (fun (m, s) -> m * s)

/// A float64 tensor of the given shape with values from a generator.
let genTensor (values: Gen<float>) (shape: int[]) : Gen<Tensor> =
    Gen.arrayOfLength (Shape.size shape) values |> Gen.map (Tensor.create shape)

/// A shape of the given rank with dimensions 1..maxDim.
let genShape (rank: int) (maxDim: int) : Gen<int[]> = Gen.arrayOfLength rank (Gen.choose (1, maxDim))

/// Bindings from (variable, value) pairs.
let bind (pairs: (Expr * Tensor) list) =
    Eval.bindings (pairs |> List.map (fun (v, t) -> (Expr.tryName v).Value, t))

/// Asserts that Grad agrees with central differences (PyTorch gradcheck's bar), naming the formula on failure.
let gradOk (options: GradCheckOptions) (pairs: (Expr * Tensor) list) (f: Expr) =
    let report = GradCheck.check options (bind pairs) (List.map fst pairs) f
    if not report.Passed then failwithf "%s\nformula: %s" report.Message (Print.formula f)

/// gradOk with PyTorch's default tolerances over the full Jacobian.
let gradcheck (pairs: (Expr * Tensor) list) (f: Expr) = gradOk GradCheckOptions.Default pairs f

/// Asserts that second derivatives agree with central differences of the gradient.
let gradgradcheck (pairs: (Expr * Tensor) list) (f: Expr) =
    let report = GradCheck.checkGradGrad GradCheckOptions.Default (bind pairs) (List.map fst pairs) f
    if not report.Passed then failwithf "%s\nformula: %s" report.Message (Print.formula f)

let private assertWithin (what: string) (bound: float -> float) (expected: float[]) (actual: float[]) =
    Assert.Equal(expected.Length, actual.Length)
    Array.iteri2
        (fun i (e: float) (a: float) ->
            if not (abs (a - e) <= bound e) then failwithf "element %d: expected %.17g, got %.17g (%s)" i e a what)
        expected actual

/// Asserts |actual - expected| <= tol * max(1, |expected|) elementwise, naming the element on failure.
let assertClose (tol: float) (expected: float[]) (actual: float[]) =
    assertWithin (sprintf "tolerance %g" tol) (fun e -> tol * max 1.0 (abs e)) expected actual

/// Asserts |actual - expected| <= tol * |expected| elementwise, naming the element on failure.
let assertRelative (tol: float) (expected: float[]) (actual: float[]) =
    assertWithin (sprintf "relative tolerance %g" tol) (fun e -> tol * abs e) expected actual
