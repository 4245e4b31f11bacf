"""Whatever a record holds, decoding it gives an event or says why not — never anything else.

Property-based (hypothesis): arbitrary bytes, header sets and JSON shapes go through the
decoder every kit consumer uses (``from_record``), and through the consumer's own ``decode``
of a batch (the positions mode's path), which never raises.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.chaos.workload import POISON_KINDS, READERS, hostile
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import EVENT_TYPES, Event
from rhythm_shared.contracts.envelope import (
    MAX_JSON_DEPTH,
    Envelope,
    EnvelopeError,
    _checked_body,
    _quick_body,
    from_record,
    to_record,
)
from rhythm_shared.contracts.v1 import EmployeeUpserted
from rhythm_shared.kit.consumer import decode
from tests.contracts.test_catalog import example_of

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

GOOD = to_record(
    EmployeeUpserted(
        tenant_id="acme",
        occurred_at=NOW,
        employee_id="e-1",
        email="ana@acme.example.com",
        display_name="Ana",
        org_unit_id="ou-1",
        time_zone="Europe/Amsterdam",
        locale="nl",
        hired_on="2023-09-01",
    ),
    source="/rhythm/tests",
)
GOOD_BODY: dict[str, Any] = json.loads(GOOD.value)
NAMES = [name for name, _ in GOOD.headers] + ["traceparent", "tracestate", "CE_ID", "x-other"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)
header_values = st.one_of(
    st.binary(max_size=40),
    st.none(),
    st.text(max_size=20).map(str.encode),
    st.sampled_from([v for _, v in GOOD.headers]),
)
header_sets = st.lists(
    st.tuples(st.sampled_from(NAMES) | st.text(max_size=12), header_values), max_size=14
)


def decodes_or_says_why(headers: Any, value: Any, **kwargs: Any) -> Envelope | EnvelopeError:
    try:
        return from_record(headers, value, **kwargs)
    except EnvelopeError as exc:
        error = exc
    assert str(error), "an envelope error says what is wrong"
    return error


@given(value=st.binary(max_size=3000) | st.none())
def test_any_body_under_good_headers_is_an_event_or_an_envelope_error(value: bytes | None) -> None:
    decodes_or_says_why(GOOD.headers, value)


@given(headers=header_sets, value=st.sampled_from([GOOD.value, b"", b"\xff", b"{}"]))
def test_any_set_of_headers_is_an_event_or_an_envelope_error(
    headers: list[tuple[str, bytes | None]], value: bytes
) -> None:
    decodes_or_says_why(headers, value)


@given(
    headers=st.one_of(
        st.none(),
        st.just("ce_id"),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=12), header_values, max_size=8),
        st.lists(st.tuples(st.integers() | st.binary(max_size=5), header_values), max_size=3),
    ),
    value=st.sampled_from([GOOD.value, "text", 7, bytearray(GOOD.value)]),
)
def test_headers_and_bodies_of_the_wrong_types_are_envelope_errors_too(
    headers: Any, value: Any
) -> None:
    decodes_or_says_why(headers, value)


@given(
    field=st.sampled_from(sorted(GOOD_BODY)),
    replacement=json_values,
    drop=st.booleans(),
)
def test_a_valid_body_with_one_field_changed_is_an_event_or_an_envelope_error(
    field: str, replacement: Any, drop: bool
) -> None:
    body = dict(GOOD_BODY)
    if drop:
        body.pop(field)
    else:
        body[field] = replacement
    decodes_or_says_why(GOOD.headers, json.dumps(body).encode())


@given(shape=json_values)
def test_any_json_shape_is_an_event_or_an_envelope_error(shape: Any) -> None:
    decodes_or_says_why(GOOD.headers, json.dumps(shape).encode())


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=30)
@given(
    depth=st.integers(min_value=MAX_JSON_DEPTH + 1, max_value=100_000), kind=st.sampled_from("[{")
)
def test_json_nested_deeper_than_the_bound_is_refused(depth: int, kind: str) -> None:
    # (at most 100,000 levels: 6 bytes a level stays under the body's size cap, tested apart)
    inner = "[]" if kind == "[" else '{"a": 1}'
    nested = ("[" * depth + "]" * depth) if kind == "[" else '{"a": ' * depth + inner + "}" * depth
    body = json.dumps({**GOOD_BODY, "x": 0})[:-1] + ', "deep": ' + nested + "}"
    with pytest.raises(EnvelopeError, match="nests deeper"):
        from_record(GOOD.headers, body.encode())


def test_a_valid_record_still_decodes() -> None:
    envelope = from_record(GOOD.headers, GOOD.value)
    assert isinstance(envelope.event, EmployeeUpserted)


def test_a_body_that_is_not_utf8_is_the_records_fault() -> None:
    body = GOOD.value.replace(b"Ana", "Anaïs".encode("latin-1"))
    with pytest.raises(EnvelopeError, match="body is not UTF-8"):
        from_record(GOOD.headers, body)


def test_a_body_over_the_size_cap_is_refused_before_parsing() -> None:
    with pytest.raises(EnvelopeError, match="over the limit of 100"):
        from_record(GOOD.headers, b"{" * 101, max_bytes=100)


def test_a_duplicated_header_is_refused_rather_than_guessed() -> None:
    with pytest.raises(EnvelopeError, match="'ce_type' appears more than once"):
        from_record([*GOOD.headers, ("ce_type", b"rhythm.goal.created.v1")], GOOD.value)


@pytest.mark.parametrize("kind", POISON_KINDS)
def test_every_chaos_poison_kind_is_an_envelope_error(kind: str) -> None:
    for n, topic in enumerate(READERS):
        record = hostile(kind, "acme", topic, n, NOW)
        with pytest.raises(EnvelopeError):
            from_record(record.headers, record.value, max_bytes=64 * 1024)
    assert topics.PEOPLE in READERS


def record(offset: int, value: bytes | None, headers: Any) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topics.PEOPLE, 0, offset, 0, 0, b"acme/e-1", value, None, 0, 0, headers)


@given(batch=st.lists(st.tuples(st.binary(max_size=300) | st.none(), header_sets), max_size=8))
def test_every_record_of_a_batch_is_an_event_or_unreadable_with_a_reason(
    batch: list[tuple[bytes | None, Any]],
) -> None:
    records = [record(n, value, headers) for n, (value, headers) in enumerate(batch)]
    decoded = [decode(r, max_bytes=1500) for r in records]
    assert [d.record for d in decoded] == records
    for item in decoded:
        assert (item.envelope is None) == bool(item.error)
        assert item.error is None or item.error.startswith("unreadable: ")
        assert item.type_label == "?" or item.type_label in EVENT_TYPES


def test_a_batch_decodes_on_past_an_unreadable_record() -> None:
    bad = GOOD.value.replace(b'"Ana"', '"Anä"'.encode("latin-1"))
    first, second = (decode(record(n, v, GOOD.headers)) for n, v in enumerate([bad, GOOD.value]))
    assert first.error is not None
    assert "body is not UTF-8" in first.error
    assert second.envelope is not None


# -- the one-pass parse (pydantic's JSON parser) beside the step by step path -------------------

#: JSON text pieces the two parsers might read differently: escapes (unpaired surrogates, a
#: pair, control characters), numbers past float and past Python's digit limit, NaN, a BOM.
TRICKY = [
    '"\\ud800"',
    '"\\udc00x"',
    '"\\ud83d\\ude00"',
    '"a\\u0000b"',
    '"tab\there"',
    "1e400",
    "-0",
    "NaN",
    "Infinity",
    "9" * 5000,
    "12345678901234567890123",
    '"\ufeff"',
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
]


def _checked(model: type[Event], body: bytes) -> Event | None:
    try:
        return _checked_body(model.type, model, body)
    except EnvelopeError:
        return None


def _same_event(model: type[Event], body: bytes) -> None:
    """Whatever the one-pass parse accepts, the step by step path accepts as the same event."""
    quick = _quick_body(model, body)
    if quick is not None:
        checked = _checked(model, body)
        assert checked is not None, body
        assert (type(quick), quick.model_dump_json()) == (type(checked), checked.model_dump_json())


@settings(max_examples=400)
@given(data=st.data(), event_type=st.sampled_from(sorted(EVENT_TYPES)))
def test_the_one_pass_parse_accepts_nothing_the_checked_path_would_not(
    data: st.DataObject, event_type: str
) -> None:
    model = EVENT_TYPES[event_type]
    body = dict(example_of(model))
    for _ in range(data.draw(st.integers(0, 3))):
        field = data.draw(st.sampled_from([*sorted(body), "extra", "x-unknown"]))
        if data.draw(st.booleans()):
            body.pop(field, None)
        else:
            body[field] = data.draw(json_values)
    text = json.dumps(body, ensure_ascii=data.draw(st.booleans()))
    if data.draw(st.booleans()):  # a raw piece spliced in where a value or text would be
        at = data.draw(st.integers(0, len(text)))
        piece = data.draw(st.sampled_from(TRICKY) | st.text(max_size=8))
        text = text[:at] + piece + text[at:]
    raw = text.encode("utf-8", errors="surrogatepass")
    if data.draw(st.booleans()):
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] + data.draw(st.binary(max_size=6)) + raw[at:]
    _same_event(model, raw)


@pytest.mark.parametrize("piece", TRICKY)
@pytest.mark.parametrize("where", ["extra", "display_name"])
def test_tricky_json_in_a_field_is_read_the_same_or_refused(piece: str, where: str) -> None:
    text = json.dumps(GOOD_BODY)[:-1] + f', "{where}": {piece}}}'
    raw = text.encode()
    _same_event(EmployeeUpserted, raw)
    # and through the whole decoder: an event, or an error that says why
    decodes_or_says_why(GOOD.headers, raw)


def test_a_body_with_more_brackets_than_the_depth_allowed_takes_the_checked_path() -> None:
    shallow_but_many = json.dumps({**GOOD_BODY, "x": [[] for _ in range(MAX_JSON_DEPTH)]})
    assert _quick_body(EmployeeUpserted, shallow_but_many.encode()) is None
    assert isinstance(from_record(GOOD.headers, shallow_but_many.encode()).event, EmployeeUpserted)
