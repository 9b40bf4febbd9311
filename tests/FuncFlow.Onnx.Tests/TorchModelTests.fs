/// A small CNN exported by torch.onnx.export (fixtures/make_torch_model.py): imported, it gives PyTorch's outputs,
/// its gradients agree with finite differences, and it fine-tunes as a compiled plan; an LSTM gives PyTorch's outputs.
module FuncFlow.Onnx.Tests.TorchModelTests

open System.IO
open System.Text.Json
open Expecto
open FuncFlow
open FuncFlow.Onnx
open FuncFlow.Tests
open FuncFlow.Onnx.Tests.Support

let private fixtureOf (name: string) =
    use doc = JsonDocument.Parse(File.ReadAllText(fixture (name + ".json")))
    let floats (name: string) = [| for v in doc.RootElement.GetProperty(name).EnumerateArray() -> v.GetDouble() |]
    let ints (name: string) = [| for v in doc.RootElement.GetProperty(name).EnumerateArray() -> v.GetInt32() |]
    Tensor.create (ints "input_shape") (floats "input") |> Tensor.cast Float32, ints "output_shape", floats "output"

let private fixtureData () = fixtureOf "torch_cnn"

let private load () = Onnx.load (Map [ "batch", 2 ]) (fixture "torch_cnn.onnx")

// The imported model's variable for a parameter (an initializer) of the given name.
let private parameter (model: OnnxModel) (name: string) =
    Graph.variables (List.map snd model.Outputs) |> List.find (fun v -> Expr.tryName v = Some name)

// A scalar loss of the log-probabilities: the mean negative log-likelihood of fixed targets 2 and 0.
let private loss (model: OnnxModel) =
    let logProbs = snd model.Outputs.Head
    let targets = Expr.constant (Tensor.create32 [| 2; 3 |] [| 0f; 0f; 1f; 1f; 0f; 0f |])
    -(Expr.sum (logProbs * targets) / 2.0)

[<Tests>]
let tests =
    moduleTests
        "TorchModelTests"
        [
            test "the imported CNN gives PyTorch's outputs" {
                let input, shape, expected = fixtureData ()
                let model = load ()
                Expect.equal
                    (model.Info.OperatorCounts |> List.map fst)
                    [ "Conv"; "BatchNormalization"; "Relu"; "MaxPool"; "Flatten"; "Gemm"; "LogSoftmax" ]
                    "the exported operators"
                Expect.equal model.Parameters.Count 8 "conv, batch norm and linear parameters"
                let output = (Onnx.evaluate model (Map [ "image", input ]))["log_probs"]
                Expect.equal output.Shape shape "output shape"
                assertClose "log_probs" 1e-5 expected (Tensor.toArray output)
            }
            test "an imported bidirectional two-layer LSTM gives PyTorch's outputs" {
                let input, shape, expected = fixtureOf "torch_lstm"
                let model = Onnx.load (Map [ "batch", 2 ]) (fixture "torch_lstm.onnx")
                Expect.contains (model.Info.OperatorCounts |> List.map fst) "LSTM" "the exporter's LSTM operator"
                let output = (Onnx.evaluate model (Map [ "sequence", input ]))["scores"]
                Expect.equal output.Shape shape "output shape"
                assertClose "scores" 1e-5 expected (Tensor.toArray output)
            }
            test "the imported CNN's gradients agree with finite differences" {
                let input, _, _ = fixtureData ()
                let model = load ()
                let f = loss model
                let env (parameters: Map<string, Tensor>) = Eval.bindings (Seq.append (Map.toSeq parameters) [ "image", input ])
                for name in [ "fc.weight"; "conv.bias"; "bn.weight" ] do
                    let v = parameter model name
                    let _, grads = Eval.valueAndGrad (env model.Parameters) [ v ] f
                    let g = Tensor.toArray grads[v]
                    let value = Tensor.toArray model.Parameters[name]
                    // Central differences in float32 with a step large enough for its rounding.
                    let h = 1e-3
                    for i in 0 .. min 5 (value.Length - 1) do
                        let at (delta: float) =
                            let moved = value |> Array.mapi (fun j x -> if j = i then x + delta else x)
                            let parameters =
                                model.Parameters
                                |> Map.add name (Tensor.create model.Parameters[name].Shape moved |> Tensor.cast Float32)
                            Tensor.item (Eval.evaluate (env parameters) f)
                        let numeric = (at h - at -h) / (2.0 * h)
                        Expect.isLessThan
                            (abs (numeric - g[i]))
                            (2e-3 + 1e-2 * abs numeric)
                            (sprintf "d loss / d %s[%d]: %g vs %g" name i g[i] numeric)
            }
            test "the imported CNN fine-tunes as a compiled plan: each SGD step lowers the loss by about lr |g|^2" {
                let input, _, _ = fixtureData ()
                let model = load ()
                let f = loss model
                let vars = model.Parameters |> Map.toList |> List.map (fst >> parameter model)
                let grads = Grad.wrt vars f
                let lr = 1e-3
                let squaredNorm = vars |> List.map (fun v -> Expr.sum (grads[v] * grads[v])) |> List.reduce (+)
                let plan = Plan.compileWithUpdates [ f; squaredNorm ] [ for v in vars -> v, v - grads[v] * lr ]
                for KeyValue(name, value) in model.Parameters do
                    plan.Set(name, value)
                plan.Set("image", input)
                let losses =
                    [
                        for _ in 1..4 do
                            plan.Execute()
                            yield plan.OutputScalar 0, plan.OutputScalar 1
                    ]
                // First order: loss(p - lr g) = loss(p) - lr |g|^2 + O(lr^2).
                for (before, gradient), (after, _) in List.pairwise losses do
                    let predicted = lr * gradient
                    Expect.isLessThan after before "the loss falls"
                    Expect.isLessThan
                        (abs ((before - after) / predicted - 1.0))
                        0.1
                        (sprintf "decrease %g, predicted %g" (before - after) predicted)
                Expect.notEqual
                    (Tensor.toArray (plan.Get "fc.weight"))
                    (Tensor.toArray model.Parameters["fc.weight"])
                    "the parameters were updated"
            }
        ]
