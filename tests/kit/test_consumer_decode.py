"""The consumer's decode path: whatever a batch holds, each record is an event or unreadable
with a reason, and decoding never raises (property-based, hypothesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st

from rhythm_shared.contracts.base import EVENT_TYPES
from rhythm_shared.contracts.envelope import to_record
from rhythm_shared.contracts.v1 import FeedbackGiven
from rhythm_shared.kit.consumer import decode

GOOD = to_record(
    FeedbackGiven(
        tenant_id="acme",
        occurred_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        feedback_id="f-1",
        giver_id="e-1",
        receiver_id="e-2",
        kind="praise",
        requested=False,
    ),
    source="/rhythm/tests",
)
BODY: dict[str, Any] = json.loads(GOOD.value)
NAMES = [name for name, _ in GOOD.headers] + ["traceparent", "x-other"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)
bodies = st.one_of(
    st.binary(max_size=2000),
    st.none(),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.tuples(st.sampled_from(sorted(BODY)), json_values).map(
        lambda change: json.dumps({**BODY, change[0]: change[1]}).encode()
    ),
    st.just(GOOD.value),
)
header_sets = st.one_of(
    st.just(GOOD.headers),
    st.lists(
        st.tuples(
            st.sampled_from(NAMES) | st.text(max_size=12),
            st.binary(max_size=30) | st.none() | st.sampled_from([v for _, v in GOOD.headers]),
        ),
        max_size=12,
    ),
)


def record(offset: int, value: bytes | None, headers: Any) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        "rhythm.checkins.v1", 0, offset, 0, 0, b"acme/e-2", value, None, 0, 0, headers
    )


@given(batch=st.lists(st.tuples(bodies, header_sets), max_size=8))
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


def test_a_body_that_is_not_utf8_is_unreadable_and_the_next_record_decodes() -> None:
    bad = GOOD.value.replace(b"praise", "praisé".encode("latin-1"))
    first, second = (decode(record(n, v, GOOD.headers)) for n, v in enumerate([bad, GOOD.value]))
    assert first.error is not None
    assert "body is not UTF-8" in first.error
    assert second.envelope is not None
