/// Accuracy and mean loss are per row and bounded: Metrics.accuracy, MeanMetric, the Evaluator, and the
/// accuracy and loss Trainer.Evaluate and Trainer.Fit report, on data whose batches have unequal sizes (so
/// that a mean of per-batch accuracies, or a count divided by the number of batches, gives another number),
/// against counts and cross-entropies computed by hand in the test.
module FuncFlow.Tests.NN.MetricsTests

open System
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support

let private bounded (what: string) (accuracy: float) =
    Expect.isTrue (0.0 <= accuracy && accuracy <= 1.0) (sprintf "%s: accuracy %g is outside [0, 1]" what accuracy)

/// Rows whose predicted class is known by construction: row i has a 1 at feature i % 3 (scaled a little, so
/// rows differ) and the model's weights favour that feature's class; `wrong i` rows get another label.
let private classification (rows: int) (wrong: int -> bool) =
    let predicted i = i % 3
    let features =
        Array.init rows (fun i -> Array.init 3 (fun j -> if j = predicted i then 1.0 + 0.01 * float i else 0.0))
    let labels =
        Array.init rows (fun i -> if wrong i then float ((predicted i + 1) % 3) else float (predicted i))
    let correct = Seq.init rows id |> Seq.filter (fun i -> not (wrong i)) |> Seq.length
    Dataset.create (Tensor.ofRows features) (Tensor.ofArray labels), correct

/// W = 10 I + 1 and b = (0.5, 0.25, 0.125): every logit row's largest entry is the feature set in that row.
let private weight = Array.init 3 (fun i -> Array.init 3 (fun j -> if i = j then 11.0 else 1.0))
let private bias = [| 0.5; 0.25; 0.125 |]

let private model () =
    Model.Create(Linear(3, 3), 0).WithParameters(Map [ "weight", Tensor.ofRows weight; "bias", Tensor.ofArray bias ])

/// The mean softmax cross-entropy of x W + b against the labels, with plain floats.
let private crossEntropyByHand (data: Dataset) =
    let x = data.Features.ToArray()
    let y = data.Targets.ToArray()
    let n = y.Length
    Seq.init n (fun r ->
        let logits =
            Array.init 3 (fun j -> bias[j] + Seq.sum (Seq.init 3 (fun k -> x[3 * r + k] * weight[k][j])))
        let m = Array.max logits
        m + log (logits |> Array.sumBy (fun v -> exp (v - m))) - logits[int y[r]])
    |> Seq.average

/// Seven rows, four right: in batches of 3, 3 and 1, a per-batch mean of accuracies differs from 4/7
/// whichever rows fall in which batch (it equals 4/7 only when every batch scores the same).
let private small () = classification 7 (fun i -> i = 1 || i = 4 || i = 6)

/// 1003 rows, so that the default batches of 1000 leave a last batch of 3; every fifth row is wrong.
let private large () = classification 1003 (fun i -> i % 5 = 0)

