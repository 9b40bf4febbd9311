// Forward mode, Jacobians and Hessians of small functions, each value next to central differences.
// Build first (dotnet build -c Release), then: dotnet fsi examples/transforms.fsx
#load "../src/FuncFlow/FuncFlow.fsx"

open FuncFlow

let x = Expr.var "x" [| 3 |]
let at = Tensor.ofArray [| 0.5; -1.0; 2.0 |]
let env = Eval.bindings [ ("x", at) ]
let value e = (Eval.evaluate env e).ToArray()

/// f evaluated with x moved to x + h v.
let shifted (h: float) (v: float[]) (f: Expr) =
    let moved = Array.map2 (fun a d -> a + h * d) (at.ToArray()) v
    (Eval.evaluate (Eval.bindings [ ("x", Tensor.ofArray moved) ]) f).ToArray()

/// The directional derivative of f along v by central differences.
let central (v: float[]) (f: Expr) =
    let h = 1e-6
    Array.map2 (fun p m -> (p - m) / (2.0 * h)) (shifted h v f) (shifted -h v f)

let show (values: float[]) = values |> Array.map (sprintf "%10.6f") |> String.concat " "

let report (name: string) (computed: float[]) (numeric: float[]) =
    printfn "%s\n  FuncFlow:            %s\n  central differences: %s" name (show computed) (show numeric)
    printfn "  largest difference:  %.2e" (Array.map2 (fun a b -> abs (a - b)) computed numeric |> Array.max)

// f: R^3 -> R^3, softmax of x * sin(x); its derivative as a formula.
let f = Expr.softmax 0 (x * Expr.sin x)
printfn "f(x) = %s" (Print.formula f)

// jvp: the derivative of f along v, in one forward pass.
let v = [| 1.0; 0.5; -2.0 |]
report "jvp x v f" (value (Grad.jvp x (Expr.constant (Tensor.ofArray v)) f)) (central v f)

// jacobian: shape f.Shape @ x.Shape, column j the derivative along the j-th unit vector.
let unit j = Array.init 3 (fun i -> if i = j then 1.0 else 0.0)
let jacobian = value (Grad.jacobian x f)
let numericJacobian = Array.init 9 (fun k -> (central (unit (k % 3)) f)[k / 3])
report "jacobian x f (row after row)" jacobian numericJacobian

// hessian of a scalar g: the Jacobian of its gradient, symmetric.
let g = Expr.sum (x ** 3.0) * Expr.logSumExpAxis 0 x
let gradient = Grad.grad x g
let numericHessian = Array.init 9 (fun k -> (central (unit (k % 3)) gradient)[k / 3])
report "hessian x g (row after row)" (value (Grad.hessian x g)) numericHessian

// A derivative as one writes it by hand, and how F# Interactive shows expressions and tensors.
let s = Expr.var "s" [||]
printfn "d/ds (s ** 3 + 2 tanh s) = %s" (Print.formula (Grad.grad s (s ** 3.0 + 2.0 * tanh s)))
printfn "%s" (Print.interactive (Grad.jacobian x f))
printfn "%s" (Print.tensor (Eval.evaluate env (Grad.hessian x g)))

// vmap: per-example gradient norms of an MLP, next to a loop's (examples/vmap.fsx, also runnable alone).
#load "vmap.fsx"
