namespace FuncFlow.Data

open System

/// Raised when a data or parameter file is missing, malformed or truncated; the message names the file and the problem.
type DataFormatException =
    inherit Exception

    /// An error with a message that names the file and what is wrong with it.
    new(message: string) = { inherit Exception(message) }

    /// An error with a message that names the file and what is wrong with it, caused by a lower-level error.
    new(message: string, inner: exn) = { inherit Exception(message, inner) }
