#!/usr/bin/env python3
"""The structure rules of the two crates, checked (CI runs this):

- no import circle: no module refers, directly or through others, to one that refers back
  to it (a parent and its child count like any two modules; a `mod` declaration and doc
  comments are not references);
- no source file over 500 lines;
- no function over 80 lines outside tests.

Usage: scripts/structure.py [CRATE_SRC ...] (default: loadgen/src servers/src). Prints
every breach as `path:line: what` and exits 1 if there is one.
"""

import glob
import os
import re
import sys

MAX_FILE_LINES = 500
MAX_FN_LINES = 80


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


def circles(root):
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
    # Strongly connected components (Tarjan).
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
    name = lambda m: "::".join(m) or "crate"
    out = []
    for comp in found:
        inside = set(comp)
        detail = "; ".join(
            f"{name(a)} -> {name(b)}" for a in comp for b in sorted(edges[a]) if b in inside
        )
        out.append(f"{modules[comp[0]]}:1: import circle among {', '.join(name(m) for m in comp)} ({detail})")
    return out


def lengths(root):
    out = []
    for f in sorted(glob.glob(os.path.join(root, "**", "*.rs"), recursive=True)):
        lines = open(f).read().split("\n")
        if len(lines) - 1 > MAX_FILE_LINES:
            out.append(f"{f}:1: {len(lines) - 1} lines (at most {MAX_FILE_LINES})")
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
                    out.append(f"{f}:{i + 1}: fn {m.group(6)} is {n} lines (at most {MAX_FN_LINES})")
                i = j + 1
                continue
            i += 1
    return out


def main():
    roots = sys.argv[1:] or ["loadgen/src", "servers/src"]
    breaches = []
    for root in roots:
        breaches += circles(root) + lengths(root)
    for b in breaches:
        print(b)
    if breaches:
        sys.exit(1)
    print(f"structure: no import circle, no file over {MAX_FILE_LINES} lines, no function over {MAX_FN_LINES} lines in {', '.join(roots)}")


if __name__ == "__main__":
    main()
