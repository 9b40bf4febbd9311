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

    /// Nesting beyond this depth is bound with a let, so that deep chains print as readable lines.
    [<Literal>]
    let private MaxInlineDepth = 16

    /// The formula of one node as pieces and the binding strength of its top operator; `strength p` is
    /// how tightly the operand at position p binds as written (a let-bound operand is an atom).
    let private render (e: Expr) (operand: Expr -> int) (strength: int -> int) : Piece[] * int =
        let wrapped (position: int) (needed: int) =
            if strength position >= needed then [ Operand position ] else [ Text "("; Operand position; Text ")" ]
        let infix (symbol: string) (level: int) (left: int) (right: int) =
            // Left-associative operators need parentheses on an equal right operand, ** on an equal left one.
            let leftNeed, rightNeed = if level = Power then level + 1, level else level, level + 1
            Array.ofList (wrapped left leftNeed @ [ Text(" " + symbol + " ") ] @ wrapped right rightNeed), level
        let name, parameters = e.Op.Describe
        let positions = e.Inputs |> Array.map operand
        match e.Op with
        | Var _ -> [| Text name |], Atom
        // A scalar constant is written as its value.
        | Const t when t.Rank = 0 -> [| Text parameters.Head |], (if t.At 0 < 0.0 then Negation else Atom)
        | Const t -> [| Text(name + Shape.show t.ShapeRef) |], Atom
        | Unary Neg -> Array.ofList (Text "-" :: wrapped positions[0] Atom), Negation
        | Binary op ->
            let level =
                match op with
                | Add | Sub -> Additive
                | Mul | Div -> Multiplicative
                | Pow -> Power
                | Equal -> Compare
            infix name level positions[0] positions[1]
        | PowScalar _ ->
            Array.ofList (wrapped positions[0] (Power + 1) @ [ Text(" ** " + parameters.Head) ]), Power
        | _ ->
            let operands = positions |> Array.toList |> List.map (fun p -> [ Operand p ])
            let arguments = operands @ (parameters |> List.map (fun s -> [ Text s ]))
            let separated = arguments |> List.reduce (fun a b -> a @ [ Text ", " ] @ b)
            Array.ofList (Text(name + "(") :: separated @ [ Text ")" ]), Atom

    /// A readable infix formula, e.g. `sigmoid(matmul(x, w) + b)`. A node used more than once is printed
    /// once, as `let t1 = ... in` before the formula; so is a node nested deeper than a few levels, which
    /// keeps long chains readable and the output linear in the graph's size.
    let formula (e: Expr) : string =
        let order = Graph.topoSort [ e ]
        let position = Dictionary<int64, int>(order.Length)
        order |> Array.iteri (fun i n -> position[n.Id] <- i)
        let uses = Array.zeroCreate order.Length
        for node in order do
            for input in node.Inputs do
                uses[position[input.Id]] <- uses[position[input.Id]] + 1
        let pieces: Piece[][] = Array.zeroCreate order.Length
        let strength: int[] = Array.zeroCreate order.Length
        let depth: int[] = Array.zeroCreate order.Length
        let bound: bool[] = Array.zeroCreate order.Length
        let effective p = if bound[p] then Atom else strength[p]
        for i in 0 .. order.Length - 1 do
            let node = order[i]
            let p, s = render node (fun input -> position[input.Id]) effective
            pieces[i] <- p
            strength[i] <- s
            depth[i] <- 1 + (node.Inputs |> Array.fold (fun d input -> let q = position[input.Id] in max d (if bound[q] then 0 else depth[q])) 0)
            bound[i] <- i < order.Length - 1 && node.Inputs.Length > 0 && (uses[i] > 1 || depth[i] > MaxInlineDepth)
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
        for i in 0 .. order.Length - 1 do
            if bound[i] then
                names[i] <- sprintf "t%d" (names.Count + 1)
                sb.Append("let ").Append(names[i]).Append(" = ") |> ignore
                write i
                sb.Append(" in\n") |> ignore
        write (order.Length - 1)
        sb.ToString()

    let private escape (s: string) = s.Replace("\\", "\\\\").Replace("\"", "\\\"")

    /// Graphviz DOT of the graph computing the outputs: one node per expression labelled with its operation
    /// (a variable with its name) and shape, edges from operands to their users, outputs drawn with a double
    /// border. Nodes are numbered in topological order, so the same graph always prints the same text.
    let dot (outputs: Expr list) : string =
        let order = Graph.topoSort outputs
        let position = Dictionary<int64, int>(order.Length)
        order |> Array.iteri (fun i n -> position[n.Id] <- i)
        let isOutput = HashSet<int64>(outputs |> Seq.map (fun o -> o.Id))
        let sb = StringBuilder()
        sb.Append("digraph funcflow {\n  node [shape=box];\n") |> ignore
        for i in 0 .. order.Length - 1 do
            let node = order[i]
            let name, parameters = node.Op.Describe
            // DOT reads the two characters \n inside a quoted label as a line break.
            let label = escape (String.Join(" ", name :: parameters)) + "\\n" + Shape.show node.ShapeRef
            let attributes =
                [ yield "label=\"" + label + "\""
                  match node.Op with Var _ -> yield "shape=ellipse" | _ -> ()
                  if isOutput.Contains node.Id then yield "peripheries=2" ]
            sb.AppendFormat("  n{0} [{1}];\n", i, String.Join(", ", attributes)) |> ignore
            for input in node.Inputs do
                sb.AppendFormat("  n{0} -> n{1};\n", position[input.Id], i) |> ignore
        sb.Append("}\n") |> ignore
        sb.ToString()
