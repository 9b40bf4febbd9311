namespace FuncFlow

open System
open System.Collections.Generic
open System.Globalization

/// Settings of a gradient check (PyTorch's gradcheck defaults).
type GradCheckOptions =
    {
        /// The finite-difference step: values move by +-Eps.
        Eps: float
        /// Absolute tolerance.
        Atol: float
        /// Relative tolerance, against the numeric value: |analytic - numeric| <= Atol + Rtol |numeric|.
        Rtol: float
        /// Compares one random projection u^T J v per variable instead of the whole Jacobian (PyTorch's fast_mode).
        Fast: bool
        /// Seeds the random projections, so that a check is reproducible.
        Seed: int
    }

    /// eps 1e-6, atol 1e-5, rtol 1e-3, full Jacobian, seed 0.
    static member Default = { Eps = 1e-6; Atol = 1e-5; Rtol = 1e-3; Fast = false; Seed = 0 }

/// The outcome of a gradient check, described by its worst element (the one furthest over its tolerance).
type GradCheckReport =
    {
        /// True when every compared element is within tolerance.
        Passed: bool
        /// The variable of the worst element ("" when nothing was compared).
        Variable: string
        /// The worst element's index in the variable; empty in fast mode, which projects the whole variable.
        Index: int[]
        /// The derivative computed by Grad.
        Analytic: float
        /// The derivative estimated by central finite differences.
        Numeric: float
        /// |Analytic - Numeric|.
        Error: float
        /// A sentence naming the variable, the element, both values and the error.
        Message: string
    }

/// Raised by GradCheck.assertOk and GradCheck.assertGradGradOk when a check fails.
type GradCheckException(report: GradCheckReport) =
    inherit Exception(report.Message)

    /// The failed check's report.
    member _.Report = report

