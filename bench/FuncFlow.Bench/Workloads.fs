/// The workloads of WORKLOADS.md, built on the core directly: Expr + Grad + Plan for the MLPs' training
/// steps (one compiled plan with the SGD update inside), the NN layers' TrainStep (one compiled plan too)
/// for LeNet and the LSTM language model, Expr + Grad.wrt + Eval for the scalar graph.
module FuncFlow.Bench.Workloads

open System.Collections.Generic
open FuncFlow

/// One workload: its name, the steps per repetition (as in torch_baseline.py), and one step.
type Workload =
    {
        /// The workload's name in WORKLOADS.md.
        Name: string
        /// Steps per timed repetition, the same as torch_baseline.py's.
        Steps: int
        /// Runs one training step (or one gradient of the scalar graph).
        Step: unit -> unit
        /// The compiled plan a step runs, if it is one (for --profile).
        Plan: Plan option
    }

// torch.nn.Linear's default initialisation: uniform in +-1/sqrt(fan_in), for weight and bias alike.
let private linear (dtype: DType) (seed: int) (name: string) (fanIn: int) (fanOut: int) =
    let bound = 1.0 / sqrt (float fanIn)
    let w = Expr.varOf dtype (name + ".w") [| fanIn; fanOut |]
    let b = Expr.varOf dtype (name + ".b") [| fanOut |]
    let init =
        [
            w, Tensor.randUniform dtype seed [| fanIn; fanOut |] -bound bound
            b, Tensor.randUniform dtype (seed + 1) [| fanOut |] -bound bound
        ]
    w, b, init

/// Class labels 0 .. classes - 1 for a batch, drawn uniformly with a fixed seed, in the given dtype.
let private labels (dtype: DType) (batch: int) (classes: int) =
    let values =
        Tensor.randUniform Float64 7 [| batch |] 0.0 (float classes) |> Tensor.toArray |> Array.map floor
    Tensor.cast dtype (Tensor.ofArray values)

/// An MLP training step as one compiled plan: forward, loss, gradients and the SGD update.
/// `mse` selects mean squared error against real targets; otherwise softmax cross-entropy (mean)
/// against integer labels, as torch.nn.CrossEntropyLoss.
let private mlp (name: string) (steps: int) (dtype: DType) (sizes: int list) (batch: int) (hidden: Expr -> Expr) (mse: bool) =
    let x = Expr.varOf dtype "x" [| batch; sizes.Head |]
    let classes = List.last sizes
    let layers =
        sizes
        |> List.pairwise
        |> List.mapi (fun i (fi, fo) -> linear dtype (10 * i + 1) (sprintf "l%d" i) fi fo)
    let out =
        layers
        |> List.mapi (fun i (w, b, _) -> i, w, b)
        |> List.fold
            (fun h (i, w, b) ->
                let z = Expr.matmul h w + b
                if i < layers.Length - 1 then hidden z else z)
            x
    let target, targetValue, loss =
        if mse then
            let y = Expr.varOf dtype "y" [| batch; classes |]
            y, Tensor.randNormal dtype 7 [| batch; classes |] 0.0 1.0, FuncFlow.NN.Losses.mse out y
        else
            let y = Expr.varOf dtype "y" [| batch |]
            y, labels dtype batch classes, FuncFlow.NN.Losses.crossEntropy out y
    let parameters = layers |> List.collect (fun (w, b, _) -> [ w; b ])
    let grads = Grad.wrt parameters loss
    let plan = Plan.compileWithUpdates [ loss ] [ for p in parameters -> p, p - grads[p] * 0.1 ]
    for (_, _, init) in layers do
        for (v, t) in init do
            plan.Set((Expr.tryName v).Value, t)
    plan.Set("x", Tensor.randNormal dtype 5 [| batch; sizes.Head |] 0.0 1.0)
    plan.Set((Expr.tryName target).Value, targetValue)
    { Name = name; Steps = steps; Step = plan.Execute; Plan = Some plan }

