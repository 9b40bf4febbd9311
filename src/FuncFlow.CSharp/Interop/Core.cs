using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading;
using Microsoft.FSharp.Collections;
using CoreTensor = FuncFlow.Tensor;

namespace FuncFlow.Interop
{
    /// <summary>
    /// The facade's only door into the F# core: building variables, evaluating expressions and asking for
    /// gradient maps. Everything here is internal, so no F# type reaches the public surface.
    /// </summary>
    internal static class Core
    {
        private static long counter;

        /// <summary>A variable name no other call returns.</summary>
        public static string FreshName(string prefix) =>
            prefix + "#" + Interlocked.Increment(ref counter).ToString(CultureInfo.InvariantCulture);

        public static Expr Var(string name, int[] shape) => ExprModule.var(name, shape);

        public static CoreTensor[] Evaluate(IReadOnlyDictionary<string, CoreTensor> env, IEnumerable<Expr> outputs) =>
            Eval.Many(env, outputs, EvalOptions.Default);

        public static CoreTensor Evaluate(IReadOnlyDictionary<string, CoreTensor> env, Expr output) =>
            Eval.Many(env, new[] { output }, EvalOptions.Default)[0];

        /// <summary>The core's gradient map (Grad.vjp), copied into a .NET dictionary.</summary>
        public static Dictionary<Expr, Expr> Vjp(Expr seed, IEnumerable<Expr> wrt, Expr f)
        {
            var map = Grad.vjp(seed, ListModule.OfSeq(wrt), f);
            var result = new Dictionary<Expr, Expr>();
            foreach (var pair in map) result[pair.Key] = pair.Value;
            return result;
        }

        /// <summary>The core's forward mode (Grad.jvp): the derivative of f at x along v.</summary>
        public static Expr Jvp(Expr x, Expr v, Expr f) => Grad.jvp(x, v, f);

        /// <summary>The core's Jacobian (Grad.jacobian), of shape f.Shape @ x.Shape.</summary>
        public static Expr Jacobian(Expr x, Expr f) => Grad.jacobian(x, f);

        /// <summary>The core's Hessian of a scalar (Grad.hessian), of shape x.Shape @ x.Shape.</summary>
        public static Expr Hessian(Expr x, Expr f) => Grad.hessian(x, f);

        public static GradCheckReport CheckGrad(GradCheckOptions options, IReadOnlyDictionary<string, CoreTensor> env, IEnumerable<Expr> vars, Expr f) =>
            FuncFlow.GradCheck.check(options, env, ListModule.OfSeq(vars), f);

        public static GradCheckReport CheckGradGrad(GradCheckOptions options, IReadOnlyDictionary<string, CoreTensor> env, IEnumerable<Expr> vars, Expr f) =>
            FuncFlow.GradCheck.checkGradGrad(options, env, ListModule.OfSeq(vars), f);

        public static Expr Constant(CoreTensor value) => ExprModule.constant(value);

        public static Expr AddN(IEnumerable<Expr> xs) => ExprModule.addN(ListModule.OfSeq(xs));

        public static CoreTensor ToFloat64(CoreTensor t) => TensorModule.cast(DType.Float64, t);

        public static CoreTensor Ones(int[] shape) => TensorModule.ones(DType.Float64, shape);

        public static CoreTensor Zeros(int[] shape) => TensorModule.zeros(DType.Float64, shape);

        /// <summary>The elementwise sum of same-shape tensors, computed by the core.</summary>
        public static CoreTensor Sum(IReadOnlyList<CoreTensor> values)
        {
            if (values.Count == 0) throw new ArgumentException("Nothing to sum.", nameof(values));
            if (values.Count == 1) return values[0];
            var env = new Dictionary<string, CoreTensor>();
            var vars = new List<Expr>();
            for (int i = 0; i < values.Count; i++)
            {
                var name = "v" + i.ToString(CultureInfo.InvariantCulture);
                env[name] = values[i];
                vars.Add(Var(name, values[i].Shape));
            }
            return Evaluate(env, AddN(vars));
        }

        /// <summary>a + alpha * b, computed by the core (the SGD update).</summary>
        public static CoreTensor AddScaled(CoreTensor a, double alpha, CoreTensor b)
        {
            var env = new Dictionary<string, CoreTensor> { ["a"] = a, ["b"] = b };
            var e = ExprModule.add(Var("a", a.Shape), ExprModule.mul(ExprModule.scalar(alpha), Var("b", b.Shape)));
            var result = Evaluate(env, e);
            if (!SameShape(result.Shape, a.Shape))
                throw new ArgumentException($"The update of shape {ShowShape(b.Shape)} does not fit a value of shape {ShowShape(a.Shape)}.");
            return result;
        }

        /// <summary>A matrix's transpose, computed by the core.</summary>
        public static CoreTensor Transpose(CoreTensor t) => Evaluate(new Dictionary<string, CoreTensor> { ["t"] = t }, ExprModule.transpose(Var("t", t.Shape)));

        public static bool SameShape(int[] a, int[] b) => Shape.equal(a, b);

        public static string ShowShape(int[] shape) => Shape.show(shape);

        /// <summary>Values as NumPy prints them, without the dtype: "19", "[1, 2]", "[[1, 2], [3, 4]]".</summary>
        public static string Format(CoreTensor? t)
        {
            if (t is null) return "None";
            var values = t.ToArray();
            var shape = t.Shape;
            var sb = new StringBuilder();
            int pos = 0;
            void Write(int axis)
            {
                if (axis == shape.Length)
                {
                    sb.Append(values[pos++].ToString("G10", CultureInfo.InvariantCulture));
                    return;
                }
                sb.Append('[');
                for (int i = 0; i < shape[axis]; i++)
                {
                    if (i > 0) sb.Append(", ");
                    Write(axis + 1);
                }
                sb.Append(']');
            }
            Write(0);
            return sb.ToString();
        }
    }
}
