using System;
using System.Collections.Generic;
using FuncFlow.Interop;
using CoreTensor = global::FuncFlow.Tensor;
using CoreTensorModule = global::FuncFlow.TensorModule;

namespace FuncFlow.CSharp
{
    /// <summary>The element type of tensors and expressions.</summary>
    public enum DType
    {
        /// <summary>64-bit floating point (the default).</summary>
        Float64,

        /// <summary>32-bit floating point.</summary>
        Float32,
    }

    /// <summary>
    /// An immutable n-dimensional array of float64 or float32 values, row-major: the values that expressions are
    /// evaluated on and that models hold.
    /// </summary>
    public sealed class Tensor
    {
        internal Tensor(CoreTensor core) => Core = core ?? throw new ArgumentNullException(nameof(core));

        internal CoreTensor Core { get; }

        /// <summary>The dimensions, outermost first (a copy).</summary>
        public int[] Shape => Core.Shape;

        /// <summary>The element type.</summary>
        public DType DType => Conversions.ToDType(Core.DType);

        /// <summary>The number of axes.</summary>
        public int Rank => Core.Rank;

        /// <summary>The number of elements.</summary>
        public int Size => Core.Size;

        /// <summary>A float64 vector holding <paramref name="values"/>.</summary>
        /// <param name="values">The values.</param>
        /// <returns>The tensor, of shape [values.Length].</returns>
        public static Tensor Create(double[] values) => Create(values, (values ?? throw new ArgumentNullException(nameof(values))).Length);

        /// <summary>A float64 tensor of the given shape holding <paramref name="values"/> (row-major).</summary>
        /// <param name="values">The values; their count must be the product of the shape.</param>
        /// <param name="shape">The shape (an empty one for a scalar).</param>
        /// <returns>The tensor.</returns>
        public static Tensor Create(double[] values, params int[] shape) =>
            new(CoreTensorModule.create(shape ?? throw new ArgumentNullException(nameof(shape)), values ?? throw new ArgumentNullException(nameof(values))));

        /// <summary>A float32 vector holding <paramref name="values"/>.</summary>
        /// <param name="values">The values.</param>
        /// <returns>The tensor, of shape [values.Length].</returns>
        public static Tensor Create(float[] values) => Create(values, (values ?? throw new ArgumentNullException(nameof(values))).Length);

        /// <summary>A float32 tensor of the given shape holding <paramref name="values"/> (row-major).</summary>
        /// <param name="values">The values; their count must be the product of the shape.</param>
        /// <param name="shape">The shape (an empty one for a scalar).</param>
        /// <returns>The tensor.</returns>
        public static Tensor Create(float[] values, params int[] shape) =>
            new(CoreTensorModule.create32(shape ?? throw new ArgumentNullException(nameof(shape)), values ?? throw new ArgumentNullException(nameof(values))));

        /// <summary>A float64 matrix with the rows and columns of <paramref name="values"/>.</summary>
        /// <param name="values">The matrix.</param>
        /// <returns>The tensor, of shape [rows, columns].</returns>
        public static Tensor Create(double[,] values) => new(CoreTensorModule.ofArray2D(values ?? throw new ArgumentNullException(nameof(values))));

        /// <summary>A scalar (rank 0) tensor.</summary>
        /// <param name="value">The value.</param>
        /// <param name="dtype">The element type.</param>
        /// <returns>The tensor.</returns>
        public static Tensor Scalar(double value, DType dtype = DType.Float64) => new(CoreTensorModule.scalarOf(Conversions.ToCore(dtype), value));

        /// <summary>A tensor of one value repeated.</summary>
        /// <param name="dtype">The element type.</param>
        /// <param name="value">The value of every element.</param>
        /// <param name="shape">The shape.</param>
        /// <returns>The tensor.</returns>
        public static Tensor Full(DType dtype, double value, params int[] shape) => new(CoreTensorModule.full(Conversions.ToCore(dtype), shape, value));

        /// <summary>A float64 tensor of zeros.</summary>
        /// <param name="shape">The shape.</param>
        /// <returns>The tensor.</returns>
        public static Tensor Zeros(params int[] shape) => Full(DType.Float64, 0.0, shape);

        /// <summary>A float64 tensor of ones.</summary>
        /// <param name="shape">The shape.</param>
        /// <returns>The tensor.</returns>
        public static Tensor Ones(params int[] shape) => Full(DType.Float64, 1.0, shape);

