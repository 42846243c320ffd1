"""The package layout: imports only point down the layers of docs/design.md, with no cycle between modules or subpackages.

Every import of a streamdet module counts: at module level, inside functions, and under TYPE_CHECKING.
Run `python tests/test_layout.py` to print each unit's layer and what it imports.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "streamdet"

# docs/design.md's package map, bottom to top; a unit is a top-level module or a subpackage.
LAYERS = [
    {"errors", "files", "device", "version", "allocator"},
    {"config", "weights"},
    {"models"},
    {"video", "provenance"},
    {"runtime"},
    {"upload", "crops", "preprocess", "results", "aggregate", "segments", "detector", "cascade", "explain"},
    {"engine"},
    {"live", "train", "export", "cluster", "calibrate", "compress"},
    {"cli", "report", "service", "__main__", "streamdet"},
]


def module_name(path: Path) -> str:
    parts = ["streamdet", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The streamdet modules `name` imports anywhere in its source (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod where there is one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != name:
                found.add(target)
    return found


def unit(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "streamdet"


def layer(unit_name: str) -> int:
    return next(i for i, units in enumerate(LAYERS) if unit_name in units)


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def unit_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = defaultdict(set)
    for source, targets in edges.items():
        units[unit(source)].update(unit(t) for t in targets if unit(t) != unit(source))
    return dict(units)


def test_every_unit_has_a_layer():
    assert {unit(name) for name in modules()} <= set().union(*LAYERS)


def test_no_cycle_between_modules():
    assert cycles(graph()) == []


def test_no_cycle_between_subpackages():
    assert cycles(unit_graph(graph())) == []


def test_imports_point_down():
    upward = [f"{s} -> {t}" for s, targets in unit_graph(graph()).items() for t in targets if layer(t) > layer(s)]
    assert upward == []


def test_the_checker_sees_function_level_and_type_hint_imports(tmp_path):
    """The checker itself: a hidden import inside a function or under TYPE_CHECKING still counts."""
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..detector import Detector\ndef f():\n    from .. import cli\n")
    known = {"streamdet.detector", "streamdet.cli", "streamdet.x", "streamdet.x.m"}
    assert imports("streamdet.x.m", source, known) == {"streamdet.detector", "streamdet.cli"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


if __name__ == "__main__":
    units = unit_graph(graph())
    for i, names in enumerate(LAYERS):
        for name in sorted(names & set(units)):
            print(f"layer {i}  {name:<11} imports {', '.join(sorted(units[name])) or '-'}")
    problems = cycles(graph()) + cycles(units)
    print("cycles:", problems or "none")
    sys.exit(1 if problems else 0)
