/// GradCheck pinned at its documented threshold, |analytic - numeric| <= atol + rtol |numeric| with atol 1e-5
/// and rtol 1e-3: a disagreement of 0.99 times the tolerance passes and one of 1.01 times fails, in full and
/// fast mode, for check and checkGradGrad, where atol dominates and where rtol does.
///
/// The disagreement is made exactly. At x = 0, the checked derivative of a cubic term c x^3 is 0, while its
/// central difference ((c eps^3) - (-c eps^3)) / (2 eps) is c eps^2: Grad's rules are exact, so the numeric
/// side is what this test controls. For f = a L(x) + c C(x), with L's checked derivative 1 and C a cubic,
/// analytic = a k1 and numeric = a k1 + c k3, where k1 and k3 are what the check's random projections (fast
/// mode, and gradgradcheck's seeds) make of L's 1 and C's eps^2; two probe checks measure them.
module FuncFlow.Tests.GradCheckThresholdTests

open System.Collections.Generic
open Expecto
open FuncFlow
open FuncFlow.Tests.Support

/// The documented tolerances, written out rather than read from GradCheckOptions.Default, so that loosening
/// the defaults (or the comparison) fails these tests.
let private atol, rtol = 1e-5, 1e-3

let private x = Expr.var "x" [||]
let private atZero = Eval.bindings [ "x", Tensor.scalar 0.0 ]

type private Check = GradCheckOptions -> IReadOnlyDictionary<string, Tensor> -> Expr list -> Expr -> GradCheckReport

/// A check and the functions whose checked derivative is 1 (L) and a cubic's (C): for checkGradGrad the
/// checked derivative is that of f', so L and C are integrals of x and x^3.
let private modes: Map<string, Check * (Expr -> Expr) * (Expr -> Expr)> =
    Map
        [
            "check", (GradCheck.check, id, Expr.powScalar 3.0)
            "checkGradGrad", (GradCheck.checkGradGrad, (fun x -> 0.5 * (x * x)), (fun x -> 0.25 * Expr.powScalar 4.0 x))
        ]

/// The options, a, c and the report for f = a L + c C, with a set so that the analytic derivative has magnitude
/// `analytic` and c so that the error is `ratio` times the documented tolerance.
let private atRatio (check: Check) (linear: Expr -> Expr) (cubic: Expr -> Expr) (fast: bool) (analytic: float) (ratio: float) =
    let options = { GradCheckOptions.Default with Fast = fast }
    let run f = check options atZero [ x ] f
    let k1 = (run (linear x)).Analytic
    let k3 = (run (cubic x)).Numeric
    Expect.isTrue (k1 <> 0.0 && k3 <> 0.0) (sprintf "probes: k1 %g, k3 %g" k1 k3)
    if not fast then
        // Without projections the probes are L' = 1 and eps^2 (gradgradcheck's two seeds scale both alike).
        expectWithin 1e-6 1.0 (k3 / k1 / (options.Eps * options.Eps)) "probes without projections: k3 / (k1 eps^2)"
    let a = analytic / abs k1
    // error c |k3| = ratio (atol + rtol |a k1 + c k3|), and k1, k3 have the same sign (k3 / k1 is eps^2 v^2).
    let c = ratio * (atol + rtol * abs (a * k1)) / (abs k3 * (1.0 - ratio * rtol))
    let report = run (a * linear x + c * cubic x)
    let tolerance = atol + rtol * abs report.Numeric
    // The construction did what it meant: the error is ratio times the documented tolerance (to rounding).
    expectWithin 1e-4 ratio (report.Error / tolerance) (sprintf "error %g in tolerances" report.Error)
    options, a, c, report

/// Checks one mode at 0.99 and 1.01 times the tolerance, through the report and through the asserting form.
let checkThreshold (mode: string) (fast: bool) (analytic: float) =
    let check, linear, cubic = modes[mode]
    let assertOk = if mode = "check" then GradCheck.assertOk else GradCheck.assertGradGradOk
    for ratio in [ 0.99; 1.01 ] do
        let options, a, c, report = atRatio check linear cubic fast analytic ratio
        let what = sprintf "%s (fast %b), analytic %g, error %g tolerances" mode fast analytic ratio
        let f = a * linear x + c * cubic x
        if ratio < 1.0 then
            Expect.isTrue report.Passed (sprintf "%s should pass: %s" what report.Message)
            assertOk options atZero [ x ] f
        else
            Expect.isFalse report.Passed (sprintf "%s should fail: %s" what report.Message)
            Expect.stringContains report.Message "FAILED" "the report's message"
            throws<GradCheckException>(fun () -> assertOk options atZero [ x ] f) |> ignore

[<Tests>]
let tests =
    moduleTests
        "GradCheckThresholdTests"
        [
            // analytic 0: the tolerance is essentially atol; analytic 1000: essentially rtol * 1000.
            for mode in [ "check"; "checkGradGrad" ] do
                for fast in [ false; true ] do
                    for analytic in [ 0.0; 1000.0 ] do
                        testCase (
                            sprintf
                                "%s (fast %b, analytic %g) passes an error just under atol + rtol |numeric| and fails one just over"
                                mode
                                fast
                                analytic
                        )
                        <| fun () -> checkThreshold mode fast analytic
            testCase "the default options are PyTorch gradcheck's"
            <| fun () ->
                let d = GradCheckOptions.Default
                Expect.equal (d.Eps, d.Atol, d.Rtol, d.Fast) (1e-6, atol, rtol, false) "GradCheckOptions.Default"
        ]
