namespace FuncFlow.NN

open System
open System.Globalization
open System.IO
open System.Text

/// One curve of a plot.
type internal Series =
    {
        /// The legend text.
        Name: string
        /// The values at x = 1, 2, ...
        Values: float[]
    }

/// Line charts written as SVG by hand: one panel per quantity, each with axes, ticks and a legend.
/// Internal: users get plots through FitOptions.PlotPath and History.SavePlot.
[<RequireQualifiedAccess>]
module internal Plot =
    let private colors = [| "#1f77b4"; "#d62728"; "#2ca02c"; "#ff7f0e" |]
    let private width, panelHeight = 640.0, 260.0
    let private left, right, top, bottom = 70.0, 20.0, 40.0, 45.0
    let private num (x: float) = x.ToString("0.##", CultureInfo.InvariantCulture)
    let private label (x: float) = x.ToString("G4", CultureInfo.InvariantCulture)
    let private escape (s: string) = s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;")

    // About five round values (1, 2, 2.5 or 5 times a power of ten apart) inside [lo, hi].
    let private niceTicks (lo: float) (hi: float) =
        let raw = (hi - lo) / 4.0
        let magnitude = 10.0 ** floor (log10 raw)
        let step =
            [ 1.0; 2.0; 2.5; 5.0; 10.0 ] |> List.map (fun m -> m * magnitude) |> List.find (fun s -> s >= raw)
        let first = ceil (lo / step) * step
        [ for k in 0 .. int ((hi - first) / step + 1e-9) -> first + float k * step ]

    let private panel (sb: StringBuilder) (y0: float) (title: string) (xLabel: string) (series: Series list) =
        let finite = series |> List.collect (fun s -> s.Values |> Array.filter Double.IsFinite |> List.ofArray)
        let lo, hi =
            match finite with
            | [] -> 0.0, 1.0
            | v -> List.min v, List.max v
        // A flat curve still needs a visible range.
        let lo, hi = if hi - lo < 1e-12 then lo - 0.5, hi + 0.5 else lo, hi
        let n = series |> List.map (fun s -> s.Values.Length) |> List.fold max 1
        let plotW, plotH = width - left - right, panelHeight - top - bottom
        let px (i: int) = left + (if n = 1 then plotW / 2.0 else plotW * float i / float (n - 1))
        let py (v: float) = y0 + top + plotH * (1.0 - (v - lo) / (hi - lo))
        let line (x1: float) (y1: float) (x2: float) (y2: float) (stroke: string) =
            sb.AppendFormat("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{3}\" stroke=\"{4}\"/>\n", num x1, num y1, num x2, num y2, stroke)
            |> ignore
        let text (x: float) (y: float) (anchor: string) (extra: string) (s: string) =
            sb.AppendFormat("<text x=\"{0}\" y=\"{1}\" text-anchor=\"{2}\" {3}>{4}</text>\n", num x, num y, anchor, extra, escape s)
            |> ignore
        text (width / 2.0) (y0 + 24.0) "middle" "font-size=\"15\" font-weight=\"bold\"" title
        for v in niceTicks lo hi do
            line left (py v) (left + plotW) (py v) "#e0e0e0"
            line (left - 5.0) (py v) left (py v) "black"
            text (left - 8.0) (py v + 4.0) "end" "font-size=\"11\"" (label v)
        // The axes go over the grid lines.
        line left (y0 + top + plotH) (left + plotW) (y0 + top + plotH) "black"
        line left (y0 + top) left (y0 + top + plotH) "black"
        let ticks = min (n - 1) 10
        for k in 0..ticks do
            let i = if ticks = 0 then 0 else (n - 1) * k / ticks
            line (px i) (y0 + top + plotH) (px i) (y0 + top + plotH + 5.0) "black"
            text (px i) (y0 + top + plotH + 18.0) "middle" "font-size=\"11\"" (string (i + 1))
        text (left + plotW / 2.0) (y0 + panelHeight - 6.0) "middle" "font-size=\"12\"" xLabel
        series
        |> List.iteri (fun k s ->
            let color = colors[k % colors.Length]
            let points =
                s.Values
                |> Array.mapi (fun i v -> i, v)
                |> Array.filter (fun (_, v) -> Double.IsFinite v)
                |> Array.map (fun (i, v) -> num (px i) + "," + num (py v))
            sb.AppendFormat(
                "<polyline fill=\"none\" stroke=\"{0}\" stroke-width=\"2\" points=\"{1}\"/>\n",
                color,
                String.Join(" ", points)
            )
            |> ignore
            // The legend sits in the top margin, right of the title, so it never covers a curve.
            let ly = y0 + 14.0 + 14.0 * float k
            line (left + plotW - 90.0) (ly - 4.0) (left + plotW - 70.0) (ly - 4.0) color
            text (left + plotW - 65.0) ly "start" "font-size=\"12\"" s.Name)

    /// An SVG document with one panel per (title, series) pair, stacked, sharing the x-axis label.
    let svg (xLabel: string) (panels: (string * Series list) list) : string =
        let sb = StringBuilder()
        let height = panelHeight * float (max 1 panels.Length)
        sb.AppendFormat(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" font-family=\"sans-serif\">\n",
            num width,
            num height
        )
        |> ignore
        sb.AppendFormat("<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n", num width, num height)
        |> ignore
        panels |> List.iteri (fun k (title, series) -> panel sb (panelHeight * float k) title xLabel series)
        sb.Append("</svg>\n").ToString()

    /// Writes svg's document to a file, creating its folder.
    let save (path: string) (xLabel: string) (panels: (string * Series list) list) : unit =
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path)) |> ignore
        let bytes = Encoding.UTF8.GetBytes(svg xLabel panels)
        FuncFlow.Data.DataFile.writeAtomically ignore path (fun s -> s.Write(bytes, 0, bytes.Length))
