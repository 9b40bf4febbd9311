using System.Text.RegularExpressions;
using Xunit;

namespace FacadeTests.Docs;

/// <summary>
/// Every C# block of README.md and docs/csharp.md is a snippet compiled (and run) in this folder: a block preceded by
/// <c>&lt;!-- snippet: name --&gt;</c> must be, after its <c>using</c> lines, the text of that region, and its
/// <c>using</c> lines must be those of the file the region is in; a C# block without a marker fails.
/// </summary>
public class DocsTests
{
    private static string Root([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", ".."));

    /// <summary>Each region's file and text, dedented.</summary>
    private static Dictionary<string, (string File, string Text)> Snippets()
    {
        var result = new Dictionary<string, (string, string)>();
        var folder = Path.Combine(Root(), "tests", "FuncFlow.CSharp.DocTests", "Docs");
        foreach (var file in Directory.GetFiles(folder, "*.cs"))
        {
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                var m = Regex.Match(lines[i], @"^\s*// snippet: (\S+)\s*$");
                if (!m.Success) continue;
                int end = Array.FindIndex(lines, i + 1, l => l.Trim() == "// end snippet");
                Assert.True(end > i, $"{file}: snippet {m.Groups[1].Value} has no end");
                result.Add(m.Groups[1].Value, (file, Dedent(lines[(i + 1)..end])));
            }
        }
        return result;
    }

    private static string Dedent(IEnumerable<string> lines)
    {
        var list = lines.ToList();
        int indent = list.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        return string.Join("\n", list.Select(l => l.Length >= indent ? l[indent..] : l.TrimStart())).TrimEnd();
    }

    public static TheoryData<string> Documents => new() { "README.md", "docs/csharp.md" };

    [Theory]
    [MemberData(nameof(Documents))]
    public void EveryCSharpBlockIsACompiledSnippet(string document)
    {
        var snippets = Snippets();
        var text = File.ReadAllText(Path.Combine(Root(), document)).Replace("\r\n", "\n");
        var blocks = Regex.Matches(text, @"(?:<!-- snippet: (?<name>\S+) -->\n)?```csharp\n(?<code>.*?)```", RegexOptions.Singleline);
        Assert.NotEmpty(blocks);
        foreach (Match block in blocks)
        {
            var name = block.Groups["name"].Value;
            Assert.True(name.Length > 0, $"{document}: a C# block has no <!-- snippet: name --> marker:\n{block.Groups["code"].Value}");
            Assert.True(snippets.TryGetValue(name, out var snippet), $"{document}: no snippet named {name} in tests/FuncFlow.CSharp.DocTests/Docs");
            var code = block.Groups["code"].Value.TrimEnd().Split('\n');
            var usings = code.TakeWhile(l => l.StartsWith("using ", StringComparison.Ordinal) || l.Length == 0).ToList();
            Assert.Equal(snippet.Text, string.Join("\n", code.Skip(usings.Count)).TrimEnd());
            var fileUsings = File.ReadAllLines(snippet.File).Where(l => l.StartsWith("using ", StringComparison.Ordinal)).ToHashSet();
            foreach (var u in usings.Where(u => u.Length > 0))
                Assert.True(fileUsings.Contains(u), $"{document}: snippet {name} shows '{u}', which {Path.GetFileName(snippet.File)} does not use");
            Assert.DoesNotContain(usings, u => u.Contains('='));
        }
    }
}
