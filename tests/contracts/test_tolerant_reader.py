"""The tolerant-reader rule, once for the whole contract (docs/integrator-guide.md, "Versioning
policy"): a field a reader does not know — at the top of a body or inside a nested object such as
a key result, a cadence rule or sealed personal data — is accepted and dropped, and the published
schemas say so (no ``additionalProperties: false`` anywhere). A ``ce_type`` a reader does not
know is not guessed at: Rhythm's consumers dead-letter it (``unreadable: unknown ce_type``), so
it can be replayed once the consumer runs the newer contracts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rhythm_shared.contracts import EVENT_TYPES, EnvelopeError, Event, from_record, to_record
from rhythm_shared.contracts.export import asyncapi_document, event_schema
from tests.contracts.test_catalog import example_of

MODELS = sorted(EVENT_TYPES.values(), key=lambda m: m.type)


def _with_future_fields(node: Any) -> Any:
    """``node`` with a field no model knows added to every object in it."""
    if isinstance(node, dict):
        return {**{k: _with_future_fields(v) for k, v in node.items()}, "added_in_v1_9": "x"}
    if isinstance(node, list):
        return [_with_future_fields(item) for item in node]
    return node


def _closed_objects(node: Any, at: str = "$") -> list[str]:
    if isinstance(node, dict):
        here = [at] if node.get("additionalProperties") is False else []
        return here + [p for k, v in node.items() for p in _closed_objects(v, f"{at}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _closed_objects(v, f"{at}[{i}]")]
    return []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.type)
def test_unknown_fields_anywhere_in_a_body_are_accepted_and_dropped(model: type[Event]) -> None:
    event = model.model_validate(example_of(model))
    record = to_record(event, source="/rhythm/test")
    newer = _with_future_fields(json.loads(record.value))
    read = from_record(list(record.headers), json.dumps(newer).encode()).event
    assert read == event
    assert "added_in_v1_9" not in read.model_dump_json()


def test_nested_objects_of_the_contract_exist_and_are_open() -> None:
    # The objects that were closed once: a nested field added later must not break readers.
    nested = [
        model.__name__
        for model in MODELS
        if any(isinstance(v, dict | list) for v in example_of(model).values())
    ]
    assert {"GoalCreated", "CadencePolicyChanged", "EmployeeUpsertedV2"} <= set(nested)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.type)
def test_no_event_schema_closes_an_object(model: type[Event]) -> None:
    assert _closed_objects(event_schema(model)) == []


def test_the_asyncapi_document_closes_no_object() -> None:
    assert _closed_objects(asyncapi_document()) == []


def test_an_unknown_type_is_not_read_as_something_else() -> None:
    model = MODELS[0]
    record = to_record(model.model_validate(example_of(model)), source="/rhythm/test")
    headers = [
        (k, b"rhythm.goal.added_later.v1" if k == "ce_type" else v) for k, v in record.headers
    ]
    with pytest.raises(EnvelopeError, match="unknown ce_type"):
        from_record(headers, record.value)
