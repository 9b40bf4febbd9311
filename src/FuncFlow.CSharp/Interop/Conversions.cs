using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using CoreDType = global::FuncFlow.DType;
using CoreExpr = global::FuncFlow.Expr;
using CoreTensor = global::FuncFlow.Tensor;

namespace FuncFlow.Interop
{
    /// <summary>
    /// Conversions between the C# surface's types and the core's F# ones (lists, maps, options, unions), in one
    /// place, so the wrappers in <c>FuncFlow.CSharp</c> stay one line each.
    /// </summary>
    internal static class Conversions
    {
        public static CoreDType ToCore(CSharp.DType dtype) => dtype switch
        {
            CSharp.DType.Float64 => CoreDType.Float64,
            CSharp.DType.Float32 => CoreDType.Float32,
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "DType: expected Float64 or Float32."),
        };

        public static CSharp.DType ToDType(CoreDType dtype) => dtype.IsFloat32 ? CSharp.DType.Float32 : CSharp.DType.Float64;

        public static FSharpList<T> List<T>(IEnumerable<T> items) => ListModule.OfSeq(items ?? throw new ArgumentNullException(nameof(items)));

        public static FSharpList<CoreExpr> Exprs(IEnumerable<CSharp.Expr> items) =>
            ListModule.OfSeq((items ?? throw new ArgumentNullException(nameof(items))).Select((e, i) =>
                (e ?? throw new ArgumentNullException(nameof(items), $"expression {i} is null")).Core));

        public static FSharpOption<T>? Option<T>(T? value) where T : struct => value.HasValue ? FSharpOption<T>.Some(value.Value) : null;

        public static FSharpOption<T>? OptionOf<T>(T? value) where T : class => value is null ? null : FSharpOption<T>.Some(value);

        public static T? Nullable<T>(FSharpOption<T>? option) where T : struct =>
            FSharpOption<T>.get_IsSome(option) ? option!.Value : null;

        public static T? OrNull<T>(FSharpOption<T>? option) where T : class =>
            FSharpOption<T>.get_IsSome(option) ? option!.Value : null;

        /// <summary>A map of core tensors from a dictionary of wrapped ones.</summary>
        public static FSharpMap<string, CoreTensor> Tensors(IReadOnlyDictionary<string, CSharp.Tensor> values)
        {
            ArgumentNullException.ThrowIfNull(values);
            return MapModule.OfSeq(values.Select(kv =>
                Tuple.Create(kv.Key, (kv.Value ?? throw new ArgumentNullException(nameof(values), $"the value of '{kv.Key}' is null")).Core)));
        }

        /// <summary>A core environment (name to core tensor) from a dictionary of wrapped tensors.</summary>
        public static IReadOnlyDictionary<string, CoreTensor> Env(IReadOnlyDictionary<string, CSharp.Tensor> values)
        {
            ArgumentNullException.ThrowIfNull(values);
            var env = new Dictionary<string, CoreTensor>();
            foreach (var kv in values)
                env[kv.Key] = (kv.Value ?? throw new ArgumentNullException(nameof(values), $"the value of '{kv.Key}' is null")).Core;
            return env;
        }

        /// <summary>A read-only dictionary of wrapped tensors, in the map's (sorted) key order.</summary>
        public static IReadOnlyDictionary<string, CSharp.Tensor> Wrap(IEnumerable<KeyValuePair<string, CoreTensor>> values)
        {
            var result = new SortedDictionary<string, CSharp.Tensor>(StringComparer.Ordinal);
            foreach (var kv in values) result[kv.Key] = new CSharp.Tensor(kv.Value);
            return result;
        }

        /// <summary>(name, value) pairs as the F# list that layers return.</summary>
        public static FSharpList<Tuple<string, CoreTensor>> Named(IEnumerable<KeyValuePair<string, CSharp.Tensor>>? values) =>
            ListModule.OfSeq((values ?? Array.Empty<KeyValuePair<string, CSharp.Tensor>>()).Select(kv =>
                Tuple.Create(kv.Key ?? throw new ArgumentNullException(nameof(values), "a name is null"),
                    (kv.Value ?? throw new ArgumentNullException(nameof(values), $"the value of '{kv.Key}' is null")).Core)));

        /// <summary>(name, expression) pairs, in order, as an F# list.</summary>
        public static FSharpList<Tuple<string, CoreExpr>> NamedExprs(IEnumerable<KeyValuePair<string, CSharp.Expr>> values) =>
            ListModule.OfSeq((values ?? throw new ArgumentNullException(nameof(values))).Select(kv =>
                Tuple.Create(kv.Key ?? throw new ArgumentNullException(nameof(values), "a name is null"),
                    (kv.Value ?? throw new ArgumentNullException(nameof(values), $"the expression of '{kv.Key}' is null")).Core)));

        /// <summary>An F# layer's (name, value) list as C# pairs.</summary>
        public static IReadOnlyList<KeyValuePair<string, CSharp.Tensor>> Named(FSharpList<Tuple<string, CoreTensor>> values) =>
            values.Select(t => new KeyValuePair<string, CSharp.Tensor>(t.Item1, new CSharp.Tensor(t.Item2))).ToList().AsReadOnly();

        /// <summary>An F# (name, expression) list as C# pairs.</summary>
        public static IReadOnlyList<KeyValuePair<string, CSharp.Expr>> Named(FSharpList<Tuple<string, CoreExpr>> values) =>
            values.Select(t => new KeyValuePair<string, CSharp.Expr>(t.Item1, new CSharp.Expr(t.Item2))).ToList().AsReadOnly();

        /// <summary>An F# map of names to sizes from an optional dictionary (null: empty).</summary>
        public static FSharpMap<string, int> Sizes(IReadOnlyDictionary<string, int>? sizes) =>
            MapModule.OfSeq((sizes ?? new Dictionary<string, int>()).Select(kv => Tuple.Create(kv.Key, kv.Value)));

        /// <summary>An optional core dtype as a nullable C# one.</summary>
        public static CSharp.DType? ToDType(FSharpOption<CoreDType>? dtype) =>
            FSharpOption<CoreDType>.get_IsSome(dtype) ? ToDType(dtype!.Value) : null;
    }
}
