using System;
using FuncFlow.Interop;
using CoreTensor = FuncFlow.Tensor;

namespace FuncFlow.Nodes
{
    /// <summary>
    /// A value fed to an <see cref="Input"/>: a number, a vector, a matrix or a core tensor. The implicit
    /// conversions let a feed dictionary be written with plain C# values.
    /// </summary>
    public readonly struct FeedValue : IEquatable<FeedValue>
    {
        private readonly CoreTensor? tensor;

        private FeedValue(CoreTensor tensor) => this.tensor = Core.ToFloat64(tensor);

        /// <summary>A scalar (a tensor of shape ()).</summary>
        /// <param name="value">The number.</param>
        public static FeedValue FromDouble(double value) => new(TensorModule.scalar(value));

        /// <summary>A vector (a tensor of shape (n,)); the array is copied.</summary>
        /// <param name="values">The values.</param>
        public static FeedValue FromArray(double[] values)
        {
            ArgumentNullException.ThrowIfNull(values);
            return new(TensorModule.ofArray(values));
        }

        /// <summary>A matrix (a tensor of shape (rows, columns)); the array is copied.</summary>
        /// <param name="values">The values.</param>
        public static FeedValue FromArray(double[,] values)
        {
            ArgumentNullException.ThrowIfNull(values);
            return new(TensorModule.ofArray2D(values));
        }

        /// <summary>A tensor, converted to float64 if it is float32.</summary>
        /// <param name="tensor">The tensor.</param>
        public static FeedValue FromTensor(FuncFlow.CSharp.Tensor tensor)
        {
            ArgumentNullException.ThrowIfNull(tensor);
            return new(tensor.Core);
        }

        /// <summary>Feeds a number.</summary>
        /// <param name="value">The number.</param>
        public static implicit operator FeedValue(double value) => FromDouble(value);

        /// <summary>Feeds a vector.</summary>
        /// <param name="values">The values.</param>
        public static implicit operator FeedValue(double[] values) => FromArray(values);

        /// <summary>Feeds a matrix.</summary>
        /// <param name="values">The values.</param>
        public static implicit operator FeedValue(double[,] values) => FromArray(values);

        /// <summary>Feeds a tensor.</summary>
        /// <param name="tensor">The tensor.</param>
        public static implicit operator FeedValue(FuncFlow.CSharp.Tensor tensor) => FromTensor(tensor);

        /// <summary>The value as a float64 tensor.</summary>
        /// <exception cref="InvalidOperationException">The value is the default, empty one.</exception>
        public FuncFlow.CSharp.Tensor ToTensor() => new(Value);

        /// <summary>The value as a core float64 tensor.</summary>
        internal CoreTensor Value =>
            tensor ?? throw new InvalidOperationException("This FeedValue is empty (default); feed a double, a double[], a double[,] or a tensor.");

        /// <summary>The value's shape.</summary>
        public int[] Shape => Value.Shape;

        /// <inheritdoc />
        public bool Equals(FeedValue other) => ReferenceEquals(tensor, other.tensor);

        /// <inheritdoc />
        public override bool Equals(object? obj) => obj is FeedValue other && Equals(other);

        /// <inheritdoc />
        public override int GetHashCode() => tensor is null ? 0 : tensor.GetHashCode();

        /// <summary>True when both wrap the same tensor object.</summary>
        /// <param name="left">One value.</param>
        /// <param name="right">The other value.</param>
        public static bool operator ==(FeedValue left, FeedValue right) => left.Equals(right);

        /// <summary>True unless both wrap the same tensor object.</summary>
        /// <param name="left">One value.</param>
        /// <param name="right">The other value.</param>
        public static bool operator !=(FeedValue left, FeedValue right) => !left.Equals(right);

        /// <summary>The values as NumPy prints them.</summary>
        public override string ToString() => Core.Format(tensor);
    }
}
