/// Layers, losses, optimisers, models and training: each checked against an independent computation.
module FuncFlow.Tests.NN.NNTests

open System
open System.IO
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support

let private close (tol: float) (expected: float) (actual: float) =
    Expect.isTrue (abs (expected - actual) <= tol * (1.0 + abs expected)) (sprintf "expected %.12g, got %.12g" expected actual)

let private closeAll tol (expected: float[]) (actual: float[]) =
    Expect.equal actual.Length expected.Length "actual.Length"
    Array.iter2 (close tol) expected actual

/// Runs an optimiser on loss = 0.5 * sum(p^2) (so the gradient is p) for some steps; the parameter after each.
let private optimise (opt: Optimizer) (p0: float[]) (steps: int) : float[] list =
    OptimizerReferenceTests.runOptimizer opt (Tensor.ofArray p0) (Tensor.zeros Float64 [| p0.Length |]) steps
    |> List.map (fun s -> s.Parameter)

let private p0 = [| 1.0; -2.0; 0.5 |]

/// Adam written out with plain floats, one parameter element at a time.
let private adamReference (lr: float) (wd: float) (decoupled: bool) (steps: int) (x0: float) =
    let b1, b2, eps = 0.9, 0.999, 1e-8
    let mutable x, m, v = x0, 0.0, 0.0
    [
        for t in 1..steps do
            let g = if decoupled then x else x + wd * x
            m <- b1 * m + (1.0 - b1) * g
            v <- b2 * v + (1.0 - b2) * g * g
            let mhat = m / (1.0 - b1 ** float t)
            let vhat = v / (1.0 - b2 ** float t)
            let shrunk = if decoupled then x * (1.0 - lr * wd) else x
            x <- shrunk - lr * mhat / (sqrt vhat + eps)
            yield x
    ]

let private logits =
    [| [| 1.0; 2.0; 3.0; 4.0 |]; [| 1000.0; -1000.0; 999.0; 0.0 |]; [| -0.5; 0.25; 0.0; 2.0 |] |]
let private labels = [| 3.0; 2.0; 1.0 |]

let private evalLoss (f: Expr -> Expr -> Expr) (pred: Tensor) (target: Tensor) =
    let p = Expr.var "p" pred.Shape
    let t = Expr.var "t" target.Shape
    Eval.evaluate (Eval.bindings [ "p", pred; "t", target ]) (f p t) |> Tensor.item

/// Bad hyper-parameters and files: each fails when it is given, naming what was expected.
let private badTrainingInputs: (string * (unit -> unit) * string list) list =
    [
        "SGD NaN rate", (fun () -> SGD nan |> ignore), [ "SGD"; "learningRate"; "NaN" ]
        "SGD infinite rate", (fun () -> SGD infinity |> ignore), [ "SGD"; "learningRate"; "Infinity" ]
        "SGD zero rate", (fun () -> SGD 0.0 |> ignore), [ "SGD"; "> 0"; "got 0" ]
        "SGD negative momentum", (fun () -> SGD(0.1, -0.5) |> ignore), [ "momentum"; "-0.5" ]
        "Adam NaN rate", (fun () -> Adam nan |> ignore), [ "Adam"; "learningRate"; "NaN" ]
        "Adam negative weight decay", (fun () -> Adam(0.1, -1.0) |> ignore), [ "Adam"; "weightDecay"; "-1" ]
        "linear decay over 0 steps", (fun () -> (LinearDecay 0).Factor(Expr.var "t" [||]) |> ignore), [ "LinearDecay"; "positive"; "got 0" ]
        "exponential decay gamma 2",
        (fun () -> (ExponentialDecay 2.0).Factor(Expr.var "t" [||]) |> ignore),
        [ "ExponentialDecay"; "(0, 1]"; "got 2" ]
        "negative batch size",
        (fun () ->
            Trainer(Model.Create(Linear(4, 3), 0), Loss.CrossEntropy, SGD 0.1, 0).Fit(Datasets.irisDefault (), 1, -8)
            |> ignore),
        [ "Trainer.Fit"; "batch size"; "-8" ]
    ]

