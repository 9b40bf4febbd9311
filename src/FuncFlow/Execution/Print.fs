namespace FuncFlow

open System
open System.Collections.Generic
open System.Text

/// Readable renderings of expression graphs: an infix formula, and Graphviz DOT. Both walk the graph
/// iteratively, so a graph of any depth prints without growing the call stack.
module Print =
    /// A piece of a node's formula: literal text, or an operand (by topological position) written in place.
    [<Struct>]
    type private Piece =
        | Text of text: string
        | Operand of position: int

    // Binding strength of a formula's top operator; an operand binding less tightly than its user needs
    // parentheses.
    [<Literal>]
    let private Compare = 0
    [<Literal>]
    let private Additive = 1
    [<Literal>]
    let private Multiplicative = 2
    [<Literal>]
    let private Negation = 3
    [<Literal>]
    let private Power = 4
    [<Literal>]
    let private Atom = 5

    /// A binary operation written infix, with its binding strength; maximum and minimum are written as calls.
    let private (|Infix|_|) (op: BinaryOp) =
        match op with
        | BinaryOp.Add
        | BinaryOp.Sub -> Some Additive
        | BinaryOp.Mul
        | BinaryOp.Div -> Some Multiplicative
        | BinaryOp.Pow -> Some Power
        | BinaryOp.Equal -> Some Compare
        | BinaryOp.Maximum
        | BinaryOp.Minimum -> None

    let private isScalarConstant (e: Expr) =
        match e.Op with
        | Op.Const t -> t.Size = 1
        | _ -> false

    /// A reshape or broadcast of a one-element value, which a formula shows as the value itself: an
    /// elementwise user broadcasts it anyway.
    let private isScalarView (e: Expr) =
        match e.Op with
        | Op.Reshape _
        | Op.BroadcastTo _ -> Shape.size e.Inputs[0].ShapeRef = 1
        | _ -> false

    /// Nesting beyond this depth is bound with a let, so that deep chains print as readable lines.
    [<Literal>]
    let private MaxInlineDepth = 16

    /// The formula of one node as pieces and the binding strength of its top operator, given its operands'
    /// positions; `strength p` is how tightly the operand at position p binds as written (a let-bound operand
    /// is an atom).
    let private render (e: Expr) (positions: int[]) (nodeAt: int -> Expr) (strength: int -> int) : Piece[] * int =
        let wrapped (position: int) (needed: int) =
            if strength position >= needed then
                [ Operand position ]
            else
                [ Text "("; Operand position; Text ")" ]
        let infix (symbol: string) (level: int) (left: int) (right: int) =
            // Left-associative operators need parentheses on an equal right operand, ** on an equal left one.
            let leftNeed, rightNeed = if level = Power then level + 1, level else level, level + 1
            Array.ofList (wrapped left leftNeed @ [ Text(" " + symbol + " ") ] @ wrapped right rightNeed), level
        let name, parameters = e.Op.Describe
        match e.Op with
        | Op.Var _ -> [| Text name |], Atom
        // A scalar constant is written as its value.
        | Op.Const t when t.Size = 1 -> [| Text parameters.Head |], (if t.At 0 < 0.0 then Negation else Atom)
        | Op.Const t -> [| Text(name + Shape.show t.ShapeRef) |], Atom
        | Op.Unary UnaryOp.Neg -> Array.ofList (Text "-" :: wrapped positions[0] Atom), Negation
        // x * x reads as x ** 2, and a constant factor goes first (3 * x ** 2), as one writes them by hand.
        | Op.Binary BinaryOp.Mul when positions[0] = positions[1] ->
            Array.ofList (wrapped positions[0] (Power + 1) @ [ Text " ** 2" ]), Power
        | Op.Binary BinaryOp.Mul when isScalarConstant (nodeAt positions[1]) && not (isScalarConstant (nodeAt positions[0])) ->
            infix name Multiplicative positions[1] positions[0]
        | Op.Binary(Infix level) -> infix name level positions[0] positions[1]
        | Op.PowScalar _ -> Array.ofList (wrapped positions[0] (Power + 1) @ [ Text(" ** " + parameters.Head) ]), Power
        | _ ->
            let operands = positions |> Array.toList |> List.map (fun p -> [ Operand p ])
            let arguments = operands @ (parameters |> List.map (fun s -> [ Text s ]))
            let separated = arguments |> List.reduce (fun a b -> a @ [ Text ", " ] @ b)
            Array.ofList (Text(name + "(") :: separated @ [ Text ")" ]), Atom

    /// A readable infix formula, e.g. `sigmoid(matmul(x, w) + b)`, written as by hand: x * x as x ** 2, a
    /// constant factor first, reshapes and broadcasts of one-element values hidden. A node used more than
    /// once is printed once, as `let t1 = ... in` before the formula; so is a node nested deeper than a few
    /// levels, which keeps long chains readable and the output linear in the graph's size.
    let formula (e: Expr) : string =
        use schedule = Schedule.Build [| e |]
        let n = schedule.Count
        let order = schedule.Order
        // The position whose text each node shows: its own, or for a hidden view its operand's.
        let shown: int[] = Array.zeroCreate n
        let positions: int[][] = Array.zeroCreate n
        let uses: int[] = Array.zeroCreate n
        for i in 0 .. n - 1 do
            positions[i] <- schedule.Operands[schedule.Starts[i] .. schedule.Starts[i + 1] - 1] |> Array.map (fun p -> shown[p])
            if isScalarView order[i] then
                shown[i] <- positions[i][0]
            else
                shown[i] <- i
                // x * x reads x once, as x ** 2.
                let reads =
                    if order[i].Op = Op.Binary BinaryOp.Mul && positions[i][0] = positions[i][1] then
                        positions[i][..0]
                    else
                        positions[i]
                for p in reads do
                    uses[p] <- uses[p] + 1
        let root = shown[n - 1]
        let pieces: Piece[][] = Array.zeroCreate n
        let strength: int[] = Array.zeroCreate n
        let depth: int[] = Array.zeroCreate n
        let bound: bool[] = Array.zeroCreate n
        let effective p = if bound[p] then Atom else strength[p]
        for i in 0 .. n - 1 do
            if shown[i] = i then
                let p, s = render order[i] positions[i] (fun q -> order[q]) effective
                pieces[i] <- p
                strength[i] <- s
                depth[i] <- 1 + (positions[i] |> Array.fold (fun d q -> max d (if bound[q] then 0 else depth[q])) 0)
                // The root is written out anyway.
                bound[i] <- i <> root && positions[i].Length > 0 && (uses[i] > 1 || depth[i] > MaxInlineDepth)
        let names = Dictionary<int, string>()
        let sb = StringBuilder()
        let stack = Stack<Piece>()
        let expand (p: int) =
            let ps = pieces[p]
            for k in ps.Length - 1 .. -1 .. 0 do
                stack.Push ps[k]
        let write (root: int) =
            expand root
            while stack.Count > 0 do
                match stack.Pop() with
                | Text t -> sb.Append t |> ignore
                | Operand p when bound[p] -> sb.Append names[p] |> ignore
                | Operand p -> expand p
        for i in 0 .. n - 1 do
            if bound[i] then
                names[i] <- sprintf "t%d" (names.Count + 1)
                sb.Append("let ").Append(names[i]).Append(" = ") |> ignore
                write i
                sb.Append(" in\n") |> ignore
        write root
        sb.ToString()

    /// An expression as F# Interactive shows it (FuncFlow.fsx registers this printer): its formula, then its
    /// shape and dtype, e.g. `3 * x ** 2 + 2 * (1 - tanh(x) ** 2)  (shape (), float64)`.
    let interactive (e: Expr) : string = sprintf "%s  (shape %s, %s)" (formula e) (Shape.show e.ShapeRef) e.DType.Name

    /// A tensor laid out as NumPy prints arrays: one row per line, columns aligned, a blank line between
    /// blocks of higher axes, and the middle of axes longer than six elided (with "...") above 1000 elements.
    let tensor (t: Tensor) : string =
        let shape = t.ShapeRef
        let rank = shape.Length
        let strides = Shape.strides shape
        let edge = 3
        let elide = t.Size > 1000
        let indices (n: int) =
            if elide && n > 2 * edge then
                [ yield! [ 0 .. edge - 1 ]; yield -1; yield! [ n - edge .. n - 1 ] ]
            else
                [ 0 .. n - 1 ]
        let text (offset: int) = t.At(offset).ToString("G6", Globalization.CultureInfo.InvariantCulture)
        // The widest number shown sets the columns' width. Recursion here is over the axes, not the graph.
        let rec widest (axis: int) (offset: int) =
            if axis = rank then
                (text offset).Length
            else
                indices shape[axis]
                |> List.filter (fun i -> i >= 0)
                |> List.fold (fun w i -> max w (widest (axis + 1) (offset + i * strides[axis]))) 0
        let width = if t.Size = 0 then 0 else widest 0 0
        let prefix = "tensor("
        let sb = StringBuilder(prefix)
        let rec write (axis: int) (offset: int) =
            if axis = rank then
                sb.Append((text offset).PadLeft width) |> ignore
            else
                sb.Append('[') |> ignore
                indices shape[axis]
                |> List.iteri (fun k i ->
                    if k > 0 then
                        sb.Append(',') |> ignore
                        if axis = rank - 1 then
                            sb.Append(' ') |> ignore
                        else
                            sb.Append('\n', rank - axis - 1).Append(' ', prefix.Length + axis + 1) |> ignore
                    if i < 0 then sb.Append("...") |> ignore else write (axis + 1) (offset + i * strides[axis]))
                sb.Append(']') |> ignore
        write 0 0
        sb.AppendFormat(", shape={0}, dtype={1})", Shape.show shape, t.DType.Name) |> ignore
        sb.ToString()

    let private escape (s: string) = s.Replace("\\", "\\\\").Replace("\"", "\\\"")

    /// Graphviz DOT of the graph computing the outputs: one node per expression labelled with its operation
    /// (a variable with its name) and shape, edges from operands to their users, outputs drawn with a double
    /// border. Nodes are numbered in topological order, so the same graph always prints the same text.
    let dot (outputs: Expr list) : string =
        use schedule = Schedule.Build(Array.ofList outputs)
        let isOutput = HashSet<int>(schedule.Roots)
        let sb = StringBuilder()
        sb.Append("digraph funcflow {\n  node [shape=box];\n") |> ignore
        for i in 0 .. schedule.Count - 1 do
            let node = schedule.Order[i]
            let name, parameters = node.Op.Describe
            // DOT reads the two characters \n inside a quoted label as a line break.
            let label = escape (String.Join(" ", name :: parameters)) + "\\n" + Shape.show node.ShapeRef
            let attributes =
                [
                    yield "label=\"" + label + "\""
                    match node.Op with
                    | Op.Var _ -> yield "shape=ellipse"
                    | _ -> ()
                    if isOutput.Contains i then yield "peripheries=2"
                ]
            sb.AppendFormat("  n{0} [{1}];\n", i, String.Join(", ", attributes)) |> ignore
            for e in schedule.Starts[i] .. schedule.Starts[i + 1] - 1 do
                sb.AppendFormat("  n{0} -> n{1};\n", schedule.Operands[e], i) |> ignore
        sb.Append("}\n") |> ignore
        sb.ToString()
