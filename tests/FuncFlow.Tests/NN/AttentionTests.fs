/// Attention against PyTorch in float64 (reference/attention_reference.json, written by
/// reference/make_attention_reference.py): scaled dot-product attention, multi-head attention and the pre-norm
/// transformer block, their outputs and the gradients of sum(output * r); then gradient checks, the masks'
/// sizes, positional embeddings and bad input.
module FuncFlow.Tests.NN.AttentionTests

open System
open System.Collections.Generic
open System.Text.Json
open Expecto
open FuncFlow
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support
open FuncFlow.Tests.TorchReference

let private reference = lazy (load "attention_reference.json")

let private tolerance = 1e-10

let private tensorOf (e: JsonElement) = Tensor.create (ints (field "shape" e)) (numbers (field "values" e))

let private named (group: string) (case: JsonElement) = [ for p in (field group case).EnumerateObject() -> p.Name, tensorOf p.Value ]

/// The output and the gradients of sum(output * r) with respect to the named variables, evaluated once.
let private pass (env: (string * Tensor) list) (vars: Expr list) (output: Expr) (r: Tensor) =
    let grads = Grad.vjp (Expr.constant r) vars output
    let values = Eval.many (Eval.bindings env) (output :: (vars |> List.map (fun v -> grads[v])))
    values.Head.ToArray(), Map [ for v, t in List.zip vars values.Tail -> (Expr.tryName v).Value, t.ToArray() ]

/// Compares a pass with a case's output and every gradient it lists.
let private compare (case: JsonElement) (output: float[], grads: Map<string, float[]>) =
    [
        yield! mismatches tolerance tolerance "output" (numbers (field "values" (field "output" case))) output
        for p in (field "grads" case).EnumerateObject() do
            yield! mismatches tolerance tolerance ("grad " + p.Name) (numbers (field "values" p.Value)) grads[p.Name]
    ]
    |> assertNone ((field "name" case).GetString())

let private padding (case: JsonElement) =
    match case.TryGetProperty "padding" with
    | true, p -> Some(tensorOf p)
    | _ -> None

let private checkSdpa (case: JsonElement) =
    let inputs = named "inputs" case
    let vars = inputs |> List.map (fun (n, t) -> Expr.var n t.Shape)
    let keyPadding = padding case |> Option.map Expr.constant
    let mask = { Causal = (field "causal" case).GetBoolean(); KeyPadding = keyPadding }
    let output = Attention.scaledDotProduct mask vars[0] vars[1] vars[2]
    compare case (pass inputs vars output (tensorOf (field "r" case)))

/// A layer's parameters bound as variables through a scope, as a Model builds them.
let private scopeOf (parameters: (string * Tensor) list) =
    let shapes = Map [ for n, t in parameters -> n, t.Shape ] :> IReadOnlyDictionary<string, int[]>
    Scope.Create(Float64, true, shapes, Map.empty)

let private checkMha (case: JsonElement) =
    let int (key: string) = (field key case).GetInt32()
    let layer = MultiheadAttention(int "embed", int "heads", (field "causal" case).GetBoolean())
    let parameters, inputs = named "params" case, named "inputs" case
    let scope = scopeOf parameters
    // Self-attention cases give only the query, which is also the key and the value.
    let inputVars = [ for n, t in inputs -> n, Expr.var n t.Shape ]
    let input (name: string) = inputVars |> List.tryFind (fst >> (=) name) |> Option.map snd
    let query = (input "query").Value
    let key, value = defaultArg (input "key") query, defaultArg (input "value") query
    let output = layer.Attend(scope, query, key, value, padding case |> Option.map Expr.constant)
    let vars = (List.map snd inputVars) @ [ for n, _ in parameters -> scope.Param n ]
    compare case (pass (inputs @ parameters) vars output (tensorOf (field "r" case)))

