#!/usr/bin/env python3
"""The structure rules of the two crates, checked (CI runs this):

- no import circle: no module refers, directly or through others, to one that refers back
  to it (a parent and its child count like any two modules; a `mod` declaration and doc
  comments are not references);
- no circle between a crate's parts either (a part is a top-level module: `run`, `os`, ...,
  every module collapsed onto its first path segment), and in loadgen every reference
  goes down its `LAYERS` (a part may import only the parts listed before it);
- `unsafe` only in loadgen's `os` part and its io_uring engine (`UNSAFE_ALLOWED`);
- no source file over 500 lines and no function over 80 lines outside tests, unless it says
  why: a `// long: REASON` comment (in a file's first 10 lines, or just above the `fn`)
  turns the breach into a printed note. The limits ask for a reason; they are not targets
  to split code at.

Usage: scripts/structure.py [CRATE_SRC ...] (default: loadgen/src servers/src kit/src). Prints
every breach as `path:line: what` and exits 1 if there is one.
"""

import glob
import os
import re
import sys

MAX_FILE_LINES = 500
MAX_FN_LINES = 80

# loadgen's parts from the bottom up: each may import only those before it (docs/layout.md
# says why each sits where it does). A new top-level module must be placed here.
LAYERS = {
    "loadgen/src": [
        "error", "stats", "os", "measure", "cli", "config", "report", "run", "scale",
        "analysis", "output", "commands", "fuzz",
    ],
}
UNSAFE_ALLOWED = {"loadgen/src": ("os/", "run/driver/engine/uring/")}


