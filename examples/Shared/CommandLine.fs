/// The examples' command-line options, `--name N`.
module CommandLine

/// The integer after `name` (such as "--epochs") on the command line, or the fallback when it is not given.
let intOption (argv: string[]) (name: string) (fallback: int) =
    match Array.tryFindIndex ((=) name) argv with
    | Some i when i + 1 < argv.Length -> int argv[i + 1]
    | _ -> fallback
