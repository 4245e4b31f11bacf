"""Names, titles and units are one line of text, in the shared value types and every event.

Generated, not listed: any control character (C0 with TAB/CR/LF, DEL, C1, U+2028/2029, bidi
embeddings/overrides/isolates) anywhere in a name is refused with a message naming it; any text
without one is accepted unchanged, whatever its script. Every event field that carries such text
refuses it (found from the schemas, so a new field is covered without editing this test), and no
event carries a string that is not constrained at all.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from rhythm_shared.contracts import Event, v1
from rhythm_shared.contracts.v1.values import (
    CONTROL_CHARACTERS,
    DisplayName,
    MeasureUnit,
    Title,
)

#: Every character a single line refuses, by the code points the rule names.
control_characters = st.one_of(
    st.integers(0x00, 0x1F),
    st.integers(0x7F, 0x9F),
    st.integers(0x2028, 0x2029),
    st.integers(0x202A, 0x202E),
    st.integers(0x2066, 0x2069),
).map(chr)
#: Text of any script, punctuation, symbols, spaces and marks (LRM/RLM among them).
one_line_text = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")).filter(
        lambda c: not re.match(CONTROL_CHARACTERS, c)
    ),
    min_size=1,
    max_size=32,
)

TYPES = {"DisplayName": DisplayName, "Title": Title, "MeasureUnit": MeasureUnit}


@pytest.mark.parametrize("name", TYPES)
@given(before=st.text(max_size=10), bad=control_characters, after=st.text(max_size=10))
def test_a_control_character_anywhere_is_refused_and_named(
    name: str, before: str, bad: str, after: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(TYPES[name]).validate_python(before + bad + after)
    messages = [e["msg"] for e in refused.value.errors()]
    assert any("control characters" in m for m in messages), messages


@pytest.mark.parametrize("name", TYPES)
@given(text=one_line_text)
def test_text_without_control_characters_is_accepted_unchanged(name: str, text: str) -> None:
    assert TypeAdapter(TYPES[name]).validate_python(text) == text


def test_the_message_says_which_character_and_where() -> None:
    with pytest.raises(ValidationError, match=r"U\+000D at position 4"):
        TypeAdapter(DisplayName).validate_python("Ana\r\nBcc: x@example.com")


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return schema["$defs"][ref.rsplit("/", 1)[-1]] if isinstance(ref, str) else node


def _strings(
    schema: dict[str, Any], node: dict[str, Any], path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """Every string schema in ``node`` with its path (list items as index 0)."""
    node = _resolve(schema, node)
    for option in node.get("anyOf", []):
        yield from _strings(schema, option, path)
    if node.get("type") == "string":
        yield path, node
    if node.get("type") == "array" and "items" in node:
        yield from _strings(schema, node["items"], (*path, 0))
    for prop, sub in node.get("properties", {}).items():
        yield from _strings(schema, sub, (*path, prop))


def _one_line_fields() -> list[tuple[type[Event], tuple[str | int, ...]]]:
    fields = []
    for model in v1.EVENTS:
        schema = model.model_json_schema()
        for path, node in _strings(schema, schema):
            if CONTROL_CHARACTERS in node.get("pattern", ""):
                fields.append((model, path))
    return fields


ONE_LINE_FIELDS = _one_line_fields()


def test_the_names_and_titles_on_events_are_one_line_fields() -> None:
    found = {(m.__name__, p) for m, p in ONE_LINE_FIELDS}
    assert {
        ("EmployeeUpserted", ("display_name",)),
        ("OrgUnitUpserted", ("name",)),
        ("GoalCreated", ("title",)),
        ("GoalCreated", ("key_results", 0, "unit")),
    } <= found


@pytest.mark.parametrize(
    ("model", "path"), ONE_LINE_FIELDS, ids=[f"{m.__name__}.{p}" for m, p in ONE_LINE_FIELDS]
)
@given(bad=control_characters)
def test_every_event_refuses_a_control_character_in_its_names_and_titles(
    model: type[Event], path: tuple[str | int, ...], bad: str
) -> None:
    extra: Any = model.model_config["json_schema_extra"]
    body = copy.deepcopy(extra["examples"][0])
    model.model_validate(body)  # the example itself is fine
    node: Any = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = f"Name{bad}Bcc: x@example.com"
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    assert [e["loc"] for e in refused.value.errors()] == [path]


@pytest.mark.parametrize("model", v1.EVENTS, ids=lambda m: m.__name__)
def test_no_event_carries_an_unconstrained_string(model: type[Event]) -> None:
    # A free `str` on an event would take a CR/LF to every consumer: each string is an id
    # (pattern), a closed set (enum), a formatted value (email, time) or one line of text.
    schema = model.model_json_schema()
    free = [
        path
        for path, node in _strings(schema, schema)
        if not ({"enum", "const", "pattern", "format"} & node.keys())
    ]
    assert free == []