let private iris () =
    let ds = Datasets.irisDefault ()
    Standardizer.applyTo (Standardizer.fit ds.Features) ds

let private irisTrainer seed =
    let model = Model.Create(Sequential(Linear(4, 16), Tanh(), Dropout 0.1, Linear(16, 3)), seed)
    Trainer(model, Loss.CrossEntropy, Adam 0.01, seed)

[<Tests>]
let tests =
    moduleTests
        "NNTests"
        [
            testCase "SGD without momentum is p - lr * grad"
            <| fun () ->
                let steps = optimise (SGD 0.1) p0 2
                closeAll 1e-12 (p0 |> Array.map (fun x -> 0.9 * x)) steps[0]
                closeAll 1e-12 (p0 |> Array.map (fun x -> 0.81 * x)) steps[1]
            testCase "SGD momentum matches two hand-computed steps"
            <| fun () ->
                // v1 = g0 = p0, p1 = p0 - 0.1 p0 = 0.9 p0; g1 = 0.9 p0, v2 = 0.9 v1 + g1 = 1.8 p0, p2 = 0.9 p0 - 0.18 p0.
                let steps = optimise (SGD(0.1, 0.9)) p0 2
                closeAll 1e-12 (p0 |> Array.map (fun x -> 0.9 * x)) steps[0]
                closeAll 1e-12 (p0 |> Array.map (fun x -> 0.72 * x)) steps[1]
            testCase "SGD Nesterov and weight decay match hand-computed steps"
            <| fun () ->
                // Nesterov: v1 = p0, direction = g + 0.9 v1 = 1.9 p0, p1 = p0 - 0.19 p0.
                closeAll 1e-12 (p0 |> Array.map (fun x -> 0.81 * x)) (List.head (optimise (SGD(0.1, 0.9, true, 0.0)) p0 1))
                // Weight decay 0.5: g = p + 0.5 p, p1 = p0 - 0.15 p0.
                closeAll 1e-12 (p0 |> Array.map (fun x -> 0.85 * x)) (List.head (optimise (SGD(0.1, 0.0, false, 0.5)) p0 1))
            testCase "Adam first step moves each element by lr against its gradient's sign"
            <| fun () ->
                // With bias correction m^ = g and v^ = g^2 after one step, so the step is lr * g / (|g| + eps).
                let step1 = (optimise (Adam 0.01) p0 1)[0]
                closeAll 1e-9 (p0 |> Array.map (fun x -> x - 0.01 * float (sign x))) step1
            testCase "Adam, Adam with L2 decay and AdamW match an independent implementation over three steps"
            <| fun () ->
                let check (opt: Optimizer) lr wd decoupled =
                    let ours = optimise opt p0 3
                    let reference = p0 |> Array.map (adamReference lr wd decoupled 3)
                    for t in 0..2 do
                        closeAll 1e-10 (reference |> Array.map (fun r -> r[t])) ours[t]
                check (Adam 0.01) 0.01 0.0 false
                check (Adam(0.01, 0.1)) 0.01 0.1 false
                check (AdamW(0.01, 0.1)) 0.01 0.1 true
            testCase "AdamW decays the parameter directly, unlike Adam's L2 term"
            <| fun () ->
                let adamw = (optimise (AdamW(0.1, 0.5)) p0 1)[0]
                // p1 = p0 (1 - 0.05) - 0.1 sign(p0): the decay does not pass through the normalised moments.
                closeAll 1e-8 (p0 |> Array.map (fun x -> 0.95 * x - 0.1 * float (sign x))) adamw
            testCase "A linear-decay schedule scales each SGD step by 1 - t/T"
            <| fun () ->
                // grad of 0.5 |p|^2 is p, so step t (from 0) is p <- p - lr (1 - t/4) p.
                let steps = optimise (Scheduled(SGD 0.1, LinearDecay 4)) p0 5
                let expected =
                    List.scan (fun (p: float[]) t -> p |> Array.map (fun x -> x - 0.1 * max 0.0 (1.0 - float t / 4.0) * x)) p0 [ 0..4 ]
                    |> List.tail
                List.iter2 (closeAll 1e-12) expected steps
                closeAll 0.0 steps[3] steps[4]
            testCase "An exponential schedule on Adam equals Adam with the rate multiplied by gamma^t"
            <| fun () ->
                let ours = optimise (Scheduled(Adam 0.01, ExponentialDecay 0.5)) p0 3
                // Adam written out with plain floats, its rate at step t (from 0) being 0.01 * 0.5^t.
                let reference x0 =
                    let mutable x, m, v = x0, 0.0, 0.0
                    [
                        for t in 1..3 do
                            m <- 0.9 * m + 0.1 * x
                            v <- 0.999 * v + 0.001 * x * x
                            x <-
                                x
                                - 0.01 * 0.5 ** float (t - 1) * (m / (1.0 - 0.9 ** float t))
                                  / (sqrt (v / (1.0 - 0.999 ** float t)) + 1e-8)
                            yield x
                    ]
                let expected = p0 |> Array.map reference |> List.transpose |> List.map Array.ofList
                List.iter2 (closeAll 1e-12) expected ours
            testCase "Linear initialisation is seeded, deterministic and has the scheme's spread"
            <| fun () ->
                let weight (init: Init) seed = (Model.Create(Linear(400, 300, init), seed).Parameters["weight"]).ToArray()
                Expect.equal (weight He 7) (weight He 7) "weight He 7"
                Expect.notEqual (weight He 8) (weight He 7) "weight He 8"
                let std (a: float[]) =
                    let m = Array.average a
                    sqrt (a |> Array.averageBy (fun x -> (x - m) ** 2.0))
                // He's std is sqrt(2 / fanIn), Xavier's sqrt(2 / (fanIn + fanOut)); a Linear(400, 300) weight has fan-in 400.
                assertRelative
                    1e-15
                    [| sqrt (2.0 / 400.0); sqrt (2.0 / 700.0); 0.5 |]
                    [| He.Std(400, 300); Xavier.Std(400, 300); (Normal 0.5).Std(400, 300) |]
                // 120,000 draws estimate a std within about 0.2%: 2% is 10 standard errors, and fan-out's 15% is far outside.
                assertRelative
                    0.02
                    [| sqrt (2.0 / 400.0); sqrt (2.0 / 700.0); 0.5 |]
                    [| std (weight He 1); std (weight Xavier 1); std (weight (Normal 0.5) 1) |]
                Expect.isTrue
                    (Model.Create(Linear(400, 300), 1).Parameters["bias"].ToArray() |> Array.forall ((=) 0.0))
                    "Model.Create(Linear(400, 300), 1).Parameters[\"bias\"].ToArray() |> Array.forall ((=) 0.0)"
            testCase "Sequential names parameters by position and gives equal layers different weights"
            <| fun () ->
                let m = Model.Create(Sequential(Linear(3, 3), ReLU(), Linear(3, 3)), 5)
                Expect.equal
                    (m.Parameters |> Map.keys |> List.ofSeq)
                    ([ "0.bias"; "0.weight"; "2.bias"; "2.weight" ])
                    "m.Parameters |> Map.keys |> List.ofSeq"
                Expect.notEqual
                    (m.Parameters["2.weight"].ToArray())
                    (m.Parameters["0.weight"].ToArray())
                    "m.Parameters[\"2.weight\"].ToArray()"
            testCase "Activation layers compute their functions"
            <| fun () ->
                let x = Tensor.ofRows [| [| -1.0; 0.0; 2.0 |]; [| 3.0; -4.0; 0.5 |] |]
                let apply (layer: Layer) = (Model.Create(layer, 0).Predict x).ToArray()
                let xs = x.ToArray()
                closeAll 1e-12 (xs |> Array.map (fun v -> 1.0 / (1.0 + exp -v))) (apply (Sigmoid()))
                closeAll 1e-12 (xs |> Array.map tanh) (apply (Tanh()))
                closeAll 1e-12 (xs |> Array.map (max 0.0)) (apply (ReLU()))
                let softmaxRow (r: float[]) = let e = r |> Array.map exp in e |> Array.map (fun v -> v / Array.sum e)
                closeAll 1e-12 (Array.append (softmaxRow xs[0..2]) (softmaxRow xs[3..5])) (apply (Softmax()))
                // The activations on the newer elementwise ops, at points whose values are known in closed form:
                // Φ(1) = 0.8413447460685429, sigmoid(1) = 0.7310585786300049, Φ(-1) = 1 - Φ(1).
                let one = Tensor.ofArray [| 1.0; -1.0; 0.0 |]
                let on (layer: Layer) = (Model.Create(layer, 0).Predict one).ToArray()
                closeAll 1e-12 [| 1.0; -0.1; 0.0 |] (on (LeakyReLU 0.1))
                closeAll 1e-12 [| 1.0; -0.01; 0.0 |] (on (LeakyReLU()))
                closeAll 1e-12 [| 1.0; 2.0 * (exp -1.0 - 1.0); 0.0 |] (on (ELU 2.0))
                closeAll 1e-12 [| 0.8413447460685429; -(1.0 - 0.8413447460685429); 0.0 |] (on (GELU()))
                closeAll 1e-12 [| 0.7310585786300049; -(1.0 - 0.7310585786300049); 0.0 |] (on (SiLU()))
                closeAll 1e-12 [| log 0.7310585786300049; log (1.0 - 0.7310585786300049); -(log 2.0) |] (on (LogSigmoid()))
                closeAll 1e-12 [| log (1.0 + exp 1.0); log (1.0 + exp -1.0); log 2.0 |] (on (Softplus()))
                Expect.equal
                    [ for l in [ LeakyReLU 0.2 :> Layer; ELU(); GELU(); SiLU() ] -> l.Describe() ]
                    [ "LeakyReLU(0.2)"; "ELU(1)"; "GELU"; "SiLU" ]
                    "descriptions"
                let error = throwsAny<ArgumentException>(fun () -> LeakyReLU nan |> ignore)
                Expect.stringContains error.Message "LeakyReLU" "the message names the layer"
            testCase "Dropout is the identity in evaluation and zeroes about p, scaling the rest, in training"
            <| fun () ->
                let model = Model.Create(Dropout 0.3, 0)
                let x = Tensor.full Float64 [| 200; 100 |] 2.0
                Expect.equal ((model.Predict x).ToArray()) (x.ToArray()) "(model.Predict x).ToArray()"
                let input = Expr.var "input" x.Shape
                let g = model.Build(input, true)
                Expect.hasLength g.Noise 1 "noise sources"
                let noise = Seq.exactlyOne g.Noise
                let rng = Random 3
                let mask = Tensor.create noise.Var.Shape (Array.init x.Size (fun _ -> noise.Sample rng))
                let y =
                    (Eval.evaluate (Eval.bindings [ "input", x; (Expr.tryName noise.Var).Value, mask ]) g.Output).ToArray()
                let zeros = y |> Array.filter ((=) 0.0) |> Array.length
                close 0.05 0.3 (float zeros / float y.Length)
                Expect.isTrue
                    (y |> Array.forall (fun v -> v = 0.0 || abs (v - 2.0 / 0.7) < 1e-12))
                    "y |> Array.forall (fun v -> v = 0.0 || abs (v - 2.0 / 0.7) < 1e-12)"
            testCase "Embedding picks rows of its table"
            <| fun () ->
                let model = Model.Create(Embedding(5, 3), 2)
                let table = model.Parameters["weight"].ToArray()
                let out = (model.Predict(Tensor.ofArray [| 4.0; 0.0; 4.0 |])).ToArray()
                closeAll 0.0 (Array.concat [ table[12..14]; table[0..2]; table[12..14] ]) out
            testCase "Cross-entropy equals an independent log-sum-exp computation, even for huge logits"
            <| fun () ->
                let reference =
                    Array.map2
                        (fun (row: float[]) (label: float) ->
                            let m = Array.max row
                            let lse = m + log (row |> Array.sumBy (fun v -> exp (v - m)))
                            lse - row[int label])
                        logits
                        labels
                    |> Array.average
                close 1e-12 reference (evalLoss Losses.crossEntropy (Tensor.ofRows logits) (Tensor.ofArray labels))
                // The lecture's example: CE([1, 2, 3, 4], label 3) = 0.44018969856119544.
                close 1e-12 0.44018969856119544 (evalLoss Losses.crossEntropy (Tensor.ofRows [| logits[0] |]) (Tensor.ofArray [| 3.0 |]))
            testCase "Cross-entropy with a label out of range fails clearly"
            <| fun () ->
                let ex =
                    (throwsAny<ArgumentException>(fun () ->
                        evalLoss Losses.crossEntropy (Tensor.ofRows logits) (Tensor.ofArray [| 3.0; 4.0; 0.0 |]) |> ignore))
                Expect.stringContains ex.Message "[0, 4)" "ex.Message"
                Expect.stringContains ex.Message "label 4" "ex.Message"
            for name, action, fragments in badTrainingInputs do
                testCase (sprintf "Bad training inputs fail with a message naming the problem %s" name)
                <| fun () ->
                    let ex = throwsAny<ArgumentException> action
                    for f in fragments do
                        Expect.stringContains ex.Message f "ex.Message"
            testCase "Loading parameters of the wrong shape names the file and the parameter"
            <| fun () ->
                let path = Path.Combine(Path.GetTempPath(), sprintf "funcflow-wrong-%O.safetensors" (Guid.NewGuid()))
                try
                    Model.Create(Linear(4, 3), 0).Save path
                    let ex = (throws<DataFormatException>(fun () -> Model.Create(Linear(5, 3), 0).Load path |> ignore))
                    Expect.stringContains ex.Message path "ex.Message"
                    Expect.stringContains ex.Message "weight" "ex.Message"
                    Expect.stringContains ex.Message "(3, 5)" "ex.Message"
                finally
                    File.Delete path
            testCase "Parameters of the right size but a transposed shape are refused, naming both shapes"
            <| fun () ->
                let model = Model.Create(Linear(4, 3), 0)
                // Linear(4, 3)'s weight is [outputs; inputs], PyTorch's layout.
                let transposed = model.Parameters |> Map.add "weight" (Tensor.zeros Float64 [| 4; 3 |])
                let ex = throws<ArgumentException>(fun () -> model.WithParameters transposed |> ignore)
                for fragment in [ "weight"; "(4, 3)"; "expected (3, 4)" ] do
                    Expect.stringContains ex.Message fragment "ex.Message"
            testCase "MSE forms and binary cross-entropy match their formulas"
            <| fun () ->
                // MiniFlow's mse example: y = [1, 2, 3], a = [4.5, 5, 10] -> 23.416666666666668.
                close
                    1e-12
                    23.416666666666668
                    (evalLoss Losses.mse (Tensor.ofArray [| 4.5; 5.0; 10.0 |]) (Tensor.ofArray [| 1.0; 2.0; 3.0 |]))
                let pred = Tensor.ofRows [| [| 0.5 |]; [| 2.0 |] |]
                let target = Tensor.ofRows [| [| 1.0 |]; [| 0.0 |] |]
                close 1e-12 4.25 (evalLoss Losses.sumSquaredError pred target)
                let p, t = [| 0.9; 0.2; 0.6 |], [| 1.0; 0.0; 0.0 |]
                let bce = Array.map2 (fun p t -> -(t * log p + (1.0 - t) * log (1.0 - p))) p t |> Array.average
                close 1e-12 bce (evalLoss Losses.binaryCrossEntropy (Tensor.ofArray p) (Tensor.ofArray t))
                let z = p |> Array.map (fun p -> log (p / (1.0 - p)))
                close 1e-12 bce (evalLoss Losses.binaryCrossEntropyWithLogits (Tensor.ofArray z) (Tensor.ofArray t))
            testCase "Accuracy counts argmax hits"
            <| fun () -> close 0.0 (2.0 / 3.0) (Metrics.accuracy (Tensor.ofRows logits) (Tensor.ofArray [| 3.0; 0.0; 1.0 |]))
            testCase "A model survives a safetensors round trip"
            <| fun () ->
                let layers = Sequential(Linear(4, 8), Tanh(), Linear(8, 3))
                let model = Model.Create(layers, 11, Float32)
                let path =
                    Path.Combine(Path.GetTempPath(), sprintf "funcflow-nn-%s.safetensors" (Guid.NewGuid().ToString "N"))
                try
                    model.Save path
                    let loaded = Model.Create(layers, 99, Float32).Load path
                    for KeyValue(name, t) in model.Parameters do
                        Expect.equal (loaded.Parameters[name].ToArray32()) (t.ToArray32()) "loaded.Parameters[name].ToArray32()"
                    Expect.equal loaded.DType Float32 "loaded.DType"
                finally
                    File.Delete path
            testCase "The Grokking network reproduces the seed's printed losses"
            <| fun () ->
                let seed = Fixtures.seedExamples.Value.RootElement.GetProperty("grokking")
                let case = seed.GetProperty("sequential_linear_mse")
                let ps = [| for p in case.GetProperty("parameters").EnumerateArray() -> p |]
                let matrix (e: Text.Json.JsonElement) = Tensor.ofRows (Fixtures.matrix e)
                // The seed's weights are [inputs; outputs]; Linear's are PyTorch's [outputs; inputs].
                let weight (e: Text.Json.JsonElement) = Tensor.ofRows (Array.transpose (Fixtures.matrix e))
                let model =
                    Model
                        .Create(Sequential(Linear(2, 3), Linear(3, 1)), 0)
                        .WithParameters(
                            Map
                                [
                                    "0.weight", weight ps[0]
                                    "0.bias", Tensor.ofArray (Fixtures.numbers ps[1])
                                    "1.weight", weight ps[2]
                                    "1.bias", Tensor.ofArray (Fixtures.numbers ps[3])
                                ]
                        )
                let data = matrix (seed.GetProperty "data")
                let target = matrix (seed.GetProperty "target")
                let step = TrainStep.Compile(model, Loss.SumSquaredError, SGD 0.05, data.Shape, target.Shape)
                let losses = [| for _ in 1..10 -> step.Run(data, target) |]
                closeAll 1e-7 (Fixtures.numbers (case.GetProperty "losses")) losses
                Expect.equal step.Steps 10 "step.Steps"
            testCase "A short training run on Iris lowers the loss"
            <| fun () ->
                // 150 rows in batches of 16: 9 full batches and one of 6, so two plans share the state; 20 epochs = 200 steps.
                let trainer = irisTrainer 1
                let history = trainer.Fit(iris (), { FitOptions.Create(20, 16) with Quiet = true })
                let first, last = history.Epochs.Head, List.last history.Epochs
                Expect.isTrue (last.Loss < 0.3 * first.Loss) (sprintf "loss went from %g to %g" first.Loss last.Loss)
                Expect.equal trainer.CompiledPlans 2 "trainer.CompiledPlans"
                Expect.isTrue (trainer.Evaluate(iris ()).Accuracy.Value > 0.9) "trainer.Evaluate(iris ()).Accuracy.Value > 0.9"
            testCase "Training is deterministic: the same seed gives bit-identical losses"
            <| fun () ->
                let losses seed =
                    (irisTrainer seed).Fit(iris (), { FitOptions.Create(5, 16) with Quiet = true }).Epochs
                    |> List.map (fun e -> e.Loss)
                Expect.equal (losses 3) (losses 3) "losses 3"
                Expect.notEqual (losses 4) (losses 3) "losses 4"
            testCase "Fitting writes an SVG plot of the curves"
            <| fun () ->
                let path = Path.Combine(Path.GetTempPath(), sprintf "funcflow-nn-%s.svg" (Guid.NewGuid().ToString "N"))
                try
                    (irisTrainer 2).Fit(iris (), { FitOptions.Create(3, 32) with Quiet = true; PlotPath = Some path })
                    |> ignore
                    let svg = File.ReadAllText path
                    Expect.stringStarts svg "<svg" "svg"
                    Expect.equal (svg.Split("<polyline").Length - 1) 2 "svg.Split(\"<polyline\").Length - 1"
                    Expect.stringContains svg "accuracy" "svg"
                finally
                    File.Delete path
        ]
