namespace FuncFlow.Data

open System
open System.IO
open System.IO.Compression

/// Opening data files: gzip is detected by its magic bytes rather than the file name, so renamed files still read.
module internal DataFile =
    /// The error for a data file found under none of the given paths, saying where the shipped data lives.
    let notFoundAny (paths: string list) =
        DataFormatException(
            sprintf
                "%s: file not found (looked for %s). The data sets ship in the repository's data/ folder (data/mnist, data/small); set the environment variable FUNCFLOW_DATA to a folder with that layout to use another copy."
                (List.head paths)
                (paths |> List.map Path.GetFullPath |> String.concat " and ")
        )

    /// The error for a data file that is not there, saying where the shipped data lives.
    let notFound (path: string) = notFoundAny [ path ]

    /// Opens a file for reading, decompressing it when it starts with the gzip magic bytes 1f 8b.
    let openRead (path: string) : Stream =
        if not (File.Exists path) then raise (notFound path)
        let fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 <<< 16)
        try
            let b0 = fs.ReadByte()
            let b1 = fs.ReadByte()
            fs.Position <- 0L
            if b0 = 0x1f && b1 = 0x8b then
                new GZipStream(fs, CompressionMode.Decompress) :> Stream
            else
                fs :> Stream
        with _ ->
            fs.Dispose()
            reraise ()

    /// Writes a file atomically: into a temporary file beside it, flushed to disk, then moved over the target,
    /// so a reader never sees half a file and a failure leaves any previous file intact (the temporary file is
    /// deleted). beforeCommit runs on the finished temporary file just before the move (tests fail it there).
    let writeAtomically (beforeCommit: string -> unit) (path: string) (write: Stream -> unit) : unit =
        let full = Path.GetFullPath path
        let tmp = full + ".tmp-" + Guid.NewGuid().ToString("N")
        try
            do
                use fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None)
                write fs
                fs.Flush true
            beforeCommit tmp
            File.Move(tmp, full, true)
        with _ ->
            if File.Exists tmp then File.Delete tmp
            reraise ()

    /// Reads until count bytes are in the buffer or the stream ends; returns how many were read.
    /// A damaged gzip stream becomes a DataFormatException naming the file.
    let readFully (path: string) (s: Stream) (buffer: byte[]) (offset: int) (count: int) : int =
        try
            s.ReadAtLeast(Span<byte>(buffer, offset, count), count, false)
        with :? InvalidDataException as e ->
            raise (DataFormatException(sprintf "%s: corrupt or truncated gzip data (%s)" path e.Message, e))

    /// The number of elements of a shape times itemSize, or None when that is more bytes than one array can hold
    /// (checked step by step, since the product of a corrupt header's sizes can overflow even int64).
    let byteCount (itemSize: int) (dims: int64 seq) : int64 option =
        let limit = int64 Array.MaxLength
        let dims = Seq.toArray dims
        if Array.contains 0L dims then
            Some 0L
        else
            dims
            |> Array.fold (fun acc d -> acc |> Option.bind (fun a -> if a > limit / d then None else Some(a * d))) (Some(int64 itemSize))
