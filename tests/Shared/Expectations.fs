/// Expecto helpers both F# test programs use (FuncFlow.Tests and FuncFlow.Onnx.Tests compile this one file).
[<AutoOpen>]
module FuncFlow.Tests.Expectations

open Expecto

/// A module's tests: one after another within the module, while different modules run in parallel (as xunit ran
/// them). Some modules touch process-wide state (Expr.CaptureCreationSites, the heap size ScaleTests measures).
let moduleTests (name: string) (tests: Test list) : Test = testSequencedGroup name (testList name tests)

let private raised<'T when 'T :> exn> (exact: bool) (f: unit -> unit) : 'T =
    let error =
        try
            f ()
            None
        with e ->
            Some e
    match error with
    | Some(:? 'T as e) when not exact || e.GetType() = typeof<'T> -> e
    | Some e -> failtestf "expected %s, got %s: %s" typeof<'T>.Name (e.GetType().Name) e.Message
    | None -> failtestf "expected %s, but nothing was thrown" typeof<'T>.Name

/// Runs f, expecting an exception of exactly type 'T (not a subtype), and returns it.
let throws<'T when 'T :> exn> (f: unit -> unit) : 'T = raised<'T> true f

/// Runs f, expecting an exception of type 'T or a subtype, and returns it.
let throwsAny<'T when 'T :> exn> (f: unit -> unit) : 'T = raised<'T> false f
