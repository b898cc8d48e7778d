"""The package's import graph has no cycle, deferred or not: every import statement counts,
those inside functions included (a function-level import that dodges a cycle still is one).

Only ``if TYPE_CHECKING:`` blocks are left out: they never run.  An edge A -> B means running
A's import statement runs B's body: ``from .x import y`` reaches ``x`` (or ``x.y`` when that is
a module), and the packages above it that are not A's own (those are being imported already).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import screenshot_service

ROOT = Path(screenshot_service.__file__).parent
PACKAGE = "screenshot_service"


def _modules() -> dict[str, tuple[Path, bool]]:
    """name -> (file, is a package)"""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = _modules()


class _Imports(ast.NodeVisitor):
    """Every executed import statement of one module, with its line."""

    def __init__(self) -> None:
        self.found: list[ast.Import | ast.ImportFrom] = []

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.found.append(node)


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    source = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        yield submodule if submodule in MODULES else source


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {module it runs: the line of the first statement that does}"""
    graph: dict[str, dict[str, int]] = {}
    for module, (path, is_package) in MODULES.items():
        own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(), str(path)))
        edges = graph.setdefault(module, {})
        for node in visitor.found:
            for target in _targets(module, is_package, node):
                parts = target.split(".")
                for depth in range(1, len(parts) + 1):
                    reached = ".".join(parts[:depth])
                    if reached in MODULES and reached != module and (reached == target or reached not in own):
                        edges.setdefault(reached, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, {}):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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


def _describe(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    members = set(component)
    return "\n".join(f"  {a} -> {b} (line {line})" for a in component
                     for b, line in sorted(graph[a].items()) if b in members)


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n\n".join(_describe(c, graph) for c in found)


def test_the_check_sees_function_level_imports_and_package_bodies() -> None:
    """The graph is the one Python runs: these edges exist only as a function-level import
    (wiring opens Redis only when configured) and through a package's __init__."""
    graph = import_graph()
    assert f"{PACKAGE}.state.redis" in graph[f"{PACKAGE}.wiring"]
    assert f"{PACKAGE}.browser" in graph[f"{PACKAGE}.capture.service"]  # runs browser/__init__ first
    # ...and a cycle made of them is found.
    looped = {**graph, f"{PACKAGE}.state.redis": {**graph[f"{PACKAGE}.state.redis"], f"{PACKAGE}.wiring": 1}}
    assert any(f"{PACKAGE}.wiring" in component for component in cycles(looped))


# -- module size ---------------------------------------------------------------------------------
MAX_LINES = 300  # a module this long does more than one thing: split it by capability


def test_every_module_stays_under_300_lines() -> None:
    lengths = {module: len(path.read_text().splitlines()) for module, (path, _) in MODULES.items()}
    too_long = {module: n for module, n in lengths.items() if n >= MAX_LINES}
    assert not too_long, f"modules of {MAX_LINES} lines or more: {too_long}"
