namespace FacadeTests.Docs;

/// <summary>Doubles equal within an absolute tolerance.</summary>
internal sealed class Close(double tolerance) : IEqualityComparer<double>
{
    public bool Equals(double a, double b) => Math.Abs(a - b) <= tolerance;

    public int GetHashCode(double x) => 0;
}
