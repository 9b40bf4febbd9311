# Rewrites the C# blocks of README.md and docs/csharp.md from the snippet regions in this folder (keeping each
# block's using lines): run with python3 from the repository root after editing a snippet; DocsTests checks them.
import os, re

folder = os.path.dirname(os.path.abspath(__file__))
snippets = {}
for name in os.listdir(folder):
    if name.endswith(".cs"):
        lines = open(os.path.join(folder, name)).read().split("\n")
        for i, line in enumerate(lines):
            m = re.match(r"^\s*// snippet: (\S+)\s*$", line)
            if m:
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "// end snippet")
                body = lines[i + 1:end]
                indent = min(len(l) - len(l.lstrip()) for l in body if l.strip())
                snippets[m.group(1)] = "\n".join(l[indent:] if len(l) >= indent else l.lstrip() for l in body).rstrip()

def replace(match):
    code = match.group("code").rstrip("\n").split("\n")
    usings = []
    for line in code:
        if line.startswith("using ") or (line == "" and usings):
            usings.append(line)
        else:
            break
    head = "\n".join(usings) + ("\n" if usings else "")
    return f"<!-- snippet: {match.group('name')} -->\n```csharp\n{head}{snippets[match.group('name')]}\n```"

root = os.path.normpath(os.path.join(folder, "..", "..", ".."))
for doc in ("README.md", os.path.join("docs", "csharp.md")):
    path = os.path.join(root, doc)
    text = open(path).read()
    text = re.sub(r"<!-- snippet: (?P<name>\S+) -->\n```csharp\n(?P<code>.*?)```", replace, text, flags=re.S)
    open(path, "w").write(text)