def module_name(root, path):
    parts = os.path.relpath(path, root)[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def strip_comments(src):
    """The code without comments (line and block) and without string literals' contents."""
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    out = []
    for line in src.split("\n"):
        line = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
        out.append(line.split("//")[0])
    return "\n".join(out)


def non_test(src):
    """The code before the first `#[cfg(test)]` (tests come last in every file here)."""
    return src.split("#[cfg(test)]")[0]


def expand_use(tree):
    """Paths of a `use` tree: `a::{b, c::{d, e}}` -> a::b, a::c::d, a::c::e."""
    tree = tree.strip()
    m = re.match(r"^([\w:]*?)(::)?\{(.*)\}$", tree, flags=re.S)
    if not m:
        return [re.split(r"\s+as\s+", tree)[0].strip()]
    prefix, inner = m.group(1), m.group(3)
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    paths = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        for p in expand_use(item):
            if p == "self":
                paths.append(prefix)
            else:
                paths.append(f"{prefix}::{p}" if prefix else p)
    return paths


def references(code, children):
    """Every crate-relative path the code names: `use` trees and inline paths, from the
    crate root, a parent, or one of this module's `children` (named bare)."""
    bare = "|".join(map(re.escape, children)) or "(?!)"
    heads = rf"(crate|super|self|{bare})"
    start = heads + "::"
    refs = []
    for m in re.finditer(r"\buse\s+([^;]+);", code):
        refs.extend(p for p in expand_use(m.group(1)) if re.match(start, p))
    code = re.sub(r"\buse\s+[^;]+;", "", code)
    refs.extend(m.group(0) for m in re.finditer(rf"(?<![\w:]){heads}(::\w+)+", code))
    return refs


def resolve(path, here, is_mod_file, modules):
    """The module of `modules` that `path`, written in module `here`, names (longest prefix)."""
    segs = path.split("::")
    if segs[0] == "crate":
        cur, segs = [], segs[1:]
    elif segs[0] == "self":
        cur, segs = list(here), segs[1:]
    elif segs[0] == "super":
        cur = list(here)
        while segs and segs[0] == "super":
            cur = cur[:-1]
            segs = segs[1:]
    else:
        cur = list(here)  # a child module, named bare
    full = cur + segs
    for k in range(len(full), -1, -1):
        cand = tuple(full[:k])
        if cand in modules:
            return cand
    return None


def graph(root):
    """Every module of the crate at `root` (path tuple -> file) and the modules each refers to."""
    files = glob.glob(os.path.join(root, "**", "*.rs"), recursive=True)
    modules = {}
    for f in files:
        modules.setdefault(tuple(module_name(root, f)), f)
    edges = {m: set() for m in modules}
    for m, f in modules.items():
        code = non_test(strip_comments(open(f).read()))
        children = [c[-1] for c in modules if len(c) == len(m) + 1 and c[: len(m)] == m]
        for ref in references(code, children):
            target = resolve(ref, list(m), f.endswith("mod.rs"), modules)
            if target is not None and target != m:
                edges[m].add(target)
    return modules, edges


def components(edges):
    """The strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def circles(root):
    modules, edges = graph(root)
    found = components(edges)
    name = lambda m: "::".join(m) or "crate"
    out = []
    for comp in found:
        inside = set(comp)
        detail = "; ".join(
            f"{name(a)} -> {name(b)}" for a in comp for b in sorted(edges[a]) if b in inside
        )
        out.append(f"{modules[comp[0]]}:1: import circle among {', '.join(name(m) for m in comp)} ({detail})")
    return out


def parts(root):
    """Circles between the crate's parts, and in a layered crate references that go up."""
    modules, edges = graph(root)
    files = {}
    part_edges = {}
    for m, targets in edges.items():
        if not m:
            continue  # the crate root declares the parts
        part_edges.setdefault(m[0], set())
        for t in targets:
            if t and t[0] != m[0]:
                part_edges[m[0]].add(t[0])
                files.setdefault((m[0], t[0]), []).append(modules[m])
    for t in {t for ts in part_edges.values() for t in ts}:
        part_edges.setdefault(t, set())
    out = []
    for comp in components(part_edges):
        inside = set(comp)
        detail = "; ".join(
            f"{a} -> {b} ({', '.join(sorted(set(files[(a, b)]))[:3])})"
            for a in comp for b in sorted(part_edges[a]) if b in inside
        )
        out.append(f"{root}:1: circle among the parts {', '.join(comp)}: {detail}")
    layers = LAYERS.get(root.rstrip("/"))
    if layers:
        rank = {p: i for i, p in enumerate(layers)}
        for p in sorted(part_edges):
            if p not in rank:
                out.append(f"{root}/{p}:1: part '{p}' has no place in LAYERS (scripts/structure.py)")
                continue
            for t in sorted(part_edges[p]):
                if t in rank and rank[t] > rank[p]:
                    where = sorted(files[(p, t)])[0]
                    out.append(f"{where}:1: '{p}' imports '{t}', which sits above it in LAYERS")
    return out


def unsafe_outside(root):
    allowed = UNSAFE_ALLOWED.get(root.rstrip("/"))
    if allowed is None:
        return []
    out = []
    for f in sorted(glob.glob(os.path.join(root, "**", "*.rs"), recursive=True)):
        rel = os.path.relpath(f, root)
        if rel.startswith(allowed):
            continue
        for i, line in enumerate(strip_comments(open(f).read()).split("\n")):
            if re.search(r"\bunsafe\b", line):
                out.append(f"{f}:{i + 1}: `unsafe` outside {' and '.join(allowed)}")
    return out


def reason(lines):
    """The `// long: REASON` among `lines`, if any."""
    for line in lines:
        m = re.search(r"//[!/]?\s*long:\s*(.+)", line)
        if m:
            return m.group(1).strip()
    return None


def lengths(root):
    """(reason or None, breach) for every file and function over its limit."""
    out = []
    for f in sorted(glob.glob(os.path.join(root, "**", "*.rs"), recursive=True)):
        lines = open(f).read().split("\n")
        if len(lines) - 1 > MAX_FILE_LINES:
            why = reason(lines[:10])
            out.append((why, f"{f}:1: {len(lines) - 1} lines (at most {MAX_FILE_LINES})"))
        i = 0
        while i < len(lines):
            line = lines[i]
            if re.match(r"\s*#\[cfg\(test\)\]", line):
                break
            m = re.match(r"\s*(pub(\([\w:]+\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)", line)
            if m and not line.rstrip().endswith(";"):
                depth, started, j = 0, False, i
                while j < len(lines):
                    code = strip_comments(lines[j])
                    depth += code.count("{") - code.count("}")
                    started = started or "{" in code
                    if started and depth <= 0:
                        break
                    j += 1
                n = j - i + 1
                if n > MAX_FN_LINES:
                    why = reason(lines[max(0, i - 4) : i])
                    out.append((why, f"{f}:{i + 1}: fn {m.group(6)} is {n} lines (at most {MAX_FN_LINES})"))
                i = j + 1
                continue
            i += 1
    return out


def main():
    roots = sys.argv[1:] or ["loadgen/src", "servers/src", "kit/src"]
    breaches = []
    for root in roots:
        breaches += circles(root) + parts(root) + unsafe_outside(root)
        for why, breach in lengths(root):
            if why is None:
                breaches.append(breach + " (split it by concern, or say why with `// long: REASON`)")
            else:
                print(f"note: {breach}, because {why}")
    for b in breaches:
        print(b)
    if breaches:
        sys.exit(1)
    print(f"structure: no import circle (between modules or parts), parts layered, unsafe where allowed, no file over {MAX_FILE_LINES} lines, no function over {MAX_FN_LINES} lines without a stated reason, in {', '.join(roots)}")


if __name__ == "__main__":
    main()
