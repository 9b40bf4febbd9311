/// Training loops as users know them: schedules, parameter groups, frozen parameters, callbacks, early
/// stopping, and the generator whose state checkpoints carry.
module FuncFlow.Tests.NN.TrainingLoopTests

open System
open System.IO
open System.Text.Json
open Expecto
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Tests
open FuncFlow.Tests.Support

/// reference/make_training_reference.py's output.
let private reference =
    lazy (JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "reference", "training_reference.json"))).RootElement)

let private factorAt (schedule: Schedule) (t: int) =
    Tensor.item (Eval.evaluate (Eval.bindings []) (schedule.Factor(Expr.constant (Tensor.scalar (float t)))))

let private data rows seed =
    let x = Tensor.randNormal Float64 seed [| rows; 3 |] 0.0 1.0
    let y = Tensor.randNormal Float64 (seed + 1) [| rows; 2 |] 0.0 1.0
    Dataset.create x y

[<Tests>]
let tests =
    moduleTests
        "TrainingLoopTests"
        [
            testCase "Cosine and warm-up schedules give PyTorch's learning-rate factors"
            <| fun () ->
                let cosine = reference.Value.GetProperty "cosine"
                let expected = Fixtures.numbers (cosine.GetProperty "factors")
                let schedule =
                    Cosine(cosine.GetProperty("steps").GetInt32(), cosine.GetProperty("minFactor").GetDouble())
                assertClose 1e-12 expected (Array.init expected.Length (factorAt schedule))
                // After its steps the factor stays at minFactor (PyTorch's closed form would rise again).
                expectWithin 1e-15 0.2 (factorAt schedule 25) "after the last step"
                let w = reference.Value.GetProperty "warmup_cosine"
                let warm =
                    Warmup(
                        w.GetProperty("warmup").GetInt32(),
                        w.GetProperty("startFactor").GetDouble(),
                        Cosine(w.GetProperty("steps").GetInt32(), 0.0)
                    )
                // Warm-up (3 steps) then the cosine's 6: steps 0..9 are PyTorch's.
                let expected = (Fixtures.numbers (w.GetProperty "factors"))[0..9]
                assertClose 1e-12 expected (Array.init expected.Length (factorAt warm))
            testCase "Parameter groups with their own rates and decay, a frozen parameter and a schedule train as PyTorch"
            <| fun () ->
                let g = reference.Value.GetProperty "groups"
                let initial = g.GetProperty "initial"
                let tensor (e: JsonElement) =
                    if e[0].ValueKind = JsonValueKind.Array then
                        Tensor.ofRows (Fixtures.matrix e)
                    else
                        Tensor.ofArray (Fixtures.numbers e)
                let ps = Map [ for p in initial.EnumerateObject() -> p.Name, tensor p.Value ]
                let model = Model.Create(Sequential(Linear(3, 4), Tanh(), Linear(4, 2)), 0).WithParameters ps
                let optimizer =
                    Scheduled(
                        ParameterGroups([ [ "0" ], SGD(0.1, 0.9, false, 0.01) :> Optimizer; [ "2.weight" ], SGD(0.05, 0.9) ], Frozen()),
                        Warmup(2, 0.5, Cosine(4, 0.0))
                    )
                let x, y = tensor (g.GetProperty "x"), tensor (g.GetProperty "y")
                let step = TrainStep.Compile(model, Loss.MSE, optimizer, x.Shape, y.Shape)
                let losses = Array.init 6 (fun _ -> step.Run(x, y))
                assertClose 1e-12 (Fixtures.numbers (g.GetProperty "losses")) losses
                let trained = step.Model.Parameters
                for p in g.GetProperty("final").EnumerateObject() do
                    assertClose 1e-12 ((tensor p.Value).ToArray()) (trained[p.Name].ToArray())
                // Frozen: not one bit moved.
                expectSameValues (ps["2.bias"].ToArray()) (trained["2.bias"].ToArray()) "2.bias"
            testCase "A group's name selects that parameter and those under it, and nothing else"
            <| fun () ->
                let a, b = SGD 0.1, SGD 0.2
                let groups = ParameterGroups([ [ "1"; "0.weight" ], a :> Optimizer ], b)
                for name, expected in [ "1.weight", a; "1.bias", a; "0.weight", a; "0.bias", b; "10.weight", b; "1", a ] do
                    Expect.isTrue (obj.ReferenceEquals(groups.For name, expected)) name
            testCase "Step and epoch callbacks see every step's loss and every epoch's result"
            <| fun () ->
                let train = data 10 1
                let trainer = Trainer(Model.Create(Linear(3, 2), 3), Loss.MSE, SGD 0.05, 0)
                let steps = ResizeArray<StepResult>()
                let epochs = ResizeArray<EpochResult>()
                let options =
                    FitOptions.Create(3, 4).Quietly().WithStepCallback(Action<_> steps.Add).WithEpochCallback(Action<_> epochs.Add)
                let history = trainer.Fit(train, options)
                // 10 rows in batches of 4: 4, 4 and 2 rows, three steps an epoch.
                Expect.equal
                    [ for s in steps -> s.Epoch, s.Batch, s.Step ]
                    [
                        for e in 1..3 do
                            for b in 1..3 -> e, b, 3 * (e - 1) + b
                    ]
                    "steps"
                Expect.equal (List.ofSeq epochs) history.Epochs "epoch results"
                for e in history.Epochs do
                    let own = steps |> Seq.filter (fun s -> s.Epoch = e.Epoch) |> Seq.map (fun s -> s.Loss) |> Array.ofSeq
                    expectWithin 1e-12 ((4.0 * own[0] + 4.0 * own[1] + 2.0 * own[2]) / 10.0) e.Loss "epoch loss from its steps"
            testCase "Early stopping ends training after `patience` epochs without improvement, and not before"
            <| fun () ->
                let train, test = data 12 5, data 6 7
                // A rate of 1e-300 moves no weight: the test loss never improves after the first epoch.
                let still = Trainer(Model.Create(Linear(3, 2), 1), Loss.MSE, SGD 1e-300, 0)
                let history =
                    still.Fit(train, FitOptions.Create(10, 4).Quietly().WithTest(test).WithEarlyStopping(2, 0.0))
                Expect.equal history.Epochs.Length 3 "best at epoch 1, then 2 epochs without improvement"
                Expect.isTrue history.StoppedEarly "stopped early"
                let learning = Trainer(Model.Create(Linear(3, 2), 1), Loss.MSE, SGD 0.05, 0)
                let history =
                    learning.Fit(train, FitOptions.Create(4, 4).Quietly().WithTest(test).WithEarlyStopping(2, 0.0))
                let losses = [ for e in history.Epochs -> e.Test.Value.Loss ]
                Expect.equal history.Epochs.Length 4 "all epochs"
                Expect.isFalse history.StoppedEarly "not stopped"
                Expect.isTrue
                    (List.pairwise losses |> List.forall (fun (a, b) -> b < a))
                    (sprintf "the test loss fell every epoch: %A" losses)
                let ex =
                    throws<ArgumentException>(fun () -> still.Fit(train, FitOptions.Create(2, 4).WithEarlyStopping(2, 0.0)) |> ignore)
                Expect.stringContains ex.Message "FitOptions.Test" "message"
            testCase "The generator is xoshiro256**, and Restore goes on with the stream it had"
            <| fun () ->
                let g = Generator 0
                g.Restore "0000000000000001 0000000000000002 0000000000000003 0000000000000004"
                // The reference implementation's first outputs from the state {1, 2, 3, 4}.
                Expect.equal [ for _ in 1..4 -> g.NextUInt64() ] [ 11520UL; 0UL; 1509978240UL; 1215971899390074240UL ] "outputs"
                let a = Generator 42
                a.NextDouble() |> ignore
                let saved = a.State
                let expected = [ for _ in 1..5 -> a.Next 1000, a.NextDouble() ]
                let b = Generator 7
                b.Restore saved
                Expect.equal [ for _ in 1..5 -> b.Next 1000, b.NextDouble() ] expected "the stream after Restore"
                Expect.notEqual (Generator(1).NextUInt64()) (Generator(2).NextUInt64()) "seeds differ"
                for bad in [ "1 2 3"; "0 0 0 0"; "x 1 2 3" ] do
                    throws<ArgumentException>(fun () -> Generator(0).Restore bad) |> ignore
        ]
