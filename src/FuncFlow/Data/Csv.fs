namespace FuncFlow.Data

open System
open System.Globalization
open System.IO

/// Reads numeric CSV files, gzipped or plain.
[<RequireQualifiedAccess>]
module Csv =
    /// Reads a comma-separated file of numbers after skipping its first skipLines lines; blank lines are ignored.
    /// Numbers are parsed with the invariant culture (a dot for decimals), surrounding spaces allowed.
    /// Raises DataFormatException naming the file, line and column for a cell that is not a number,
    /// for a row whose length differs from the first data row's, and naming the file for one without data
    /// rows or with damaged gzip data.
    let read (path: string) (skipLines: int) : float[][] =
        if skipLines < 0 then
            invalidArg "skipLines" (sprintf "Csv.read: skipLines must be >= 0, got %d" skipLines)
        use reader = new StreamReader(DataFile.openRead path)
        let rows = ResizeArray<float[]>()
        let mutable width = -1
        let mutable firstLine = 0
        let mutable lineNo = 0
        let mutable line = reader.ReadLine()
        while not (isNull line) do
            lineNo <- lineNo + 1
            if lineNo > skipLines && not (String.IsNullOrWhiteSpace line) then
                let cells = line.Split(',')
                if width < 0 then
                    width <- cells.Length
                    firstLine <- lineNo
                elif cells.Length <> width then
                    raise (
                        DataFormatException(
                            sprintf
                                "%s: line %d has %d cells but line %d (the first data line) has %d; rows must have equal lengths"
                                path
                                lineNo
                                cells.Length
                                firstLine
                                width
                        )
                    )
                let row =
                    cells
                    |> Array.mapi (fun j cell ->
                        match Double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture) with
                        | true, v -> v
                        | _ ->
                            raise (
                                DataFormatException(sprintf "%s: line %d, column %d: cell \"%s\" is not a number" path lineNo (j + 1) cell)
                            ))
                rows.Add row
            line <- reader.ReadLine()
        if rows.Count = 0 then
            raise (
                DataFormatException(
                    sprintf "%s: no data rows: the file's %d lines are all blank or among the %d skipped" path lineNo skipLines
                )
            )
        rows.ToArray()
