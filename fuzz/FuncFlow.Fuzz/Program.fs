/// FuncFlow.Fuzz <target>: under afl-fuzz (through SharpFuzz), runs the target's reader on each input; alone, on
/// standard input once. FuncFlow.Fuzz <target> <file>: runs it on a file and says what happened (to replay a crash).
/// FuncFlow.Fuzz seeds <corpus>: writes the seed files. DataFormatException is a reader's expected refusal; any
/// other exception escapes, and afl-fuzz records the input as a crash.
module FuncFlow.Fuzz.Program

open System
open System.IO
open FuncFlow.Data
open SharpFuzz

/// Runs a reader on a file, taking DataFormatException as the expected outcome of a bad file.
let private attempt (read: string -> unit) (path: string) : string =
    try
        read path
        "read"
    with :? DataFormatException as e ->
        "refused: " + e.Message

let private usage () =
    eprintfn
        "usage: FuncFlow.Fuzz <target> [file] | FuncFlow.Fuzz seeds <corpus folder>; targets: %s"
        (Targets.all |> List.map fst |> String.concat ", ")
    2

[<EntryPoint>]
let main argv =
    match argv with
    | [| "seeds"; corpus |] ->
        Seeds.write corpus
        0
    | [| name; file |] ->
        match Targets.tryFind name with
        | Some read ->
            printfn "%s" (attempt read file)
            0
        | None -> usage ()
    | [| name |] ->
        match Targets.tryFind name with
        | Some read ->
            // The readers take paths: each input goes to a file of this process's own (in memory where /dev/shm is),
            // deleted after each run, since afl-fuzz ends its runners by killing them.
            let folder = if Directory.Exists "/dev/shm" then "/dev/shm" else Path.GetTempPath()
            let input = Path.Combine(folder, sprintf "funcflow-fuzz-%d.%s" Environment.ProcessId name)
            Fuzzer.OutOfProcess.Run(fun (stream: Stream) ->
                try
                    do
                        use file = File.Create input
                        stream.CopyTo file
                    attempt read input |> ignore
                finally
                    File.Delete input)
            0
        | None -> usage ()
    | _ -> usage ()
