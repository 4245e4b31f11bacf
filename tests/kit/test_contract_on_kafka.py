"""Every event of the catalog survives a real Kafka record unchanged."""

from __future__ import annotations

import pytest

from rhythm_shared.contracts import EVENT_TYPES
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.topics import TOPICS
from rhythm_shared.kit.kafka import ensure_topics
from rhythm_shared.testing import publish_events, read_records

pytestmark = pytest.mark.kafka


async def test_every_event_round_trips_through_a_real_kafka_record(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await ensure_topics(kafka_bootstrap, TOPICS.values(), prefix=topic_prefix, partitions=1)
    events = [
        model.model_validate(example)
        for model in EVENT_TYPES.values()
        for example in (model.model_config.get("json_schema_extra") or {}).get("examples", [])  # type: ignore[union-attr]
    ]
    assert {type(e) for e in events} == set(EVENT_TYPES.values())
    ids = await publish_events(kafka_bootstrap, events, topic_prefix=topic_prefix)
    received = {}
    for topic in TOPICS:
        for record in await read_records(kafka_bootstrap, f"{topic_prefix}{topic}", timeout_s=10):
            envelope = from_record(record.headers, record.value)
            received[envelope.id] = (envelope, record)
    assert set(received) == set(ids)
    for event_id, event in zip(ids, events, strict=True):
        envelope, record = received[event_id]
        assert envelope.event == event
        assert record.key == event.key.encode()
        assert envelope.subject == event.subject
        assert envelope.time == event.occurred_at
