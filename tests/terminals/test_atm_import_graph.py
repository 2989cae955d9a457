"""The ATM firmware and its transaction flows do not import each other (one Protocol between).

Goal: ``terminals/atm/`` has no import cycle, counting imports under ``TYPE_CHECKING`` and
inside functions (a cycle hidden there still couples the modules); the flows reach the
firmware only through :class:`terminals.atm.flow_port.FlowHost`. Method: read every module's
imports with :mod:`ast`, build the graph of ``terminals.atm`` modules, and look for a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import terminals.atm

PACKAGE = "terminals.atm"
PACKAGE_DIR = Path(next(iter(terminals.atm.__path__)))  # a namespace package: no __file__


def _imports_of(path: Path) -> set[str]:
    """The ``terminals.atm`` modules a module imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from terminals.atm import flows`` imports the module terminals.atm.flows.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    modules = {p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__"}
    return {name for name in found if name.startswith(PACKAGE + ".")
            and name.removeprefix(PACKAGE + ".") in modules}


def _graph() -> dict[str, set[str]]:
    return {
        f"{PACKAGE}.{path.stem}": _imports_of(path)
        for path in sorted(PACKAGE_DIR.glob("*.py"))
        if path.stem != "__init__"
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in visiting:
            return [*visiting[visiting.index(module):], module]
        if module in done:
            return None
        visiting.append(module)
        for imported in sorted(graph.get(module, ())):
            if (found := visit(imported)) is not None:
                return found
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if (found := visit(module)) is not None:
            return found
    return None


def test_graph_sees_the_firmware_importing_the_flows() -> None:
    """The reader works: the firmware's imports of the flows and of the host conversation are
    in the graph (so the cycle check below covers both)."""
    graph = _graph()
    assert f"{PACKAGE}.flows" in graph[f"{PACKAGE}.firmware"]
    assert f"{PACKAGE}.host_conversation" in graph[f"{PACKAGE}.firmware"]
    assert f"{PACKAGE}.flow_port" in graph[f"{PACKAGE}.flows"]


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_flows_do_not_import_the_firmware() -> None:
    assert f"{PACKAGE}.firmware" not in _graph()[f"{PACKAGE}.flows"]


def test_no_import_cycle_under_terminals_atm() -> None:
    assert _cycle(_graph()) is None
