/// The test program: Expecto runs every [<Tests>] list in this assembly (dotnet fsi build.fsx test runs it).
module FuncFlow.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    match argv with
    // CheckpointTests starts this program as a training process that it kills.
    | [| "--checkpoint-child"; path |] -> FuncFlow.Tests.NN.CheckpointTests.runChild path
    | _ -> Tests.runTestsInAssemblyWithCLIArgs [] argv
