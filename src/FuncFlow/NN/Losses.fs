namespace FuncFlow.NN

open FuncFlow

/// Loss functions on expressions: (prediction, target) -> a one-element loss.
[<RequireQualifiedAccess>]
module Losses =
    let private sameSize (op: string) (pred: Expr) (target: Expr) =
        if Shape.size pred.ShapeRef <> Shape.size target.ShapeRef then
            invalidArg
                "target"
                (sprintf "%s: prediction %s and target %s have different sizes" op (Shape.show pred.ShapeRef) (Shape.show target.ShapeRef))
        // Reading the target in the prediction's shape avoids the (n,) - (n,1) broadcast MiniFlow warns about.
        Expr.reshape pred.ShapeRef target

    /// MiniFlow's MSE: the mean over all elements of (target - prediction)^2 (a scalar).
    let mse (pred: Expr) (target: Expr) =
        let d = sameSize "Losses.mse" pred target - pred
        Expr.mean (d * d)

    /// Grokking's MSELoss: ((pred - target) * (pred - target)).sum(0), summed over the batch axis only
    /// (shape [1] for one output column).
    let sumSquaredError (pred: Expr) (target: Expr) =
        let d = pred - sameSize "Losses.sumSquaredError" pred target
        Expr.sumAxis 0 (d * d)

    let private labelsFor (op: string) (logits: Expr) (labels: Expr) =
        if logits.Rank <> 2 || labels.Rank <> 1 || labels.ShapeRef[0] <> logits.ShapeRef[0] then
            invalidArg
                "labels"
                (sprintf
                    "%s: expected logits [n; classes] and labels [n], got %s and %s"
                    op
                    (Shape.show logits.ShapeRef)
                    (Shape.show labels.ShapeRef))
        Expr.oneHot logits.ShapeRef[1] labels

    /// Softmax cross-entropy with integer labels, averaged over the batch: mean_i -log softmax(logits_i)[label_i].
    /// Uses log-softmax (log-sum-exp), so large logits do not overflow. A label outside [0, classes) or not a
    /// whole number raises ArgumentOutOfRangeException when the graph runs.
    let crossEntropy (logits: Expr) (labels: Expr) =
        let oneHot = labelsFor "Losses.crossEntropy" logits labels
        -(Expr.mean (Expr.sumAxis 1 (Expr.logSoftmax 1 logits * oneHot)))

    /// Softmax cross-entropy over sequences: logits [batch; time; classes], integer targets [batch; time],
    /// averaged over the targets that are not ignoreIndex (padding), as PyTorch's
    /// F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=ignoreIndex). An ignored position adds
    /// nothing to the loss or the gradient; when every target is ignored the mean is 0 / 0, NaN, as PyTorch's.
    let sequenceCrossEntropy (ignoreIndex: int) (logits: Expr) (targets: Expr) =
        if logits.Rank <> 3 || targets.Rank <> 2 || not (Shape.equal logits.ShapeRef[..1] targets.ShapeRef) then
            invalidArg
                "targets"
                (sprintf
                    "Losses.sequenceCrossEntropy: expected logits [batch; time; classes] and targets [batch; time], got %s and %s"
                    (Shape.show logits.ShapeRef)
                    (Shape.show targets.ShapeRef))
        let kept = 1.0 - Expr.equal targets (Expr.scalarLike targets (float ignoreIndex))
        // Ignored targets read class 0 (any valid class), so that an index such as -100 is never looked up.
        let oneHot = Expr.oneHot logits.ShapeRef[2] (targets * kept)
        let nll = -(Expr.sumAxis 2 (Expr.logSoftmax 2 logits * oneHot))
        Expr.sum (nll * kept) / Expr.sum kept

    /// The number of rows whose label is the first of their largest logits, as Metrics.argmax reads a tie (a
    /// tied row counts for its first maximum only); not differentiable.
    let correct (logits: Expr) (labels: Expr) =
        let oneHot = labelsFor "Losses.correct" logits labels
        let isMax = Expr.equal logits (Expr.maxAxisKeep 1 logits)
        // The first maximum is the one where the running count of maxima along the row reaches 1.
        let first = isMax * Expr.equal (Expr.cumsum 1 isMax) (Expr.scalarLike logits 1.0)
        Expr.sum (oneHot * first)

    // max(log x, -100), built from masks (there is no select op): where x = 0 the logarithm's argument is
    // moved to 1, so neither the value nor the gradient computes log 0 or 0 * infinity. Where the clamp is
    // active the term is the constant -100 and passes no gradient; elsewhere it is log x exactly.
    let private clampedLog (x: Expr) =
        let zero = Expr.equal x (Expr.scalarLike x 0.0)
        let log = Expr.log (x + zero)
        let keep = Expr.step (log + 100.0) - zero
        keep * log - (1.0 - keep) * 100.0

    /// Binary cross-entropy of probabilities p in [0, 1] against targets in [0, 1], averaged:
    /// -mean(t log p + (1-t) log(1-p)) with each logarithm clamped below at -100, as PyTorch's
    /// binary_cross_entropy does, so that p = 0 or 1 (a confident float32 sigmoid rounds to 1) gives a finite
    /// loss and a finite gradient.
    /// The gradient is the derivative of this clamped loss, -(t/p [log p > -100] - (1-t)/(1-p) [log(1-p) > -100]) / n:
    /// a clamped logarithm is constant and contributes 0 (at p = 1, t = 1 the gradient is -1/n; at p = 0, t = 1 it
    /// is 0). PyTorch uses grad (p - t) / max(p (1-p), 1e-12) instead, which agrees wherever p (1-p) >= 1e-12 and
    /// neither logarithm is clamped. One edge: in float32, a subnormal p below 1/MaxValue (about 2.9e-39, which
    /// FuncFlow's sigmoid never gives) has log p > -100 but a derivative t/p beyond float32's range: -infinity there.
    let binaryCrossEntropy (p: Expr) (target: Expr) =
        let t = sameSize "Losses.binaryCrossEntropy" p target
        -(Expr.mean (t * clampedLog p + (1.0 - t) * clampedLog (1.0 - p)))

    /// Binary cross-entropy of logits x (before the sigmoid), computed stably as mean(softplus(x) - t x).
    let binaryCrossEntropyWithLogits (x: Expr) (target: Expr) =
        let t = sameSize "Losses.binaryCrossEntropyWithLogits" x target
        Expr.mean (Expr.softplus x - t * x)

    /// The number of predictions on the right side of a threshold (0.5 for probabilities, 0 for logits).
    let correctBinary (threshold: float) (pred: Expr) (target: Expr) =
        let t = sameSize "Losses.correctBinary" pred target
        let predicted = Expr.step (pred - threshold)
        Expr.sum (Expr.equal predicted t)

