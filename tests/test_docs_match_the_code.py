"""What the docs state that a machine can check, checked against the code: settings (names and
the defaults quoted in prose), ``rhythm`` commands, HTTP endpoints (against the services' own
routers), topics with their partitions and retention, and the record key of every event type.
The configuration tables have their own test (test_readme.py)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from starlette.routing import Match

from rhythm_shared.contracts import EVENT_TYPES
from rhythm_shared.contracts.topics import (
    DEFAULT_PARTITIONS,
    DLQ_PARTITIONS,
    INTERNAL_PULSE,
    TOPICS,
    WEEK_MS,
    dlq_spec,
)
from rhythm_shared.kit.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ["goals", "checkins", "notifications", "reporting", "people"]
DOCS = sorted(
    [
        ROOT / "README.md",
        ROOT / "deploy" / "k8s" / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "services").glob("*/README.md"),
    ]
)
GUIDE = ROOT / "docs" / "integrator-guide.md"
#: Upper-case names in the docs that are not service settings: the local infrastructure's
#: variables (cli/src/rhythm_cli/infra.py), Kafka protocol values, an audit action.
NOT_SETTINGS = {
    "RHYTHM_HOME",
    "RHYTHM_KAFKA_CONTROLLER_PORT",
    "RHYTHM_POSTGRES_PORT",
    "SASL_PLAINTEXT",
    "SASL_SSL",
    "CHANGE_ACCESS",
    "SCIM_CLI_HEADERS",
    # The handler maps of docs/architecture.md and the services' READMEs.
    "COMMAND_HANDLERS",
    "EVENT_HANDLERS",
    "JOB_HANDLERS",
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _code(text: str) -> Iterator[str]:
    """Inline code spans and the lines of fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            yield line
        else:
            yield from re.findall(r"`([^`]+)`", line)


def _settings() -> dict[str, list[object]]:
    """Every setting's name, with its default in each service (reporting has its own batch)."""
    defaults: dict[str, list[object]] = {}
    models = [importlib.import_module(f"rhythm_{s}.settings").Settings for s in SERVICES]
    for model in [ServiceSettings, *models]:
        for name, field in model.model_fields.items():
            defaults.setdefault(name.upper(), []).append(field.default)
    return defaults


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from tests.kit.test_http_limits import build

    directory = tmp_path_factory.mktemp("apps")
    return {name: build(name, directory) for name in SERVICES}


# ---------------------------------------------------------------------------- settings


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_setting_a_doc_names_exists(doc: Path) -> None:
    known = _settings()
    named = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`", _text(doc)))
    unknown = sorted(named - set(known) - NOT_SETTINGS)
    assert unknown == [], f"{doc.name} names settings no service has: {unknown}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_defaults_quoted_in_prose_are_the_defaults(doc: Path) -> None:
    known = _settings()
    text = re.sub(r"\s+", " ", _text(doc))
    wrong = []
    # "`INBOX_KEEP_DAYS` (30)", "(`HISTORY_KEEP_DAYS`, 180;" and "`X`, 30 days" say the default
    # (not "(64 KiB)" or "(2000 for reporting)": a unit or a remark follows those).
    pattern = r"`([A-Z][A-Z0-9_]+)`(?: \(|, )(\d+(?:\.\d+)?)(?=[);,]| days\b)"
    for name, value in re.findall(pattern, text):
        numbers = [float(d) for d in known.get(name, []) if isinstance(d, int | float)]
        if numbers and float(value) not in numbers:
            wrong.append(f"{name}: {value}, the default is {numbers}")
    assert wrong == [], f"{doc.name}: {wrong}"


# ---------------------------------------------------------------------------- commands


def _commands_named(text: str) -> set[str]:
    found: set[str] = set()
    for code in _code(text):
        # At the start of a command: of the code, of a line, after "$(", "&&", ";" or "|"
        # (not "kubectl -n rhythm create": there it is a namespace).
        pattern = r"(?:^\s*(?:\$ )?|\$\(|&& |; |\| )rhythm((?: [a-z][a-z-]*)+)"
        for match in re.finditer(pattern, code):
            found.add(match.group(1).strip())
    return found


def _resolve(root: Any, words: list[str]) -> str | None:
    """None when the words name a command (its arguments may follow), else what is wrong.
    ``root`` is the command tree (Typer's click groups: ``commands`` maps names to commands)."""
    command = root
    for i, word in enumerate(words):
        if not hasattr(command, "commands"):
            return None  # the rest are the command's arguments
        sub = command.commands.get(word)
        if sub is None:
            return f"`rhythm {' '.join(words[: i + 1])}` is not a command"
        command = sub
    if hasattr(command, "commands"):
        return f"`rhythm {' '.join(words)}` needs a subcommand"
    return None


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_rhythm_command_a_doc_shows_exists(doc: Path) -> None:
    from rhythm_cli.main import app

    root = typer.main.get_command(app)
    problems = [
        problem
        for named in sorted(_commands_named(_text(doc)))
        if (problem := _resolve(root, named.split())) is not None
        # A group named on its own ("the `rhythm dlq` commands") is a name, not a call.
        and not problem.endswith("needs a subcommand")
    ]
    assert problems == []


def test_the_command_check_can_tell_a_missing_command() -> None:
    from rhythm_cli.main import app

    root = typer.main.get_command(app)
    assert _resolve(root, ["people", "import"]) is None
    assert _resolve(root, ["reporting", "rebuild"]) is None
    assert _resolve(root, ["reporting", "rebuilt"]) is not None


# ---------------------------------------------------------------------------- endpoints


def _endpoints(text: str) -> set[tuple[str, str]]:
    """(method, path) for every ``METHOD /path`` the doc names on a service (not SCIM's
    relative paths); ``GET/PUT`` is both, ``[/{id}]`` both with and without."""
    found: set[tuple[str, str]] = set()
    pattern = (
        r"\b((?:GET|POST|PUT|PATCH|DELETE)(?:/(?:GET|POST|PUT|PATCH|DELETE))*) (/[^\s`?,)|…]+)"
    )
    for methods, path in re.findall(pattern, text):
        if not path.startswith(("/v1/", "/dashboard", "/healthz", "/readyz", "/scim/")):
            continue
        variants = {re.sub(r"\[[^]]*\]", "", path), re.sub(r"[\[\]]", "", path)}
        for method in methods.split("/"):
            found |= {(method, variant) for variant in variants}
    return found


