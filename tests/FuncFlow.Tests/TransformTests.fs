/// Forward mode (Grad.jvp), Jacobians and Hessians: against central differences, against reverse mode through
/// the dot-product identity, against PyTorch's torch.autograd.functional.jacobian/hessian
/// (reference/make_transforms_reference.py), and by hand.
module FuncFlow.Tests.TransformTests

open System
open Expecto
open FsCheck.FSharp
open FuncFlow
open FuncFlow.Tests.Support

/// Variables moved by h along their tangents, as bindings.
let private moved (h: float) (pairs: (Expr * Tensor) list) (tangents: Tensor list) =
    List.map2
        (fun (v: Expr, t: Tensor) (d: Tensor) -> v, Tensor.create t.Shape (Array.map2 (fun a b -> a + h * b) (t.ToArray()) (d.ToArray())))
        pairs
        tangents
    |> bind

/// The directional derivative of f along the tangents by central differences (step 1e-6, PyTorch gradcheck's).
let private centralDirectional (pairs: (Expr * Tensor) list) (tangents: Tensor list) (f: Expr) =
    let h = 1e-6
    let plus = (Eval.evaluate (moved h pairs tangents) f).ToArray()
    let minus = (Eval.evaluate (moved -h pairs tangents) f).ToArray()
    Array.map2 (fun p m -> (p - m) / (2.0 * h)) plus minus

/// jvp with every variable moving along its tangent, evaluated.
let private forward (pairs: (Expr * Tensor) list) (tangents: Tensor list) (f: Expr) =
    let jvp = Grad.jvpMany (List.map2 (fun (v: Expr, _) t -> v, Expr.constant t) pairs tangents) f
    Expect.equal jvp.Shape f.Shape "jvp has f's shape"
    (Eval.evaluate (bind pairs) jvp).ToArray()

/// Asserts agreement within PyTorch gradcheck's tolerances (atol 1e-5, rtol 1e-3), naming the formula.
let private agrees (what: string) (f: Expr) (expected: float[]) (actual: float[]) =
    Array.iteri2
        (fun i (e: float) (a: float) ->
            if not (abs (a - e) <= 1e-5 + 1e-3 * abs e) then
                failtestf "%s: element %d: expected %.10g, got %.10g\nformula: %s" what i e a (Print.formula f))
        expected
        actual

let private genTangents (pairs: (Expr * Tensor) list) =
    pairs |> List.map (fun (v, _) -> genTensor (genFloat -1.0 1.0) v.Shape) |> Gen.sequenceToList

let private withTangents (maxSteps: int) =
    gen {
        let! case = ExprGen.genCase maxSteps
        let! tangents = genTangents case.Variables
        let! u = genTensor (genFloat -1.0 1.0) case.Output.Shape
        return case, tangents, u
    }

/// One small function per operation, over a variable x of the given shape, so that every Op case's forward
/// rule is checked against central differences (the random DAGs do not build gradient-only operations).
let private perOperation: (string * int[] * (Expr -> Expr)) list =
    let window1 = { Kernel = [ 2 ]; Stride = [ 1 ]; Padding = [ 0 ]; Dilation = [ 1 ] }
    let pool = PoolSpec.Create [ 2; 2 ]
    let poolWindow = { Kernel = [ 2; 2 ]; Stride = [ 2; 2 ]; Padding = [ 0; 0 ]; Dilation = [ 1; 1 ] }
    let indices = Expr.constant (Tensor.ofArray [| 2.0; 0.0; 2.0 |])
    [
        "unary", [| 3 |], (fun x -> Expr.sigmoid x * Expr.sin x + Expr.gelu x)
        "binary", [| 2; 3 |], (fun x -> Expr.pow (Expr.sigmoid x + 0.5) (Expr.reshape [| 3 |] (Expr.sumAxis 0 x)) / (x * x + 1.0))
        "powScalar", [| 3 |], (fun x -> x ** 3.0)
        "matmul", [| 2; 2 |], (fun x -> Expr.matmul x (Expr.transpose x))
        "permute", [| 2; 3 |], (fun x -> Expr.permute [| 1; 0 |] x * Expr.constant (Tensor.create [| 3; 2 |] [| 1.0 .. 6.0 |]))
        "reshape", [| 2; 3 |], (fun x -> Expr.reshape [| 3; 2 |] (x * x))
        "broadcastTo", [| 3 |], (fun x -> Expr.broadcastTo [| 2; 3 |] (Expr.tanh x))
        "reductions",
        [| 2; 3 |],
        (fun x -> Expr.sumAxis 0 x * Expr.meanAxis 0 x + Expr.maxAxis 0 x + Expr.prodAxis 0 x + Expr.logSumExpAxis 0 x)
        "concat", [| 2 |], (fun x -> Expr.concat 0 [ x; Expr.constant (Tensor.ofArray [| 1.0 |]); Expr.exp x ])
        "slice", [| 5 |], (fun x -> Expr.stridedSlice 0 (Some 4) None -2 (x * x))
        "pad", [| 3 |], (fun x -> Expr.padNode 0 1 2 1 0.5 (Expr.tanh x))
        "gather", [| 3; 2 |], (fun x -> Expr.gather indices (x * x))
        "scatterAdd", [| 3; 2 |], (fun x -> Expr.scatterAdd 4 indices (Expr.tanh x))
        "oneHot", [| 3 |], (fun x -> Expr.sumAxis 1 (Expr.oneHot 3 indices * Expr.reshape [| 3; 1 |] x))
        "softmax", [| 2; 3 |], (fun x -> Expr.softmax 1 x + Expr.logSoftmax 0 x)
        "addN", [| 3 |], (fun x -> Expr.addN [ x * x; Expr.tanh x; x ])
        "unfold and fold", [| 1; 1; 4 |], (fun x -> Expr.fold [ 4 ] window1 (Expr.unfold window1 (x * x)))
        "maxPool", [| 1; 1; 4; 4 |], (fun x -> Expr.maxPool2d pool (Expr.tanh x))
        "maxPoolScatter", [| 1; 1; 4; 4 |], (fun x -> Expr.maxPoolScatter poolWindow x (Expr.maxPoolPick poolWindow x (x * x)))
        "where", [| 3 |], (fun x -> Expr.where (Expr.step x) (x * x) (Expr.sin x))
        "cumsum", [| 2; 3 |], (fun x -> Expr.cumsum 1 (x * x) + Expr.reverseCumsum 0 (Expr.tanh x))
        "custom", [| 2; 3 |], (fun x -> CustomOp.apply doubledSquare [ Expr.tanh x ])
    ]