/// A loss for training: the loss expression and, for classifiers, the count of correct predictions.
type Loss =
    {
        /// A name for messages and plots.
        Name: string
        /// (prediction, target) -> a one-element loss.
        Compute: Expr -> Expr -> Expr
        /// (prediction, target) -> the number of correct rows, for accuracy; None for regression.
        Correct: (Expr -> Expr -> Expr) option
    }

    /// MiniFlow's mean squared error.
    static member MSE = { Name = "mse"; Compute = Losses.mse; Correct = None }
    /// Grokking's MSELoss, summed over the batch axis.
    static member SumSquaredError = { Name = "sse"; Compute = Losses.sumSquaredError; Correct = None }
    /// Softmax cross-entropy with integer labels, with accuracy.
    static member CrossEntropy =
        { Name = "cross-entropy"; Compute = Losses.crossEntropy; Correct = Some Losses.correct }
    /// Softmax cross-entropy over [batch; time; classes] with targets [batch; time], positions whose target is
    /// ignoreIndex left out (see Losses.sequenceCrossEntropy); no accuracy.
    static member SequenceCrossEntropy(ignoreIndex: int) =
        { Name = "cross-entropy"; Compute = Losses.sequenceCrossEntropy ignoreIndex; Correct = None }

    /// Binary cross-entropy of probabilities, with accuracy at 0.5.
    static member BinaryCrossEntropy =
        { Name = "bce"; Compute = Losses.binaryCrossEntropy; Correct = Some(Losses.correctBinary 0.5) }
    /// Binary cross-entropy of logits, with accuracy at 0.
    static member BinaryCrossEntropyWithLogits =
        {
            Name = "bce"
            Compute = Losses.binaryCrossEntropyWithLogits
            Correct = Some(Losses.correctBinary 0.0)
        }
