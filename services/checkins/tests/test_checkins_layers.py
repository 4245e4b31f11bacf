"""The layers of the service: the domain, commands, handlers and use cases import no SQL, and
no module of the service imports one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

import rhythm_checkins

ROOT = Path(rhythm_checkins.__file__).parent
PURE = (
    "rhythm_checkins.domain",
    "rhythm_checkins.commands",
    "rhythm_checkins.handlers",
    "rhythm_checkins.use_cases",
    "rhythm_checkins.queries",
)


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text())
    return found


def _imports(tree: ast.Module) -> set[str]:
    """Every module imported anywhere in ``tree`` (at module level or inside a function)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


MODULES = _modules()
GRAPH = {name: {i for i in _imports(tree) if i in MODULES} for name, tree in MODULES.items()}


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in GRAPH[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_domain_commands_handlers_use_cases_and_queries_reach_no_sql() -> None:
    for name in MODULES:
        if not name.startswith(PURE):
            continue
        for reached in {name} | _reachable(name):
            imported = _imports(MODULES[reached])
            assert not any(i.split(".")[0] == "sqlalchemy" for i in imported), (name, reached)
            assert not reached.startswith("rhythm_checkins.adapters"), (name, reached)
            uses_session = any(
                isinstance(n, ast.Attribute) and n.attr == "session"
                for n in ast.walk(MODULES[reached])
            )
            assert not uses_session, (name, reached)


def test_no_module_of_the_service_imports_itself_back() -> None:
    cycles = [name for name in MODULES if name in _reachable(name)]
    assert cycles == []
