"""Imports point one way (docs/STYLE.md): ``io/data <- models <- training/inference <- pipelines
<- tools``. Every import counts, the ones inside functions too: a lazy import still ties the two
modules together (it only hides the tie from the interpreter at import time)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The layer of each part of the house; a module may import its own layer and the ones below.
LAYERS = {"io": 0, "data": 0, "models": 1, "training": 2, "inference": 2}


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("video_lstm", "pipelines", "tools"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """``{module: the modules of the repository it imports}`` (``from a.b import c`` counts as
    ``a.b.c`` when that is a module, else ``a.b``)."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package of this module
                    package = module.split(".")[: None if path.name == "__init__.py" else -1]
                    base = ".".join(package[: len(package) - node.level + 1] + [base] * bool(base))
                names |= {f"{base}.{a.name}" for a in node.names}
        graph[module] = {r for n in names if (r := resolve(n)) and r != module}
    return graph


def layer(module: str) -> int:
    top, _, rest = module.partition(".")
    if top != "video_lstm":
        return {"pipelines": 3, "tools": 4}[top]
    return LAYERS.get(rest.partition(".")[0], 0)  # types, errors, threads, plugins, configs: 0


def test_imports_point_down_the_layers():
    graph = import_graph()
    assert {"video_lstm.models.classifier", "pipelines.cli"} <= set(graph)
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if layer(d) > layer(m))
    assert not upward, "\n".join(upward)


def test_the_graph_sees_imports_inside_functions():
    assert "pipelines.batch" in import_graph()["pipelines.cli"]  # imported in _run only
    assert (
        layer("video_lstm.inference.settings") > layer("video_lstm.models") > layer("video_lstm.io")
    )


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, deps = work[-1]
            for dep in deps:
                if dep not in index:
                    index[dep] = low[dep] = len(index)
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(sorted(graph.get(dep, ())))))
                    break
                if dep in on_stack:
                    low[node] = min(low[node], index[dep])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    return cycles


def test_no_import_cycles():
    """No two modules import each other, directly or through others (lazy imports count: a
    cycle hidden in a function still ties the two together)."""
    assert not import_cycles(import_graph())


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_no_module_imports_another_modules_private_names():
    """A name with a leading underscore is its module's own: what another module needs is
    made public where it lives (``pipelines.jobs.read_run`` for the report and labels)."""
    found = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and not node.level
                and node.module.partition(".")[0] in ("video_lstm", "pipelines", "tools")
            ):
                found += [
                    f"{module}: from {node.module} import {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert not found, "\n".join(found)
