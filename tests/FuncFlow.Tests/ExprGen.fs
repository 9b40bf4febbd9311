/// A generator of random expression DAGs over 1-3 float64 variables: random compositions of unary,
/// broadcasting binary, matmul, reduction, shape, softmax, indexing, strided, cumulative, convolution and pooling operations, each step drawing its
/// operands from the nodes built so far (recent ones preferred), so sub-expressions are shared. Values stay
/// in ranges where finite differences are accurate: log and sqrt see positive arguments, divisors stay
/// away from zero, exp sees a squashed argument.
module FuncFlow.Tests.ExprGen

open FsCheck
open FsCheck.FSharp
open FuncFlow
open FuncFlow.Tests.Support

/// A random graph with its variables and their values.
type Case =
    {
        /// The variables, each bound in Values.
        Variables: (Expr * Tensor) list
        /// The output (any shape).
        Output: Expr
    }

    /// Shows the case as its formula, for failure messages.
    override c.ToString() = Print.formula c.Output

/// Above this many elements a node is not grown further (concat, expand, pad, gather make bigger nodes).
let private maxSize = 12

let private broadcasts (a: int[]) (b: int[]) =
    let n = max a.Length b.Length
    let dim (s: int[]) i = if i - (n - s.Length) >= 0 then s[i - (n - s.Length)] else 1
    Seq.forall (fun i -> dim a i = dim b i || dim a i = 1 || dim b i = 1) (seq { 0 .. n - 1 })

/// An operand: usually one of the three newest nodes, so that chains grow deep.
let private pick (pool: Expr list) = Gen.frequency [ 3, Gen.elements (List.truncate 3 pool); 1, Gen.elements pool ]

let private genConstant (shape: int[]) = genTensor (genFloat -1.0 1.0) shape |> Gen.map Expr.constant

let private unary (a: Expr) : Gen<Expr> =
    Gen.elements
        [
            Expr.tanh a
            Expr.sigmoid a
            Expr.softplus a
            -a
            Expr.exp (Expr.tanh a)
            Expr.log (a * a + 0.5)
            Expr.sqrt (Expr.sigmoid a + 0.1)
            Expr.relu a
            Expr.abs a
            a ** 2.0
            // ops group.
            Expr.sin a
            Expr.gelu a
            Expr.silu a
            Expr.logSigmoid a
            Expr.elu 1.0 a
            Expr.leakyRelu 0.1 a
            Expr.erf a
            Expr.log1p (a * a)
            Expr.expm1 (Expr.tanh a)
            Expr.clamp (Some -0.5) (Some 0.5) a
        ]

let private binary (pool: Expr list) (a: Expr) : Gen<Expr> =
    gen {
        let! b = Gen.elements (pool |> List.filter (fun b -> broadcasts a.ShapeRef b.ShapeRef))
        return!
            Gen.elements
                [
                    a + b
                    a - b
                    a * b
                    a / (b * b + 1.0)
                    Expr.pow (Expr.sigmoid a + 0.5) b
                    // ops group.
                    Expr.maximum a b
                    Expr.minimum a b
                    Expr.where (Expr.step a) a b
                ]
    }

let private matmul (a: Expr) : Gen<Expr> =
    if a.Rank = 0 then
        Gen.constant (Expr.matmul (Expr.reshape [| -1; 1 |] a) (Expr.reshape [| 1; -1 |] a))
    elif a.Rank = 1 then
        // shapeops group: an outer product, or a dot product of 1-D operands (a scalar).
        Gen.elements [ Expr.matmul (Expr.reshape [| -1; 1 |] a) (Expr.reshape [| 1; -1 |] a); Expr.matmul a a ]
    else
        let k = a.ShapeRef[a.Rank - 1]
        Gen.oneof
            [
                Gen.constant (Expr.matmul a (Expr.transpose a))
                Gen.constant (Expr.matmul (Expr.transpose a) a)
                // A batched left operand times a matrix when a has more than two axes.
                Gen.choose (1, 3) |> Gen.bind (fun n -> genConstant [| k; n |]) |> Gen.map (Expr.matmul a)
                // shapeops group: a 1-D right operand, and a batch axis of length 1 against one of 2.
                genConstant [| k |] |> Gen.map (Expr.matmul a)
                Gen.choose (1, 2)
                |> Gen.bind (fun n -> genConstant [| 2; k; n |])
                |> Gen.map (Expr.matmul (Expr.reshape (Array.insertAt (a.Rank - 2) 1 a.ShapeRef) a))
            ]

