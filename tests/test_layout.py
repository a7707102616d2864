"""The package's layout: no import circle between modules of ``sim``, no module too long.

Imports are read from the source with :mod:`ast`, so that imports inside functions
(loaded lazily) and under ``TYPE_CHECKING`` count as much as those at the top: a
circle hidden by a lazy import is still one concept split across two rooms.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

SIM = Path(__file__).resolve().parents[1] / "sim"

MAX_MODULE_LINES = 800
"""Longest a module of ``sim`` may be."""


def _modules() -> dict[str, Path]:
    """Every module of ``sim`` by its dotted name (a package by its own name)."""
    modules = {}
    for path in sorted(SIM.rglob("*.py")):
        parts = list(path.relative_to(SIM.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(name: str, path: Path, node: ast.AST) -> list[str]:
    """The dotted names an import statement of module ``name`` (at ``path``) may load."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = name.split(".")
        if path.name != "__init__.py":
            base = base[:-1]
        base = base[: len(base) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [module] + [f"{module}.{alias.name}" for alias in node.names]


def import_graph() -> nx.DiGraph:
    """Modules of ``sim`` and which import which, anywhere in their source."""
    modules = _modules()
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _imported(name, path, node):
                if target in modules and target != name:
                    graph.add_edge(name, target)
    return graph


def test_the_import_graph_sees_lazy_and_type_checking_imports() -> None:
    graph = import_graph()
    assert graph.has_edge("sim.scenario.workloads", "sim.workloads.training")  # in a method
    assert graph.has_edge("sim.fabric.model", "sim.scenario.fabric")  # under TYPE_CHECKING


def test_no_import_circle() -> None:
    circles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert circles == [], f"modules of sim that import each other: {circles}"


def test_no_module_over_800_lines() -> None:
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in _modules().items()
    }
    too_long = {name: n for name, n in sorted(lengths.items()) if n > MAX_MODULE_LINES}
    assert too_long == {}, f"modules over {MAX_MODULE_LINES} lines: {too_long}"
