namespace FuncFlow

open System
open System.Collections.Concurrent
open System.Numerics
open System.Linq.Expressions

/// One node of a fused elementwise group and where its operands come from: r >= 0 is the instruction's
/// Args[r], r < 0 the result of step -1 - r. Slot is the block-sized temp it writes (-1 for the last step,
/// which writes the group's result).
[<Struct>]
type internal FusedStep = { Node: Expr; A: int; B: int; Slot: int }

/// A step of a fused group whose values are also a node's, read outside the group: its blocks are copied
/// into that node's buffer (the node at Position) as the group goes.
[<Struct>]
type internal FusedStore = { Step: int; Position: int }

/// A fused group compiled into one loop: elements [start, stop) of dst (and of each stored step's buffer)
/// from args, every step's value held in a register between steps instead of a pass over memory each.
type internal FusedLoop<'T> = delegate of args: 'T[][] * dst: 'T[] * stores: struct (int * 'T[])[] * start: int * stop: int -> unit

/// Groups whose every step is a correctly rounded IEEE operation (+, -, *, /, sqrt) or a sign operation
/// (neg, abs) compile into one loop over Vector<'T>. Such an operation gives the same bits in a vector
/// lane, a scalar or a TensorPrimitives kernel, so the loop computes exactly what the step-by-step
/// kernels do; any other step (exp, tanh, pow: approximations that differ between vector and scalar
/// code) keeps the group on the kernels. Compiled code is shared by groups of the same structure.
module internal FusedLoop =
    type private E = Expression

    let private compiled = ConcurrentDictionary<string, obj>()

    // How a loop computes a step, in a vector lane and a scalar alike.
    [<NoComparison; NoEquality>]
    type private Lane =
        | Operator of (E * E -> BinaryExpression)
        | Negation
        /// Vector.{vector}<'T> on vectors, 'T.{scalar} on the last elements.
        | Method of vector: string * scalar: string

    let private lane (op: Op) : Lane voption =
        match op with
        | Op.Binary BinaryOp.Add -> ValueSome(Operator E.Add)
        | Op.Binary BinaryOp.Sub -> ValueSome(Operator E.Subtract)
        | Op.Binary BinaryOp.Mul -> ValueSome(Operator E.Multiply)
        | Op.Binary BinaryOp.Div -> ValueSome(Operator E.Divide)
        | Op.Unary UnaryOp.Neg -> ValueSome Negation
        | Op.Unary UnaryOp.Sqrt -> ValueSome(Method("SquareRoot", "Sqrt"))
        | Op.Unary UnaryOp.Abs -> ValueSome(Method("Abs", "Abs"))
        | _ -> ValueNone

    /// Whether a group of these steps runs as one loop (tryCompile) and so needs no temps between its steps.
    let covers (steps: FusedStep seq) : bool = steps |> Seq.forall (fun s -> (lane s.Node.Op).IsSome)

    // The loop over vectors, then over the last elements one by one, as an expression tree.
    let private build<'T> (steps: FusedStep[]) (stores: int[]) (broadcast: bool[]) : FusedLoop<'T> =
        let t, v = typeof<'T>, typeof<Vector<'T>>
        let args = E.Parameter(typeof<'T[][]>, "args")
        let dst = E.Parameter(typeof<'T[]>, "dst")
        let storeArgs = E.Parameter(typeof<struct (int * 'T[])[]>, "stores")
        let start = E.Parameter(typeof<int>, "start")
        let stop = E.Parameter(typeof<int>, "stop")
        let i = E.Variable(typeof<int>, "i")
        let arrays = broadcast |> Array.mapi (fun r _ -> E.Variable(typeof<'T[]>, sprintf "a%d" r))
        let scalars = broadcast |> Array.mapi (fun r _ -> E.Variable(t, sprintf "s%d" r))
        let splats = broadcast |> Array.mapi (fun r _ -> E.Variable(v, sprintf "v%d" r))
        let storeArrays = stores |> Array.mapi (fun j _ -> E.Variable(typeof<'T[]>, sprintf "store%d" j))
        let load = v.GetConstructor [| typeof<'T[]>; typeof<int> |]
        let copyTo = v.GetMethod("CopyTo", [| typeof<'T[]>; typeof<int> |])
        let vectorMethod name =
            typeof<Vector>.GetMethods()
            |> Array.find (fun m -> m.Name = name && m.IsGenericMethodDefinition && m.GetParameters().Length = 1)
            |> fun m -> m.MakeGenericMethod t
        let scalarMethod name = t.GetMethod(name, [| t |])
        // One element or one vector of every step, then its writes.
        let pass (vector: bool) : E =
            let values = steps |> Array.mapi (fun k _ -> E.Variable((if vector then v else t), sprintf "x%d" k))
            let operand r : E =
                if r < 0 then
                    values[-1 - r]
                elif broadcast[r] then
                    if vector then splats[r] else scalars[r]
                elif vector then
                    E.New(load, arrays[r], i)
                else
                    E.ArrayIndex(arrays[r], i)
            let compute (step: FusedStep) : E =
                let a = operand step.A
                match lane step.Node.Op with
                | ValueSome(Operator f) -> f (a, operand step.B) :> E
                | ValueSome Negation -> E.Negate a
                | ValueSome(Method(vectorName, scalarName)) ->
                    E.Call((if vector then vectorMethod vectorName else scalarMethod scalarName), a)
                | ValueNone -> invalidOp (sprintf "FusedLoop: %s is not computed in a loop" step.Node.Op.Name)
            let write (value: E) (buffer: E) : E =
                if vector then E.Call(value, copyTo, buffer, i) else E.Assign(E.ArrayAccess(buffer, i), value)
            E.Block(
                values,
                [|
                    for k in 0 .. steps.Length - 1 -> E.Assign(values[k], compute steps[k]) :> E
                    yield write values[steps.Length - 1] dst
                    for j in 0 .. stores.Length - 1 -> write values[stores[j]] storeArrays[j]
                |]
            )
        let loop (condition: E) (body: E) (width: int) : E =
            let exit = E.Label()
            E.Loop(E.IfThenElse(condition, E.Block(body, E.AddAssign(i, E.Constant width)), E.Break exit), exit)
        let width = Vector<'T>.Count
        let body =
            E.Block(
                Array.concat [ [| i |]; arrays; scalars; splats; storeArrays ],
                [|
                    for r in 0 .. broadcast.Length - 1 do
                        let arg = E.ArrayIndex(args, E.Constant r)
                        if broadcast[r] then
                            yield E.Assign(scalars[r], E.ArrayIndex(arg, E.Constant 0)) :> E
                            yield E.Assign(splats[r], E.New(v.GetConstructor [| t |], scalars[r]))
                        else
                            yield E.Assign(arrays[r], arg)
                    for j in 0 .. stores.Length - 1 -> E.Assign(storeArrays[j], E.Field(E.ArrayIndex(storeArgs, E.Constant j), "Item2"))
                    yield E.Assign(i, start)
                    yield loop (E.LessThanOrEqual(i, E.Subtract(stop, E.Constant width))) (pass true) width
                    yield loop (E.LessThan(i, stop)) (pass false) 1
                |]
            )
        E.Lambda<FusedLoop<'T>>(body, [| args; dst; storeArgs; start; stop |]).Compile()

    /// The group as one loop, if every step computes the same bits in one; stores are the stored steps in
    /// order, broadcast says which of the group's arguments are one value for every element.
    let tryCompile<'T> (steps: FusedStep[]) (stores: int[]) (broadcast: bool[]) : FusedLoop<'T> voption =
        if covers steps then
            let key =
                String.Join(
                    ";",
                    [|
                        yield typeof<'T>.Name
                        for s in steps -> sprintf "%s %d %d" s.Node.Op.Name s.A s.B
                        for j in stores -> sprintf "store %d" j
                        for b in broadcast -> if b then "1" else "n"
                    |]
                )
            ValueSome(compiled.GetOrAdd(key, fun _ -> box (build<'T> steps stores broadcast)) :?> FusedLoop<'T>)
        else
            ValueNone