let private checkBlock (case: JsonElement) =
    let int (key: string) = (field key case).GetInt32()
    let block = TransformerBlock(int "dim", int "heads", int "hidden", (field "causal" case).GetBoolean())
    let model = Model.Create(block, 0)
    let parameters = named "params" case
    Expect.equal (set (Map.keys model.Parameters)) (set (List.map fst parameters)) "the parameters' names are PyTorch's"
    let model = model.WithParameters(Map parameters)
    let x = tensorOf (field "input" (field "inputs" case))
    let r = tensorOf (field "r" case)
    compare case (LayerReferenceTests.trainingPass model x (fun out -> Expr.sum (out * Expr.constant r)))

let private values (seed: int) (shape: int[]) = Tensor.randNormal Float64 seed shape 0.0 1.0

[<Tests>]
let tests =
    moduleTests
        "AttentionTests"
        [
            for case in (field "sdpa" reference.Value).EnumerateArray() do
                testCase (
                    sprintf "scaled dot-product attention, %s, matches PyTorch's output and gradients" ((field "name" case).GetString())
                )
                <| fun () -> checkSdpa case
            for case in (field "mha" reference.Value).EnumerateArray() do
                testCase (
                    sprintf
                        "multi-head attention, %s, matches nn.MultiheadAttention's output and gradients"
                        ((field "name" case).GetString())
                )
                <| fun () -> checkMha case
            for case in (field "block" reference.Value).EnumerateArray() do
                testCase (
                    sprintf "the %s matches a pre-norm nn.TransformerEncoderLayer's output and gradients" ((field "name" case).GetString())
                )
                <| fun () -> checkBlock case
            testCase "the sinusoidal encoding matches its formula, and the layer adds it"
            <| fun () ->
                let s = field "sinusoidal" reference.Value
                let length, dim = (field "length" s).GetInt32(), (field "dim" s).GetInt32()
                assertClose 1e-15 (numbers (field "values" s)) ((Positional.sinusoidal Float64 length dim).ToArray())
                let x = values 1 [| 2; length; dim |]
                let model = Model.Create(SinusoidalPositionalEncoding(10, dim), 0)
                Expect.equal model.ParameterCount 0 "no parameters"
                let expected =
                    Array.init (2 * length * dim) (fun i -> (x.ToArray())[i] + (numbers (field "values" s))[i % (length * dim)])
                assertClose 1e-15 expected ((model.Predict x).ToArray())
            testCase "the tanh GELU of a block matches torch's gelu(approximate=\"tanh\") and passes GradCheck"
            <| fun () ->
                let g = field "gelu_tanh" reference.Value
                let xs = numbers (field "x" g)
                let x = Expr.var "x" [| xs.Length |]
                let y = BlockActivation.GeluTanh.Apply x
                assertClose 1e-14 (numbers (field "y" g)) ((Eval.evaluate (Eval.bindings [ "x", Tensor.ofArray xs ]) y).ToArray())
                gradcheck [ x, Tensor.ofArray xs ] (Expr.sum y)
                let block = TransformerBlock(4, 2, 8, false, BlockActivation.GeluTanh)
                Expect.stringContains (block.Describe()) "tanh GELU" "the description names the activation"
            testCase "a learned positional embedding adds its first rows, and its gradient is the sum over the batch"
            <| fun () ->
                let model = Model.Create(LearnedPositionalEmbedding(6, 3), 4)
                let weight = model.Parameters["weight"].ToArray()
                let x = values 2 [| 2; 4; 3 |]
                let expected = Array.init 24 (fun i -> (x.ToArray())[i] + weight[i % 12])
                assertClose 1e-15 expected ((model.Predict x).ToArray())
                let r = values 3 [| 2; 4; 3 |]
                let _, grads = LayerReferenceTests.trainingPass model x (fun out -> Expr.sum (out * Expr.constant r))
                let rs = r.ToArray()
                let expectedGrad = Array.init 18 (fun i -> if i < 12 then rs[i] + rs[i + 12] else 0.0)
                assertClose 1e-15 expectedGrad grads["weight"]
                assertClose 1e-15 rs grads["input"]
            testCase "attention with causal and padding masks passes GradCheck in first and second order"
            <| fun () ->
                let q, k, v = Expr.var "q" [| 2; 3; 2 |], Expr.var "k" [| 2; 4; 2 |], Expr.var "v" [| 2; 4; 3 |]
                let keep = Expr.constant (Tensor.create [| 2; 4 |] [| 1.0; 1.0; 0.0; 0.0; 1.0; 1.0; 1.0; 0.0 |])
                let out = Attention.scaledDotProduct { Causal = true; KeyPadding = Some keep } q k v
                let f = Expr.sum (Expr.tanh out)
                let pairs = [ q, values 4 [| 2; 3; 2 |]; k, values 5 [| 2; 4; 2 |]; v, values 6 [| 2; 4; 3 |] ]
                gradcheck pairs f
                gradgradcheck pairs f
            testCase "a causal transformer block passes GradCheck with respect to its input and every parameter"
            <| fun () ->
                let model = Model.Create(TransformerBlock(4, 2, 6, true), 7)
                let input = Expr.var "input" [| 1; 3; 4 |]
                let g = model.Build(input, true)
                let f = Expr.sum (Expr.sin g.Output)
                let pairs =
                    (input, values 8 [| 1; 3; 4 |])
                    :: [ for KeyValue(name, v) in g.Parameters -> v, model.Parameters[name] ]
                gradcheck pairs f
            testCase "masks are added as biases no larger than [queries; keys] and [batch; keys]"
            <| fun () ->
                let b, h, t, d = 3, 2, 5, 4
                let q, k, v =
                    Expr.var "q" [| b; h; t; d |], Expr.var "k" [| b; h; t; d |], Expr.var "v" [| b; h; t; d |]
                let keep = Expr.var "keep" [| b; t |]
                let out = Attention.scaledDotProduct { Causal = true; KeyPadding = Some keep } q k v
                let masks =
                    Graph.topoSort [ out ]
                    |> Array.filter (fun e ->
                        match e.Op with
                        | Op.Const c -> c.Size > 1
                        | Op.Where -> true
                        | _ -> false)
                Expect.equal
                    (masks |> Array.map (fun e -> e.Shape) |> Array.sortBy (fun s -> s.Length))
                    [| [| t; t |]; [| b; t |] |]
                    "the masks' shapes"
                // Causal: position i of a sequence is unaffected by the values at later positions.
                let later = values 9 [| b; h; t; d |]
                let changed =
                    Tensor.create later.Shape (later.ToArray() |> Array.mapi (fun i x -> if i % (t * d) >= 3 * d then x + 5.0 else x))
                let keepAll = Tensor.ones Float64 [| b; t |]
                let run (kv: Tensor) =
                    (Eval.evaluate (Eval.bindings [ "q", values 10 [| b; h; t; d |]; "k", kv; "v", kv; "keep", keepAll ]) out).ToArray()
                let before, after = run later, run changed
                for i in 0 .. before.Length - 1 do
                    if i % (t * d) < 3 * d then
                        expectWithin 1e-15 before[i] after[i] (sprintf "element %d, at a position before the change" i)
                Expect.isFalse (Array.forall2 (=) before after) "later positions do change"
            testCase "attention runs in a compiled training step of float32, as Eval computes it"
            <| fun () ->
                let block = TransformerBlock(8, 2, true)
                let model = Model.Create(block, 3, Float32)
                let x = Tensor.cast Float32 (values 11 [| 2; 5; 8 |])
                let target = Tensor.cast Float32 (values 12 [| 2; 5; 8 |])
                let step = TrainStep.Compile(model, Loss.MSE, SGD(0.1, 0.0, false, 0.0), [| 2; 5; 8 |], [| 2; 5; 8 |])
                let input = Expr.var32 "input" [| 2; 5; 8 |]
                let g = model.Build(input, true)
                let loss = Losses.mse g.Output (Expr.constant target)
                let env = ("input", x) :: [ for KeyValue(name, _) in g.Parameters -> name, model.Parameters[name] ]
                let expected = Tensor.item (Eval.evaluate (Eval.bindings env) loss)
                expectWithin 1e-5 expected (step.Run(x, target)) "the first step's loss"
                Expect.isLessThan (step.Run(x, target)) expected "the loss falls after a step"
            testCase "a tiny GPT-style model learns a repeating text, and its logits at a position ignore later characters"
            <| fun () ->
                let text = String.replicate 30 "the cat sat on the mat. "
                let tokenizer = FuncFlow.Data.Tokenizer.characters text
                let windows = FuncFlow.Data.TextData.windows 8 [| FuncFlow.Data.Tokenizer.encode tokenizer text |]
                let vocabulary = tokenizer.VocabularySize
                let gpt =
                    Sequential(
                        Embedding(vocabulary, 16, Normal 0.1),
                        LearnedPositionalEmbedding(8, 16),
                        TransformerBlock(16, 2, 32, true, BlockActivation.GeluTanh),
                        LayerNorm 16,
                        Linear(16, vocabulary, Xavier)
                    )
                let loss = Loss.SequenceCrossEntropy -100
                let step =
                    TrainStep.Compile(Model.Create(gpt, 1, Float32), loss, Adam 1e-2, [| 16; 8 |], [| 16; 8 |], 1)
                let before = Evaluator(loss).Evaluate(step.Model, windows).Loss
                for epoch in 1..25 do
                    for b in FuncFlow.Data.Batches.shuffledWith true epoch 16 windows do
                        step.Run(b.Features, b.Targets) |> ignore
                let after = Evaluator(loss).Evaluate(step.Model, windows).Loss
                // Untrained, about log 13 = 2.56 nats; the text's next character is nearly determined by 8.
                Expect.isGreaterThan before 2.0 "the untrained loss"
                Expect.isLessThan after 0.5 (sprintf "the trained loss (from %.3f)" before)
                let logits (ids: float32[]) = (step.Model.Predict(Tensor.create32 [| 1; 8 |] ids)).ToArray()
                let ids = windows.Features.ToArray32()[..7]
                let changed = Array.append ids[..4] [| ids[7]; ids[5]; ids[6] |]
                let a, b = logits ids, logits changed
                Expect.equal a[.. 5 * vocabulary - 1] b[.. 5 * vocabulary - 1] "positions 0-4 see only positions 0-4"
                Expect.notEqual a[5 * vocabulary ..] b[5 * vocabulary ..] "positions 5-7 see the change"
            testCase "bad input to attention names the layer and the shapes"
            <| fun () ->
                let e = throws<ArgumentException>(fun () -> MultiheadAttention(6, 4) |> ignore)
                Expect.stringContains
                    e.Message
                    "MultiheadAttention: the embedding size must be a positive multiple of the positive number of heads, got 6 and 4 heads"
                    e.Message
                let e =
                    throws<ArgumentException>(fun () ->
                        Model.Create(MultiheadAttention(4, 2), 0).Forward(Expr.var "x" [| 2; 3; 5 |]) |> ignore)
                Expect.stringContains
                    e.Message
                    "MultiheadAttention(4, 2 heads): expected query, key and value [batch; length; 4], got (2, 3, 5)"
                    e.Message
                let q = Expr.var "q" [| 2; 3; 4 |]
                let e =
                    throws<ArgumentException>(fun () ->
                        Attention.scaledDotProduct { Causal = false; KeyPadding = Some(Expr.var "m" [| 3; 3 |]) } q q q
                        |> ignore)
                Expect.stringContains e.Message "Attention.scaledDotProduct: the key padding mask must be [batch; keys] = (2, 3)" e.Message
                let e =
                    throws<ArgumentException>(fun () ->
                        Attention.scaledDotProduct AttentionMask.None q (Expr.var "k" [| 2; 3; 5 |]) q |> ignore)
                Expect.stringContains e.Message "q and k must have the same last axis" e.Message
                let e =
                    throws<ArgumentException>(fun () ->
                        Model.Create(LearnedPositionalEmbedding(4, 4), 0).Forward(Expr.var "x" [| 1; 5; 4 |]) |> ignore)
                Expect.stringContains
                    e.Message
                    "LearnedPositionalEmbedding: expected an input [batch; length <= 4; 4], got shape (1, 5, 4)"
                    e.Message
        ]
