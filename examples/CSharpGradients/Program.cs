// Gradients and Hessian-vector products of a C# function: the Rosenbrock function
// f(x) = sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2, written once with expressions, differentiated twice.
// The gradient and H v are expressions too: printed, evaluated, compiled into a plan, and used by a few
// Newton-CG steps (conjugate gradients on H d = -g, with H only through H v).
//
//     dotnet run -c Release --project examples/CSharpGradients

using System;
using System.Collections.Generic;
using System.Linq;
using FuncFlow.CSharp;

const int n = 4;
var x = Expr.Variable("x", n);
var v = Expr.Variable("v", n);
var f = Rosenbrock(x);
var gradient = Grad.Of(f, x);
var hv = Grad.Hvp(f, x, v);
Console.WriteLine($"f(x) = {Print.Formula(f)}");

var at = new Dictionary<string, Tensor> { ["x"] = Tensor.Create(new[] { -1.2, 1.0, -1.2, 1.0 }), ["v"] = Tensor.Create(new[] { 1.0, 0.0, 0.0, 0.0 }) };
Console.WriteLine($"f = {Eval.Evaluate(f, at).Item():F4}");
Console.WriteLine($"grad f = [{string.Join(", ", Eval.Evaluate(gradient, at).ToArray().Select(g => g.ToString("F4")))}]");
Console.WriteLine($"H e0 = [{string.Join(", ", Eval.Evaluate(hv, at).ToArray().Select(h => h.ToString("F4")))}]");

// One plan computes f, its gradient and H v together, sharing the forward pass; runs allocate nothing.
var plan = Plan.Compile(f, gradient, hv);
double[] Run(double[] point, double[] direction)
{
    plan.Set("x", point);
    plan.Set("v", direction);
    plan.Execute();
    return plan.Output(2).ToArray();
}
var point = new[] { -1.2, 1.0, -1.2, 1.0 };
for (int step = 1; step <= 40; step++)
{
    Run(point, new double[n]);
    var (value, g) = (plan.OutputScalar(0), plan.Output(1).ToArray());
    var direction = ConjugateGradient(g, d => Run(point, d));
    // Backtracking (Armijo): halve the step until f decreases enough along the direction.
    double slope = Dot(g, direction), t = 1.0;
    double[] next;
    while (true)
    {
        next = point.Zip(direction, (p, d) => p + t * d).ToArray();
        Run(next, new double[n]);
        if (plan.OutputScalar(0) <= value + 1e-4 * t * slope || t < 1e-10) break;
        t /= 2;
    }
    point = next;
    if (step % 8 == 0) Console.WriteLine($"Newton-CG step {step,2}: f = {plan.OutputScalar(0):E3}");
}
Console.WriteLine($"minimum at [{string.Join(", ", point.Select(p => p.ToString("F6")))}]");
Console.WriteLine($"f(minimum) = {plan.OutputScalar(0):E3}");

static double Dot(double[] a, double[] b) => a.Zip(b, (p, q) => p * q).Sum();

static Expr Rosenbrock(Expr x)
{
    int n = x.Shape[0];
    var head = x.Slice(0, 0, n - 1);
    var tail = x.Slice(0, 1, n - 1);
    return (100.0 * (tail - head.Pow(2.0)).Pow(2.0) + (1.0 - head).Pow(2.0)).Sum();
}

// Solves H d = -g by conjugate gradients, reading H only through products H p; stops at negative curvature.
static double[] ConjugateGradient(double[] g, Func<double[], double[]> hessianTimes)
{
    var d = new double[g.Length];
    var r = g.Select(gi => -gi).ToArray();
    var p = (double[])r.Clone();
    for (int k = 0; k < g.Length && Dot(r, r) > 1e-20; k++)
    {
        var hp = hessianTimes(p);
        var curvature = Dot(p, hp);
        if (curvature <= 0) return k == 0 ? r : d; // not convex here: the steepest descent, or what CG has so far
        var alpha = Dot(r, r) / curvature;
        var rNext = r.Zip(hp, (ri, hi) => ri - alpha * hi).ToArray();
        for (int i = 0; i < d.Length; i++) d[i] += alpha * p[i];
        var beta = Dot(rNext, rNext) / Dot(r, r);
        p = rNext.Zip(p, (ri, pi) => ri + beta * pi).ToArray();
        r = rNext;
    }
    return d;
}
