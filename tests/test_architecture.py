"""The same application layer in every service (docs/architecture.md), checked from the source:

* every service has the same top-level modules;
* nothing under ``domain/``, and no ``commands``, ``handlers`` or ``use_cases`` module, imports
  SQLAlchemy (or the kit's SQL modules): a handler runs against the fake unit of work;
* no import cycle among the project's modules, counting imports inside functions and under
  ``TYPE_CHECKING`` (a cycle hidden that way is still a cycle in the layering).
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "src").is_dir())
PACKAGES = {
    **{f"rhythm_{s}": ROOT / "services" / s / "src" / f"rhythm_{s}" for s in SERVICES},
    "rhythm_shared": ROOT / "shared" / "src" / "rhythm_shared",
}

#: What every service has at its top level (``cli`` and ``__init__`` aside).
LAYOUT = {
    "adapters",
    "commands",
    "domain",
    "entrypoints",
    "handlers",
    "main",
    "migrations",
    "queries",
    "settings",
}
OPTIONAL = {"__init__", "cli", "use_cases"}

#: Modules that may not reach a database library, directly.
PURE_PARTS = ("domain", "commands", "handlers", "use_cases")
SQL_MODULES = (
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "rhythm_shared.kit.db",
    "rhythm_shared.kit.uow",
    "rhythm_shared.kit.people",
    "rhythm_shared.kit.housekeeping",
)


def _modules() -> Iterator[tuple[str, Path]]:
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            if "migrations" in path.relative_to(root).parts:
                continue
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


MODULES = dict(_modules())


def _imports(name: str, path: Path) -> set[str]:
    """Every project module ``name`` imports, wherever in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [module, *(f"{module}.{a.name}" for a in node.names)]
        else:
            continue
        found.update(t for t in targets if t in MODULES)
    found.discard(name)
    return found


def _external_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_top_level_modules(service: str) -> None:
    root = PACKAGES[f"rhythm_{service}"]
    present = {p.stem for p in root.glob("*.py")} | {
        p.parent.name for p in root.glob("*/__init__.py")
    }
    if (root / "migrations" / "env.py").exists():
        present.add("migrations")
    extra = present - OPTIONAL - LAYOUT
    assert present - OPTIONAL == LAYOUT, (
        f"{service}: missing {sorted(LAYOUT - present)}, extra {sorted(extra)}"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_domain_commands_and_handlers_import_no_database_library(service: str) -> None:
    package = f"rhythm_{service}"
    offenders: list[str] = []
    for name, path in MODULES.items():
        parts = name.split(".")
        if parts[0] != package or len(parts) < 2 or parts[1] not in PURE_PARTS:
            continue
        for imported in _external_imports(path):
            if any(imported == m or imported.startswith(f"{m}.") for m in SQL_MODULES):
                offenders.append(f"{name} imports {imported}")
    assert not offenders, "\n".join(offenders)


def test_no_import_cycles_among_the_projects_modules() -> None:
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    # A module importing its own package's __init__ (re-exports) is not a layering cycle.
    for name, deps in graph.items():
        deps -= {p for p in deps if name.startswith(f"{p}.")}
    cycles = [c for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(sorted(c)) for c in cycles)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(component)
    return out


@pytest.mark.parametrize("service", SERVICES)
def test_the_handlers_run_without_loading_a_database_or_broker_library(service: str) -> None:
    """Transitively, too: importing the handler map (and so every use case, command and domain
    module behind it) loads neither SQLAlchemy nor a driver, Kafka client or web framework."""
    package = f"rhythm_{service}"
    pure = sorted(
        name
        for name in MODULES
        if name.startswith(f"{package}.") and name.split(".")[1] in PURE_PARTS
    )
    probe = (
        "import importlib, sys\n"
        f"for name in {pure!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = ('sqlalchemy', 'aiosqlite', 'asyncpg', 'aiokafka', 'faststream', 'fastapi')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", f"{service}'s handlers load {result.stdout.strip()}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_mapped_handler_has_a_unit_test_against_the_fake_unit_of_work(service: str) -> None:
    """Each entry of the handler maps is named (by its message or its function) in the service's
    ``tests/test_handlers*.py``, run on the in-memory unit of work (no database, no broker)."""
    handlers = importlib.import_module(f"rhythm_{service}.handlers")
    folder = ROOT / "services" / service / "tests"
    tests = sorted(folder.glob("test_handlers*.py"))
    assert tests, f"{service} has no handler unit tests"
    text = "".join(p.read_text() for p in tests)
    # With the test-support modules they import from the same folder (event builders).
    local = set(re.findall(r"^from (\w+) import", text, flags=re.M))
    text += "".join(
        (folder / f"{m}.py").read_text() for m in local if (folder / f"{m}.py").exists()
    )
    assert "FakeUnitOfWork" in text or "fakes" in text, "the handler tests use the fakes"
    untested: list[str] = []
    for map_name in ("COMMAND_HANDLERS", "EVENT_HANDLERS", "JOB_HANDLERS"):
        for message, handler in getattr(handlers, map_name, {}).items():
            names = {getattr(message, "__name__", str(message)), handler.__name__}
            if not any(re.search(rf"\b{re.escape(n)}\b", text) for n in names):
                untested.append(f"{map_name}[{sorted(names)}]")
    assert not untested, f"{service}: no unit test names {untested}"
