namespace FuncFlow.Data

open System
open System.Buffers.Binary
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

    /// The error for gzip data that is damaged or ends early.
    let private gzipError (path: string) (what: string) (inner: exn) =
        DataFormatException(sprintf "%s: corrupt or truncated gzip data (%s)" path what, inner)

    /// A gzip stream that reports damage as a DataFormatException naming the file, and checks at its end that it
    /// gave as many bytes as the trailer records: .NET's GZipStream ends quietly at the end of a truncated file,
    /// which would hand back part of it. A file of several gzip members (as bgzip writes) fails that check, since
    /// the trailer is the last member's.
    type private CheckedGzipStream(path: string, inner: GZipStream, recordedSize: uint32) =
        inherit Stream()
        let mutable total = 0L
        override _.CanRead = true
        override _.CanSeek = false
        override _.CanWrite = false
        override _.Length = raise (NotSupportedException())
        override _.Position
            with get () = total
            and set _ = raise (NotSupportedException())
        override _.Flush() = ()
        override _.Seek(_, _) = raise (NotSupportedException())
        override _.SetLength _ = raise (NotSupportedException())
        override _.Write(_: byte[], _: int, _: int) = raise (NotSupportedException())
        override s.Read(buffer: byte[], offset: int, count: int) = s.Read(Span<byte>(buffer, offset, count))
        override _.Read(buffer: Span<byte>) =
            let n =
                try
                    inner.Read buffer
                with :? InvalidDataException as e ->
                    raise (gzipError path e.Message e)
            total <- total + int64 n
            if n = 0 && buffer.Length > 0 && uint32 total <> recordedSize then
                raise (gzipError path (sprintf "it decompresses to %d bytes but its trailer records %d (mod 2^32)" total recordedSize) null)
            n
        override _.Dispose(disposing: bool) =
            if disposing then inner.Dispose()
            base.Dispose disposing

    /// The bytes left in a stream that knows its length (a file), or None (decompressed data).
    let remaining (s: Stream) : int64 option = if s.CanSeek then Some(s.Length - s.Position) else None

    /// Opens a file for reading, decompressing it when it starts with the gzip magic bytes 1f 8b. Damaged or
    /// truncated gzip data raises DataFormatException naming the file when it is read.
    let openRead (path: string) : Stream =
        if not (File.Exists path) then raise (notFound path)
        let fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 <<< 16)
        try
            let b0 = fs.ReadByte()
            let b1 = fs.ReadByte()
            if b0 = 0x1f && b1 = 0x8b then
                // A gzip member is at least a 10-byte header and an 8-byte trailer (CRC-32, size mod 2^32).
                if fs.Length < 18L then
                    raise (gzipError path (sprintf "%d bytes, shorter than a gzip header and trailer" fs.Length) null)
                let trailer = Array.zeroCreate<byte> 4
                fs.Position <- fs.Length - 4L
                fs.ReadExactly(trailer, 0, 4)
                fs.Position <- 0L
                let size = BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan trailer)
                new CheckedGzipStream(path, new GZipStream(fs, CompressionMode.Decompress), size) :> Stream
            else
                fs.Position <- 0L
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
    let readFully (s: Stream) (buffer: byte[]) (offset: int) (count: int) : int =
        s.ReadAtLeast(Span<byte>(buffer, offset, count), count, false)

    /// Reads up to count bytes, growing the buffer as the data arrives, so that a header promising more than
    /// the file holds costs no more memory than the file's data; the result is shorter than count when the
    /// stream ends first.
    let readUpTo (s: Stream) (count: int) : byte[] =
        let mutable buffer = Array.zeroCreate<byte>(min count (1 <<< 20))
        let mutable got = readFully s buffer 0 buffer.Length
        while got = buffer.Length && got < count do
            Array.Resize(&buffer, int (min (int64 count) (2L * int64 buffer.Length)))
            got <- got + readFully s buffer got (buffer.Length - got)
        if got < buffer.Length then Array.Resize(&buffer, got)
        buffer

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