[<Tests>]
let tests =
    moduleTests
        "MetricsTests"
        [
            testCase "Metrics.accuracy is the fraction of rows whose first largest score is at the label"
            <| fun () ->
                let scores =
                    Tensor.ofRows
                        [|
                            [| 0.1; 0.7; 0.2 |] // argmax 1
                            [| 5.0; -1.0; 4.0 |] // argmax 0
                            [| 2.0; 2.0; 1.0 |] // tie between 0 and 1: the first, 0
                            [| -3.0; -2.0; -1.0 |] // argmax 2
                            [| 0.0; 0.0; 0.0 |]
                        |] // all tied: 0
                // Rows 0, 2 and 4 are right: ties go to the first maximum (a last-maximum reading would miss rows 2 and 4).
                let labels = Tensor.ofArray [| 1.0; 2.0; 0.0; 0.0; 0.0 |]
                expectWithin 0.0 (3.0 / 5.0) (Metrics.accuracy scores labels) "accuracy"
                Expect.equal (Metrics.argmax scores) [| 1; 0; 0; 2; 0 |] "argmax"
                expectWithin 0.0 1.0 (Metrics.accuracy scores (Tensor.ofArray [| 1.0; 0.0; 0.0; 2.0; 0.0 |])) "all right"
                expectWithin 0.0 0.0 (Metrics.accuracy scores (Tensor.ofArray [| 0.0; 1.0; 2.0; 1.0; 2.0 |])) "all wrong"
                expectWithin 0.0 0.0 (Metrics.accuracy (Tensor.zeros Float64 [| 0; 3 |]) (Tensor.zeros Float64 [| 0 |])) "no rows"
            testCase "Metrics.accuracy refuses labels that do not match the rows"
            <| fun () ->
                let e =
                    throwsAny<ArgumentException>(fun () ->
                        Metrics.accuracy (Tensor.zeros Float64 [| 3; 2 |]) (Tensor.zeros Float64 [| 4 |]) |> ignore)
                for fragment in [ "Metrics.accuracy"; "3 rows"; "4 labels" ] do
                    Expect.stringContains e.Message fragment "message"
            testCase "MeanMetric weights each batch's mean by its number of rows"
            <| fun () ->
                // Batches of 3, 3 and 1 rows with means 1, 0.5 and 0: 4.5 / 7 per row, not (1 + 0.5 + 0) / 3 per batch.
                let m = MeanMetric.Empty.Add(1.0, 3).Add(0.5, 3).Add(0.0, 1)
                expectWithin 1e-15 (4.5 / 7.0) m.Value "mean"
                Expect.equal m.Count 7 "rows"
                expectWithin 0.0 0.0 MeanMetric.Empty.Value "empty"
            testCase "the evaluator counts accuracy and averages the loss per row over unequal batches"
            <| fun () ->
                let evaluator = Evaluator(Loss.CrossEntropy)
                for data, correct, batch in [ (let d, c = small () in d, c, 3); (let d, c = large () in d, c, 1000) ] do
                    let e = evaluator.Evaluate(model (), data, batch)
                    let n = data.Count
                    expectWithin 1e-15 (float correct / float n) e.Accuracy.Value (sprintf "accuracy of %d rows in batches of %d" n batch)
                    bounded "evaluator" e.Accuracy.Value
                    expectWithin 1e-12 (crossEntropyByHand data) e.Loss (sprintf "loss of %d rows in batches of %d" n batch)
                // The default batch size (1000) on 1003 rows.
                let data, correct = large ()
                expectWithin 1e-15 (float correct / 1003.0) (evaluator.Evaluate(model (), data).Accuracy.Value) "default batches"
            testCase "an evaluation without a classifier's loss reports no accuracy"
            <| fun () ->
                let data, _ = small ()
                let regression = Dataset.create data.Features (Tensor.zeros Float64 [| 7; 3 |])
                Expect.isNone (Evaluator(Loss.MSE).Evaluate(model (), regression, 3)).Accuracy "accuracy of a regression"
            testCase "Trainer.Evaluate and Fit report per-row accuracy and loss, training and test, over unequal batches"
            <| fun () ->
                let train, trainCorrect = small ()
                let test, testCorrect = large ()
                // A learning rate of 1e-300 moves no weight (each step is far below half an ulp of every weight, all of which
                // are at least 0.125), so every step sees the same model and its counts can be made by hand.
                let trainer = Trainer(model (), Loss.CrossEntropy, SGD 1e-300, 5)
                expectWithin 1e-15 (float trainCorrect / 7.0) (trainer.Evaluate(train, 3).Accuracy.Value) "Trainer.Evaluate accuracy"
                expectWithin 1e-12 (crossEntropyByHand train) (trainer.Evaluate(train, 3).Loss) "Trainer.Evaluate loss"
                let history = trainer.Fit(train, { FitOptions.Create(2, 3) with Test = Some test; Quiet = true })
                Expect.equal history.Epochs.Length 2 "epochs"
                for e in history.Epochs do
                    let what = sprintf "epoch %d" e.Epoch
                    expectWithin 1e-15 (float trainCorrect / 7.0) e.Accuracy.Value (what + " training accuracy")
                    bounded (what + " training") e.Accuracy.Value
                    expectWithin 1e-12 (crossEntropyByHand train) e.Loss (what + " training loss")
                    expectWithin 1e-15 (float testCorrect / 1003.0) e.Test.Value.Accuracy.Value (what + " test accuracy")
                    bounded (what + " test") e.Test.Value.Accuracy.Value
                    expectWithin 1e-12 (crossEntropyByHand test) e.Test.Value.Loss (what + " test loss")
                // The premise: training did not move the weights, and the last batch of 1 row compiled a second plan.
                let trained = trainer.Model.Parameters
                Expect.equal (trained["weight"].ToArray()) (Array.concat weight) "weights after training"
                Expect.equal (trained["bias"].ToArray()) bias "bias after training"
                Expect.equal trainer.CompiledPlans 2 "compiled plans"
                expectWithin 1e-15 (float testCorrect / 1003.0) (trainer.Evaluate(test).Accuracy.Value) "Trainer.Evaluate on the test data"
            // shapeops group.
            testCase "Losses.correct counts a tied row for its first maximum only, as Metrics.accuracy, also in the evaluator"
            <| fun () ->
                let rows =
                    [|
                        [| 2.0; 2.0; 1.0 |] // tied at 0 and 1: the first, 0
                        [| 2.0; 2.0; 1.0 |]
                        [| 0.0; 3.0; 3.0 |] // tied at 1 and 2: the first, 1
                        [| 0.0; 3.0; 3.0 |]
                        [| 4.0; 4.0; 4.0 |] // all tied: 0
                        [| 4.0; 4.0; 4.0 |]
                        [| -1.0; 0.5; -2.0 |] // no tie: 1
                    |]
                // Right (the first maximum): rows 0, 2, 4, 6; rows 1, 3 and 5 name a later maximum.
                let labels = [| 0.0; 1.0; 1.0; 2.0; 0.0; 2.0; 1.0 |]
                let logits = Expr.var "logits" [| 7; 3 |]
                let y = Expr.var "y" [| 7 |]
                let env = bind [ logits, Tensor.ofRows rows; y, Tensor.ofArray labels ]
                let correct = Losses.correct logits y
                expectWithin 0.0 4.0 (Tensor.item (Eval.evaluate env correct)) "counted by evaluation"
                expectWithin 0.0 4.0 (Tensor.item (List.head (Plan.run env (Plan.compile [ correct ])))) "counted by a plan"
                expectWithin 0.0 (4.0 / 7.0) (Metrics.accuracy (Tensor.ofRows rows) (Tensor.ofArray labels)) "Metrics.accuracy"
                // A model whose every row ties classes 0 and 1: the evaluator's accuracy is the share of label 0.
                let tied =
                    Model
                        .Create(Linear(3, 3), 0)
                        .WithParameters(Map [ "weight", Tensor.zeros Float64 [| 3; 3 |]; "bias", Tensor.ofArray [| 1.0; 1.0; 0.0 |] ])
                let data = Dataset.create (Tensor.ofRows rows) (Tensor.ofArray labels)
                let evaluated = Evaluator(Loss.CrossEntropy).Evaluate(tied, data, 3)
                let logitsOfModel = Tensor.ofRows (Array.create 7 [| 1.0; 1.0; 0.0 |])
                expectWithin 0.0 (2.0 / 7.0) evaluated.Accuracy.Value "the evaluator"
                expectWithin
                    0.0
                    (Metrics.accuracy logitsOfModel (Tensor.ofArray labels))
                    evaluated.Accuracy.Value
                    "the evaluator against Metrics.accuracy"
        ]