/// LeNet-5 on [64; 1; 28; 28] float32 images: the NN layers' training step (forward, cross-entropy, gradients
/// and SGD lr 0.1 in one compiled plan), its batch set once.
let private lenet () =
    let layers = NN.Models.lenet5 ()
    let input = [| 64; 1; 28; 28 |]
    let step =
        NN.TrainStep.Compile(NN.Model.Create(layers, 1, Float32), NN.Loss.CrossEntropy, NN.SGD 0.1, input, [| 64 |])
    step.Plan.Set("input", Tensor.randNormal Float32 5 input 0.0 1.0)
    step.Plan.Set("target", labels Float32 64 10)
    { Name = "lenet_mnist_b64_f32"; Steps = 50; Step = step.Plan.Execute; Plan = Some step.Plan }

/// A character-level LSTM language model on [32; 64] token ids of a 96-symbol vocabulary: embedding 96->64, one
/// LSTM layer 64->256 over the whole window (batch first), a linear read-out 256->96 at every step, softmax
/// cross-entropy averaged over all 32 x 64 targets and SGD lr 0.1, as the NN layers' TrainStep (one compiled plan).
let private lstmCharLm () =
    let batch, steps, vocabulary = 32, 64, 96
    let layers =
        NN.Sequential(
            NN.Embedding(vocabulary, 64),
            NN.LSTM(64, 256, { NN.RecurrentOptions.Default with BatchFirst = true }),
            NN.Linear(256, vocabulary)
        )
    let shape = [| batch; steps |]
    let ids (seed: int) =
        Tensor.randUniform Float64 seed shape 0.0 (float vocabulary)
        |> Tensor.toArray
        |> Array.map floor
        |> Tensor.create shape
        |> Tensor.cast Float32
    // No target is -100, so the mean is over every position.
    let step =
        NN.TrainStep.Compile(NN.Model.Create(layers, 1, Float32), NN.Loss.SequenceCrossEntropy -100, NN.SGD 0.1, shape, shape)
    step.Plan.Set("input", ids 5)
    step.Plan.Set("target", ids 7)
    { Name = "lstm_charlm_b32_t64_f32"; Steps = 10; Step = step.Plan.Execute; Plan = Some step.Plan }

/// The scalar graph: built anew each step with Expr, differentiated with Grad.wrt, evaluated with Eval.
let private scalarGraph () =
    let n = 2000
    let xs = Array.init 50 (fun i -> Expr.var (sprintf "x%d" i) [||])
    let env = Dictionary<string, Tensor>()
    for i in 0..49 do
        env[sprintf "x%d" i] <- Tensor.scalar (float (i % 7) / 7.0)
    let vars = List.ofArray xs
    let step () =
        let mutable acc = Expr.scalar 0.0
        for i in 0 .. n - 1 do
            let a = xs[i % 50]
            let b = xs[(i * 7 + 3) % 50]
            acc <- acc + Expr.tanh (a * b + 0.5)
        let grads = Grad.wrt vars acc
        Eval.many env [ for v in vars -> grads[v] ] |> ignore
    { Name = "scalar_graph_2000_tanh_f64"; Steps = 3; Step = step; Plan = None }

/// All the workloads, in torch_baseline.py's order.
let all () =
    [
        mlp "mnist_mlp_784_128_10_b64_f32" 200 Float32 [ 784; 128; 10 ] 64 Expr.relu false
        mlp "mnist_softmax_784_10_b64_f32" 500 Float32 [ 784; 10 ] 64 Expr.relu false
        mlp "boston_mlp_13_10_1_b11_f64" 1000 Float64 [ 13; 10; 1 ] 11 Expr.sigmoid true
        mlp "wide_mlp_1024x3_b256_f32" 20 Float32 [ 1024; 1024; 1024; 10 ] 256 Expr.relu false
        scalarGraph ()
        lenet ()
        lstmCharLm ()
    ]
