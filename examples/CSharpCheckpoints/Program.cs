// Save, load and resume from C#: a Trainer writes checkpoints while it fits, a run stopped mid-epoch (as a
// crash would stop it) resumes in a fresh trainer and ends bit for bit where an uninterrupted run ends, and the
// trained model goes to a safetensors file in PyTorch's state-dict layout and back, strictly and non-strictly.
using System;
using System.IO;
using System.Linq;
using FuncFlow.Data;
using FuncFlow.NN;

var iris = Datasets.irisDefault();
iris = StandardizerModule.applyTo(StandardizerModule.fit(iris.Features), iris);
var folder = Path.Combine(Path.GetTempPath(), "funcflow-csharp-checkpoints");
Directory.CreateDirectory(folder);
var checkpoint = Path.Combine(folder, "iris.ckpt");

// Dropout draws from the trainer's generator and AdamW keeps moments: a checkpoint carries both, with the step
// count the warm-up and cosine schedule reads.
static Trainer NewTrainer() => new(
    Model.Create(new Sequential(new Linear(4, 16), new ReLU(), new Dropout(0.1), new Linear(16, 3)), 1),
    Loss.CrossEntropy,
    new Scheduled(new AdamW(1e-2), Schedule.NewWarmup(10, 0.1, Schedule.NewCosine(90, 0.05))),
    7);
// 150 rows in batches of 16: 10 steps an epoch, 100 in all.
static FitOptions Options() => FitOptions.Create(10, 16).Quietly();

var reference = NewTrainer();
reference.Fit(iris, Options());

// Checkpoints every 8 steps; the run stops at step 37 (epoch 4, batch 7), after the checkpoint of step 32.
var interrupted = NewTrainer();
try
{
    interrupted.Fit(iris, Options().WithCheckpoints(checkpoint, 8).WithStepCallback(s =>
    {
        if (s.Step == 37) throw new OperationCanceledException("stopped at step 37");
    }));
}
catch (OperationCanceledException e)
{
    Console.WriteLine($"{e.Message}; the last checkpoint is {Path.GetFileName(checkpoint)}");
}

var resumed = NewTrainer();
resumed.Resume(checkpoint);
Console.WriteLine($"resumed after step {resumed.StepsTaken}");
var history = resumed.Fit(iris, Options());
Console.WriteLine($"epochs {history.Epochs.Head.Epoch}..{history.Epochs.Last().Epoch} after resuming");
bool same = reference.Model.Parameters.All(p => p.Value.ToArray().SequenceEqual(resumed.Model.Parameters[p.Key].ToArray()));
Console.WriteLine($"resumed run equals the uninterrupted run bit for bit: {same}");

// A model file: strict loading into the same architecture gives the same predictions.
var modelFile = Path.Combine(folder, "iris.safetensors");
resumed.Model.Save(modelFile);
var loaded = Model.Create(resumed.Model.Layer, 99).Load(modelFile);
var evaluator = new Evaluator(Loss.CrossEntropy);
Console.WriteLine($"accuracy trained {evaluator.Evaluate(resumed.Model, iris).AccuracyOrNull:F4}, loaded {evaluator.Evaluate(loaded, iris).AccuracyOrNull:F4}");

// Non-strict loading into a model with another head takes the first layer and reports the rest.
var fiveClasses = Model.Create(new Sequential(new Linear(4, 16), new ReLU(), new Dropout(0.1), new Linear(16, 5)), 3);
var report = fiveClasses.LoadNonStrict(modelFile);
Console.WriteLine($"non-strict load skipped: {string.Join("; ", report.Mismatched)}");
Console.WriteLine($"architecture: {report.Architecture?.Value}");
return same ? 0 : 1;
