/// Every layer against PyTorch in float64 (reference/layer_reference.json, written by
/// reference/make_layer_reference.py): one training-mode forward and backward pass of BatchNorm1d, LayerNorm,
/// GroupNorm, Conv1d, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and Flatten with random parameters; the
/// output and the gradients of sum(output * r) with respect to the input and every parameter.
module FuncFlow.Tests.NN.LayerReferenceTests

open System.Text.Json
open Expecto
open FuncFlow
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support
open FuncFlow.Tests.TorchReference

/// The reference file.
let reference = lazy (load "layer_reference.json")

/// Relative and absolute tolerance against PyTorch in float64.
let tolerance = 1e-10

/// The output and the gradients of a loss of it with respect to the input and the parameters, evaluated once
/// in training mode (the graph a training step differentiates).
let trainingPass (model: Model) (x: Tensor) (loss: Expr -> Expr) =
    let input = Expr.var "input" x.Shape
    let g = model.Build(input, true)
    let value = loss g.Output
    let wrt = input :: (g.Parameters |> Map.toList |> List.map snd)
    let grads = Grad.wrt wrt value
    let env = ("input", x) :: [ for KeyValue(name, _) in g.Parameters -> name, model.Parameters[name] ]
    let values = Eval.many (Eval.bindings env) (g.Output :: List.map (fun v -> grads[v]) wrt)
    values.Head.ToArray(), Map [ for v, t in List.zip wrt values.Tail -> (Expr.tryName v).Value, t.ToArray() ]

/// The FuncFlow layer a case describes, for an input of the given shape.
let private layerOf (case: JsonElement) (input: int[]) : Layer =
    let args = field "args" case
    let int (key: string) = (field key args).GetInt32()
    let list (key: string) = ints (field key args) |> List.ofArray
    let eps () = (field "eps" args).GetDouble()
    let spec () =
        {
            Stride = list "stride"
            Padding = list "padding"
            Dilation = list "dilation"
            Groups = int "groups"
        }
    let bias () = (field "bias" args).GetBoolean()
    match (field "name" case).GetString() with
    | "batchnorm1d" -> BatchNorm1d(int "features", eps (), 0.1, true)
    | "layernorm" -> LayerNorm(ints (field "shape" args), eps (), true)
    | "groupnorm" -> GroupNorm(int "groups", int "channels", eps (), true)
    | "conv2d" -> Conv2d(input[1], int "out_channels", list "kernel", spec (), bias ())
    | "conv1d" -> Conv1d(input[1], int "out_channels", (list "kernel").Head, spec (), bias ())
    | "maxpool2d" -> MaxPool2d(int "kernel", int "stride", int "padding")
    | "avgpool2d" -> AvgPool2d(int "kernel", int "stride", int "padding")
    | "adaptiveavgpool2d" -> AdaptiveAvgPool2d((list "size")[0], (list "size")[1])
    | "flatten" -> Flatten(int "start")
    | other -> failwithf "layer_reference.json: unknown layer %s" other

let private checkLayer (case: JsonElement) =
    let shape = ints (field "shape" case)
    let ps = [ for p in (field "params" case).EnumerateObject() -> p.Name, p.Value ]
    let initial = Model.Create(layerOf case shape, 0)
    let model =
        initial.WithParameters(
            Map
                [
                    for name, p in ps -> name, Tensor.create initial.Parameters[name].Shape (numbers (field "value" p))
                ]
        )
    let r = numbers (field "r" case)
    let output, grads =
        trainingPass model (Tensor.create shape (numbers (field "x" case))) (fun out ->
            Expr.sum (out * Expr.constant (Tensor.create out.Shape r)))
    [
        yield! mismatches tolerance tolerance "output" (numbers (field "output" case)) output
        yield! mismatches tolerance tolerance "grad_input" (numbers (field "grad_input" case)) grads["input"]
        for name, p in ps do
            yield! mismatches tolerance tolerance ("grad " + name) (numbers (field "grad" p)) grads[name]
    ]
    |> assertNone ((field "name" case).GetString())


[<Tests>]
let tests =
    moduleTests
        "LayerReferenceTests"
        [
            for case in (field "layers" reference.Value).EnumerateArray() do
                let name = (field "name" case).GetString()
                testCase (
                    sprintf "%s %s matches PyTorch's output and gradients in training mode" name (Shape.show (ints (field "shape" case)))
                )
                <| fun () -> checkLayer case
        ]
