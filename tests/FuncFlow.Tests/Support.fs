/// Helpers shared by the tests: module lists, property tests, value generators, assertions.
module FuncFlow.Tests.Support

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open FuncFlow

/// The seed of every property run: fixed so that CI is deterministic; set FUNCFLOW_FSCHECK_SEED to
/// explore other cases.
let private propertySeed =
    match Environment.GetEnvironmentVariable "FUNCFLOW_FSCHECK_SEED" with
    | null
    | "" -> 20250101UL
    | s -> UInt64.Parse s

/// FsCheck settings for `cases` cases from the fixed seed.
let propertyConfig (cases: int) : FsCheckConfig =
    { FsCheckConfig.defaultConfig with
        maxTest = cases
        replay = Some(propertySeed, 0x9E3779B97F4A7C15UL, None)
    }

/// A property test on `cases` values from a generator; a failing case fails the test with FsCheck's report.
let testPropertyFrom (name: string) (cases: int) (generator: Gen<'a>) (body: 'a -> unit) : Test =
    testPropertyWithConfig (propertyConfig cases) name (Prop.forAll (Arb.fromGen generator) body)

/// A float uniform in [low, high), with 2^31 distinct values, so that ties and exact kinks are rare.
let genFloat (low: float) (high: float) : Gen<float> =
    Gen.choose (0, Int32.MaxValue - 1)
    |> Gen.map (fun i -> low + (high - low) * float i / float Int32.MaxValue)

/// A float with magnitude in [low, high) and a random sign: away from zero, for abs, relu and division.
let genAwayFromZero (low: float) (high: float) : Gen<float> =
    Gen.zip (genFloat low high) (Gen.elements [ 1.0; -1.0 ]) |> Gen.map (fun (m, s) -> m * s)

/// A float64 tensor of the given shape with values from a generator.
let genTensor (values: Gen<float>) (shape: int[]) : Gen<Tensor> =
    Gen.arrayOfLength (Shape.size shape) values |> Gen.map (Tensor.create shape)

/// A shape of the given rank with dimensions 1..maxDim.
let genShape (rank: int) (maxDim: int) : Gen<int[]> = Gen.arrayOfLength rank (Gen.choose (1, maxDim))

/// Every unary operation: those with parameters at sample values (a slope, an alpha, clamp bounds).
let everyUnaryOp: UnaryOp list =
    [
        for c in Reflection.FSharpType.GetUnionCases typeof<UnaryOp> do
            if c.GetFields().Length = 0 then
                yield Reflection.FSharpValue.MakeUnion(c, [||]) :?> UnaryOp
            else
                match c.Name with
                | "LeakyRelu" -> yield UnaryOp.LeakyRelu 0.2
                | "Elu" -> yield UnaryOp.Elu 1.5
                | "Clamp" ->
                    yield UnaryOp.Clamp(-0.5, 2.0)
                    yield UnaryOp.Clamp(-infinity, 1.0)
                | name -> failwithf "Support.everyUnaryOp: no sample parameters for UnaryOp.%s" name
    ]

/// Every binary operation.
let everyBinaryOp: BinaryOp list =
    [
        for c in Reflection.FSharpType.GetUnionCases typeof<BinaryOp> -> Reflection.FSharpValue.MakeUnion(c, [||]) :?> BinaryOp
    ]

/// Bindings from (variable, value) pairs.
let bind (pairs: (Expr * Tensor) list) = Eval.bindings (pairs |> List.map (fun (v, t) -> (Expr.tryName v).Value, t))

/// Asserts that Grad agrees with central differences (PyTorch gradcheck's bar), naming the formula on failure.
let gradOk (options: GradCheckOptions) (pairs: (Expr * Tensor) list) (f: Expr) =
    let report = GradCheck.check options (bind pairs) (List.map fst pairs) f
    if not report.Passed then failtestf "%s\nformula: %s" report.Message (Print.formula f)

/// gradOk with PyTorch's default tolerances over the full Jacobian.
let gradcheck (pairs: (Expr * Tensor) list) (f: Expr) = gradOk GradCheckOptions.Default pairs f

/// Asserts that second derivatives agree with central differences of the gradient.
let gradgradcheck (pairs: (Expr * Tensor) list) (f: Expr) =
    let report = GradCheck.checkGradGrad GradCheckOptions.Default (bind pairs) (List.map fst pairs) f
    if not report.Passed then failtestf "%s\nformula: %s" report.Message (Print.formula f)