let private reference = lazy (TorchReference.load "transforms_reference.json")

// The functions make_transforms_reference.py differentiates, built from FuncFlow's operations.
let private referenceFunction (name: string) : Expr -> Expr =
    let constant (key: string) (shape: int[]) =
        Expr.constant (
            Tensor.create shape (TorchReference.numbers (TorchReference.field key (TorchReference.field "constants" reference.Value)))
        )
    match name with
    | "sinLinear" -> fun x -> Expr.sin (Expr.matmul (constant "A" [| 4; 2 |]) x)
    | "tanhLinear" -> fun x -> Expr.tanh (Expr.matmul (constant "W" [| 2; 3 |]) x)
    | "softmaxSquare" -> fun x -> Expr.softmax 0 (x * x)
    | "matrixSquare" -> fun x -> Expr.matmul x x + Expr.exp x
    | "cumsumStack" -> fun x -> Expr.cumsum 1 (Expr.concat 0 [ Expr.reshape [| 1; 3 |] x; Expr.reshape [| 1; 3 |] (x ** 2.0) ])
    | "sigmoidCubic" -> fun x -> Expr.sum (Expr.sigmoid x * x ** 3.0) + Expr.logSumExpAxis 0 x
    | "tanhMatrix" -> fun x -> Expr.sum (Expr.tanh (Expr.matmul x x))
    | "cubicTanh" -> fun x -> x ** 3.0 + 2.0 * tanh x
    | other -> failwithf "no function for reference case %s" other

/// Each case of one transform in the fixture: name, x's value, PyTorch's result and its shape.
let private referenceCases (transform: string) =
    [
        for case in (TorchReference.field transform reference.Value).EnumerateObject() ->
            let v = case.Value
            let shape = TorchReference.ints (TorchReference.field "xShape" v)
            case.Name,
            Tensor.create shape (TorchReference.numbers (TorchReference.field "x" v)),
            TorchReference.numbers (TorchReference.field "value" v),
            TorchReference.ints (TorchReference.field "shape" v)
    ]

/// The Jacobian of f at x by central differences, in f.Shape @ x.Shape order.
let private numericJacobian (x: Expr) (at: Tensor) (f: Expr) =
    let nx = at.Size
    let columns =
        Array.init nx (fun j ->
            let e = Array.zeroCreate nx
            e[j] <- 1.0
            centralDirectional [ x, at ] [ Tensor.create at.Shape e ] f)
    let nf = Shape.size f.Shape
    Array.init (nf * nx) (fun k -> columns[k % nx][k / nx])

