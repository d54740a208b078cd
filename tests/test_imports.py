"""No import cycles inside `rlhf_lib`: each module's dependencies run one way.

The graph is read from the source with `ast`, not by importing anything, and counts every `import` and
`from ... import` statement, relative ones included, wherever it stands: at module level, inside a function, under
`if TYPE_CHECKING`. An import moved inside a function does not break a cycle, it only postpones it to the call; the
two modules still cannot be understood (or moved, or tested) one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rlhf_lib"

Graph = dict[str, dict[str, int]]
"""module -> {module it imports: line of its first import there}."""


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = (package.name, *path.relative_to(package).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> dict[str, int]:
    """The modules of `modules` that a module's source imports anywhere, each with the line of its first import."""
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        while target and target not in modules:  # `import rlhf_lib.x.y` where only rlhf_lib.x is ours, say
            target = target.rpartition(".")[0]
        if target and target != name:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from . import x` and `from .x import y`
                here = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                if f"{base}.{alias.name}" in modules:
                    add(f"{base}.{alias.name}", node.lineno)
                else:
                    add(base, node.lineno)
    return found


def import_graph(package: Path = PACKAGE) -> Graph:
    paths = sorted(package.rglob("*.py"))
    modules = {module_name(p, package) for p in paths}
    return {module_name(p, package): imported_modules(ast.parse(p.read_text(), str(p)), module_name(p, package),
                                                      p.name == "__init__.py", modules)
            for p in paths}


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle per group of modules that import each other (directly or through others), as `[a, b, ..., a]`:
    the shortest cycle through the group's first module. Empty when the graph has no cycle."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        order[v] = low[v] = len(order)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in order:
            visit(v)

    return [shortest_cycle(graph, group, min(group)) for group in sorted(groups, key=min)]


def shortest_cycle(graph: Graph, group: set[str], start: str) -> list[str]:
    """Breadth first from `start` inside its group, back to `start`."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    return paths[v] + [start]
                if w in group and w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is in no cycle of {sorted(group)}")


def describe(cycle: list[str], graph: Graph) -> str:
    """`a -> b -> a (a imports b at line 3, b imports a at line 7)`."""
    steps = ", ".join(f"{a} imports {b} at line {graph[a][b]}" for a, b in zip(cycle, cycle[1:]))
    return f"{' -> '.join(cycle)} ({steps})"


def test_the_cycle_finder_finds_a_cycle_and_passes_a_tree():
    cyclic = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}, "e": {"e": 5}}  # e: a self-import
    assert find_cycles(cyclic) == [["a", "b", "c", "a"]]
    assert describe(["a", "b", "c", "a"], cyclic) == ("a -> b -> c -> a (a imports b at line 1, b imports c at line 2, "
                                                      "c imports a at line 3)")
    two = {"a": {"b": 1, "c": 1}, "b": {"a": 1}, "c": {"d": 1}, "d": {"c": 1}}
    assert find_cycles(two) == [["a", "b", "a"], ["c", "d", "c"]]
    diamond = {"a": {"b": 1, "c": 1}, "b": {"d": 1}, "c": {"d": 1}, "d": {}}
    assert find_cycles(diamond) == []


def test_the_graph_reads_every_kind_of_import(tmp_path):
    pkg = tmp_path / "rlhf_lib"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__", "a", "b", "c", "d", "sub/__init__", "sub/e"):
        (pkg / f"{name}.py").write_text("")
    (pkg / "a.py").write_text("import os\nfrom rlhf_lib.b import thing\n\ndef f():\n    from . import c\n")
    (pkg / "b.py").write_text("if True:\n    import rlhf_lib.d\nfrom rlhf_lib import sub\n")
    (pkg / "sub" / "e.py").write_text("from ..a import f\nfrom . import g\n")
    graph = import_graph(pkg)
    assert graph["rlhf_lib.a"] == {"rlhf_lib.b": 2, "rlhf_lib.c": 5}
    assert graph["rlhf_lib.b"] == {"rlhf_lib.d": 2, "rlhf_lib.sub": 3}
    assert graph["rlhf_lib.sub.e"] == {"rlhf_lib.a": 1, "rlhf_lib.sub": 2}
    assert find_cycles(graph) == []
    (pkg / "d.py").write_text("def late():\n    import rlhf_lib.a.missing\n")  # an import inside a function counts
    assert find_cycles(import_graph(pkg)) == [["rlhf_lib.a", "rlhf_lib.b", "rlhf_lib.d", "rlhf_lib.a"]]


def test_rlhf_lib_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 20 and "rlhf_lib.base_model" in graph["rlhf_lib.baselines"]  # the reader reads the package
    cycles = find_cycles(graph)
    if cycles:
        pytest.fail("rlhf_lib modules import each other (move what closes the loop to the module it belongs to):\n"
                    + "\n".join(describe(c, graph) for c in cycles))
