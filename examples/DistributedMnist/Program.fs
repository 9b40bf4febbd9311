/// MnistMlp trained data-parallel: the MLP 784-128-10 with ReLU, Adam (lr 2e-3 decaying linearly to 0), global
/// batches of 64 rows split over the ranks, float32, 5 epochs (`-- --epochs N` for another count). Run it under
/// mpirun for several ranks, or alone for one:
///   mpirun -np 2 dotnet run -c Release --project examples/DistributedMnist
module DistributedMnist

open System.IO
open FuncFlow
open FuncFlow.Data
open FuncFlow.NN
open FuncFlow.Distributed

[<EntryPoint>]
let main argv =
    let epochs =
        match argv with
        | [| "--epochs"; n |] -> int n
        | [||] -> 5
        | _ -> failwith "usage: DistributedMnist [--epochs N]"
    Mpi.run (fun comm ->
        let train, test = Datasets.mnistDefault ()
        // MNIST's usual normalisation, as in MnistMlp.
        let train, test = Dataset.normalize 0.1307 0.3081 train, Dataset.normalize 0.1307 0.3081 test
        let model = Model.Create(Sequential(Linear(784, 128), ReLU(), Linear(128, 10)), 1, Float32)
        let batch = 64
        let steps = epochs * ((train.Count + batch - 1) / batch)
        let trainer =
            DistributedTrainer(comm, model, Loss.CrossEntropy, Scheduled(Adam 2e-3, LinearDecay steps), 1)
        if comm.IsRoot then
            printfn "%O on %d rank(s): global batches of %d rows, about %d per rank" model comm.Size batch (batch / comm.Size)
        let output = Path.Combine(__SOURCE_DIRECTORY__, "output")
        let history =
            trainer.Fit(
                train,
                { FitOptions.Create(epochs, batch) with
                    Test = Some test
                    PlotPath = Some(Path.Combine(output, "distributed-mnist.svg"))
                }
            )
        // Evaluate is collective (each rank scores its share of the test set), so every rank calls it.
        let accuracy = trainer.Evaluate(test).Accuracy.Value
        if comm.IsRoot then
            for e in history.Epochs do
                printfn "epoch %d: %.2f s (%.0f samples/s over %d ranks)" e.Epoch e.Seconds e.SamplesPerSecond comm.Size
            trainer.Model.Save(Path.Combine(output, "distributed-mnist.safetensors"))
            printfn "test accuracy: %.4f" accuracy
        0)
