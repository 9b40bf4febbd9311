/// What users can reach: no public member lets them change a node, a tensor or a fitted standardizer, every way
/// of making a tensor stores what its dtype says, and what only the core needs stays internal.
module FuncFlow.Tests.SurfaceTests

open System
open System.Collections
open System.Collections.Generic
open System.Reflection
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.Tests.Support
open FuncFlow.Tests.Data.DataTestHelpers

/// The array type generic kernels cast a tensor's storage to, for each dtype.
let private storageType dtype = if dtype = Float64 then typeof<float[]> else typeof<float32[]>

// Every public instance property and parameterless method of `instance`'s type, with what it returns.
let private publicReads (instance: obj) =
    let t = instance.GetType()
    let flags = BindingFlags.Public ||| BindingFlags.Instance
    [
        for p in t.GetProperties flags do
            if p.GetIndexParameters().Length = 0 then
                yield t.Name + "." + p.Name, (fun () -> p.GetValue instance)
        for m in t.GetMethods flags do
            if
                not m.IsSpecialName
                && m.GetParameters().Length = 0
                && m.DeclaringType = t
                && m.ReturnType <> typeof<Void>
            then
                yield t.Name + "." + m.Name + "()", (fun () -> m.Invoke(instance, [||]))
    ]

[<Tests>]
let tests =
    moduleTests
        "SurfaceTests"
        [
            testCase "a node's operands are a read-only view: writing through it fails and the node still computes the same"
            <| fun () ->
                let a, b = Expr.var "a" [| 2 |], Expr.var "b" [| 2 |]
                let sum = a + b
                Expect.equal (List.ofSeq sum.Operands) [ a; b ] "the node's operands"
                Expect.isEmpty a.Operands "a variable has no operands"
                Expect.isFalse (box sum.Operands :? Expr[]) ("Operands must not be the node's own array (a cast would make it writable)")
                let asList = sum.Operands :?> IList<Expr>
                Expect.isTrue asList.IsReadOnly "the operand view is read-only"
                throws<NotSupportedException>(fun () -> asList[0] <- b) |> ignore
                throws<NotSupportedException>(fun () -> asList.Clear()) |> ignore
                Expect.equal (List.ofSeq sum.Operands) [ a; b ] "the node's operands"
                let at = Eval.bindings [ "a", Tensor.ofArray [| 1.0; 2.0 |]; "b", Tensor.ofArray [| 10.0; 20.0 |] ]
                Expect.equal ((Eval.evaluate at sum).ToArray()) [| 11.0; 22.0 |] "a + b"
            testCase "a fitted standardizer cannot be changed through its Mean and Std"
            <| fun () ->
                let x = Tensor.create [| 2; 2 |] [| 1.0; 10.0; 3.0; 30.0 |]
                let s = Standardizer.fit x
                // Column means 2 and 20, population standard deviations 1 and 10.
                Expect.equal (List.ofSeq s.Mean) [ 2.0; 20.0 ] "column means"
                Expect.equal (List.ofSeq s.Std) [ 1.0; 10.0 ] "column standard deviations"
                throws<NotSupportedException>(fun () -> (s.Mean :?> IList<float>)[0] <- 100.0) |> ignore
                throws<NotSupportedException>(fun () -> (s.Std :?> IList<float>)[1] <- 0.0) |> ignore
                Expect.equal ((Standardizer.apply s x).ToArray()) [| -1.0; -1.0; 1.0; 1.0 |] "standardised values"
            testCase "every way of making a tensor stores the array its dtype says, with the values given"
            <| fun () ->
                use dir = new TempDir()
                let saved = dir.File "t.safetensors"
                Safetensors.save saved [ "d", Tensor.create [| 2 |] [| 0.5; -4.0 |]; "s", Tensor.create32 [| 2 |] [| 1.5f; 3.0f |] ]
                let loaded = Safetensors.load saved
                let idx = dir.File "bytes.idx"
                IO.File.WriteAllBytes(idx, idxBytes [| 3 |] [| 0uy; 255uy; 7uy |])
                let ds32 =
                    Dataset.create (Tensor.create32 [| 3; 1 |] [| 1.0f; 2.0f; 3.0f |]) (Tensor.create32 [| 3 |] [| 0.0f; 1.0f; 0.0f |])
                let f32 (xs: float32 list) = xs |> List.map float
                // Random tensors: the same seed draws the same numbers in both dtypes, float32 rounding them.
                let rounded (t: Tensor) = t.ToArray() |> Array.map (float32 >> float) |> List.ofArray
                let cases: (string * Tensor * DType * float list) list =
                    [
                        "Tensor.create", Tensor.create [| 2 |] [| 1.5; -2.0 |], Float64, [ 1.5; -2.0 ]
                        "Tensor.create32", Tensor.create32 [| 2 |] [| 1.5f; -2.0f |], Float32, [ 1.5; -2.0 ]
                        "Tensor.scalar", Tensor.scalar 3.0, Float64, [ 3.0 ]
                        "Tensor.scalarOf Float64", Tensor.scalarOf Float64 0.1, Float64, [ 0.1 ]
                        "Tensor.scalarOf Float32", Tensor.scalarOf Float32 0.1, Float32, f32 [ 0.1f ]
                        "Tensor.ofArray", Tensor.ofArray [| 1.0; 2.0 |], Float64, [ 1.0; 2.0 ]
                        "Tensor.ofArray32", Tensor.ofArray32 [| 1.0f; 2.0f |], Float32, [ 1.0; 2.0 ]
                        "Tensor.ofArray2D", Tensor.ofArray2D (array2D [ [ 1.0; 2.0 ]; [ 3.0; 4.0 ] ]), Float64, [ 1.0; 2.0; 3.0; 4.0 ]
                        "Tensor.ofRows", Tensor.ofRows [| [| 1.0; 2.0 |]; [| 3.0; 4.0 |] |], Float64, [ 1.0; 2.0; 3.0; 4.0 ]
                        "Tensor.full Float64", Tensor.full Float64 [| 2 |] 7.0, Float64, [ 7.0; 7.0 ]
                        "Tensor.full Float32", Tensor.full Float32 [| 2 |] 0.1, Float32, f32 [ 0.1f; 0.1f ]
                        "Tensor.zeros", Tensor.zeros Float32 [| 3 |], Float32, [ 0.0; 0.0; 0.0 ]
                        "Tensor.ones", Tensor.ones Float64 [| 2 |], Float64, [ 1.0; 1.0 ]
                        "Tensor.arange", Tensor.arange Float32 3, Float32, [ 0.0; 1.0; 2.0 ]
                        "Tensor.range", Tensor.range Float64 0.5 2.0 0.5, Float64, [ 0.5; 1.0; 1.5 ]
                        "Tensor.randUniform",
                        Tensor.randUniform Float32 7 [| 5 |] -1.0 1.0,
                        Float32,
                        rounded (Tensor.randUniform Float64 7 [| 5 |] -1.0 1.0)
                        "Tensor.randNormal",
                        Tensor.randNormal Float32 7 [| 5 |] 0.0 2.0,
                        Float32,
                        rounded (Tensor.randNormal Float64 7 [| 5 |] 0.0 2.0)
                        "Tensor.cast to Float32", Tensor.cast Float32 (Tensor.ofArray [| 0.1; 2.0 |]), Float32, f32 [ 0.1f; 2.0f ]
                        "Tensor.cast to Float64", Tensor.cast Float64 (Tensor.ofArray32 [| 0.1f |]), Float64, f32 [ 0.1f ]
                        "Tensor.reshape", Tensor.reshape [| 2; 1 |] (Tensor.ofArray32 [| 4.0f; 5.0f |]), Float32, [ 4.0; 5.0 ]
                        "Tensor.wrap float32[]", Tensor.wrap [| 2 |] [| 6.0f; 7.0f |], Float32, [ 6.0; 7.0 ]
                        "Tensor.wrap float[]", Tensor.wrap [| 1 |] [| 8.0 |], Float64, [ 8.0 ]
                        "Safetensors.load F64", loaded["d"], Float64, [ 0.5; -4.0 ]
                        "Safetensors.load F32", loaded["s"], Float32, [ 1.5; 3.0 ]
                        "Idx.read unsigned bytes", Idx.read idx, Float32, [ 0.0; 255.0; 7.0 ]
                        "Dataset.take", (Dataset.take [| 2; 0 |] ds32).Features, Float32, [ 3.0; 1.0 ]
                        "Eval.evaluate",
                        Eval.evaluate (Eval.bindings []) (Expr.constant (Tensor.ofArray32 [| 2.0f |]) * 3.0),
                        Float32,
                        [ 6.0 ]
                    ]
                for name, t, dtype, values in cases do
                    Expect.isTrue (t.DType = dtype) (sprintf "%s: dtype %s, expected %s" name t.DType.Name dtype.Name)
                    Expect.isTrue
                        (t.Data.GetType() = storageType dtype)
                        (sprintf "%s: a %s tensor stores %s" name dtype.Name (t.Data.GetType().Name))
                    Expect.isTrue ((List.ofArray (t.ToArray()) = values)) (sprintf "%s: values %A, expected %A" name (t.ToArray()) values)
            testCase "wrapping storage of another element type is refused, naming the operation and the type"
            <| fun () ->
                let e = throws<ArgumentException>(fun () -> Tensor.wrap [| 2 |] [| 1; 2 |] |> ignore)
                Expect.stringContains e.Message "Tensor.wrap" "the message names the operation"
                Expect.stringContains e.Message "Int32[]" "the message names the type"
            testCase "no public member of Expr, Tensor or Standardizer hands out an array that aliases its state"
            <| fun () ->
                let x = Expr.var "x" [| 2; 3 |]
                let instances: obj list =
                    [
                        Expr.matmul x (Expr.var "w" [| 3; 1 |])
                        Tensor.create [| 2; 2 |] [| 1.0; 2.0; 3.0; 4.0 |]
                        Tensor.create32 [| 3 |] [| 1.0f; 2.0f; 3.0f |]
                        Standardizer.fit (Tensor.create [| 2; 2 |] [| 1.0; 10.0; 3.0; 30.0 |])
                    ]
                let checkedMembers = HashSet<string>()
                for instance in instances do
                    for name, read in publicReads instance do
                        match read () with
                        | :? Array as first ->
                            checkedMembers.Add name |> ignore
                            let second = read () :?> Array
                            Expect.isFalse
                                (obj.ReferenceEquals(first, second))
                                (sprintf "%s returns the same array twice: its own state" name)
                            if first.Length > 0 then
                                let before = second.GetValue 0
                                // A different value of the element type: 0 unless that is what is there.
                                let other =
                                    if before.Equals(Activator.CreateInstance(before.GetType())) then
                                        Convert.ChangeType(1, before.GetType())
                                    else
                                        Activator.CreateInstance(before.GetType())
                                first.SetValue(other, 0)
                                Expect.isTrue
                                    ((read () :?> Array).GetValue(0).Equals before)
                                    (sprintf "%s: writing into the returned array changed the object" name)
                        | :? IList as list ->
                            checkedMembers.Add name |> ignore
                            Expect.isTrue (list.IsReadOnly) (sprintf "%s returns a writable %s" name (list.GetType().Name))
                        | _ -> ()
                // The members that hand out collections today; if one disappears, this test must be looked at again.
                for expected in
                    [
                        "Expr.Operands"
                        "Expr.Shape"
                        "Tensor.Shape"
                        "Tensor.ToArray()"
                        "Tensor.ToArray32()"
                        "Standardizer.Mean"
                        "Standardizer.Std"
                    ] do
                    Expect.isTrue
                        (checkedMembers.Contains expected)
                        (sprintf "%s was not checked (found: %s)" expected (String.Join(", ", checkedMembers)))
            testCase "what only the core needs is internal"
            <| fun () ->
                let assembly = typeof<Tensor>.Assembly
                // BLAS entry points and provider choice (FUNCFLOW_BLAS=managed is the user's switch), tensor storage,
                // progress reporters (Trainer picks one from FitOptions) and the SVG writer (FitOptions.PlotPath, History.SavePlot).
                for name in
                    [
                        "FuncFlow.Blas"
                        "FuncFlow.BlasProvider"
                        "FuncFlow.TensorData"
                        "FuncFlow.NN.ProgressReporter"
                        "FuncFlow.NN.SilentProgress"
                        "FuncFlow.NN.LineProgress"
                        "FuncFlow.NN.Progress"
                        "FuncFlow.NN.Plot"
                        "FuncFlow.NN.Series"
                    ] do
                    let t = assembly.GetType name
                    Expect.isTrue (not (isNull t)) (sprintf "%s not found in %s" name assembly.FullName)
                    Expect.isFalse (t.IsVisible) (sprintf "%s is public" name)
                let expr =
                    typeof<Expr>.GetProperty("Inputs", BindingFlags.Public ||| BindingFlags.NonPublic ||| BindingFlags.Instance)
                Expect.isTrue (not (isNull expr) && not expr.GetMethod.IsPublic) ("Expr.Inputs (the node's own array) must be internal")
        ]
