/// Helpers shared by the ONNX tests: module lists, tolerances, fixtures and the optional Debian packages.
module FuncFlow.Onnx.Tests.Support

open System
open System.IO
open Expecto

/// Asserts |actual - expected| <= tol * max(1, |expected|) elementwise, naming the case and the element on failure.
let assertClose (what: string) (tol: float) (expected: float[]) (actual: float[]) =
    Expect.equal actual.Length expected.Length (what + ": number of elements")
    Array.iteri2
        (fun i (e: float) (a: float) ->
            if not (abs (a - e) <= tol * max 1.0 (abs e)) then
                failtestf "%s: element %d: expected %.17g, got %.17g (tolerance %g)" what i e a tol)
        expected
        actual

/// Asserts that a message contains each of the given parts.
let expectMentions (message: string) (parts: string list) =
    for part in parts do
        Expect.stringContains message part "the error message"

/// A committed fixture, copied beside the test program.
let fixture (name: string) = Path.Combine(AppContext.BaseDirectory, "fixtures", name)

/// A fresh temporary folder for a test's files.
let tempFolder () =
    let dir = Path.Combine(Path.GetTempPath(), "funcflow-onnx-" + Guid.NewGuid().ToString "N")
    Directory.CreateDirectory dir |> ignore
    dir

/// ONNX's node tests from Debian's libonnx-testdata; a test that needs them is skipped, with this note, without.
let nodeTests = "/usr/include/onnx/backend/test/data/node"

let requireNodeTests () =
    if not (Directory.Exists nodeTests) then
        skiptest (sprintf "libonnx-testdata is not installed (no %s): apt-get install libonnx-testdata" nodeTests)