let private assertWithin (what: string) (bound: float -> float) (expected: float[]) (actual: float[]) =
    Expect.equal actual.Length expected.Length "number of elements"
    Array.iteri2
        (fun i (e: float) (a: float) ->
            if not (abs (a - e) <= bound e) then
                failtestf "element %d: expected %.17g, got %.17g (%s)" i e a what)
        expected
        actual

/// Asserts |actual - expected| <= tol * max(1, |expected|) elementwise, naming the element on failure.
let assertClose (tol: float) (expected: float[]) (actual: float[]) =
    assertWithin (sprintf "tolerance %g" tol) (fun e -> tol * max 1.0 (abs e)) expected actual

/// Asserts |actual - expected| <= tol * |expected| elementwise, naming the element on failure.
let assertRelative (tol: float) (expected: float[]) (actual: float[]) =
    assertWithin (sprintf "relative tolerance %g" tol) (fun e -> tol * abs e) expected actual

/// |actual - expected| <= tol (xunit's Assert.Equal with a tolerance).
let expectWithin (tol: float) (expected: float) (actual: float) (what: string) =
    if not (abs (actual - expected) <= tol) then
        failtestf "%s: expected %.17g, got %.17g (tolerance %g)" what expected actual tol

/// Equal after rounding both to `digits` decimal places (xunit's Assert.Equal with a precision).
let expectRounded (digits: int) (expected: float) (actual: float) (what: string) =
    Expect.equal (Math.Round(actual, digits)) (Math.Round(expected, digits)) (sprintf "%s (to %d decimal places)" what digits)

/// The same values element by element, NaN equal to NaN (Double.Equals, as xunit compared arrays).
/// A tensor's values as bits, every NaN as one: a NaN's sign and payload depend on which operand the JIT puts
/// first (it may swap a product's), in TensorPrimitives as in a fused loop, and carry no value.
let valueBits (t: Tensor) =
    t.ToArray() |> Array.map (fun x -> if Double.IsNaN x then -1L else BitConverter.DoubleToInt64Bits x)

let expectSameValues (expected: float[]) (actual: float[]) (what: string) =
    Expect.equal actual.Length expected.Length (sprintf "%s: number of elements" what)
    Array.iteri2
        (fun i (e: float) (a: float) -> if not (e.Equals a) then failtestf "%s: element %d: expected %.17g, got %.17g" what i e a)
        expected
        actual

/// y = 2 x^2 elementwise as a user-defined operation with every optional rule (forward mode and batching), so
/// that the transforms' per-operation tables cover Op.Custom.
let doubledSquare: CustomOp =
    let kernel (args: CustomArgs<float>) =
        let x = args.Input 0
        let y = args.Output
        for i in 0 .. y.Length - 1 do
            y[i] <- 2.0 * x[i] * x[i]
    let plain =
        CustomOp.create "doubledSquare" (fun shapes -> shapes.Head) kernel (fun inputs _ g -> [ Some(g * inputs.Head * 4.0) ])
        |> CustomOp.withJvp (fun inputs _ tangents -> tangents.Head.Value * inputs.Head * 4.0)
    // Elementwise: the batched operation is the operation itself, its batch axis where the operand's was.
    plain
    |> CustomOp.withBatching (fun inputs axes -> CustomOp.apply plain inputs, Option.defaultValue 0 axes.Head)

/// A plan's run allocates nothing: after 3 warm-up runs, 20 runs (each reading output 0) allocate 0 bytes on this
/// thread. `what` names the case in the failure message. The runtime allocates a few bytes once per thread or lock
/// (a thread's first blocking wait, when the kernels' worker is late), which can land in any window, so up to three
/// windows are measured: a plan that allocates per run allocates in all three.
let expectNoAllocation (what: string) (plan: Plan) =
    for _ in 1..3 do
        plan.Execute()
    let window () =
        let before = GC.GetAllocatedBytesForCurrentThread()
        for _ in 1..20 do
            plan.Execute()
            plan.OutputScalar 0 |> ignore
        GC.GetAllocatedBytesForCurrentThread() - before
    let windows = Seq.init 3 (fun _ -> window ()) |> Seq.takeWhile (fun bytes -> bytes > 0L) |> Seq.toList
    if windows.Length = 3 then
        failtestf "%s: 20 runs allocated %A bytes in each of three windows; expected 0" what windows
