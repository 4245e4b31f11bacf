"""Privacy by design: no event may carry the text of a conversation.

Walks every registered event's JSON Schema (nested models, lists and optionals included). A field
named like conversation text fails; so does any free-form string that is not on the short list of
personal data consumers need to act (email, display_name, title, name). Other strings must be
closed (enum/const), shaped (pattern/format) or short (maxLength <= 128).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

import rhythm_shared.contracts  # noqa: F401  (registers every catalog version)
from rhythm_shared.contracts import EVENT_TYPES, Event, Identifier

#: Field names (or ``_``-separated parts of names) that mean conversation text.
DENIED_WORDS = {
    "note",
    "notes",
    "text",
    "comment",
    "comments",
    "reflection",
    "body",
    "description",
    "message",
    "wins",
    "challenges",
    "reality",
    "options",
    "will",
    "content",
    "summary",
    "agenda",
}
DENIED_NAMES = DENIED_WORDS | {"help_needed", "goal_text", "feedback_text"}

#: Personal data that may ride along so consumers can act (write to someone, name a goal).
ALLOWED_TEXT = {"email", "display_name", "title", "name"}
MAX_FREE_LENGTH = 128


def _denied(name: str) -> bool:
    lowered = name.lower()
    return lowered in DENIED_NAMES or any(part in DENIED_WORDS for part in lowered.split("_"))


def _is_string(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def _constrained(node: dict[str, Any]) -> bool:
    if any(key in node for key in ("enum", "const", "pattern", "format")):
        return True
    max_length = node.get("maxLength")
    return isinstance(max_length, int) and max_length <= MAX_FREE_LENGTH


def privacy_violations(model: type[BaseModel]) -> list[str]:
    """What in ``model``'s JSON Schema could carry conversation text (empty list: nothing)."""
    root = model.model_json_schema()
    problems: list[str] = []

    def resolve(
        node: dict[str, Any], seen: frozenset[str]
    ) -> tuple[dict[str, Any], frozenset[str]]:
        while "$ref" in node:
            ref = node["$ref"]
            if ref in seen:  # a recursive model: already being walked
                return {}, seen
            seen = seen | {ref}
            target: Any = root
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node, seen

    def walk(node: dict[str, Any], path: str, prop: str | None, seen: frozenset[str]) -> None:
        node, seen = resolve(node, seen)
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for sub in node.get(key, []):
                walk(sub, path, prop, seen)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{path}[]", prop, seen)
        for name, sub in node.get("properties", {}).items():
            where = f"{path}.{name}"
            if _denied(name):
                problems.append(f"{where}: named like conversation text")
            walk(sub, where, name, seen)
        free_text = prop is not None and prop not in ALLOWED_TEXT and _is_string(node)
        if free_text and not _constrained(node):
            problems.append(f"{path}: free-form string (no enum/pattern/format/maxLength)")

    walk(root, model.__name__, None, frozenset())
    return problems


@pytest.mark.parametrize("model", list(EVENT_TYPES.values()), ids=lambda m: m.type)
def test_no_event_carries_conversation_text(model: type[Event]) -> None:
    assert privacy_violations(model) == []


# --- the guard itself must bite ---------------------------------------------------------------


class _ActionItem(BaseModel):
    owner_id: Identifier
    text: str = Field(max_length=100)


# No ``type`` ClassVar, so Event.__init_subclass__ does not register these in EVENT_TYPES.
class _LeakyCheckin(Event):
    """A deliberately bad event: carries the notes of a 1:1."""

    checkin_id: Identifier
    notes: str | None = None
    action_items: list[_ActionItem] = []


class _FreeFormEvent(Event):
    """A deliberately bad event: an innocent-looking but unbounded string."""

    employee_id: Identifier
    mood: str


class _BoundedEvent(Event):
    """A fine event: its strings are bounded or allowed personal data."""

    employee_id: Identifier
    mood: str = Field(max_length=32)
    display_name: str


def test_throwaway_models_are_not_registered() -> None:
    registered = set(EVENT_TYPES.values())
    assert not {_LeakyCheckin, _FreeFormEvent, _BoundedEvent} & registered


def test_guard_catches_text_fields_at_any_depth() -> None:
    problems = privacy_violations(_LeakyCheckin)
    assert any(p.startswith("_LeakyCheckin.notes:") for p in problems), problems
    assert any(".action_items[].text:" in p for p in problems), problems


def test_guard_catches_unbounded_strings() -> None:
    assert privacy_violations(_FreeFormEvent) == [
        "_FreeFormEvent.mood: free-form string (no enum/pattern/format/maxLength)"
    ]


def test_guard_allows_bounded_strings_and_allowed_personal_data() -> None:
    assert privacy_violations(_BoundedEvent) == []


@pytest.mark.parametrize(
    "name", ["notes", "reflection_text", "goal_text", "help_needed", "manager_comment", "Summary"]
)
def test_denied_names(name: str) -> None:
    assert _denied(name)


@pytest.mark.parametrize("name", ["employee_id", "open_action_items", "goals_discussed", "pulse"])
def test_allowed_names(name: str) -> None:
    assert not _denied(name)
