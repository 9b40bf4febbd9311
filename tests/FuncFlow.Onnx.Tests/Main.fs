/// The ONNX test program: Expecto runs every [<Tests>] list in this assembly (dotnet fsi build.fsx test runs it).
module FuncFlow.Onnx.Tests.Main

open Expecto

[<EntryPoint>]
let main argv = Tests.runTestsInAssemblyWithCLIArgs [] argv
