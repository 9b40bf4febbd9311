using System;
using System.IO;

namespace FuncFlow.Nodes
{
    /// <summary>
    /// The seed's <c>DEBUG</c> switch: while it is on, <see cref="Graph.TopologicalSort"/>, every
    /// <see cref="Node.Forward"/> and every <see cref="Node.Backward"/> report, node by node, the values going
    /// forward and the gradients coming back. It is global, like the seed's flag.
    /// </summary>
    public static class NodeTrace
    {
        private static volatile Action<string>? sink;

        /// <summary>Whether tracing is on.</summary>
        public static bool IsEnabled => sink is not null;

        /// <summary>Turns tracing on, writing each line to <paramref name="writer"/>.</summary>
        /// <param name="writer">Where the lines go, e.g. <see cref="Console.Out"/>.</param>
        /// <returns>A handle whose <see cref="IDisposable.Dispose"/> restores the previous setting.</returns>
        public static IDisposable Enable(TextWriter writer)
        {
            ArgumentNullException.ThrowIfNull(writer);
            return Enable(writer.WriteLine);
        }

        /// <summary>Turns tracing on, handing each line to <paramref name="lineSink"/>.</summary>
        /// <param name="lineSink">Receives each line of the trace.</param>
        /// <returns>A handle whose <see cref="IDisposable.Dispose"/> restores the previous setting.</returns>
        public static IDisposable Enable(Action<string> lineSink)
        {
            ArgumentNullException.ThrowIfNull(lineSink);
            var previous = sink;
            sink = lineSink;
            return new Restore(previous);
        }

        /// <summary>Turns tracing off.</summary>
        public static void Disable() => sink = null;

        internal static void Write(Func<string> line)
        {
            var s = sink;
            if (s is not null) s(line());
        }

        private sealed class Restore : IDisposable
        {
            private readonly Action<string>? previous;
            private bool disposed;

            public Restore(Action<string>? previous) => this.previous = previous;

            public void Dispose()
            {
                if (disposed) return;
                disposed = true;
                sink = previous;
            }
        }
    }
}
