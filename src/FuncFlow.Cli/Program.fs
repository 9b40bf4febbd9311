/// The entry point: parses the command line and maps outcomes onto exit codes (documented in docs/cli.md).
module FuncFlow.Cli.Program

open System
open System.IO
open Argu
open FuncFlow.Cli.Arguments
open FuncFlow.Data

/// Exit codes: 0 success; 1 outputs differ beyond the tolerance; 2 an unsupported operator or dtype;
/// 64 a usage error (sysexits' EX_USAGE); 65 a malformed or missing file (EX_DATAERR).
[<RequireQualifiedAccess>]
module ExitCode =
    [<Literal>]
    let Success = 0

    [<Literal>]
    let Differs = 1

    [<Literal>]
    let Unsupported = 2

    [<Literal>]
    let Usage = 64

    [<Literal>]
    let BadFile = 65

/// Runs the command line, writing results to `out` and errors to `err`; returns the exit code.
let run (argv: string[]) (out: TextWriter) (err: TextWriter) : int =
    let parser = ArgumentParser.Create<CliArgs>(programName = "funcflow")
    try
        let args = parser.ParseCommandLine(argv, raiseOnUsage = true)
        match args.GetSubCommand() with
        | Info info ->
            Info.run out (info.GetResult InfoArgs.File)
            ExitCode.Success
        | Onnx onnx ->
            match onnx.GetSubCommand() with
            | Check check ->
                let dims = OnnxCommands.parseDims (check.GetResults CheckArgs.Dim)
                let seed = check.GetResult(CheckArgs.Seed, defaultValue = 0)
                let tolerance = check.GetResult(CheckArgs.Tolerance, defaultValue = 1e-4)
                if OnnxCommands.check out (check.GetResult CheckArgs.Model) dims seed tolerance then
                    ExitCode.Success
                else
                    ExitCode.Differs
            | Export export ->
                let model = export.GetResult ExportArgs.Model
                let shape = OnnxCommands.parseShape (export.GetResult ExportArgs.Input_Shape)
                let target = export.GetResult(ExportArgs.Output, defaultValue = Path.ChangeExtension(model, ".onnx"))
                OnnxCommands.export out model shape target
                ExitCode.Success
    with
    | :? ArguParseException as e ->
        // Help asked for is not an error; a bad command line is.
        if e.ErrorCode = ErrorCode.HelpText then
            out.WriteLine e.Message
            ExitCode.Success
        else
            err.WriteLine e.Message
            ExitCode.Usage
    | :? DataFormatException as e ->
        err.WriteLine e.Message
        ExitCode.BadFile
    | :? NotSupportedException as e ->
        err.WriteLine e.Message
        ExitCode.Unsupported
    | :? ArgumentException as e ->
        err.WriteLine e.Message
        ExitCode.Usage

[<EntryPoint>]
let main argv = run argv Console.Out Console.Error