def _served(app: object, method: str, path: str) -> bool:
    concrete = re.sub(r"\{[^}]+\}", "x-1", path)
    scope = {"type": "http", "method": method, "path": concrete, "root_path": "", "headers": []}
    return any(
        route.matches(scope)[0] == Match.FULL
        for route in app.router.routes  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_endpoint_a_doc_names_is_served(doc: Path, apps: dict[str, object]) -> None:
    missing = sorted(
        f"{method} {path}"
        for method, path in _endpoints(_text(doc))
        if not any(_served(app, method, path) for app in apps.values())
    )
    assert missing == [], f"{doc.name} names endpoints no service serves: {missing}"


def test_the_endpoint_check_can_tell_a_missing_endpoint(apps: dict[str, object]) -> None:
    assert _served(apps["people"], "PUT", "/v1/people/employees/{employee_id}")
    assert not _served(apps["people"], "DELETE", "/v1/people/employees/{employee_id}")
    assert _endpoints("`GET/PUT /v1/preferences`") == {
        ("GET", "/v1/preferences"),
        ("PUT", "/v1/preferences"),
    }


# ---------------------------------------------------------------------------- topics and keys


def _table(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _retention(text: str) -> tuple[int, bool]:
    if text == "forever":
        return -1, False
    if text == "compacted":
        return -1, True
    weeks = re.fullmatch(r"(\d+) weeks", text)
    assert weeks, f"retention {text!r} is not one the test can read"
    return int(weeks.group(1)) * WEEK_MS, False


def test_the_guides_topic_table_is_the_topic_map() -> None:
    rows = _table(
        _text(GUIDE), "| topic | partitions | retention | events (`ce_type`) | record key |"
    )
    seen = set()
    for topic, partitions, retention, events, _key in rows:
        name = topic.strip("`")
        spec = dlq_spec("<group>") if name == "rhythm.dlq.<group>" else TOPICS[name]
        assert int(partitions) == spec.partitions, name
        assert _retention(retention) == (spec.retention_ms, spec.compacted), name
        for event_type, model in EVENT_TYPES.items():
            if model.topic == name:
                short = "." + event_type.split(".", 2)[2]
                assert f"`{event_type}`" in events or f"`{short}`" in events, event_type
        seen.add(name)
    assert seen == (set(TOPICS) - {INTERNAL_PULSE}) | {"rhythm.dlq.<group>"}


def test_the_guides_key_table_names_the_key_of_every_event_type() -> None:
    rows = _table(_text(GUIDE), "| `ce_type` | record key |")
    keyed: dict[str, str] = {}
    for types, key in rows:
        field = re.fullmatch(r"`<tenant>/<([a-z_]+)>`", key)
        assert field, key
        for event_type in re.findall(r"`(rhythm\.[a-z_.0-9]+)`", types):
            assert event_type not in keyed, f"{event_type} is listed twice"
            keyed[event_type] = field.group(1)
    assert keyed == {t: model.entity_field for t, model in EVENT_TYPES.items()}


def test_the_partition_counts_the_readme_states_are_the_topic_maps() -> None:
    text = re.sub(r"\s+", " ", _text(ROOT / "README.md"))
    assert f"The catalog topics have {DEFAULT_PARTITIONS} partitions" in text
    assert f"the dead-letter topics {DLQ_PARTITIONS}" in text
    assert all(spec.partitions == DEFAULT_PARTITIONS for spec in TOPICS.values())


def test_the_operations_retention_table_is_the_topic_maps() -> None:
    rows = _table(_text(ROOT / "docs" / "operations.md"), "| topic | default | why |")
    listed = set()
    for topics_cell, default, _why in rows:
        for name in re.findall(r"`(rhythm\.[a-z0-9_.<>]+)`", topics_cell):
            spec = dlq_spec("<group>") if name == "rhythm.dlq.<group>" else TOPICS[name]
            assert _retention(default) == (spec.retention_ms, spec.compacted), name
            listed.add(name)
    assert listed == set(TOPICS) | {"rhythm.dlq.<group>"}
