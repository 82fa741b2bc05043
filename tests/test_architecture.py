"""The floor plan, held: which engine package may import which (each package's docstring says the same in words).

The engine is grouped by domain (``engine/<package>/``) around a few top-level wiring modules. A domain package may
import the packages listed for it below and nothing else of the engine; the lower ones know nothing of the upper
ones (the store and the common helpers know no domain, reporting never reaches into delivery, no domain package
imports a blueprint package or the application). The engine never imports a channel (tests/test_quality.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"

# The top-level wiring modules: the configuration, the channel contract, the process's wiring passed to every part,
# the scheduled jobs, the application factory and the command line.
WIRING = {"engine.settings", "engine.channels", "engine.runtime", "engine.scheduler", "engine.app", "engine.cli"}

# What each domain package may import (besides itself, the standard library and third-party packages).
ALLOWED: dict[str, set[str]] = {
    "engine.common": {"engine.settings"},
    "engine.store": {"engine.common"},
    "engine.surveys": {
        "engine.common",
        "engine.store",
        "engine.catalog",
        "engine.delivery",
        "engine.webapp",
        "engine.channels",
        "engine.runtime",
        "engine.settings",
    },
    "engine.catalog": {"engine.common", "engine.store", "engine.surveys", "engine.channels", "engine.settings"},
    "engine.intake": {
        "engine.common",
        "engine.store",
        "engine.catalog",
        "engine.surveys",
        "engine.delivery",
        "engine.channels",
        "engine.runtime",
        "engine.settings",
    },
    "engine.delivery": {
        "engine.common",
        "engine.store",
        "engine.catalog",
        "engine.surveys",
        "engine.intake",
        "engine.channels",
        "engine.runtime",
        "engine.settings",
    },
    "engine.kiosk": {
        "engine.common",
        "engine.store",
        "engine.catalog",
        "engine.surveys",
        "engine.delivery",
        "engine.runtime",
        "engine.settings",
    },
    "engine.reporting": {
        "engine.common",
        "engine.store",
        "engine.catalog",
        "engine.surveys",
        "engine.channels",
        "engine.runtime",
        "engine.settings",
    },
    "engine.webapp": {
        "engine.common",
        "engine.store",
        "engine.catalog",
        "engine.channels",
        "engine.runtime",
        "engine.settings",
    },
    "engine.api": {
        "engine.common",
        "engine.store",
        "engine.catalog",
        "engine.surveys",
        "engine.intake",
        "engine.delivery",
        "engine.kiosk",
        "engine.reporting",
        "engine.webapp",
        "engine.channels",
        "engine.runtime",
        "engine.settings",
    },
    "engine.dashboard": {
        "engine.common",
        "engine.store",
        "engine.catalog",
        "engine.surveys",
        "engine.reporting",
        "engine.webapp",
        "engine.channels",
        "engine.runtime",
        "engine.settings",
    },
    "engine.publicdata": {
        "engine.common",
        "engine.store",
        "engine.catalog",
        "engine.reporting",
        "engine.dashboard",
        "engine.webapp",
        "engine.runtime",
        "engine.settings",
    },
    "engine.commands": {
        "engine.common",
        "engine.store",
        "engine.catalog",
        "engine.surveys",
        "engine.intake",
        "engine.delivery",
        "engine.kiosk",
        "engine.reporting",
        "engine.dashboard",
        "engine.api",
        "engine.channels",
        "engine.runtime",
        "engine.settings",
        "engine.app",
        "engine.webapp",
    },
}


def unit_of(module: str) -> str | None:
    """The package (or top-level module) of the engine a dotted module name belongs to."""
    parts = module.split(".")
    if parts[0] != "engine" or len(parts) == 1:
        return None
    return f"engine.{parts[1]}"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imported_units(source: str, importer: str) -> set[str]:
    """The engine packages and wiring modules a module's source imports (``from engine import x`` included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"engine.{a.name}" for a in node.names] if node.module == "engine" else [node.module]
        for name in names:
            unit = unit_of(name)
            if unit and unit != unit_of(importer):
                found.add(unit)
    return found


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:`` (annotations only: no import at run time)."""
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    return [node for node in ast.walk(tree) if id(node) not in typing_only]


def engine_modules() -> list[Path]:
    return [p for p in ENGINE.rglob("*.py") if "versions" not in p.parts]


def test_every_package_has_rules():
    packages = {f"engine.{p.name}" for p in ENGINE.iterdir() if (p / "__init__.py").is_file()}
    assert packages - ALLOWED.keys() == set(), "a new engine package needs its line in ALLOWED"
    top = {f"engine.{p.stem}" for p in ENGINE.glob("*.py") if p.stem != "__init__"}
    assert top == WIRING, "the engine's top level holds the wiring modules only; a domain module belongs in a package"


def test_every_package_docstring_says_what_it_may_import():
    for package in ALLOWED:
        doc = ast.get_docstring(ast.parse((ENGINE / package.split(".")[1] / "__init__.py").read_text())) or ""
        assert "May import" in doc, f"{package}'s docstring should say what it owns and what it may import"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package):
    folder = ENGINE / package.split(".")[1]
    offences = []
    for path in folder.rglob("*.py"):
        if "versions" in path.parts:
            continue
        for unit in imported_units(path.read_text(), module_name(path)) - ALLOWED[package]:
            offences.append(f"{path.relative_to(ROOT)} imports {unit}")
    assert offences == []


def test_the_rule_catches_a_forbidden_import():
    """The detector itself: a store module importing reporting, in both import forms, is caught."""
    sample = "from engine.reporting.a11 import figures\nfrom engine import dashboard\nimport engine.api.ops\n"
    assert imported_units(sample, "engine.store.db") == {"engine.reporting", "engine.dashboard", "engine.api"}
    assert imported_units("from engine.store.models import Invitation\n", "engine.store.db") == set()


def test_no_import_cycle_between_modules():
    """Module by module (not package by package) the engine's imports form no cycle."""
    graph: dict[str, set[str]] = {}
    names = {module_name(p) for p in engine_modules()}
    for path in engine_modules():
        deps: set[str] = set()
        for node in runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    deps.add(candidate if candidate in names else node.module)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        me = module_name(path)
        # A blueprint package's __init__ imports its view modules to register their routes on its blueprint (the
        # Flask pattern); that edge, from a package to its own modules, is not counted.
        own = path.name == "__init__.py"
        graph[me] = {d for d in deps if d in names and d != me and not (own and d.startswith(me + "."))}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend([*trail, node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*trail, node]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, []):
            break
    assert not cycle, " -> ".join(cycle)
