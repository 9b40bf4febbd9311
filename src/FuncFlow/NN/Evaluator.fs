namespace FuncFlow.NN

open System
open System.Collections.Generic
open FuncFlow
open FuncFlow.Data

/// The loss and (for classifiers) accuracy of a model on a data set.
type Evaluation =
    {
        /// The mean loss over the examples.
        Loss: float
        /// The fraction of correct predictions, for losses that count them.
        Accuracy: float option
    }

    /// The accuracy, or null for losses that do not count correct predictions: Accuracy in C#'s terms.
    member e.AccuracyOrNull: Nullable<float> = Option.toNullable e.Accuracy

/// Data sets in a model's dtype.
module internal DatasetCast =
    /// The same data set with features and targets in the given dtype (no copy when they already are).
    let cast (dtype: DType) (ds: Dataset) : Dataset = { Features = Tensor.cast dtype ds.Features; Targets = Tensor.cast dtype ds.Targets }

/// Evaluates models in evaluation mode (no dropout, batch norm on running statistics) with forward-only plans compiled once per batch shape
/// and reused: only the parameters and the batches are fed.
[<Sealed>]
type Evaluator(loss: Loss) =
    let plans = Dictionary<struct (string * string), Plan>()

    member private _.PlanFor(model: Model, features: Tensor, targets: Tensor) =
        let key = struct (Shape.show features.Shape, Shape.show targets.Shape)
        match plans.TryGetValue key with
        | true, p -> p
        | _ ->
            let x = Expr.varOf model.DType "input" features.Shape
            let y = Expr.varOf model.DType "target" targets.Shape
            let out = model.Forward x
            let outputs = loss.Compute out y :: (loss.Correct |> Option.map (fun c -> c out y) |> Option.toList)
            let p = Plan.compile outputs
            plans[key] <- p
            p

    // The model's parameters and buffers go into a plan once per evaluation, not once per batch.
    member private _.Load(model: Model, plan: Plan) =
        for name in plan.VariableNames do
            match model.Parameters.TryFind name |> Option.orElse (model.Buffers.TryFind name) with
            | Some t -> plan.Set(name, t)
            | None -> ()

    member private _.Run(plan: Plan, features: Tensor, targets: Tensor) : struct (float * float) =
        plan.Set("input", features)
        plan.Set("target", targets)
        plan.Execute()
        struct (plan.OutputScalar 0, (if loss.Correct.IsSome then plan.OutputScalar 1 else 0.0))

    /// The loss of the model on one batch (and the number of correct rows, 0 without accuracy).
    member e.Batch(model: Model, features: Tensor, targets: Tensor) : struct (float * float) =
        let plan = e.PlanFor(model, features, targets)
        e.Load(model, plan)
        e.Run(plan, features, targets)

    /// The mean loss and accuracy over a data set, in consecutive batches of batchSize rows.
    member e.Evaluate(model: Model, data: Dataset, batchSize: int) : Evaluation =
        let mutable mean = MeanMetric.Empty
        let mutable correct = 0.0
        let loaded = HashSet<Plan>(HashIdentity.Reference)
        if batchSize <= 0 then
            invalidArg "batchSize" (sprintf "Evaluator.Evaluate: batchSize must be positive, got %d" batchSize)
        let data = DatasetCast.cast model.DType data
        let n = Dataset.rows "Evaluator.Evaluate" data
        // Gathered into reused buffers (Run copies each batch into its plan): an evaluation allocates no array
        // per batch, which an evaluation after every epoch would otherwise leave to the GC by the megabyte.
        let batches = Dataset.batchesInto (Array.init n id) batchSize (Batches.count false batchSize n) data
        for b in batches do
            let plan = e.PlanFor(model, b.Features, b.Targets)
            if loaded.Add plan then e.Load(model, plan)
            let struct (l, c) = e.Run(plan, b.Features, b.Targets)
            mean <- mean.Add(l, b.Count)
            correct <- correct + c
        {
            Loss = mean.Value
            Accuracy = if loss.Correct.IsSome && mean.Count > 0 then Some(correct / float mean.Count) else None
        }

    /// The mean loss and accuracy over a data set, in batches of 1000 rows.
    member e.Evaluate(model: Model, data: Dataset) = e.Evaluate(model, data, 1000)
