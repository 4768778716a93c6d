#!/usr/bin/env python3
"""Checks that the helper's modules import downward only.

helper/src/lib.rs lists the modules in layers, bottom first: a comment line
`// layer NAME: what lives here` opens a layer and every `pub mod X;` after
it belongs to it. A module may use (`crate::X`, in `use` lines or inline
paths, outside `#[cfg(test)] mod` blocks) modules of its own layer or of a
layer below; the modules of one layer may not form a circle. main.rs is the
entry point and may use anything.

    tests/layers.py [SRC_DIR]     (default: helper/src beside this file)
    tests/layers.py --readme FILE   also: FILE's table between <!-- layers -->
                                    and <!-- /layers --> lists the same layers

Prints one line per violation and exits 1, or prints the layers and exits 0.
"""
import os
import re
import sys

LAYER = re.compile(r"^\s*//\s*layer\s+([\w-]+)\s*:")
MOD = re.compile(r"^\s*pub\s+mod\s+(\w+)\s*;")
COMMENT = re.compile(r"(^|\s)//.*$", re.M)
TESTS = re.compile(r"#\[cfg\((?:test|all\(test,\s*unix\))\)\]\s*(pub\s+)?mod\s+\w+\s*\{")


def layers_of(lib):
    """module -> (layer index, layer name), from lib.rs."""
    layers, mods, current = [], {}, None
    with open(lib, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = LAYER.match(line)
            if m:
                layers.append(m.group(1))
                current = len(layers) - 1
                continue
            m = MOD.match(line)
            if m:
                if current is None:
                    sys.exit(f"{lib}:{n}: module {m.group(1)} is in no layer; "
                             "put it under a `// layer NAME:` line")
                mods[m.group(1)] = current
    if not mods:
        sys.exit(f"{lib}: no `pub mod` lines found")
    return layers, mods


def uses(text):
    """The top-level modules a file refers to as crate::X."""
    text = COMMENT.sub(r"\1", text)
    m = TESTS.search(text)
    if m:
        text = text[: m.start()]
    found = set(re.findall(r"\bcrate::(\w+)", text))
    # use crate::{a, b::c}: the first word of each item at depth one.
    for m in re.finditer(r"\bcrate::\{", text):
        depth, i, items, cur = 1, m.end(), [], ""
        while i < len(text) and depth:
            c = text[i]
            depth += (c == "{") - (c == "}")
            if depth == 1 and c == ",":
                items.append(cur)
                cur = ""
            elif depth >= 1:
                cur += c
            i += 1
        items.append(cur)
        for item in items:
            w = re.match(r"\s*(\w+)", item)
            if w:
                found.add(w.group(1))
    return found


def top_module(src, path):
    rel = os.path.relpath(path, src)
    return rel.split(os.sep)[0].removesuffix(".rs")


def cycles(nodes, edges):
    """Strongly connected components with more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def readme_layers(path):
    """[(layer, [modules])] from the table between the layers markers."""
    text = open(path, encoding="utf-8").read()
    m = re.search(r"<!-- layers -->(.*?)<!-- /layers -->", text, re.S)
    if not m:
        return None
    rows = []
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(r"[a-z][\w-]*", cells[0]) and cells[0] != "layer":
            rows.append((cells[0], sorted(re.findall(r"`(\w+)`", cells[1]))))
    return rows


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    args = sys.argv[1:]
    readme = None
    if args[:1] == ["--readme"]:
        readme, args = args[1], args[2:]
    src = args[0] if args else os.path.join(here, "..", "helper", "src")
    layers, mods = layers_of(os.path.join(src, "lib.rs"))
    edges, bad = {}, []
    if readme:
        want = [(name, sorted(m for m, l in mods.items() if l == i)) for i, name in enumerate(layers)]
        got = readme_layers(readme)
        if got is None:
            bad.append(f"{readme}: no table between <!-- layers --> and <!-- /layers -->")
        elif got != want:
            diff = [f"{w[0]}: {' '.join(w[1])}" for w in want if w not in got]
            bad.append(f"{readme}: its layers table differs from lib.rs, which says "
                       f"{'; '.join(diff) or 'the same layers in another order'}; update the table")
    for dirpath, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            mod = top_module(src, path)
            if mod in ("lib", "main"):
                continue
            if mod not in mods:
                bad.append(f"{os.path.relpath(path, src)}: module {mod} is not declared in lib.rs")
                continue
            with open(path, encoding="utf-8") as f:
                for target in sorted(uses(f.read())):
                    if target == mod or target not in mods:
                        continue
                    edges.setdefault(mod, set()).add(target)
                    if mods[target] > mods[mod]:
                        bad.append(
                            f"{os.path.relpath(path, src)}: {mod} (layer {layers[mods[mod]]}) uses "
                            f"{target} (layer {layers[mods[target]]}, above it); move what it "
                            f"needs down, or the code up")
    for comp in cycles(mods, edges):
        path = " -> ".join(comp)
        bad.append(f"circle: {path} use each other (layer {layers[mods[comp[0]]]}); "
                   "break it by moving the shared part down")
    for b in bad:
        print(b)
    if bad:
        return 1
    for i, name in enumerate(layers):
        print(f"{name}: {' '.join(sorted(m for m, l in mods.items() if l == i))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
