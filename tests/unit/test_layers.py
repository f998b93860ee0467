"""The house by stage holds: no sub-package imports a higher one, and no modules import each other in a circle.

A 40-line AST walk rather than import-linter: no new dependency, and it also reads the imports made inside
functions and under TYPE_CHECKING (the package imports heavy modules lazily there), which a circle through them
would still be. The order is the one docs/architecture.md draws; `python -m closeout.mailsink` and the package's
own __init__ stand above it as entry points.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

LAYERS = ("core", "store", "intake", "checks", "close", "publish", "deliver", "board", "orchestration")
ENTRY = len(LAYERS)  # top-level modules of the package: entry points above every layer


def imports_of(path: Path) -> set[str]:
    """The closeout modules a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            found.update(n for n in names if n.split(".")[0] == "closeout")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "closeout")
    return found


def module_graph(package: Path) -> dict[str, set[str]]:
    """closeout.x.y → the closeout modules (files) it imports."""
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else ENTRY


def arrows_up(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} (layer {LAYERS[layer(source)] if layer(source) < ENTRY else 'entry'}) imports {target}"
        for source, targets in graph.items()
        for target in targets
        if layer(target) > layer(source)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of modules that import each other in a loop (Tarjan's strongly connected components)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_belongs_to_a_stage():
    entry_points = {"closeout", "closeout.mailsink"}
    graph = module_graph(ROOT / "src" / "closeout")
    assert [m for m in graph if m not in entry_points and m.split(".")[1] not in LAYERS] == []


def test_no_layer_imports_a_higher_one_and_no_circle():
    graph = module_graph(ROOT / "src" / "closeout")
    assert arrows_up(graph) == []
    assert circles(graph) == []


@pytest.fixture
def broken_house(tmp_path):
    """A copy of the layout with one deliberate fault of each kind, in the test's own files."""
    package = tmp_path / "closeout"
    files = {
        "core/__init__.py": "",
        "core/clock.py": "from closeout.publish.bulletin import render  # a lower layer reaching up\n",
        "publish/__init__.py": "",
        "publish/bulletin.py": "from closeout.core.clock import now\n",
        "deliver/__init__.py": "",
        "deliver/mailer.py": "def send():\n    from closeout.deliver.notices import REFUSED  # inside a function still counts\n",
        "deliver/notices.py": "from closeout.deliver.mailer import send\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    return package


def test_the_check_finds_an_arrow_up_and_a_circle(broken_house):
    graph = module_graph(broken_house)
    assert arrows_up(graph) == ["closeout.core.clock (layer core) imports closeout.publish.bulletin"]
    assert circles(graph) == [
        ["closeout.core.clock", "closeout.publish.bulletin"],
        ["closeout.deliver.mailer", "closeout.deliver.notices"],
    ]
