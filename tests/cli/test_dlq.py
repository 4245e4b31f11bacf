"""`rhythm dlq list|replay`: dead letters are listed and re-driven once, on a real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from typer.testing import CliRunner

from rhythm_cli import dlq
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.topics import dlq_spec
from rhythm_shared.contracts.v1.checkins import FeedbackGiven
from rhythm_shared.kit.kafka import ensure_topics, send_to_dlq
from rhythm_shared.testing import publish_events, publish_raw, read_records

pytestmark = pytest.mark.kafka

GROUP = "notifications"


def feedback(tenant: str, feedback_id: str) -> FeedbackGiven:
    return FeedbackGiven(
        tenant_id=tenant,
        occurred_at=datetime.now(UTC),
        feedback_id=feedback_id,
        giver_id="e-1",
        receiver_id="e-2",
        kind="praise",
        requested=False,
    )


@pytest.fixture
def prefixed(topic_prefix: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("COLUMNS", "250")  # rich tables on one line each
    return topic_prefix


async def dead_letter(bootstrap: str, prefix: str, tenant: str, *ids: str) -> list[str]:
    """Publish events to their topic, then park them as the kit's consumer would."""
    await ensure_topics(
        bootstrap, [topics.TOPICS[topics.CHECKINS], dlq_spec(GROUP)], prefix=prefix, partitions=2
    )
    event_ids = await publish_events(
        bootstrap, [feedback(tenant, i) for i in ids], topic_prefix=prefix
    )
    wanted = set(event_ids)
    records: list[ConsumerRecord[bytes, bytes]] = await read_records(
        bootstrap,
        f"{prefix}{topics.CHECKINS}",
        min_count=len(ids),
        predicate=lambda r: dict(r.headers).get("ce_id", b"").decode() in wanted,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for record in records:
            await send_to_dlq(
                producer, record, group=GROUP, reason="handler failed 3 times: boom", prefix=prefix
            )
    finally:
        await producer.stop()
    return event_ids


async def on_checkins(
    bootstrap: str, prefix: str, expect: int
) -> list[ConsumerRecord[bytes, bytes]]:
    return await read_records(
        bootstrap, f"{prefix}{topics.CHECKINS}", min_count=expect, timeout_s=15, settle_s=1.0
    )


async def test_list_shows_where_each_letter_came_from_and_why(
    prefixed: str, kafka_bootstrap: str, tenant: str
) -> None:
    ids = await dead_letter(kafka_bootstrap, prefixed, tenant, "f-1", "f-2")
    letters, replayed_up_to = await dlq.list_letters(GROUP)
    assert sorted(x.ce_id for x in letters) == sorted(ids)
    letter = letters[0]
    assert letter.ce_type == "rhythm.feedback.given.v1"
    assert letter.reason == "handler failed 3 times: boom"
    assert letter.original_topic == f"{prefixed}{topics.CHECKINS}"
    assert letter.origin.startswith(f"{prefixed}{topics.CHECKINS}[")
    assert all(v == 0 for v in replayed_up_to.values())

    result = await asyncio.to_thread(CliRunner().invoke, dlq.app, ["list", GROUP, "--limit", "10"])
    assert result.exit_code == 0, result.output
    assert "rhythm.feedback.given.v1" in result.output
    assert "boom" in result.output


async def test_replay_redrives_each_letter_once_with_its_original_record(
    prefixed: str, kafka_bootstrap: str, tenant: str
) -> None:
    ids = await dead_letter(kafka_bootstrap, prefixed, tenant, "f-1", "f-2")
    originals = await on_checkins(kafka_bootstrap, prefixed, 2)

    dry = await dlq.replay_letters(GROUP, dry_run=True)
    assert len(dry.replayed) == 2
    assert len(await on_checkins(kafka_bootstrap, prefixed, 2)) == 2  # nothing sent

    result = await asyncio.to_thread(CliRunner().invoke, dlq.app, ["replay", GROUP])
    assert result.exit_code == 0, result.output
    assert "replayed 2 letter(s)" in result.output
    after = await on_checkins(kafka_bootstrap, prefixed, 4)
    assert len(after) == 4
    seen = {(r.partition, r.offset) for r in originals}
    replayed = [r for r in after if (r.partition, r.offset) not in seen]
    assert len(replayed) == 2
    by_id = {dict(r.headers)["ce_id"].decode(): r for r in originals}
    for record in replayed:
        envelope = from_record(record.headers, record.value)
        assert envelope.id in ids
        original = by_id[envelope.id]
        assert record.key == original.key
        assert record.value == original.value
        assert not [k for k, _ in record.headers if k.startswith("rhythm_dlq_")]
        assert sorted(record.headers) == sorted(original.headers)

    # A second replay finds nothing new; a letter that arrives later is the only one sent next.
    again = await dlq.replay_letters(GROUP)
    assert again.replayed == []
    [late] = await dead_letter(kafka_bootstrap, prefixed, tenant, "f-3")
    third = await dlq.replay_letters(GROUP)
    assert [x.ce_id for x in third.replayed] == [late]
    letters, replayed_up_to = await dlq.list_letters(GROUP)
    assert len(letters) == 3
    assert all(x.offset < replayed_up_to[x.partition] for x in letters)


async def test_replay_of_chosen_ids_leaves_the_rest_due(
    prefixed: str, kafka_bootstrap: str, tenant: str
) -> None:
    first, second = await dead_letter(kafka_bootstrap, prefixed, tenant, "f-1", "f-2")
    chosen = await dlq.replay_letters(GROUP, ids=[second])
    assert [x.ce_id for x in chosen.replayed] == [second]
    assert chosen.committed == {}
    rest = await dlq.replay_letters(GROUP)
    assert sorted(x.ce_id for x in rest.replayed) == sorted([first, second])


async def test_a_poison_record_is_listed_but_keeps_no_ce_headers(
    prefixed: str, kafka_bootstrap: str
) -> None:
    await ensure_topics(kafka_bootstrap, [dlq_spec(GROUP)], prefix=prefixed, partitions=1)
    await publish_raw(
        kafka_bootstrap,
        f"{prefixed}{topics.dlq_topic(GROUP)}",
        b"\xff not json",
        headers=[("rhythm_dlq_reason", b"unreadable: not a CloudEvent")],
    )
    letters, _ = await dlq.list_letters(GROUP)
    assert [(x.ce_type, x.reason) for x in letters] == [("", "unreadable: not a CloudEvent")]
    report = await dlq.replay_letters(GROUP)
    assert report.replayed == []
    assert len(report.skipped) == 1
