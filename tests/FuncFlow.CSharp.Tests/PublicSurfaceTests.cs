using System.Reflection;
using System.Xml.Linq;
using Xunit;

namespace FacadeTests;

/// <summary>The facade's public surface shows no F# type and documents every member.</summary>
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

    private static bool IsFSharp(Type t) =>
        t.Assembly.GetName().Name == "FSharp.Core" || (t.Namespace ?? "").StartsWith("Microsoft.FSharp", StringComparison.Ordinal);

    [Fact]
    public void NoPublicMemberExposesAnFSharpType()
    {
        const BindingFlags flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var offenders = new List<string>();
        var exported = Facade.GetExportedTypes();
        Assert.NotEmpty(exported);
        foreach (var type in exported)
        {
            var seen = new List<(string Where, Type Type)>();
            if (type.BaseType is not null) seen.Add(("base type", type.BaseType));
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
                if (Mentioned(t).Any(IsFSharp))
                    offenders.Add($"{type.FullName}: {where} is {t}");
        }
        Assert.True(offenders.Count == 0, "F# types on the public surface:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void EveryPublicTypeIsDocumented()
    {
        var xmlPath = Path.ChangeExtension(Facade.Location, ".xml");
        Assert.True(File.Exists(xmlPath), $"no XML documentation next to {Facade.Location}");
        var documented = XDocument.Load(xmlPath).Descendants("member").Select(m => (string)m.Attribute("name")!).ToHashSet();
        var missing = Facade.GetExportedTypes().Where(t => !documented.Contains("T:" + t.FullName)).Select(t => t.FullName).ToList();
        Assert.True(missing.Count == 0, "undocumented types: " + string.Join(", ", missing));
    }

    [Fact]
    public void TheNamespacesAreNodesAndAutograd()
    {
        var namespaces = Facade.GetExportedTypes().Select(t => t.Namespace).Distinct().OrderBy(n => n).ToArray();
        Assert.Equal(new[] { "FuncFlow.Autograd", "FuncFlow.Nodes" }, namespaces);
    }
}