        /// <summary>0, 1, ..., n - 1 as a vector.</summary>
        /// <param name="n">The number of elements.</param>
        /// <param name="dtype">The element type.</param>
        /// <returns>The tensor.</returns>
        public static Tensor Arange(int n, DType dtype = DType.Float64) => new(CoreTensorModule.arange(Conversions.ToCore(dtype), n));

        /// <summary>start, start + step, ... up to but not including stop (down to it for a negative step).</summary>
        /// <param name="start">The first value.</param>
        /// <param name="stop">The bound.</param>
        /// <param name="step">The step (finite, non-zero).</param>
        /// <param name="dtype">The element type.</param>
        /// <returns>The vector.</returns>
        public static Tensor Range(double start, double stop, double step = 1.0, DType dtype = DType.Float64) =>
            new(CoreTensorModule.range(Conversions.ToCore(dtype), start, stop, step));

        /// <summary>Values drawn from a normal distribution; the same seed gives the same values, bit for bit.</summary>
        /// <param name="seed">The generator's seed.</param>
        /// <param name="shape">The shape.</param>
        /// <param name="mean">The distribution's mean.</param>
        /// <param name="std">The distribution's standard deviation (non-negative).</param>
        /// <param name="dtype">The element type.</param>
        /// <returns>The tensor.</returns>
        public static Tensor RandNormal(int seed, int[] shape, double mean = 0.0, double std = 1.0, DType dtype = DType.Float64) =>
            new(CoreTensorModule.randNormal(Conversions.ToCore(dtype), seed, shape, mean, std));

        /// <summary>Values drawn uniformly from [low, high); the same seed gives the same values, bit for bit.</summary>
        /// <param name="seed">The generator's seed.</param>
        /// <param name="shape">The shape.</param>
        /// <param name="low">The lower bound.</param>
        /// <param name="high">The upper bound.</param>
        /// <param name="dtype">The element type.</param>
        /// <returns>The tensor.</returns>
        public static Tensor RandUniform(int seed, int[] shape, double low = 0.0, double high = 1.0, DType dtype = DType.Float64) =>
            new(CoreTensorModule.randUniform(Conversions.ToCore(dtype), seed, shape, low, high));

        /// <summary>The values as float64, row-major (a copy).</summary>
        /// <returns>The values.</returns>
        public double[] ToArray() => Core.ToArray();

        /// <summary>The values as float32, row-major (a copy).</summary>
        /// <returns>The values.</returns>
        public float[] ToArray32() => Core.ToArray32();

        /// <summary>A matrix's values as a two-dimensional array.</summary>
        /// <returns>The values.</returns>
        /// <exception cref="ArgumentException">The tensor is not a matrix.</exception>
        public double[,] ToArray2D() => CoreTensorModule.toArray2D(Core);

        /// <summary>The value of a one-element tensor.</summary>
        /// <returns>The value.</returns>
        public double Item() => CoreTensorModule.item(Core);

        /// <summary>The same values in another element type.</summary>
        /// <param name="dtype">The element type.</param>
        /// <returns>The converted tensor (this one when the type is already <paramref name="dtype"/>).</returns>
        public Tensor Cast(DType dtype) => new(CoreTensorModule.cast(Conversions.ToCore(dtype), Core));

        /// <summary>The same values in another shape of the same size (one axis may be -1, inferred).</summary>
        /// <param name="shape">The new shape.</param>
        /// <returns>The reshaped tensor, sharing the values.</returns>
        public Tensor Reshape(params int[] shape) => new(CoreTensorModule.reshape(shape, Core));

        /// <summary>True when both tensors have the same shape and |a - b| &lt;= atol + rtol |b| everywhere (NumPy's allclose).</summary>
        /// <param name="other">The other tensor.</param>
        /// <param name="rtol">Relative tolerance.</param>
        /// <param name="atol">Absolute tolerance.</param>
        /// <returns>Whether they are close.</returns>
        public bool AllClose(Tensor other, double rtol = 1e-5, double atol = 1e-8) =>
            CoreTensorModule.allClose(rtol, atol, Core, (other ?? throw new ArgumentNullException(nameof(other))).Core);

        /// <summary>The shape, dtype and values, abbreviated when large.</summary>
        /// <returns>The text.</returns>
        public override string ToString() => Core.ToString();
    }
}