let private reduction (a: Expr) : Gen<Expr> =
    if a.Rank = 0 then
        Gen.constant (Expr.sum a)
    else
        gen {
            let! axis = Gen.choose (0, a.Rank - 1)
            return!
                Gen.elements
                    [
                        Expr.sum a
                        Expr.mean a
                        Expr.max a
                        Expr.sumAxis axis a
                        Expr.meanAxisKeep axis a
                        Expr.maxAxis axis a
                        Expr.maxAxisKeep axis a
                        // ops group.
                        Expr.prodAxis axis a
                        Expr.logSumExpAxisKeep axis a
                        Expr.minAxis axis a
                        Expr.meanAxes [ axis ] true a
                        Expr.variance false a
                    ]
        }

let private reshaping (a: Expr) : Gen<Expr> =
    gen {
        let! perm = Gen.shuffle [| 0 .. a.Rank - 1 |]
        return!
            Gen.elements
                [
                    Expr.reshape [| -1 |] a
                    Expr.reshape (Array.rev a.ShapeRef) a
                    Expr.transpose a
                    Expr.permute perm a
                ]
    }

let private normalise (a: Expr) : Gen<Expr> =
    if a.Rank = 0 then
        Gen.constant (Expr.sigmoid a)
    else
        Gen.choose (0, a.Rank - 1)
        |> Gen.bind (fun axis -> Gen.elements [ Expr.softmax axis a; Expr.logSoftmax axis a ])

let private growing (pool: Expr list) (a: Expr) : Gen<Expr> =
    if a.Rank = 0 || Shape.size a.ShapeRef > maxSize then
        unary a
    else
        gen {
            let! axis = Gen.choose (0, a.Rank - 1)
            let! copies = Gen.choose (1, 3)
            let rows = a.ShapeRef[0]
            let! indices = Gen.arrayOfLength (rows + 1) (Gen.choose (0, rows - 1))
            let sameButAxis =
                pool
                |> List.filter (fun b ->
                    b.Rank = a.Rank
                    && Seq.forall (fun i -> i = axis || b.ShapeRef[i] = a.ShapeRef[i]) (seq { 0 .. a.Rank - 1 }))
            let! other = Gen.elements sameButAxis
            return!
                Gen.elements
                    [
                        Expr.concat axis [ a; other ]
                        Expr.expand axis copies a
                        Expr.pad axis 1 0 a
                        Expr.slice axis 0 (max 1 (a.ShapeRef[axis] - 1)) a
                        Expr.gather (Expr.constant (Tensor.ofArray (Array.map float indices))) a
                    ]
        }

// shapeops group: along an axis of a longer than 1 where there is one (a flip or a running sum over one
// element is the identity): picks, reversals, strided slices, running sums, constant padding.
let private alongAxis (a: Expr) : Gen<Expr> =
    if a.Rank = 0 || Shape.size a.ShapeRef > maxSize then
        unary a
    else
        gen {
            let long = [ 0 .. a.Rank - 1 ] |> List.filter (fun i -> a.ShapeRef[i] > 1)
            let! axis = Gen.elements (if long.IsEmpty then [ 0 .. a.Rank - 1 ] else long)
            let n = a.ShapeRef[axis]
            let! picks = Gen.arrayOfLength (n + 1) (Gen.choose (0, n - 1))
            return!
                Gen.elements
                    [
                        Expr.indexSelect axis (Expr.constant (Tensor.ofArray (Array.map float picks))) a
                        Expr.padWith 0.5 axis 0 1 a
                        Expr.flip [ axis ] a
                        Expr.stridedSlice axis None None -2 a
                        Expr.stridedSlice axis (Some 0) None 2 a
                        Expr.cumsum axis a
                        Expr.reverseCumsum axis a
                    ]
        }

