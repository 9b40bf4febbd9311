/// Reading the PyTorch references written by reference/make_reference.py, and comparing values with them.
module FuncFlow.Tests.TorchReference

open System
open System.IO
open System.Text.Json
open Expecto
open FuncFlow

/// A reference file copied next to the test binaries (reference/reference.json or reference/extremes.json).
let load (file: string) : JsonElement =
    use document =
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "reference", file)))
    document.RootElement.Clone()

/// One number; JSON has no NaN or infinities, so the script writes them as "nan", "inf" and "-inf".
let number (e: JsonElement) : float =
    match e.ValueKind with
    | JsonValueKind.Number -> e.GetDouble()
    | JsonValueKind.String ->
        match e.GetString() with
        | "nan" -> nan
        | "inf" -> infinity
        | "-inf" -> -infinity
        | s -> failwithf "reference: %s is not a number" s
    | kind -> failwithf "reference: a %O is not a number" kind

/// An array of numbers.
let numbers (e: JsonElement) : float[] = [| for x in e.EnumerateArray() -> number x |]

/// An array of whole numbers (shapes, permutations).
let ints (e: JsonElement) : int[] = [| for x in e.EnumerateArray() -> x.GetInt32() |]

/// A member of a JSON object, naming it if it is missing.
let field (name: string) (e: JsonElement) : JsonElement =
    match e.TryGetProperty name with
    | true, v -> v
    | _ -> failwithf "reference: no field '%s' in %s" name (e.GetRawText() |> fun s -> if s.Length > 200 then s[..200] + "..." else s)

/// A tensor of the given dtype (a float32 reference value is the double it converts to exactly).
let tensor (dtype: DType) (shape: int[]) (values: float[]) : Tensor = Tensor.ofFloats dtype shape values

/// The elementwise operations by the names the script gives them.
let unaryOps: (string * (Expr -> Expr)) list =
    [
        "neg", Expr.neg
        "exp", Expr.exp
        "log", Expr.log
        "sqrt", Expr.sqrt
        "abs", Expr.abs
        "sigmoid", Expr.sigmoid
        "tanh", Expr.tanh
        "relu", Expr.relu
        "softplus", Expr.softplus
        "sign", Expr.sign
        "step", Expr.step
        // ops group.
        "sin", Expr.sin
        "cos", Expr.cos
        "log1p", Expr.log1p
        "expm1", Expr.expm1
        "erf", Expr.erf
        "erfc", Expr.erfc
        "gelu", Expr.gelu
        "silu", Expr.silu
        "logSigmoid", Expr.logSigmoid
        "floor", Expr.floor
        "ceil", Expr.ceil
        "round", Expr.round
        "leakyRelu", Expr.leakyRelu 0.2
        "elu", Expr.elu 1.5
        "clamp", Expr.clamp (Some -0.5) (Some 2.0)
        "clampMin", Expr.clamp (Some -0.5) None
        "clampMax", Expr.clamp None (Some 1.0)
        "rsqrt", Expr.rsqrt
    ]

let binaryOps: (string * (Expr -> Expr -> Expr)) list =
    [
        "add", Expr.add
        "sub", Expr.sub
        "mul", Expr.mul
        "div", Expr.div
        "pow", Expr.pow
        "equal", Expr.equal
        // ops group.
        "maximum", Expr.maximum
        "minimum", Expr.minimum
    ]

/// True when actual matches PyTorch's expected value: NaN for NaN, the same infinity for an infinity,
/// and for a finite value a finite one within atol + rtol * |expected|.
let matches (rtol: float) (atol: float) (expected: float) (actual: float) : bool =
    if Double.IsNaN expected then Double.IsNaN actual
    elif Double.IsInfinity expected then actual = expected
    else Double.IsFinite actual && abs (actual - expected) <= atol + rtol * abs expected

/// The compared elements (where `compared i`) at which actual does not match expected, as messages
/// "what at (describe i): ...": the first 8, then a count when there are more.
let mismatchesWhere
    (compared: int -> bool)
    (describe: int -> string)
    (rtol: float)
    (atol: float)
    (what: string)
    (expected: float[])
    (actual: float[])
    =
    if expected.Length <> actual.Length then
        [ sprintf "%s: %d values expected, got %d" what expected.Length actual.Length ]
    else
        let bad =
            [
                for i in 0 .. expected.Length - 1 do
                    if compared i && not (matches rtol atol expected[i] actual[i]) then i
            ]
        let shown =
            bad
            |> List.truncate 8
            |> List.map (fun i -> sprintf "%s at %s: expected %.17g, got %.17g" what (describe i) expected[i] actual[i])
        if bad.Length > 8 then shown @ [ sprintf "%s: ... %d mismatches in all" what bad.Length ] else shown

/// mismatchesWhere over every element, described by its flat index.
let mismatches (rtol: float) (atol: float) (what: string) (expected: float[]) (actual: float[]) : string list =
    mismatchesWhere (fun _ -> true) (sprintf "[%d]") rtol atol what expected actual

/// Fails with every collected mismatch, one per line, if there are any.
let assertNone (title: string) (problems: string list) =
    if not problems.IsEmpty then
        failtestf "%s: %d mismatches against PyTorch\n%s" title problems.Length (String.Join("\n", problems))
