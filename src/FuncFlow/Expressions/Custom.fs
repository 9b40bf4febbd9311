namespace FuncFlow

open System

/// User-defined operations: the analogue of JAX's custom_vjp and PyTorch's autograd.Function. A CustomOp takes
/// part in evaluation, plans (which run its kernel into their own buffers), printing, DOT and GradCheck like
/// a built-in operation.
/// Example, a numerically stable log-sum-exp over the last axis of a matrix:
/// <code>
/// let logSumExp =
///     CustomOp.create "logSumExp" (fun shapes -> [| shapes.Head[0] |]) kernel
///         (fun inputs y g -> [ Some(Expr.reshape [| -1; 1 |] g * Expr.exp (inputs.Head - Expr.reshape [| -1; 1 |] y)) ])
/// let z = CustomOp.apply logSumExp [ x ]
/// </code>
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module CustomOp =
    let private fail (name: string) (message: string) : 'a = invalidArg "operands" (sprintf "%s: %s" name message)

    /// A user-defined operation from its name, its shape rule (the output's shape from the operands' shapes;
    /// throw an ArgumentException to reject operands), its float64 forward kernel (which writes the value into
    /// args.Output) and its gradient rule (from the operands, the node and the gradient g flowing into it, one
    /// entry per operand: Some gradient of that operand's shape, or None where the operation is not
    /// differentiable). float32 nodes need withFloat32.
    let create
        (name: string)
        (shape: int[] list -> int[])
        (forward: CustomArgs<float> -> unit)
        (vjp: Expr list -> Expr -> Expr -> Expr option list)
        : CustomOp =
        if String.IsNullOrWhiteSpace name then
            invalidArg "name" "CustomOp.create: a user-defined operation needs a non-empty name"
        if isNull (box shape) || isNull (box forward) || isNull (box vjp) then
            nullArg (sprintf "CustomOp.create %s: the shape rule, forward kernel and gradient rule are all required" name)
        CustomOp(name, shape, forward, None, vjp, None, None)

    /// The operation with a float32 forward kernel too.
    let withFloat32 (forward: CustomArgs<float32> -> unit) (op: CustomOp) : CustomOp = op.With(f32 = forward)

    /// The operation with a forward-mode rule: from the operands, the node and the operands' tangents
    /// (None: zero), the node's tangent.
    let withJvp (rule: Expr list -> Expr -> Expr option list -> Expr) (op: CustomOp) : CustomOp = op.With(jvpRule = rule)

    /// The operation with a batching rule: from the operands and each one's batch axis (None: not batched),
    /// the result and its batch axis.
    let withBatching (rule: Expr list -> int option list -> Expr * int) (op: CustomOp) : CustomOp = op.With(batchRule = rule)

    /// The operation applied to operands of one dtype: a node whose shape the operation's shape rule gives.
    let apply (op: CustomOp) (operands: Expr list) : Expr =
        if isNull (box op) then nullArg "op"
        let name = op.Name
        let inputs = Array.ofList operands
        if inputs.Length = 0 then fail name "a user-defined operation needs at least one operand"
        if inputs |> Array.exists (box >> isNull) then
            raise (ArgumentNullException("operands", sprintf "%s: an operand is null; pass an expression" name))
        let shapes () = inputs |> Array.map (fun e -> Shape.show e.ShapeRef) |> String.concat ", "
        let dtype = inputs[0].DType
        if inputs |> Array.exists (fun e -> e.DType <> dtype) then
            let dtypes = inputs |> Array.map (fun e -> e.DType.Name) |> String.concat ", "
            fail name (sprintf "operands have dtypes %s; cast them so all have the same dtype" dtypes)
        if dtype = Float32 && op.Forward32.IsNone then
            fail
                name
                (sprintf "the operands are float32 but the operation has no float32 forward kernel; give one with CustomOp.withFloat32")
        let shape =
            try
                op.Shape(inputs |> Array.map (fun e -> e.Shape) |> List.ofArray)
            with :? ArgumentException as e ->
                raise (
                    ArgumentException(
                        sprintf "%s: operands of shapes %s rejected by its shape rule: %s" name (shapes ()) e.Message,
                        "operands",
                        e
                    )
                )
        if isNull shape then
            fail name (sprintf "the shape rule gave null for operands of shapes %s" (shapes ()))
        Shape.validate (sprintf "%s (shape rule, operands %s)" name (shapes ())) shape
        Expr.make (Op.Custom op) inputs (Array.copy shape) dtype