[<Tests>]
let tests =
    moduleTests
        "TransformTests"
        [
            testCase "jvp of x ** 3 + 2 tanh x is v (3 x ** 2 + 2 (1 - tanh x ** 2)), by hand"
            <| fun () ->
                let x = Expr.var "x" [| 3 |]
                let f = x ** 3.0 + 2.0 * tanh x
                let at = [| -0.7; 0.2; 1.3 |]
                let v = [| 0.5; -2.0; 1.5 |]
                let actual =
                    (Eval.evaluate (bind [ x, Tensor.ofArray at ]) (Grad.jvp x (Expr.constant (Tensor.ofArray v)) f)).ToArray()
                let expected = Array.map2 (fun a d -> d * (3.0 * a * a + 2.0 * (1.0 - tanh a * tanh a))) at v
                assertClose 1e-10 expected actual
            testPropertyFrom "random DAGs: jvp against central differences" 200 (withTangents 12) (fun (case, tangents, _) ->
                agrees
                    "jvp"
                    case.Output
                    (centralDirectional case.Variables tangents case.Output)
                    (forward case.Variables tangents case.Output))
            testPropertyFrom "random DAGs: sum(u * jvp x v f) = sum(v * vjp u [x] f)" 200 (withTangents 12) (fun (case, tangents, u) ->
                let vars = List.map fst case.Variables
                let env = bind case.Variables
                let left =
                    Array.fold2 (fun s a b -> s + a * b) 0.0 (u.ToArray()) (forward case.Variables tangents case.Output)
                let grads = Grad.vjp (Expr.constant u) vars case.Output
                let right =
                    List.map2
                        (fun v (t: Tensor) ->
                            Array.fold2 (fun s a b -> s + a * b) 0.0 (t.ToArray()) ((Eval.evaluate env grads[v]).ToArray()))
                        vars
                        tangents
                    |> List.sum
                expectWithin (1e-9 * max 1.0 (abs left)) left right "u . jvp(v) against vjp(u) . v")
            testCase "every operation's forward rule agrees with central differences"
            <| fun () ->
                let rng = Random 15
                for name, shape, f in perOperation do
                    let x = Expr.var "x" shape
                    let at = Tensor.create shape (Array.init (Shape.size shape) (fun _ -> rng.NextDouble() * 2.0 - 1.0))
                    let v = Tensor.create shape (Array.init (Shape.size shape) (fun _ -> rng.NextDouble() * 2.0 - 1.0))
                    agrees name (f x) (centralDirectional [ x, at ] [ v ] (f x)) (forward [ x, at ] [ v ] (f x))
            testCase "the per-operation cases cover every Op case"
            <| fun () ->
                let x (shape: int[]) = Expr.var "x" shape
                let used =
                    perOperation
                    |> List.collect (fun (_, shape, f) ->
                        Graph.topoSort [ f (x shape) ]
                        |> Array.map (fun n -> (fst (Reflection.FSharpValue.GetUnionFields(n.Op, typeof<Op>))).Name)
                        |> List.ofArray)
                    |> Set.ofList
                for case in Reflection.FSharpType.GetUnionCases typeof<Op> do
                    if case.Name <> "Var" && case.Name <> "Const" then
                        Expect.isTrue (used.Contains case.Name) (sprintf "no per-operation jvp case builds Op.%s" case.Name)
            testPropertyFrom
                "random DAGs: jvp of the gradient is the Hessian-vector product"
                50
                (withTangents 6)
                (fun (case, tangents, _) ->
                    let v, at = case.Variables.Head
                    let f = Expr.sum case.Output
                    let tangent = Expr.constant tangents.Head
                    let env = bind case.Variables
                    let forwardOverReverse = (Eval.evaluate env (Grad.jvp v tangent (Grad.grad v f))).ToArray()
                    let reverseOverReverse = (Eval.evaluate env (Grad.hvp v tangent f)).ToArray()
                    assertClose 1e-9 reverseOverReverse forwardOverReverse)
            testCase "jvp with respect to an inner node treats it as an input: d(h * h) along v is 2 h v"
            <| fun () ->
                let x = Expr.var "x" [| 2 |]
                let h = Expr.tanh x
                let v = Tensor.ofArray [| 0.5; -1.5 |]
                let env = bind [ x, Tensor.ofArray [| 0.3; -0.8 |] ]
                let actual = (Eval.evaluate env (Grad.jvp h (Expr.constant v) (h * h))).ToArray()
                assertClose 1e-15 (Array.map2 (fun a d -> 2.0 * tanh a * d) [| 0.3; -0.8 |] (v.ToArray())) actual
            testCase "jvp, jacobian and hessian keep float32, agreeing with float64 to float32's precision"
            <| fun () ->
                let values = [| 0.3; -0.8; 1.1 |]
                let run (dtype: DType) =
                    let x = Expr.varOf dtype "x" [| 3 |]
                    let f = Expr.softmax 0 (x * Expr.sin x)
                    let env = Eval.bindings [ "x", Tensor.ofFloats dtype [| 3 |] values ]
                    let tangent = Expr.constant (Tensor.ofFloats dtype [| 3 |] [| 1.0; 0.5; -2.0 |])
                    [ Grad.jvp x tangent f; Grad.jacobian x f; Grad.hessian x (Expr.sum (f * x)) ]
                    |> List.map (fun e ->
                        Expect.equal e.DType dtype "dtype"
                        (Eval.evaluate env e).ToArray())
                List.iter2 (fun (wide: float[]) narrow -> assertClose 1e-5 wide narrow) (run Float64) (run Float32)
            testCase "jvp: an input f does not depend on gives zeros; a wrong tangent is named"
            <| fun () ->
                let x, y = Expr.var "x" [| 2 |], Expr.var "y" [| 2 |]
                let j = Grad.jvp y (Expr.onesLike y) (Expr.exp x)
                Expect.equal ((Eval.evaluate (bind [ x, Tensor.ofArray [| 1.0; 2.0 |] ]) j).ToArray()) [| 0.0; 0.0 |] "zeros"
                let e = throws<ArgumentException>(fun () -> Grad.jvp x (Expr.var "v" [| 3 |]) (Expr.exp x) |> ignore)
                Expect.stringContains e.Message "Grad.jvp: the tangent has shape (3,) but the input has shape (2,)" "message"
                let e = throws<ArgumentException>(fun () -> Grad.jvp x (Expr.var32 "v" [| 2 |]) (Expr.exp x) |> ignore)
                Expect.stringContains e.Message "Grad.jvp: the tangent is float32 but the input is float64" "message"
            testCase "jacobian against torch.autograd.functional.jacobian and central differences"
            <| fun () ->
                for name, at, expected, shape in referenceCases "jacobian" do
                    let x = Expr.var "x" at.Shape
                    let f = referenceFunction name x
                    let j = Grad.jacobian x f
                    Expect.equal j.Shape shape (sprintf "%s: shape f.Shape @ x.Shape" name)
                    let actual = (Eval.evaluate (bind [ x, at ]) j).ToArray()
                    assertClose 1e-10 expected actual
                    agrees name f (numericJacobian x at f) actual
            testCase "jacobian: forward and reverse mode agree on both kinds of shape"
            <| fun () ->
                let x = Expr.var "x" [| 2 |]
                let at = bind [ x, Tensor.ofArray [| 0.3; -0.8 |] ]
                for f in [ Expr.softmax 0 (Expr.concat 0 [ x; x * x ]); Expr.sum (Expr.exp x) ] do
                    let forward = (Eval.evaluate at (Grad.jacobianBy true x f)).ToArray()
                    let reverse = (Eval.evaluate at (Grad.jacobianBy false x f)).ToArray()
                    assertClose 1e-14 reverse forward
            testCase "hessian against torch.autograd.functional.hessian; symmetric; the Jacobian of the gradient"
            <| fun () ->
                for name, at, expected, shape in referenceCases "hessian" do
                    let x = Expr.var "x" at.Shape
                    let f = referenceFunction name x
                    let h = Grad.hessian x f
                    Expect.equal h.Shape (Array.append at.Shape at.Shape) (sprintf "%s: shape x.Shape @ x.Shape" name)
                    Expect.equal (Shape.size h.Shape) (Shape.size shape) (sprintf "%s: as many elements as torch's" name)
                    let env = bind [ x, at ]
                    let actual = (Eval.evaluate env h).ToArray()
                    assertClose 1e-10 expected actual
                    let n = at.Size
                    for i in 0 .. n - 1 do
                        for j in 0 .. n - 1 do
                            expectWithin 1e-12 actual[i * n + j] actual[j * n + i] (sprintf "%s: H[%d, %d] = H[%d, %d]" name i j j i)
                    assertClose 1e-12 actual ((Eval.evaluate env (Grad.jacobian x (Grad.grad x f))).ToArray())
            testCase "hessian of a non-scalar is refused, naming the shape"
            <| fun () ->
                let x = Expr.var "x" [| 2 |]
                let e = throws<ArgumentException>(fun () -> Grad.hessian x (Expr.exp x) |> ignore)
                Expect.stringContains e.Message "Grad.hessian: the output has shape (2,)" "message"
            testCase "jacobian of an empty input is an empty constant"
            <| fun () ->
                let x = Expr.var "x" [| 0 |]
                let f = Expr.sum x + 1.0
                let j = Grad.jacobian x f
                Expect.equal j.Shape [| 0 |] "shape"
                Expect.equal ((Eval.evaluate (bind [ x, Tensor.ofArray [||] ]) j).ToArray()) [||] "no elements"
        ]
