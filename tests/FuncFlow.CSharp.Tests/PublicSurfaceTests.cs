using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;

namespace FacadeTests;

/// <summary>
/// The assembly meant for C# users shows no F# type or name, and documents every member. Its public signatures may
/// mention only its own types and the .NET base library's, so no type from FSharp.Core or from the F# core assembly
/// (with its F# shapes) is reachable from it.
/// </summary>
public class PublicSurfaceTests
{
    private static readonly Assembly Facade = typeof(FuncFlow.Nodes.Node).Assembly;

    private static IEnumerable<Type> Mentioned(Type t)
    {
        yield return t;
        if (t.HasElementType)
            foreach (var x in Mentioned(t.GetElementType()!)) yield return x;
        if (t.IsGenericType)
            foreach (var a in t.GetGenericArguments())
                foreach (var x in Mentioned(a)) yield return x;
    }

    private static bool IsBaseLibrary(Type t) =>
        t.IsGenericParameter || (t.Assembly.GetName().Name is { } n && (n == "System.Private.CoreLib" || n.StartsWith("System.", StringComparison.Ordinal)));

    /// <summary>Why a type may not appear in a C# user's signature, or null when it may.</summary>
    internal static string? Forbidden(Type t, Assembly facade)
    {
        foreach (var m in Mentioned(t))
        {
            if (m.Assembly.GetName().Name == "FSharp.Core" || (m.Namespace ?? "").StartsWith("Microsoft.FSharp", StringComparison.Ordinal))
                return $"{m} is an F# type";
            if (m.FullName is { } full && (full.StartsWith("System.Tuple`", StringComparison.Ordinal) || full.StartsWith("System.ValueTuple`", StringComparison.Ordinal)))
                return $"{m} is a tuple where a named type belongs";
            if (m.Assembly != facade && !IsBaseLibrary(m))
                return $"{m} comes from {m.Assembly.GetName().Name}, not from the C# surface or the base library";
        }
        return null;
    }

    /// <summary>Every forbidden type or name on the public surface of an assembly, as "where: why".</summary>
    internal static List<string> Offenders(Assembly assembly)
    {
        const BindingFlags flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var offenders = new List<string>();
        foreach (var type in assembly.GetExportedTypes())
        {
            if (type.Name.EndsWith("Module", StringComparison.Ordinal))
                offenders.Add($"{type.FullName}: an F# module's compiled name");
            var seen = new List<(string Where, Type Type)>();
            if (type.BaseType is { } baseType && baseType != typeof(object) && baseType != typeof(ValueType) && baseType != typeof(Enum))
                seen.Add(("base type", baseType));
            seen.AddRange(type.GetInterfaces().Select(i => ("interface", i)));
            foreach (var m in type.GetMembers(flags))
            {
                bool visible = m switch
                {
                    MethodBase mb => mb.IsPublic || mb.IsFamily || mb.IsFamilyOrAssembly,
                    FieldInfo f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly,
                    PropertyInfo p => p.GetAccessors(true).Any(a => a.IsPublic || a.IsFamily || a.IsFamilyOrAssembly),
                    EventInfo e => e.AddMethod is { } add && (add.IsPublic || add.IsFamily),
                    Type nested => nested.IsNestedPublic || nested.IsNestedFamily,
                    _ => false,
                };
                if (!visible) continue;
                if (m.Name == "Tag" || (m is MethodInfo { IsStatic: true } nm && Regex.IsMatch(nm.Name, "^New[A-Z]")) ||
                    (m is PropertyInfo ip && ip.PropertyType == typeof(bool) && Regex.IsMatch(ip.Name, "^Is[A-Z]") && type.GetProperty("Tag") is not null))
                    offenders.Add($"{type.FullName}: {m.Name} is an F# union's member");
                switch (m)
                {
                    case MethodInfo mi:
                        seen.Add((mi.Name + " return", mi.ReturnType));
                        seen.AddRange(mi.GetParameters().Select(p => (mi.Name + " parameter " + p.Name, p.ParameterType)));
                        break;
                    case ConstructorInfo ci:
                        seen.AddRange(ci.GetParameters().Select(p => (".ctor parameter " + p.Name, p.ParameterType)));
                        break;
                    case PropertyInfo pi:
                        seen.Add((pi.Name, pi.PropertyType));
                        break;
                    case FieldInfo fi:
                        seen.Add((fi.Name, fi.FieldType));
                        break;
                    case EventInfo ei:
                        seen.Add((ei.Name, ei.EventHandlerType!));
                        break;
                }
            }
            foreach (var (where, t) in seen)
                if (Forbidden(t, assembly) is { } why)
                    offenders.Add($"{type.FullName}: {where}: {why}");
        }
        return offenders;
    }

    [Fact]
    public void NoPublicMemberExposesAnFSharpTypeOrName()
    {
        Assert.NotEmpty(Facade.GetExportedTypes());
        var offenders = Offenders(Facade);
        Assert.True(offenders.Count == 0, "F# types or names on the C# surface:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void TheCheckCatchesTheFSharpCoreAssembly()
    {
        // The same check over the F# core, which keeps its F# shapes for F# users, finds each kind of offence:
        // a check that found nothing there could not be trusted to find a planted one here.
        var offenders = Offenders(typeof(FuncFlow.Expr).Assembly);
        Assert.Contains(offenders, o => o.Contains("is an F# type", StringComparison.Ordinal));
        Assert.Contains(offenders, o => o.Contains("an F# module's compiled name", StringComparison.Ordinal));
        Assert.Contains(offenders, o => o.Contains("is an F# union's member", StringComparison.Ordinal));
        Assert.Contains(offenders, o => o.Contains("is a tuple where a named type belongs", StringComparison.Ordinal));
    }

    [Fact]
    public void EveryPublicMemberIsDocumented()
    {
        var xmlPath = Path.ChangeExtension(Facade.Location, ".xml");
        Assert.True(File.Exists(xmlPath), $"no XML documentation next to {Facade.Location}");
        var documented = XDocument.Load(xmlPath).Descendants("member").Select(m => (string)m.Attribute("name")!).ToHashSet();
        var missing = Facade.GetExportedTypes().Where(t => !documented.Contains("T:" + t.FullName)).Select(t => t.FullName).ToList();
        Assert.True(missing.Count == 0, "undocumented types: " + string.Join(", ", missing));
    }

    [Fact]
    public void TheNamespacesAreTheLibraryNodesAndAutograd()
    {
        var namespaces = Facade.GetExportedTypes().Select(t => t.Namespace).Distinct().OrderBy(n => n).ToArray();
        Assert.Equal(new[] { "FuncFlow.Autograd", "FuncFlow.CSharp", "FuncFlow.Nodes" }, namespaces);
    }
}
