/// Every operation's gradient rule against central finite differences (PyTorch gradcheck's bar: eps 1e-6,
/// |analytic - numeric| <= 1e-5 + 1e-3 |numeric|), on generated shapes and values kept away from kinks.
module FuncFlow.Tests.GradientTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open FuncFlow
open FuncFlow.Tests.Support

let private cases = 25

let private genAnyShape = Gen.choose (0, 3) |> Gen.bind (fun rank -> genShape rank 3)

/// A variable named `name` bound to a generated value of the given shape.
let private genVar (name: string) (values: Gen<float>) (shape: int[]) = genTensor values shape |> Gen.map (fun t -> Expr.var name shape, t)

/// Distinct values at least 0.15 apart in a random order, so that a maximum has no near-ties.
let private genDistinct (shape: int[]) =
    gen {
        let! order = Gen.shuffle [| 0 .. Shape.size shape - 1 |]
        let! noise = Gen.arrayOfLength order.Length (genFloat 0.0 0.1)
        return Tensor.create shape (Array.map2 (fun (o: int) n -> 0.25 * float o - 1.0 + n) order noise)
    }

let private unaryCases: Map<string, (Expr -> Expr) * Gen<float>> =
    Map.ofList
        [
            "neg", (Expr.neg, genFloat -2.0 2.0)
            "exp", (Expr.exp, genFloat -2.0 2.0)
            "log", (Expr.log, genFloat 0.2 3.0)
            "sqrt", (Expr.sqrt, genFloat 0.2 3.0)
            "abs", (Expr.abs, genAwayFromZero 0.1 2.0)
            "sigmoid", (Expr.sigmoid, genFloat -3.0 3.0)
            "tanh", (Expr.tanh, genFloat -2.0 2.0)
            "relu", (Expr.relu, genAwayFromZero 0.1 2.0)
            "softplus", (Expr.softplus, genFloat -3.0 3.0)
            // ops group.
            "sin", (Expr.sin, genFloat -3.0 3.0)
            "cos", (Expr.cos, genFloat -3.0 3.0)
            "log1p", (Expr.log1p, genFloat -0.5 3.0)
            "expm1", (Expr.expm1, genFloat -2.0 2.0)
            "erf", (Expr.erf, genFloat -2.5 2.5)
            "erfc", (Expr.erfc, genFloat -2.5 2.5)
            "gelu", (Expr.gelu, genFloat -3.0 3.0)
            "silu", (Expr.silu, genFloat -3.0 3.0)
            "logSigmoid", (Expr.logSigmoid, genFloat -3.0 3.0)
            "leakyRelu", (Expr.leakyRelu 0.2, genAwayFromZero 0.1 2.0)
            "elu", (Expr.elu 1.5, genAwayFromZero 0.1 2.0)
            "clamp", (Expr.clamp (Some -0.5) (Some 1.0), genFloat -2.0 2.0)
            "clampMax", (Expr.clamp None (Some 0.3), genFloat -2.0 2.0)
            "rsqrt", (Expr.rsqrt, genFloat 0.2 3.0)
            "floor", (Expr.floor, genFloat -2.9 2.9)
            "ceil", (Expr.ceil, genFloat -2.9 2.9)
            "round", (Expr.round, genFloat -2.9 2.9)
        ]

/// Two shapes that broadcast together: one full shape with some axes set to 1 and leading axes dropped.
let private genBroadcastPair =
    gen {
        let! rank = Gen.choose (0, 3)
        let! full = genShape rank 3
        let derived =
            gen {
                let! ones = Gen.arrayOfLength rank (Gen.elements [ true; false ])
                let! drop = Gen.choose (0, rank)
                return full |> Array.mapi (fun i d -> if ones[i] then 1 else d) |> Array.skip drop
            }
        let! a = derived
        let! b = derived
        return a, b
    }

let private binaryCases: Map<string, (Expr -> Expr -> Expr) * Gen<float> * Gen<float>> =
    Map.ofList
        [
            "add", ((+), genFloat -2.0 2.0, genFloat -2.0 2.0)
            "sub", ((-), genFloat -2.0 2.0, genFloat -2.0 2.0)
            "mul", ((*), genFloat -2.0 2.0, genFloat -2.0 2.0)
            "div", ((/), genFloat -2.0 2.0, genAwayFromZero 0.5 2.0)
            "pow", (Expr.pow, genFloat 0.3 2.0, genFloat -2.0 2.0)
            "maximum", (Expr.maximum, genFloat -2.0 2.0, genFloat -2.0 2.0)
            "minimum", (Expr.minimum, genFloat -2.0 2.0, genFloat -2.0 2.0)
        ]

