namespace FuncFlow

open System
open System.Numerics

/// Runs one node's operation on its operands' storage into a destination buffer. One-shot evaluation
/// and compiled plans both call this, so they compute the same values by construction.
type internal Execute<'T when 'T :> IFloatingPointIeee754<'T> and 'T: (new: unit -> 'T) and 'T: struct and 'T :> ValueType> =

    /// The [outer; n; inner] view of a shape around one axis.
    static member Around(shape: int[], axis: int) : struct (int * int * int) =
        let mutable outer = 1
        let mutable inner = 1
        for i in 0 .. axis - 1 do
            outer <- outer * shape[i]
        for i in axis + 1 .. shape.Length - 1 do
            inner <- inner * shape[i]
        struct (outer, shape[axis], inner)

    /// Runs an elementwise operation (unary, binary or powScalar) over spans: the one dispatch from an Op
    /// to its kernel, which Node, Eval's scalar path and fused plan groups all call. A binary operand of
    /// one element is broadcast as a value; unary operations ignore b.
    static member Elementwise(op: Op, a: ReadOnlySpan<'T>, b: ReadOnlySpan<'T>, dst: Span<'T>) : unit =
        match op with
        | Op.Unary u -> Kernels<'T>.Unary(u, a, dst)
        | Op.Binary o -> Kernels<'T>.Binary(o, a, b, dst)
        | Op.PowScalar p -> Kernels<'T>.PowScalar(a, 'T.CreateTruncating p, dst)
        | _ -> invalidOp (sprintf "%s is not an elementwise operation" op.Name)

    /// Writes `node` computed from `args` (its operands' values, in order) into dst.
    static member Node(node: Expr, args: 'T[][], dst: 'T[]) : unit =
        match node.Op with
        | Op.Var name -> invalidOp (sprintf "variable '%s' must be bound, not executed" name)
        | Op.Const t -> (t.Data :?> 'T[]).CopyTo(dst, 0)
        | Op.Unary _
        | Op.PowScalar _ -> Execute<'T>.Elementwise(node.Op, ReadOnlySpan args[0], ReadOnlySpan<'T>.Empty, Span dst)
        // Operands that need no strides reach Elementwise's binary dispatcher whole, others row by row.
        | Op.Binary op -> Kernels<'T>.Binary(op, args[0], node.Inputs[0].ShapeRef, args[1], node.Inputs[1].ShapeRef, dst, node.ShapeRef)
        | Op.MatMul -> Execute<'T>.MatMul(node, args[0], args[1], dst, false, false, false)
        | Op.Permute perm -> Kernels<'T>.Permute(args[0], node.Inputs[0].ShapeRef, perm, dst)
        | Op.Reshape _ -> args[0].CopyTo(dst, 0)
        | Op.BroadcastTo _ -> Kernels<'T>.BroadcastTo(args[0], node.Inputs[0].ShapeRef, dst, node.ShapeRef)
        | Op.Reduce(kind, axis, _) ->
            let struct (outer, n, inner) =
                match axis with
                | Some a -> Execute<'T>.Around(node.Inputs[0].ShapeRef, a)
                | None -> struct (1, args[0].Length, 1)
            Kernels<'T>.Reduce(kind, args[0], outer, n, inner, dst)
        | Op.Concat axis ->
            let struct (outer, total, inner) = Execute<'T>.Around(node.ShapeRef, axis)
            let mutable start = 0
            for i in 0 .. args.Length - 1 do
                let len = node.Inputs[i].ShapeRef[axis]
                Kernels<'T>.CopyAxis(args[i], len, 0, 1, dst, total, start, 1, outer, len, inner)
                start <- start + len
        | Op.Slice(axis, start, length, step) ->
            let struct (outer, n, inner) = Execute<'T>.Around(node.Inputs[0].ShapeRef, axis)
            Kernels<'T>.CopyAxis(args[0], n, start, step, dst, length, 0, 1, outer, length, inner)
        | Op.Pad(axis, before, _, interior, value) ->
            let struct (outer, n, inner) = Execute<'T>.Around(node.Inputs[0].ShapeRef, axis)
            Array.Fill(dst, 'T.CreateTruncating value)
            Kernels<'T>.CopyAxis(args[0], n, 0, 1, dst, node.ShapeRef[axis], before, interior + 1, outer, n, inner)
        | Op.Gather axis ->
            let struct (outer, rows, inner) = Execute<'T>.Around(node.Inputs[0].ShapeRef, axis)
            Kernels<'T>.Gather(args[0], outer, rows, inner, args[1], dst)
        | Op.ScatterAdd(axis, rows) ->
            let struct (outer, _, inner) = Execute<'T>.Around(node.ShapeRef, axis)
            Kernels<'T>.ScatterAdd(args[0], outer, rows, inner, args[1], dst)
        | Op.OneHot classes -> Kernels<'T>.OneHot(args[0], classes, dst)
        | Op.Softmax axis ->
            let struct (outer, n, inner) = Execute<'T>.Around(node.ShapeRef, axis)
            Kernels<'T>.Softmax(false, args[0], outer, n, inner, dst)
        | Op.LogSoftmax axis ->
            let struct (outer, n, inner) = Execute<'T>.Around(node.ShapeRef, axis)
            Kernels<'T>.Softmax(true, args[0], outer, n, inner, dst)
        | Op.AddN ->
            args[0].CopyTo(dst, 0)
            for i in 1 .. args.Length - 1 do
                Numerics.Tensors.TensorPrimitives.Add(ReadOnlySpan dst, ReadOnlySpan args[i], Span dst)
        // Convolution and pooling (the conv group).
        | Op.Unfold w -> Halved<'T>.Im2Col(false, args[0], dst, Window2d.Of(node.Inputs[0].ShapeRef, w))
        | Op.Fold w -> Halved<'T>.Im2Col(true, dst, args[0], Window2d.Of(node.ShapeRef, w))
        | Op.MaxPoolPick w -> Halved<'T>.MaxPool(false, args[0], args[1], dst, Window2d.Of(node.Inputs[0].ShapeRef, w))
        | Op.MaxPoolScatter w -> Halved<'T>.MaxPool(true, args[0], args[1], dst, Window2d.Of(node.ShapeRef, w))
        // ops group.
        | Op.Where ->
            let shapeOf (i: int) = node.Inputs[i].ShapeRef
            Kernels<'T>.Where(args[0], shapeOf 0, args[1], shapeOf 1, args[2], shapeOf 2, dst, node.ShapeRef)
        // shapeops group.
        | Op.Cumsum(axis, reverse) ->
            let struct (outer, n, inner) = Execute<'T>.Around(node.ShapeRef, axis)
            Kernels<'T>.Cumsum(reverse, args[0], outer, n, inner, dst)
        | Op.Custom c -> c.Run(node, args, dst)

    /// A (batched) matrix product; the flags read an operand as transposed without copying it. With
    /// `accumulate` the product is added to dst's values (GEMM's beta = 1).
    static member MatMul(node: Expr, a: 'T[], b: 'T[], dst: 'T[], transA: bool, transB: bool, accumulate: bool) : unit =
        let s = node.ShapeRef
        let r = s.Length
        let m, n = s[r - 2], s[r - 1]
        let k = node.Inputs[0].ShapeRef[node.Inputs[0].Rank - 1]
        let struct (batch, _, _) = Execute<'T>.Around(s, r - 2)
        // An operand of lower rank (Expr.matmul allows missing leading axes) has fewer matrices.
        let struct (batchA, _, _) = Execute<'T>.Around(node.Inputs[0].ShapeRef, node.Inputs[0].Rank - 2)
        let struct (batchB, _, _) = Execute<'T>.Around(node.Inputs[1].ShapeRef, node.Inputs[1].Rank - 2)
        Halved<'T>.MatMul
            {
                A = a
                AShape = node.Inputs[0].ShapeRef
                B = b
                BShape = node.Inputs[1].ShapeRef
                Dst = dst
                OutShape = s
                Batch = batch
                BatchA = batchA
                BatchB = batchB
                M = m
                K = k
                N = n
                TransA = transA
                TransB = transB
                Accumulate = accumulate
            }

    /// node = (A B)^T for a rank-2 product A B of shape [m; n], computed as the one GEMM B^T A^T into [n; m]:
    /// a is B's buffer and b is A's, each read through its flag (PlanCompiler's TransposedGemm).
    static member TransposedMatMul(node: Expr, a: 'T[], b: 'T[], dst: 'T[], transA: bool, transB: bool) : unit =
        let product = node.Inputs[0]
        let s = node.ShapeRef
        let k = product.Inputs[0].ShapeRef[1]
        Kernels<'T>
            .MatMulBatches(
                {
                    A = a
                    AShape = product.Inputs[1].ShapeRef
                    B = b
                    BShape = product.Inputs[0].ShapeRef
                    Dst = dst
                    OutShape = s
                    Batch = 1
                    BatchA = 1
                    BatchB = 1
                    M = s[0]
                    K = k
                    N = s[1]
                    TransA = transA
                    TransB = transB
                    Accumulate = false
                },
                0,
                1
            )

    /// Fails, naming the node, if any value is NaN or infinite (anomaly mode). The message gives the operation,
    /// the shapes, the operands' values at the offending index when they line up with it, and where the node
    /// was built when creation sites are captured.
    static member CheckFinite(node: Expr, args: 'T[][], values: 'T[]) : unit =
        let bad = Array.FindIndex(values, fun v -> not ('T.IsFinite v))
        if bad >= 0 then
            let value = string values[bad]
            let what =
                match node.Op with
                | Op.Var name ->
                    sprintf
                        "variable '%s' (shape %s) is bound to a value holding %s at flat index %d"
                        name
                        (Shape.show node.ShapeRef)
                        value
                        bad
                | _ ->
                    let operands = node.Inputs |> Array.map (fun i -> Shape.show i.ShapeRef) |> String.concat ", "
                    sprintf
                        "%s (node %d, shape %s, operands %s) produced %s at flat index %d"
                        node.Op.Name
                        node.Id
                        (Shape.show node.ShapeRef)
                        operands
                        value
                        bad
            // Elementwise operands of the output's size are read at the same index: the value that went wrong.
            let from =
                match node.Op with
                | Op.Unary _
                | Op.Binary _
                | Op.PowScalar _ when args |> Array.forall (fun a -> a.Length = values.Length) ->
                    sprintf "; operand values there: %s" (args |> Array.map (fun a -> string a[bad]) |> String.concat ", ")
                | _ -> ""
            let site =
                match node.CreationSite with
                | Some s -> sprintf "; built at %s" s
                | None -> "; set Expr.CaptureCreationSites <- true (or FUNCFLOW_TRACE=1) to see where it was built"
            raise (ArithmeticException(sprintf "anomaly: %s%s%s" what from site))