// Convolution and pooling (the conv group): a [2; m; n] node is a 1-D batch [N; C; L], an [m; n] node one
// channel of one image, and a rank-4 node an image batch. The weight is a constant or the node itself (a
// correlation with itself, whose kernel is the whole input), so weights get gradients too.
let private windowed (a: Expr) : Gen<Expr> =
    match a.Rank with
    | 3 ->
        gen {
            let l = a.ShapeRef[2]
            let! k = Gen.choose (1, l)
            let! stride = Gen.choose (1, 2)
            let! padding = Gen.choose (0, 1)
            let! o = Gen.choose (1, 2)
            let! weight = genConstant [| o; a.ShapeRef[1]; k |]
            let spec = { ConvSpec.Default1d with Stride = [ stride ]; Padding = [ padding ] }
            return! Gen.elements [ Expr.conv1d spec a weight; Expr.conv1d spec a a ]
        }
    | 2
    | 4 ->
        let x = if a.Rank = 2 then Expr.reshape (Array.append [| 1; 1 |] a.ShapeRef) a else a
        gen {
            let h, w = x.ShapeRef[2], x.ShapeRef[3]
            let! kh = Gen.choose (1, h)
            let! kw = Gen.choose (1, w)
            let! stride = Gen.choose (1, 2)
            let! padding = Gen.choose (0, min kh kw / 2)
            let! o = Gen.choose (1, 2)
            let! weight = genConstant [| o; x.ShapeRef[1]; kh; kw |]
            let conv = { ConvSpec.Default2d with Stride = [ stride; stride ]; Padding = [ padding; padding ] }
            let pool = { Kernel = [ kh; kw ]; Stride = [ stride; stride ]; Padding = [ padding; padding ] }
            return!
                Gen.frequency
                    [
                        2, Gen.constant (Expr.conv2d conv x weight)
                        1, Gen.constant (Expr.conv2d { conv with Stride = [ 1; 1 ] } x x)
                        2, Gen.constant (Expr.maxPool2d pool x)
                        1, Gen.constant (Expr.avgPool2d pool x)
                        1, Gen.constant (Expr.globalAvgPool2d x)
                    ]
        }
    | _ -> unary a

/// One new node built from the pool.
let private step (pool: Expr list) : Gen<Expr> =
    pick pool
    |> Gen.bind (fun a ->
        Gen.frequency
            [
                4, unary a
                4, binary pool a
                2, matmul a
                2, reduction a
                2, reshaping a
                2, normalise a
                2, growing pool a
                3, windowed a
                3, alongAxis a
            ])

let rec private grow (steps: int) (pool: Expr list) : Gen<Expr list> =
    if steps = 0 then
        Gen.constant pool
    else
        step pool |> Gen.bind (fun node -> grow (steps - 1) (node :: pool))

/// A variable's shape: drawn around one (m, n) so that variables broadcast against each other.
let private genVariableShape (m: int) (n: int) = Gen.elements [ [| m; n |]; [| n |]; [| m; 1 |]; [||]; [| 2; m; n |] ]

/// A random DAG of maxSteps/2 to maxSteps operations over 1-3 variables with values in [-1.5, 1.5).
let genCase (maxSteps: int) : Gen<Case> =
    gen {
        let! m = Gen.choose (1, 3)
        let! n = Gen.choose (1, 3)
        let! count = Gen.choose (1, 3)
        let! shapes = Gen.listOfLength count (genVariableShape m n)
        let! values = shapes |> List.map (genTensor (genFloat -1.5 1.5)) |> Gen.sequenceToList
        let variables = List.mapi (fun i (s: int[]) -> Expr.var (sprintf "v%d" i) s) shapes
        let! steps = Gen.choose ((maxSteps + 1) / 2, maxSteps)
        let! pool = grow steps (List.rev variables)
        return { Variables = List.zip variables values; Output = List.head pool }
    }