/// Checks analytic gradients against central finite differences, like torch.autograd.gradcheck and
/// gradgradcheck. Checks run in float64 only: float32 rounding (about 1e-7 relative) swamps a difference
/// quotient with eps 1e-6, so a float32 graph is rejected with an error asking for float64 (build the graph
/// with Expr.var and bind values converted with Tensor.cast Float64).
module GradCheck =
    /// One compared derivative.
    type private Entry =
        {
            Variable: string
            Index: int[]
            /// The output element, in full mode on a non-scalar output.
            Output: int[] option
            /// Fast mode: the entry is u^T J v over the whole variable, not one element.
            Projected: bool
            Analytic: float
            Numeric: float
        }

    let private num (v: float) = v.ToString("G6", CultureInfo.InvariantCulture)

    let private unravel (shape: int[]) (flat: int) =
        let strides = Shape.strides shape
        Array.init shape.Length (fun i -> flat / strides[i] % shape[i])

    let private showIndex (index: int[]) = "[" + String.Join(", ", index) + "]"

    let private tolerance (options: GradCheckOptions) (e: Entry) = options.Atol + options.Rtol * abs e.Numeric

    /// How far over its tolerance an entry is: above 1 fails; NaN or infinite values always fail.
    let private excess (options: GradCheckOptions) (e: Entry) =
        let error = abs (e.Analytic - e.Numeric)
        if Double.IsNaN error || Double.IsInfinity error then Double.PositiveInfinity
        elif error = 0.0 then 0.0
        else error / tolerance options e

    let private report (options: GradCheckOptions) (what: string) (entries: Entry seq) : GradCheckReport =
        match Seq.tryHead entries with
        | None ->
            {
                Passed = true
                Variable = ""
                Index = [||]
                Analytic = 0.0
                Numeric = 0.0
                Error = 0.0
                Message = sprintf "%s: nothing to compare (no variable has elements)" what
            }
        | Some _ ->
            let worst = entries |> Seq.maxBy (excess options)
            let passed = excess options worst <= 1.0
            let error = abs (worst.Analytic - worst.Numeric)
            let element =
                match worst.Projected, worst.Output with
                | true, _ -> sprintf "variable '%s' (random projection u^T J v)" worst.Variable
                | false, None -> sprintf "variable '%s' at element %s" worst.Variable (showIndex worst.Index)
                | false, Some output ->
                    sprintf "variable '%s' at element %s, output element %s" worst.Variable (showIndex worst.Index) (showIndex output)
            let verdict = if passed then "passed; worst is" else "FAILED for"
            let message =
                sprintf
                    "%s %s %s: analytic %s, numeric %s, error %s (tolerance %s = atol %g + rtol %g * |numeric|)"
                    what
                    verdict
                    element
                    (num worst.Analytic)
                    (num worst.Numeric)
                    (num error)
                    (num (tolerance options worst))
                    options.Atol
                    options.Rtol
            {
                Passed = passed
                Variable = worst.Variable
                Index = worst.Index
                Analytic = worst.Analytic
                Numeric = worst.Numeric
                Error = error
                Message = message
            }

    let private requireFloat64 (what: string) (f: Expr) =
        if f.DType <> Float64 then
            invalidArg
                "f"
                (sprintf
                    "%s: the graph is %s; gradient checks need float64 (float32 rounding swamps finite differences). Build it with Expr.var and bind values cast with Tensor.cast Float64"
                    what
                    f.DType.Name)

    let private nameOf (v: Expr) =
        match v.Op with
        | Op.Var name -> name
        | _ -> invalidArg "vars" (sprintf "GradCheck: %s is not a variable; only variables can be perturbed" (string v))

    /// The variables to check: the given ones, or every variable of f when none are given.
    let private variablesOf (vars: Expr list) (f: Expr) = if List.isEmpty vars then Graph.variables [ f ] else vars

    let private uniform (rng: Random) (shape: int[]) =
        Tensor.create shape (Array.init (Shape.size shape) (fun _ -> 2.0 * rng.NextDouble() - 1.0))

    let private dot (a: float[]) (b: float[]) = Array.fold2 (fun s x y -> s + x * y) 0.0 a b

    /// f's values at the bindings with one variable's values replaced.
    let private evaluateWith (env: Dictionary<string, Tensor>) (name: string) (shape: int[]) (values: float[]) (f: Expr) =
        let saved = env[name]
        env[name] <- Tensor.create shape values
        let value = (Eval.evaluate env f).ToArray()
        env[name] <- saved
        value

    /// The central difference (f(x + eps d) - f(x - eps d)) / 2 eps along a direction d of one variable.
    let private centralDifference
        (options: GradCheckOptions)
        (env: Dictionary<string, Tensor>)
        (v: Expr)
        (x: float[])
        (direction: int -> float)
        (f: Expr)
        =
        let name = nameOf v
        let at sign =
            evaluateWith env name v.ShapeRef (Array.init x.Length (fun i -> x[i] + sign * options.Eps * direction i)) f
        Array.map2 (fun p m -> (p - m) / (2.0 * options.Eps)) (at 1.0) (at -1.0)

    /// Compares every entry of the Jacobian: row j from Grad.vjp with the j-th one-hot seed, column i from
    /// the central difference along the i-th element.
    let private fullEntries
        (options: GradCheckOptions)
        (env: Dictionary<string, Tensor>)
        (vars: Expr list)
        (bases: float[] list)
        (f: Expr)
        =
        // A seed variable lets one gradient graph serve every row.
        let seedName = sprintf "__gradcheck_seed_%d" f.Id
        let seed = Expr.var seedName f.ShapeRef
        let grads = Grad.vjp seed vars f
        let outputs = Shape.size f.ShapeRef
        let rows =
            Array.init outputs (fun j ->
                env[seedName] <- Tensor.create f.ShapeRef (Array.init outputs (fun k -> if k = j then 1.0 else 0.0))
                Eval.many env (vars |> List.map (fun v -> grads[v])) |> List.map Tensor.toArray |> Array.ofList)
        env.Remove seedName |> ignore
        [
            for k, (v, x) in List.indexed (List.zip vars bases) do
                for i in 0 .. x.Length - 1 do
                    let column = centralDifference options env v x (fun d -> if d = i then 1.0 else 0.0) f
                    for j in 0 .. outputs - 1 do
                        {
                            Variable = nameOf v
                            Index = unravel v.ShapeRef i
                            Output = if f.Rank = 0 then None else Some(unravel f.ShapeRef j)
                            Projected = false
                            Analytic = rows[j].[k].[i]
                            Numeric = column[j]
                        }
        ]

    /// Compares u^T J v per variable, for a random output-shaped u and a random variable-shaped v.
    let private fastEntries
        (options: GradCheckOptions)
        (env: Dictionary<string, Tensor>)
        (vars: Expr list)
        (bases: float[] list)
        (f: Expr)
        =
        let rng = Random(options.Seed)
        let u = uniform rng f.ShapeRef
        let grads = Grad.vjp (Expr.constant u) vars f
        let analytic = Eval.many env (vars |> List.map (fun v -> grads[v])) |> List.map Tensor.toArray
        List.zip3 vars bases analytic
        |> List.map (fun (v, x, g) ->
            let direction = (uniform rng v.ShapeRef).ToArray()
            {
                Variable = nameOf v
                Index = [||]
                Output = None
                Projected = true
                Analytic = dot g direction
                Numeric = dot (u.ToArray()) (centralDifference options env v x (fun i -> direction[i]) f)
            })

    let private run (what: string) (options: GradCheckOptions) (env: IReadOnlyDictionary<string, Tensor>) (vars: Expr list) (f: Expr) =
        requireFloat64 what f
        let vars = variablesOf vars f
        let env = Dictionary<string, Tensor>(env)
        let bases = vars |> List.map (fun v -> (Eval.Bind(nameOf v, v, env)).ToArray())
        let entries = (if options.Fast then fastEntries else fullEntries) options env vars bases f
        let result = report options what entries
        // A failure in a graph with user-defined operations most likely comes from their rules: name them.
        let custom =
            Graph.topoSort [ f ]
            |> Array.choose (fun e ->
                match e.Op with
                | Op.Custom c -> Some c.Name
                | _ -> None)
            |> Array.distinct
        if result.Passed || custom.Length = 0 then
            result
        else
            { result with
                Message =
                    sprintf
                        "%s; the graph has user-defined operations, whose gradient rules are their authors': %s"
                        result.Message
                        (String.Join(", ", custom))
            }

    /// Checks Grad's derivatives of f with respect to `vars` (every variable of f when empty) at the values
    /// bound in env against central finite differences. f may have any shape: the full check compares the
    /// whole Jacobian, fast mode one random projection per variable. The graph must be float64.
    let check (options: GradCheckOptions) (env: IReadOnlyDictionary<string, Tensor>) (vars: Expr list) (f: Expr) : GradCheckReport =
        run "gradcheck" options env vars f

    /// Checks second derivatives: runs `check` on sum_k sum(g_k * w_k), where g = Grad.vjp s f for a random
    /// output-shaped s and each w_k is random and shaped like variable k, like torch's gradgradcheck.
    let checkGradGrad (options: GradCheckOptions) (env: IReadOnlyDictionary<string, Tensor>) (vars: Expr list) (f: Expr) : GradCheckReport =
        requireFloat64 "gradgradcheck" f
        let vars = variablesOf vars f
        // A seed distinct from the one fast mode draws, so the two projections are independent.
        let rng = Random(options.Seed + 1)
        let grads = Grad.vjp (Expr.constant (uniform rng f.ShapeRef)) vars f
        let projected = vars |> List.map (fun v -> Expr.sum (grads[v] * Expr.constant (uniform rng v.ShapeRef)))
        match projected with
        | [] -> run "gradgradcheck" options env vars (Expr.scalar 0.0)
        | _ -> run "gradgradcheck" options env vars (Expr.addN projected)

    /// Checks a user-defined operation's gradient rule on its own: the operation applied to variables
    /// "input0", "input1"... bound to the given float64 values, its whole Jacobian against central finite
    /// differences. The report's message names the operation.
    let checkOp (options: GradCheckOptions) (op: CustomOp) (inputs: Tensor list) : GradCheckReport =
        if isNull (box op) then nullArg "op"
        let vars = inputs |> List.mapi (fun i t -> Expr.varOf t.DType (sprintf "input%d" i) t.ShapeRef)
        let env = Eval.bindings (inputs |> List.mapi (fun i t -> sprintf "input%d" i, t))
        run (sprintf "gradcheck of user-defined operation %s" op.Name) options env vars (CustomOp.apply op vars)

    let private raiseOnFailure (r: GradCheckReport) = if not r.Passed then raise (GradCheckException r)

    /// Runs `check` and raises a GradCheckException carrying the report's message when it fails.
    let assertOk (options: GradCheckOptions) (env: IReadOnlyDictionary<string, Tensor>) (vars: Expr list) (f: Expr) : unit =
        check options env vars f |> raiseOnFailure

    /// Runs `checkGradGrad` and raises a GradCheckException carrying the report's message when it fails.
    let assertGradGradOk (options: GradCheckOptions) (env: IReadOnlyDictionary<string, Tensor>) (vars: Expr list) (f: Expr) : unit =
        checkGradGrad options env vars f |> raiseOnFailure
