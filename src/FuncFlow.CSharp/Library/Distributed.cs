using System;
using Microsoft.FSharp.Core;
using Mpi = global::FuncFlow.Distributed;

namespace FuncFlow.CSharp
{
    /// <summary>
    /// Data-parallel training on OpenMPI: started with <c>mpirun -np N</c>, each rank computes the gradients of its share
    /// of every global batch, one <c>MPI_Allreduce</c> averages them, and every rank applies the same update; started
    /// without mpirun it trains as one process. Rank 0's parameters are broadcast at start; only rank 0 prints.
    /// Batch norm's statistics are per rank. See docs/distributed.md.
    /// </summary>
    public sealed class DistributedTrainer
    {
        private readonly Mpi.DistributedTrainer core;
        private readonly Layer layer;

        /// <summary>Joins the job (MPI_COMM_WORLD under mpirun, one process otherwise) and creates the trainer.</summary>
        /// <param name="model">The model to train (rank 0's parameters are the starting point of every rank).</param>
        /// <param name="loss">The loss.</param>
        /// <param name="optimizer">The optimiser.</param>
        /// <param name="seed">Seeds the shuffling (the same on every rank) and the noise (dropout, per rank).</param>
        /// <exception cref="InvalidOperationException">Started by mpirun with several ranks, but libmpi.so.40 cannot be loaded.</exception>
        public DistributedTrainer(Model model, Loss loss, Optimizer optimizer, int seed = 0)
        {
            ArgumentNullException.ThrowIfNull(model);
            ArgumentNullException.ThrowIfNull(loss);
            ArgumentNullException.ThrowIfNull(optimizer);
            core = new Mpi.DistributedTrainer(Mpi.Mpi.init(), model.Core, loss.Core, optimizer.Core, seed);
            layer = model.Layer;
        }

        /// <summary>This process's rank (0 for the one that prints and saves).</summary>
        public int Rank => core.Communicator.Rank;

        /// <summary>The number of ranks in the job.</summary>
        public int Size => core.Communicator.Size;

        /// <summary>True on rank 0.</summary>
        public bool IsRoot => core.Communicator.IsRoot;

        /// <summary>The number of allreduce calls so far (one per training step and one per evaluation).</summary>
        public int AllreduceCount => core.Communicator.AllreduceCount;

        /// <summary>The model with its current (trained) parameters, the same on every rank.</summary>
        public Model Model => new(core.Model, layer);

        /// <summary>Loss and accuracy on a data set, split across the ranks and combined.</summary>
        /// <param name="data">The data.</param>
        /// <param name="batchSize">The examples per evaluation batch.</param>
        /// <returns>The evaluation, the same on every rank.</returns>
        public Evaluation Evaluate(Dataset data, int batchSize = 1000) =>
            new(core.Evaluate((data ?? throw new ArgumentNullException(nameof(data))).Core, batchSize));

        /// <summary>Trains for the options' epochs on global batches of the options' batch size.</summary>
        /// <param name="train">The training data (every rank passes the same).</param>
        /// <param name="options">Epochs, batch size and reporting; callbacks, early stopping and checkpoints are refused.</param>
        /// <returns>One result per epoch, reduced across the ranks.</returns>
        public History Fit(Dataset train, FitOptions options) =>
            new(core.Fit((train ?? throw new ArgumentNullException(nameof(train))).Core, (options ?? throw new ArgumentNullException(nameof(options))).ToCore()));

        /// <summary>
        /// Runs a rank's program so that an exception on any rank ends the whole job with that rank's error (MPI_Abort)
        /// rather than leaving the others waiting; returns the program's exit code.
        /// </summary>
        /// <param name="body">The rank's program.</param>
        /// <returns>Its exit code.</returns>
        public static int Run(Func<int> body)
        {
            ArgumentNullException.ThrowIfNull(body);
            return Mpi.Mpi.run(FuncConvert.FromFunc<Mpi.Communicator, int>(_ => body()));
        }
    }
}
