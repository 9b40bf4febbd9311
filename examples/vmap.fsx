// Per-example gradient norms of a small MLP with vmap, next to the same norms computed one example at a time.
// Build first (dotnet build -c Release), then: dotnet fsi examples/vmap.fsx
#I "../src/FuncFlow/bin/Release/net10.0"
#r "FuncFlow.dll"

open FuncFlow

// A 4-8-3 MLP with tanh, and its cross-entropy on ONE example: x [4], a one-hot label [3].
let w1, b1 = Expr.var "w1" [| 4; 8 |], Expr.var "b1" [| 8 |]
let w2, b2 = Expr.var "w2" [| 8; 3 |], Expr.var "b2" [| 3 |]
let parameters = [ w1; b1; w2; b2 ]

let loss (x: Expr) (label: Expr) =
    let h = tanh (Expr.matmul x w1 + b1)
    -Expr.sum(label * Expr.logSoftmax 0 (Expr.matmul h w2 + b2))

// The norm of one example's gradient over all parameters, written for one example.
let gradientNorm (x: Expr) (label: Expr) =
    let grads = Grad.wrt parameters (loss x label)
    sqrt (parameters |> List.map (fun p -> Expr.sum (grads[p] * grads[p])) |> List.reduce (+))

// vmap batches it over the leading axis of xs and labels: one expression, one compiled plan for the batch.
let n = 8
let xs, labels = Expr.var "xs" [| n; 4 |], Expr.var "labels" [| n; 3 |]
let norms = Vmap.vmapAxes [ Some 0; Some 0 ] (fun e -> gradientNorm e[0] e[1]) [ xs; labels ]

let values =
    [
        "w1", Tensor.randNormal Float64 1 [| 4; 8 |] 0.0 0.5
        "b1", Tensor.randNormal Float64 2 [| 8 |] 0.0 0.1
        "w2", Tensor.randNormal Float64 3 [| 8; 3 |] 0.0 0.5
        "b2", Tensor.randNormal Float64 4 [| 3 |] 0.0 0.1
        "xs", Tensor.randNormal Float64 5 [| n; 4 |] 0.0 1.0
        "labels", Tensor.create [| n; 3 |] (Array.init (n * 3) (fun k -> if k % 3 = (k / 3) % 3 then 1.0 else 0.0))
    ]

let plan = Plan.compile [ norms ]
let batched = (plan.Run(Eval.bindings values)[0]).ToArray()

// The loop: the same function on each example's row, evaluated n times.
let x, label = Expr.var "x" [| 4 |], Expr.var "label" [| 3 |]
let one = gradientNorm x label
let row (name: string) (i: int) =
    let t = values |> List.find (fun (k, _) -> k = name) |> snd
    Eval.evaluate (Eval.bindings []) (Expr.constant t |> Expr.slice 0 i 1 |> Expr.reshape [| -1 |])

printfn "example  vmap              loop              difference"
for i in 0 .. n - 1 do
    let env = Eval.bindings (("x", row "xs" i) :: ("label", row "labels" i) :: values)
    let looped = Eval.evaluate env one |> Tensor.item
    printfn "%7d  %.15f %.15f %.1e" i batched[i] looped (abs (batched[i] - looped))

// The batched expression's size does not grow with the batch: it is rewritten, not unrolled.
let nodes size =
    Graph.size
        [
            Vmap.vmapAxes
                [ Some 0; Some 0 ]
                (fun e -> gradientNorm e[0] e[1])
                [ Expr.var "xs" [| size; 4 |]; Expr.var "labels" [| size; 3 |] ]
        ]
printfn "nodes for 8 examples: %d, for 8000: %d" (nodes 8) (nodes 8000)
