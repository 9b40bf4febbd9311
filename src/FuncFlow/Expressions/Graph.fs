namespace FuncFlow

open System.Collections.Generic

/// Walks over expression DAGs, iteratively: graph depth never grows the call stack.
module Graph =
    /// Every node reachable from the roots, each once, operands before their users (post-order DFS).
    let topoSort (roots: Expr seq) : Expr[] =
        let order = ResizeArray<Expr>()
        let visited = HashSet<int64>()
        let stack = Stack<struct (Expr * int)>()
        for root in roots do
            if visited.Add root.Id then stack.Push(struct (root, 0))
            while stack.Count > 0 do
                let struct (node, next) = stack.Pop()
                if next < node.Inputs.Length then
                    stack.Push(struct (node, next + 1))
                    let child = node.Inputs[next]
                    if visited.Add child.Id then stack.Push(struct (child, 0))
                else order.Add node
        order.ToArray()

    /// The variables the roots depend on, in first-use order.
    let variables (roots: Expr seq) : Expr list =
        topoSort roots
        |> Array.filter (fun e -> match e.Op with Var _ -> true | _ -> false)
        |> List.ofArray

    /// The number of distinct nodes reachable from the roots.
    let size (roots: Expr seq) = (topoSort roots).Length