[<Tests>]
let tests =
    moduleTests
        "GradientTests"
        [
            for KeyValue(name, (op, values)) in unaryCases do
                testPropertyFrom (sprintf "unary operations %s" name) cases (genAnyShape |> Gen.bind (genVar "x" values)) (fun (x, value) ->
                    gradcheck [ x, value ] (op x))
            testPropertyFrom
                "powScalar on positive values"
                cases
                (Gen.zip (Gen.elements [ 2.0; 3.0; 0.5; -1.0; 1.5; -2.5 ]) (genAnyShape |> Gen.bind (genVar "x" (genFloat 0.3 2.0))))
                (fun (p, (x, value)) -> gradcheck [ x, value ] (Expr.powScalar p x))
            for KeyValue(name, (op, left, right)) in binaryCases do
                testPropertyFrom
                    (sprintf "binary operations with broadcasting %s" name)
                    cases
                    (gen {
                        let! sa, sb = genBroadcastPair
                        let! a = genVar "a" left sa
                        let! b = genVar "b" right sb
                        return a, b
                    })
                    (fun ((a, va), (b, vb)) -> gradcheck [ a, va; b, vb ] (op a b))
                testCase (sprintf "binary operations with broadcasting %s, named shapes" name)
                <| fun () ->
                    // The named broadcasting cases: a row of biases, an outer product, a scalar with a tensor on either side.
                    for sa, sb in [ [| 2; 3 |], [| 3 |]; [| 2; 1 |], [| 1; 3 |]; [||], [| 2; 3 |]; [| 2; 3 |], [||] ] do
                        let a, b = Expr.var "a" sa, Expr.var "b" sb
                        let va = Tensor.create sa (Array.init (Shape.size sa) (fun i -> 0.4 + 0.3 * float i))
                        let vb = Tensor.create sb (Array.init (Shape.size sb) (fun i -> 1.5 - 0.2 * float i))
                        gradcheck [ a, va; b, vb ] (op a b)
            // ops group.
            testPropertyFrom
                "where with a broadcast condition and operands"
                cases
                (gen {
                    let! sa, sb = genBroadcastPair
                    let! a = genVar "a" (genFloat -2.0 2.0) sa
                    let! b = genVar "b" (genFloat -2.0 2.0) sb
                    let! condition = genTensor (Gen.elements [ 0.0; 1.0 ]) sa
                    return condition, a, b
                })
                (fun (condition, (a, va), (b, vb)) -> gradcheck [ a, va; b, vb ] (Expr.where (Expr.constant condition) a b))
            testCase "maximum and minimum give each side half the gradient at a tie, as PyTorch"
            <| fun () ->
                let a, b = Expr.var "a" [| 3 |], Expr.var "b" [| 3 |]
                let env = bind [ a, Tensor.ofArray [| 1.0; 2.0; 3.0 |]; b, Tensor.ofArray [| 1.0; 0.0; 3.5 |] ]
                let grads (f: Expr) = Eval.many env [ Grad.grad a f; Grad.grad b f ] |> List.map Tensor.toArray
                Expect.equal (grads (Expr.sum (Expr.maximum a b))) [ [| 0.5; 1.0; 0.0 |]; [| 0.5; 0.0; 1.0 |] ] "maximum"
                Expect.equal (grads (Expr.sum (Expr.minimum a b))) [ [| 0.5; 0.0; 1.0 |]; [| 0.5; 1.0; 0.0 |] ] "minimum"
                Expect.equal ((Eval.evaluate env (Expr.maximum a b)).ToArray()) [| 1.0; 2.0; 3.5 |] "maximum's value"
            testCase "clamp passes the gradient at its bounds, leakyRelu and elu use the slope at 0, as PyTorch"
            <| fun () ->
                let x = Expr.var "x" [| 5 |]
                let env = bind [ x, Tensor.ofArray [| -0.5; 1.0; -1.0; 2.0; 0.0 |] ]
                let gradient (f: Expr -> Expr) = (Eval.evaluate env (Grad.grad x (Expr.sum (f x)))).ToArray()
                Expect.equal (gradient (Expr.clamp (Some -0.5) (Some 1.0))) [| 1.0; 1.0; 0.0; 0.0; 1.0 |] "clamp"
                Expect.equal
                    ((Eval.evaluate env (Expr.clamp (Some -0.5) (Some 1.0) x)).ToArray())
                    [| -0.5; 1.0; -0.5; 1.0; 0.0 |]
                    "clamp's value"
                Expect.equal (gradient (Expr.clamp None (Some 1.0))) [| 1.0; 1.0; 1.0; 0.0; 1.0 |] "clamp without a lower bound"
                Expect.equal (gradient (Expr.leakyRelu 0.2)) [| 0.2; 1.0; 0.2; 1.0; 0.2 |] "leakyRelu"
                assertClose 1e-15 [| 1.5 * exp -0.5; 1.0; 1.5 * exp -1.0; 1.0; 1.5 |] (gradient (Expr.elu 1.5))
            testCase "round takes halves to even, as torch.round"
            <| fun () ->
                let x = Expr.var "x" [| 6 |]
                let env = bind [ x, Tensor.ofArray [| 0.5; 1.5; 2.5; -0.5; -2.5; 2.6 |] ]
                Expect.equal ((Eval.evaluate env (Expr.round x)).ToArray()) [| 0.0; 2.0; 2.0; -0.0; -2.0; 3.0 |] "round"
            testCase "operators with float operands"
            <| fun () ->
                let x = Expr.var "x" [| 2; 2 |]
                let value = Tensor.create [| 2; 2 |] [| 0.5; 1.5; -0.7; 2.0 |]
                for f in [ x + 2.0; 2.0 + x; x - 3.0; 3.0 - x; x * 1.5; 1.5 * x; x / 4.0; 4.0 / x; -x; x ** 3.0 ] do
                    gradcheck [ x, value ] f
            testPropertyFrom
                "matmul: plain, batched, with leading axes missing from one operand"
                cases
                (gen {
                    let! m = Gen.choose (1, 4)
                    let! k = Gen.choose (1, 4)
                    let! n = Gen.choose (1, 4)
                    let! batch = Gen.choose (1, 3)
                    let! leftLead, rightLead =
                        Gen.elements
                            [
                                [||], [||]
                                [| batch |], [| batch |]
                                [| batch |], [||]
                                [| 2; batch |], [| 2; batch |]
                                // Leading axes missing from the front of one operand: it is used with every matrix.
                                [||], [| batch |]
                                [| batch |], [| 2; batch |]
                                [| 2; batch |], [| batch |]
                            ]
                    let! a = genVar "a" (genFloat -1.0 1.0) (Array.append leftLead [| m; k |])
                    let! b = genVar "b" (genFloat -1.0 1.0) (Array.append rightLead [| k; n |])
                    return a, b
                })
                (fun ((a, va), (b, vb)) -> gradcheck [ a, va; b, vb ] (Expr.matmul a b))
            testPropertyFrom
                "permute and transpose"
                cases
                (gen {
                    let! rank = Gen.choose (1, 4)
                    let! shape = genShape rank 3
                    let! perm = Gen.shuffle [| 0 .. rank - 1 |]
                    let! x = genVar "x" (genFloat -1.0 1.0) shape
                    return perm, x
                })
                (fun (perm, (x, value)) ->
                    gradcheck [ x, value ] (Expr.permute perm x)
                    gradcheck [ x, value ] (Expr.transpose x))
            testPropertyFrom
                "reshape, broadcastTo, expand and sumTo"
                cases
                (gen {
                    let! sa, sb = genBroadcastPair
                    let full = Shape.broadcast "test" sa sb
                    let! x = genVar "x" (genFloat -1.0 1.0) sa
                    let! dim = Gen.choose (0, sa.Length)
                    let! copies = Gen.choose (1, 3)
                    return full, dim, copies, x
                })
                (fun (full, dim, copies, (x, value)) ->
                    let size = Shape.size x.Shape
                    gradcheck [ x, value ] (Expr.reshape [| -1 |] x)
                    gradcheck [ x, value ] (Expr.reshape [| 1; size; 1 |] x)
                    gradcheck [ x, value ] (Expr.broadcastTo full x)
                    gradcheck [ x, value ] (Expr.expand dim copies x)
                    gradcheck
                        [ x, value ]
                        (Expr.sumTo x.Shape (Expr.broadcastTo full x * Expr.constant (Tensor.randUniform Float64 size full 0.5 1.5))))
            testPropertyFrom
                "sum and mean over everything and over each axis"
                cases
                (Gen.choose (1, 3)
                 |> Gen.bind (fun rank -> genShape rank 3)
                 |> Gen.bind (genVar "x" (genFloat -2.0 2.0)))
                (fun (x, value) ->
                    gradcheck [ x, value ] (Expr.sum x)
                    gradcheck [ x, value ] (Expr.mean x)
                    for axis in -x.Rank .. x.Rank - 1 do
                        for f in [ Expr.sumAxis; Expr.sumAxisKeep; Expr.meanAxis; Expr.meanAxisKeep ] do
                            gradcheck [ x, value ] (f axis x))
            testPropertyFrom
                "max over everything and over each axis, without ties"
                cases
                (Gen.choose (1, 3)
                 |> Gen.bind (fun rank -> genShape rank 3)
                 |> Gen.bind (fun s -> genDistinct s |> Gen.map (fun t -> Expr.var "x" s, t)))
                (fun (x, value) ->
                    gradcheck [ x, value ] (Expr.max x)
                    for axis in 0 .. x.Rank - 1 do
                        gradcheck [ x, value ] (Expr.maxAxis axis x)
                        gradcheck [ x, value ] (Expr.maxAxisKeep axis x))
            // ops group: reductions.
            testPropertyFrom
                "prod, logSumExp and min over everything and over each axis; several axes; variance and std"
                cases
                (Gen.choose (1, 3)
                 |> Gen.bind (fun rank -> genShape rank 3)
                 |> Gen.bind (fun s -> genDistinct s |> Gen.map (fun t -> Expr.var "x" s, t)))
                (fun (x, value) ->
                    for f in [ Expr.prod; Expr.logSumExp; Expr.min; Expr.variance false ] do
                        gradcheck [ x, value ] (f x)
                    // The standard deviation of one element is 0, where its derivative is infinite.
                    if Shape.size x.Shape > 1 then
                        gradcheck [ x, value ] (Expr.variance true x)
                        gradcheck [ x, value ] (Expr.std false x)
                    for axis in 0 .. x.Rank - 1 do
                        for f in
                            [
                                Expr.prodAxis
                                Expr.prodAxisKeep
                                Expr.logSumExpAxis
                                Expr.logSumExpAxisKeep
                                Expr.minAxis
                                Expr.minAxisKeep
                            ] do
                            gradcheck [ x, value ] (f axis x)
                    let every = List.init x.Rank id
                    let last = [ x.Rank - 1; 0 ] |> List.distinct
                    for keep in [ false; true ] do
                        gradcheck [ x, value ] (Expr.sumAxes last keep x)
                        gradcheck [ x, value ] (Expr.meanAxes every keep x)
                        gradcheck [ x, value ] (Expr.varianceAxes false last keep x)
                        if Shape.size x.Shape > 1 then gradcheck [ x, value ] (Expr.stdAxes true every keep x))
            testCase "prod's gradient is the product of the others, with one zero and with two, as PyTorch"
            <| fun () ->
                let x = Expr.var "x" [| 3; 3 |]
                let env = bind [ x, Tensor.create [| 3; 3 |] [| 2.0; 3.0; 4.0; 2.0; 0.0; 5.0; 0.0; 7.0; 0.0 |] ]
                let gradient = (Eval.evaluate env (Grad.grad x (Expr.sum (Expr.prodAxis 1 x)))).ToArray()
                Expect.equal gradient [| 12.0; 8.0; 6.0; 0.0; 10.0; 0.0; 0.0; 0.0; 0.0 |] "rows without, with one and with two zeros"
                Expect.equal ((Eval.evaluate env (Expr.prodAxis 1 x)).ToArray()) [| 24.0; 0.0; 0.0 |] "the products"
            testCase "logSumExp is stable for large, infinite and empty inputs"
            <| fun () ->
                let x = Expr.var "x" [| 4; 2 |]
                let values =
                    Tensor.create [| 4; 2 |] [| 1000.0; 1000.0; -1000.0; -1000.0; infinity; 1.0; -infinity; -infinity |]
                let result = (Eval.evaluate (bind [ x, values ]) (Expr.logSumExpAxis 1 x)).ToArray()
                assertClose 1e-15 [| 1000.0 + log 2.0; -1000.0 + log 2.0 |] result[0..1]
                Expect.equal result[2..] [| infinity; -infinity |] "an infinite maximum is the result"
                let empty = Expr.var "e" [| 2; 0 |]
                Expect.equal
                    ((Eval.evaluate (bind [ empty, Tensor.zeros Float64 [| 2; 0 |] ]) (Expr.logSumExpAxis 1 empty)).ToArray())
                    [| -infinity; -infinity |]
                    "an empty sum is 0, its log -infinity"
                let large = Expr.var "large" [| 2; 2 |]
                let gradient =
                    (Eval.evaluate
                        (bind [ large, Tensor.create [| 2; 2 |] [| 1000.0; 1000.0; -1000.0; -1000.0 |] ])
                        (Grad.grad large (Expr.sum (Expr.logSumExpAxis 1 large))))
                        .ToArray()
                // e^(x - y) with y = 1000 + log 2 rounded to an ulp of 1000 (1e-13), as in PyTorch.
                assertClose 1e-13 [| 0.5; 0.5; 0.5; 0.5 |] gradient
            testCase "max shares the gradient of a tie equally"
            <| fun () ->
                let x = Expr.var "x" [| 4 |]
                let env = bind [ x, Tensor.ofArray [| 1.0; 3.0; 3.0; 2.0 |] ]
                Expect.equal
                    ((Eval.evaluate env (Grad.grad x (Expr.max x))).ToArray())
                    ([| 0.0; 0.5; 0.5; 0.0 |])
                    "(Eval.evaluate env (Grad.grad x (Expr.max x))).ToArray()"
            testPropertyFrom
                "concat, slice and pad along each axis"
                cases
                (gen {
                    let! rank = Gen.choose (1, 3)
                    let! shape = genShape rank 3
                    let! axis = Gen.choose (0, rank - 1)
                    let! extra = Gen.choose (1, 3)
                    let! a = genVar "a" (genFloat -1.0 1.0) shape
                    let! b = genVar "b" (genFloat -1.0 1.0) (shape |> Array.mapi (fun i d -> if i = axis then extra else d))
                    let! start = Gen.choose (0, shape[axis] - 1)
                    let! length = Gen.choose (1, shape[axis] - start)
                    let! before = Gen.choose (0, 2)
                    let! after = Gen.choose (1, 2)
                    return axis, (start, length), (before, after), a, b
                })
                (fun (axis, (start, length), (before, after), (a, va), (b, vb)) ->
                    gradcheck [ a, va; b, vb ] (Expr.concat axis [ a; b; a ])
                    gradcheck [ a, va ] (Expr.slice axis start length a)
                    gradcheck [ a, va ] (Expr.pad axis before after a))
            testPropertyFrom
                "gather with repeated indices and scatterAdd"
                cases
                (gen {
                    let! rows = Gen.choose (1, 3)
                    let! width = Gen.choose (1, 3)
                    // More picks than rows, so some row is picked at least twice.
                    let! picks = Gen.choose (rows + 1, 6)
                    let! indices = Gen.arrayOfLength picks (Gen.choose (0, rows - 1))
                    let! table = genVar "table" (genFloat -1.0 1.0) [| rows; width |]
                    let! updates = genVar "updates" (genFloat -1.0 1.0) [| picks; width |]
                    return rows, Array.map float indices, table, updates
                })
                (fun (rows, indices, (table, vt), (updates, vu)) ->
                    let index = Expr.constant (Tensor.ofArray indices)
                    gradcheck [ table, vt ] (Expr.gather index table)
                    gradcheck [ table, vt ] (Expr.gather (Expr.reshape [| 1; -1 |] index) table)
                    gradcheck [ updates, vu ] (Expr.scatterAdd rows index updates))
            testPropertyFrom
                "oneHot masks select the labelled entries"
                cases
                (gen {
                    let! batch = Gen.choose (1, 4)
                    let! classes = Gen.choose (2, 4)
                    let! labels = Gen.arrayOfLength batch (Gen.choose (0, classes - 1))
                    let! x = genVar "x" (genFloat -2.0 2.0) [| batch; classes |]
                    return classes, Array.map float labels, x
                })
                (fun (classes, labels, (x, value)) ->
                    gradcheck [ x, value ] (Expr.oneHot classes (Expr.constant (Tensor.ofArray labels)) * x))
            testPropertyFrom
                "softmax and logSoftmax over each axis"
                cases
                (Gen.choose (1, 3)
                 |> Gen.bind (fun rank -> genShape rank 3)
                 |> Gen.bind (genVar "x" (genFloat -3.0 3.0)))
                (fun (x, value) ->
                    for axis in -x.Rank .. x.Rank - 1 do
                        gradcheck [ x, value ] (Expr.softmax axis x)
                        gradcheck [ x, value ] (Expr.logSoftmax axis x))
            testPropertyFrom
                "addN with a repeated operand"
                cases
                (genAnyShape
                 |> Gen.bind (fun s -> Gen.zip (genVar "a" (genFloat -1.0 1.0) s) (genVar "b" (genFloat -1.0 1.0) s)))
                (fun ((a, va), (b, vb)) -> gradcheck [ a, va; b, vb ] (Expr.addN [ a; b; a; Expr.tanh b ]))
            // Convolution and pooling (the conv group).
            testPropertyFrom
                "conv1d and conv2d with stride, padding, dilation and groups, in the input and the weight; second derivatives"
                cases
                (gen {
                    let! spatial = Gen.choose (1, 2)
                    let! groups = Gen.choose (1, 3)
                    let! perGroupIn = Gen.choose (1, 2)
                    let! perGroupOut = Gen.choose (1, 2)
                    let! n = Gen.choose (1, 2)
                    let! kernel = Gen.listOfLength spatial (Gen.choose (1, 3))
                    let! stride = Gen.listOfLength spatial (Gen.choose (1, 2))
                    let! dilation = Gen.listOfLength spatial (Gen.choose (1, 2))
                    let! padding = Gen.listOfLength spatial (Gen.choose (0, 2))
                    let! extra = Gen.listOfLength spatial (Gen.choose (0, 2))
                    // Each axis at least as long as the dilated kernel less the padding, and at least 1.
                    let size =
                        List.init spatial (fun i -> max 1 (dilation[i] * (kernel[i] - 1) + 1 - 2 * padding[i]) + extra[i])
                    let spec = { Stride = stride; Padding = padding; Dilation = dilation; Groups = groups }
                    let! x = genVar "x" (genFloat -1.0 1.0) (Array.ofList ([ n; groups * perGroupIn ] @ size))
                    let! w = genVar "w" (genFloat -1.0 1.0) (Array.ofList ([ groups * perGroupOut; perGroupIn ] @ kernel))
                    return spatial, spec, x, w
                })
                (fun (spatial, spec, (x, vx), (w, vw)) ->
                    let conv = if spatial = 1 then Expr.conv1d else Expr.conv2d
                    gradcheck [ x, vx; w, vw ] (conv spec x w)
                    // Bilinear in x and w, so its mixed second derivatives are nonzero; tanh makes the rest nonzero too.
                    gradgradcheck [ x, vx; w, vw ] (Expr.tanh (conv spec x w)))
            testPropertyFrom
                "maxPool2d without ties, avgPool2d and globalAvgPool2d; second derivatives through max pooling"
                cases
                (gen {
                    let! n = Gen.choose (1, 2)
                    let! c = Gen.choose (1, 2)
                    let! kernel = Gen.listOfLength 2 (Gen.choose (1, 3))
                    let! stride = Gen.listOfLength 2 (Gen.choose (1, 3))
                    let! padding = kernel |> List.map (fun k -> Gen.choose (0, k / 2)) |> Gen.sequenceToList
                    let! extra = Gen.listOfLength 2 (Gen.choose (0, 2))
                    let size = List.init 2 (fun i -> max 1 (kernel[i] - 2 * padding[i]) + extra[i])
                    let shape = Array.ofList ([ n; c ] @ size)
                    let! value = genDistinct shape
                    return { Kernel = kernel; Stride = stride; Padding = padding }, Expr.var "x" shape, value
                })
                (fun (spec, x, value) ->
                    gradcheck [ x, value ] (Expr.maxPool2d spec x)
                    gradcheck [ x, value ] (Expr.avgPool2d spec x)
                    gradcheck [ x, value ] (Expr.globalAvgPool2d x)
                    gradgradcheck [ x, value ] (Expr.maxPool2d spec (Expr.tanh x)))
            testPropertyFrom
                "unfold and fold with stride, padding and dilation"
                cases
                (gen {
                    let! spatial = Gen.choose (1, 2)
                    let! kernel = Gen.listOfLength spatial (Gen.choose (1, 3))
                    let! stride = Gen.listOfLength spatial (Gen.choose (1, 2))
                    let! dilation = Gen.listOfLength spatial (Gen.choose (1, 2))
                    let! padding = Gen.listOfLength spatial (Gen.choose (0, 1))
                    let! extra = Gen.listOfLength spatial (Gen.choose (0, 2))
                    let size =
                        List.init spatial (fun i -> max 1 (dilation[i] * (kernel[i] - 1) + 1 - 2 * padding[i]) + extra[i])
                    let window = { Kernel = kernel; Stride = stride; Padding = padding; Dilation = dilation }
                    let! x = genVar "x" (genFloat -1.0 1.0) (Array.ofList ([ 2; 2 ] @ size))
                    let columns = Expr.unfold window (fst x)
                    let! c = genVar "c" (genFloat -1.0 1.0) columns.Shape
                    return size, window, x, c
                })
                (fun (size, window, (x, vx), (c, vc)) ->
                    gradcheck [ x, vx ] (Expr.unfold window x)
                    gradcheck [ c, vc ] (Expr.fold size window c))
            testCase "maxPool2d sends a tie's gradient to the first maximum in row-major window order, as PyTorch's CPU kernel"
            <| fun () ->
                // One 2x2 window [[1, 3], [3, 2]] and one [[3, 3], [1, 3]] (a 2x4 image, kernel 2, stride 2).
                let x = Expr.var "x" [| 1; 1; 2; 4 |]
                let env = bind [ x, Tensor.create [| 1; 1; 2; 4 |] [| 1.0; 3.0; 3.0; 3.0; 3.0; 2.0; 1.0; 3.0 |] ]
                let pooled = Expr.maxPool2d (PoolSpec.Create [ 2; 2 ]) x
                Expect.equal ((Eval.evaluate env pooled).ToArray()) [| 3.0; 3.0 |] "the maxima"
                let grads = Grad.vjp (Expr.constant (Tensor.create [| 1; 1; 1; 2 |] [| 10.0; 20.0 |])) [ x ] pooled
                let g = Eval.evaluate env grads[x]
                Expect.equal (g.ToArray()) [| 0.0; 10.0; 20.0; 0.0; 0.0; 0.0; 0.0; 0.0 |] "each window's gradient at its first maximum"
            testCase "maxPool2d follows PyTorch's rule (v > max || isnan v, taps in row-major order) with NaN, -inf, ±0 and ties"
            <| fun () ->
                // Values from a small set, so windows hold ties, NaNs, infinities and zeros of both signs; the
                // expected values come from the rule itself, one window at a time. Padding 0 runs the SIMD
                // kernel, padding 1 the window loop; both dtypes, as their lane counts differ.
                let rnd = Random 7
                let choices = [| nan; -infinity; -0.0; 0.0; 1.0; 2.0; -1.0 |]
                for dtype in [ Float64; Float32 ] do
                    for shape, kernel, stride, padding in
                        [ [| 2; 3; 7; 9 |], 3, 2, 0; [| 2; 3; 6; 8 |], 2, 2, 0; [| 1; 2; 7; 7 |], 3, 2, 1 ] do
                        let values = Array.init (Shape.size shape) (fun _ -> choices[rnd.Next choices.Length])
                        let x = Expr.varOf dtype "x" shape
                        let spec =
                            {
                                PoolSpec.Kernel = [ kernel; kernel ]
                                Stride = [ stride; stride ]
                                Padding = [ padding; padding ]
                            }
                        let pooled = Expr.maxPool2d spec x
                        let out = pooled.Shape
                        let seed = Array.init (Shape.size out) (fun i -> float (i + 1))
                        let g = Grad.vjp (Expr.constant (Tensor.cast dtype (Tensor.create out seed))) [ x ] pooled
                        let env = bind [ x, Tensor.cast dtype (Tensor.create shape values) ]
                        let forward, backward = (Eval.evaluate env pooled).ToArray(), (Eval.evaluate env g[x]).ToArray()
                        let h, w = shape[2], shape[3]
                        let expectedBackward = Array.zeroCreate values.Length
                        for plane in 0 .. shape[0] * shape[1] - 1 do
                            for oh in 0 .. out[2] - 1 do
                                for ow in 0 .. out[3] - 1 do
                                    let mutable best, at = -infinity, -1
                                    for ki in 0 .. kernel - 1 do
                                        for kj in 0 .. kernel - 1 do
                                            let ih, iw = oh * stride - padding + ki, ow * stride - padding + kj
                                            if ih >= 0 && ih < h && iw >= 0 && iw < w then
                                                let i = (plane * h + ih) * w + iw
                                                if at < 0 then at <- i
                                                if values[i] > best || Double.IsNaN values[i] then
                                                    best <- values[i]
                                                    at <- i
                                    let o = (plane * out[2] + oh) * out[3] + ow
                                    let what = sprintf "%s %A kernel %d padding %d, window %d" dtype.Name shape kernel padding o
                                    Expect.equal
                                        (BitConverter.DoubleToInt64Bits forward[o])
                                        (BitConverter.DoubleToInt64Bits values[at])
                                        what
                                    expectedBackward[at] <- expectedBackward[at] + seed[o]
                        Expect.equal backward expectedBackward (sprintf "%s %A: the gradient at each window's pick" dtype.Name shape)
            testCase "a weight read by several products (as a recurrent layer's, once per step) gets one joined product"
            <| fun () ->
                // Four steps reading w [3; 4] plainly and through its transpose: the gradient's contributions are
                // joined into one GEMM each way (Grad.joinProducts), checked against finite differences.
                let w = Expr.var "w" [| 3; 4 |]
                let xs = [ for i in 1..4 -> Expr.var (sprintf "x%d" i) [| 2; 3 |] ]
                let ys = [ for i in 1..4 -> Expr.var (sprintf "y%d" i) [| 2; 4 |] ]
                let plain = xs |> List.map (fun x -> Expr.sum (Expr.tanh (Expr.matmul x w))) |> List.reduce (+)
                let transposed =
                    ys |> List.map (fun y -> Expr.sum (Expr.tanh (Expr.matmul y (Expr.transpose w)))) |> List.reduce (+)
                let values (vs: Expr list) seed = vs |> List.mapi (fun i v -> v, Tensor.randNormal Float64 (seed + i) v.Shape 0.0 1.0)
                let wValue = w, Tensor.randNormal Float64 99 [| 3; 4 |] 0.0 0.5
                for name, f, others in [ "plain", plain, values xs 1; "transposed", transposed, values ys 11 ] do
                    let g = Grad.grad w f
                    Expect.equal g.Op Op.MatMul (sprintf "%s: the gradient is one product" name)
                    gradcheck (wValue :: others) f
            testCase "GradCheck reports a wrong derivative, naming the variable and element"
            <| fun () ->
                // relu at exactly 0: Grad uses the subgradient 0, central differences see 0.5.
                let x = Expr.var "x" [| 3 |]
                let env = bind [ x, Tensor.ofArray [| 1.0; 0.0; -1.0 |] ]
                let report = GradCheck.check GradCheckOptions.Default env [ x ] (Expr.sum (Expr.relu x))
                Expect.isFalse report.Passed "report.Passed"
                Expect.equal report.Variable "x" "report.Variable"
                Expect.equal report.Index ([| 1 |]) "report.Index"
                Expect.equal report.Analytic 0.0 "report.Analytic"
                expectRounded 9 0.5 report.Numeric "report.Numeric"
                Expect.stringContains report.Message "'x'" "report.Message"
                Expect.stringContains report.Message "[1]" "report.Message"
                let error =
                    (throws<GradCheckException>(fun () -> GradCheck.assertOk GradCheckOptions.Default env [ x ] (Expr.sum (Expr.relu x))))
                Expect.equal error.Message report.Message "error.Message"
                let fast =
                    GradCheck.check
                        { GradCheckOptions.Default with Fast = true }
                        (bind [ x, Tensor.ofArray [| 1.0; 2.0; -1.0 |] ])
                        []
                        (Expr.relu x * x)
                Expect.isTrue fast.Passed fast.Message
                Expect.isEmpty fast.Index "fast.Index"
            testCase "GradCheck refuses float32 graphs"
            <| fun () ->
                let x = Expr.var32 "x" [| 2 |]
                let env = Eval.bindings [ "x", Tensor.ofArray32 [| 1.0f; 2.0f |] ]
                let error =
                    (throwsAny<System.ArgumentException>(fun () ->
                        GradCheck.check GradCheckOptions.Default env [ x ] (Expr.sum x) |> ignore))
                Expect.stringContains error.Message "float64" "error.Message"
            // shapeops group.
            testPropertyFrom
                "matmul with NumPy's rules: 1-D operands and batch axes of length 1 on either side; second derivatives"
                cases
                (gen {
                    let! m = Gen.choose (1, 3)
                    let! k = Gen.choose (1, 3)
                    let! n = Gen.choose (1, 3)
                    let! batch = Gen.choose (2, 3)
                    let! left, right =
                        Gen.elements
                            [
                                [| k |], [| k; n |]
                                [| m; k |], [| k |]
                                [| k |], [| k |]
                                [| k |], [| batch; k; n |]
                                [| batch; m; k |], [| k |]
                                [| 1; m; k |], [| batch; k; n |]
                                [| batch; m; k |], [| 1; k; n |]
                                [| batch; 1; m; k |], [| 1; batch; k; n |]
                                [| 2; 1; m; k |], [| batch; k; n |]
                            ]
                    let! a = genVar "a" (genFloat -1.0 1.0) left
                    let! b = genVar "b" (genFloat -1.0 1.0) right
                    return a, b
                })
                (fun ((a, va), (b, vb)) ->
                    gradcheck [ a, va; b, vb ] (Expr.matmul a b)
                    gradgradcheck [ a, va; b, vb ] (Expr.tanh (Expr.matmul a b)))
            testCase "matmul's 1-D and broadcast forms are the products of the promoted and repeated operands"
            <| fun () ->
                // Hand-built equivalents: a vector as a row or column, a length-1 batch axis as explicit copies.
                let v = Expr.var "v" [| 3 |]
                let m = Expr.var "m" [| 2; 3; 4 |]
                let w = Expr.var "w" [| 1; 4; 2 |]
                let env =
                    bind
                        [
                            v, Tensor.ofArray [| 0.5; -1.0; 2.0 |]
                            m, Tensor.create [| 2; 3; 4 |] (Array.init 24 (fun i -> float (i % 7) - 3.0))
                            w, Tensor.create [| 1; 4; 2 |] [| 1.0; -2.0; 0.5; 3.0; -1.5; 2.5; 4.0; -0.5 |]
                        ]
                let value (e: Expr) = (Eval.evaluate env e).ToArray()
                Expect.equal (value (Expr.matmul v v)) [| 0.25 + 1.0 + 4.0 |] "vector . vector"
                Expect.equal (Expr.matmul v m).Shape [| 2; 4 |] "vector . batch"
                Expect.equal (value (Expr.matmul v m)) (value (Expr.matmul (Expr.reshape [| 1; 3 |] v) m)) "vector . batch as a row"
                Expect.equal (value (Expr.matmul m w)) (value (Expr.matmul m (Expr.broadcastTo [| 2; 4; 2 |] w))) "a batch axis of 1"
            testPropertyFrom
                "indexSelect and indexAdd on any axis, with repeated indices; second derivatives"
                cases
                (gen {
                    let! rank = Gen.choose (1, 3)
                    let! shape = genShape rank 3
                    let! axis = Gen.choose (-rank, rank - 1)
                    let n = shape[(axis + rank) % rank]
                    // More picks than entries, so some entry is picked at least twice.
                    let! picks = Gen.choose (n + 1, 5)
                    let! indices = Gen.arrayOfLength picks (Gen.choose (0, n - 1))
                    let! x = genVar "x" (genFloat -1.0 1.0) shape
                    let selected = shape |> Array.mapi (fun i d -> if i = (axis + rank) % rank then picks else d)
                    let! u = genVar "u" (genFloat -1.0 1.0) selected
                    return axis, n, Expr.constant (Tensor.ofArray (Array.map float indices)), x, u
                })
                (fun (axis, n, index, (x, vx), (u, vu)) ->
                    gradcheck [ x, vx ] (Expr.indexSelect axis index x)
                    gradcheck [ u, vu ] (Expr.indexAdd axis n index u)
                    gradgradcheck [ x, vx ] (Expr.tanh (Expr.indexSelect axis index x)))
            testPropertyFrom
                "flip, cumsum and reverseCumsum along generated axes; second derivatives"
                cases
                (gen {
                    let! rank = Gen.choose (1, 3)
                    let! shape = genShape rank 4
                    let! axes = Gen.subListOf [ 0 .. rank - 1 ] |> Gen.bind Gen.shuffle
                    let! axis = Gen.choose (0, rank - 1)
                    let! x = genVar "x" (genFloat -1.0 1.0) shape
                    return List.ofArray axes, axis, x
                })
                (fun (axes, axis, (x, vx)) ->
                    gradcheck [ x, vx ] (Expr.flip axes x)
                    gradcheck [ x, vx ] (Expr.cumsum axis x)
                    gradcheck [ x, vx ] (Expr.reverseCumsum axis x)
                    // Each rule's result is the other's operation, so second derivatives run both rules.
                    gradgradcheck [ x, vx ] (Expr.tanh (Expr.cumsum axis (Expr.flip axes x))))
            testPropertyFrom
                "strided slices with positive and negative steps and padWith; second derivatives"
                cases
                (gen {
                    let! rank = Gen.choose (1, 3)
                    let! shape = genShape rank 5
                    let! axis = Gen.choose (0, rank - 1)
                    let n = shape[axis]
                    let! step = Gen.elements [ -3; -2; -1; 1; 2; 3 ]
                    // Positions in range for the step's direction, then written as Python would: None for the
                    // end in that direction, or counted from the end.
                    let! first = if step > 0 then Gen.choose (0, n) else Gen.choose (0, n - 1)
                    let! last = if step > 0 then Gen.choose (first, n) else Gen.choose (-1, first)
                    let! asNone = Gen.elements [ true; false ]
                    let! fromEnd = Gen.elements [ true; false ]
                    let written (position: int) (theEnd: int) =
                        if position = theEnd && asNone then None
                        elif fromEnd && position >= 0 && position < n then Some(position - n)
                        else Some position
                    let start = written first (if step > 0 then 0 else n - 1)
                    let stop = if step < 0 && last = -1 then None else written last (if step > 0 then n else -1)
                    let! value = genFloat -2.0 2.0
                    let! before = Gen.choose (0, 2)
                    let! after = Gen.choose (0, 2)
                    let! x = genVar "x" (genFloat -1.0 1.0) shape
                    return axis, (start, stop, step), (first, last), (value, before, after), x
                })
                (fun (axis, (start, stop, step), (first, last), (value, before, after), (x, vx)) ->
                    let sliced = Expr.stridedSlice axis start stop step x
                    // The positions it reads, as Python's range(first, last, step).
                    let positions = [ first..step .. (if step > 0 then last - 1 else last + 1) ]
                    Expect.equal sliced.Shape[axis] positions.Length (sprintf "length of [%A:%A:%d]" start stop step)
                    let expected =
                        Expr.indexSelect axis (Expr.constant (Tensor.ofArray (positions |> List.map float |> Array.ofList))) x
                    let env = bind [ x, vx ]
                    Expect.equal ((Eval.evaluate env sliced).ToArray()) ((Eval.evaluate env expected).ToArray()) "the picked elements"
                    gradcheck [ x, vx ] sliced
                    gradgradcheck [ x, vx ] (Expr.tanh sliced)
                    gradcheck [ x, vx ] (Expr.padWith value axis before after x)
                    gradgradcheck [ x, vx ] (Expr.tanh (Expr.padWith value axis before after x)))
        ]
