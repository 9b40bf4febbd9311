// Save, load and resume from C#: a Trainer writes checkpoints while it fits, a run stopped mid-epoch (as a
// crash would stop it) resumes in a fresh trainer and ends bit for bit where an uninterrupted run ends, and the
// trained model goes to a safetensors file in PyTorch's state-dict layout and back, strictly and non-strictly.
using System;
using System.IO;
using System.Linq;
using FuncFlow.CSharp;

var iris = Datasets.Iris();
iris = Standardizer.Fit(iris.Features).Apply(iris);
var folder = Path.Combine(Path.GetTempPath(), "funcflow-csharp-checkpoints");
Directory.CreateDirectory(folder);
var checkpoint = Path.Combine(folder, "iris.ckpt");

// Dropout draws from the trainer's generator and AdamW keeps moments: a checkpoint carries both, with the step
// count the warm-up and cosine schedule reads.
static Trainer NewTrainer() => new(
    Model.Create(new Sequential(new Linear(4, 16), new ReLU(), new Dropout(0.1), new Linear(16, 3)), seed: 1),
    Loss.CrossEntropy,
    new AdamW(1e-2).WithSchedule(Schedule.Warmup(10, 0.1, Schedule.Cosine(90, 0.05))),
    seed: 7);
// 150 rows in batches of 16: 10 steps an epoch, 100 in all.
var options = new FitOptions(epochs: 10, batchSize: 16) { Quiet = true };

var reference = NewTrainer();
reference.Fit(iris, options);

// Checkpoints every 8 steps; the run stops at step 37 (epoch 4, batch 7), after the checkpoint of step 32.
var interrupted = NewTrainer();
try
{
    interrupted.Fit(iris, options with
    {
        CheckpointPath = checkpoint,
        CheckpointEvery = 8,
        StepCallback = s =>
        {
            if (s.Step == 37) throw new OperationCanceledException("stopped at step 37");
        },
    });
}
catch (OperationCanceledException e)
{
    Console.WriteLine($"{e.Message}; the last checkpoint is {Path.GetFileName(checkpoint)}");
}

var resumed = NewTrainer();
resumed.Resume(checkpoint);
Console.WriteLine($"resumed after step {resumed.StepsTaken}");
var history = resumed.Fit(iris, options);
Console.WriteLine($"epochs {history.Epochs[0].Epoch}..{history.Epochs[^1].Epoch} after resuming");
bool same = reference.Model.Parameters.All(p => p.Value.ToArray().SequenceEqual(resumed.Model.Parameters[p.Key].ToArray()));
Console.WriteLine($"resumed run equals the uninterrupted run bit for bit: {same}");

// A model file: strict loading into the same architecture gives the same predictions.
var modelFile = Path.Combine(folder, "iris.safetensors");
resumed.Model.Save(modelFile);
var loaded = Model.Create(resumed.Model.Layer, seed: 99).Load(modelFile);
var check = new Trainer(loaded, Loss.CrossEntropy, new SGD(0.1));
Console.WriteLine($"accuracy trained {resumed.Evaluate(iris).Accuracy:F4}, loaded {check.Evaluate(iris).Accuracy:F4}");

// Non-strict loading into a model with another head takes the first layer and reports the rest.
var fiveClasses = Model.Create(new Sequential(new Linear(4, 16), new ReLU(), new Dropout(0.1), new Linear(16, 5)), seed: 3);
var report = fiveClasses.LoadNonStrict(modelFile);
Console.WriteLine($"non-strict load skipped: {string.Join("; ", report.Mismatched)}");
Console.WriteLine($"architecture: {report.Architecture}");
return same ? 0 : 1;
