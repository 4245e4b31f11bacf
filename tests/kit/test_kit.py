"""The reliability core, end to end on a real broker and real databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import func, select

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.v1.checkins import FeedbackGiven
from rhythm_shared.kit.app import running
from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.settings import DEV_JWT_SECRET
from rhythm_shared.testing import publish_events, publish_raw, read_records, wait_for
from tests.kit import sample

pytestmark = pytest.mark.kafka


def settings(database_url: str, topic_prefix: str, bootstrap: str) -> sample.Settings:
    return sample.Settings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic_prefix=topic_prefix,
        topic_partitions=3,
        environment="development",
        consumer_session_timeout_ms=6000,
        consumer_heartbeat_interval_ms=500,
        relay_poll_interval_s=0.05,
        log_json=False,
    )


def auth(tenant: str, subject: str = "e-1") -> dict[str, str]:
    token = issue_token(
        DEV_JWT_SECRET, tenant=tenant, subject=subject, roles=["employee"], now=_now()
    )
    return {"Authorization": f"Bearer {token}"}


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def feedback(tenant: str, feedback_id: str, giver: str = "e-1") -> FeedbackGiven:
    return FeedbackGiven(
        tenant_id=tenant,
        occurred_at=_now(),
        feedback_id=feedback_id,
        giver_id=giver,
        receiver_id="e-2",
        kind="praise",
        requested=False,
    )


async def test_state_and_outbox_commit_together_or_not_at_all(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, tenant: str, clock: ManualClock
) -> None:
    app = sample.build(settings(database_url, topic_prefix, kafka_bootstrap), clock=clock)
    async with running(app) as runtime:
        with pytest.raises(RuntimeError, match="after the event was queued"):
            await _greet_then_fail(runtime, tenant)
        async with runtime.uow() as uow:
            await sample.greet(
                uow, tenant, "e-1", sample.Greet(greeting_id="g-2", receiver_id="e-2")
            )
        async with runtime.engine.connect() as conn:
            states = (await conn.execute(select(sample.greetings.c.id))).scalars().all()
            payloads = (await conn.execute(select(sample.kit.outbox.c.payload))).scalars().all()
        assert states == ["g-2"]
        assert len(payloads) == 1
        assert '"g-2"' in payloads[0]


async def test_http_write_is_published_once_and_consumed_in_the_same_trace(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, tenant: str
) -> None:
    exporter = InMemorySpanExporter()
    app = sample.build(
        settings(database_url, topic_prefix, kafka_bootstrap), span_exporter=exporter
    )
    async with running(app) as runtime:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            response = await client.post(
                "/v1/greetings",
                json={"greeting_id": "g-1", "receiver_id": "e-2"},
                headers=auth(tenant),
            )
            assert response.status_code == 201, response.text
        assert await wait_for(lambda: sample.effect_counts(runtime)) == {"g-1": 1}
        records = await read_records(
            kafka_bootstrap, f"{topic_prefix}{topics.CHECKINS}", min_count=1, settle_s=1.0
        )
    assert len(records) == 1
    envelope = from_record(records[0].headers, records[0].value)
    assert envelope.type == "rhythm.feedback.given.v1"
    assert envelope.source == "/rhythm/sample"
    assert records[0].key == f"{tenant}/e-2".encode()

    from opentelemetry import trace

    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    spans = exporter.get_finished_spans()
    http = [s for s in spans if s.kind == SpanKind.SERVER and "greetings" in s.name]
    process = [s for s in spans if s.kind == SpanKind.CONSUMER and s.name.endswith("process")]
    assert http
    assert process
    assert {s.context.trace_id for s in process} & {s.context.trace_id for s in http}


async def test_a_retried_request_with_the_same_idempotency_key_has_no_second_effect(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, tenant: str
) -> None:
    app = sample.build(settings(database_url, topic_prefix, kafka_bootstrap))
    async with running(app) as runtime:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            headers = {**auth(tenant), "Idempotency-Key": "k-1"}
            body = {"greeting_id": "g-1", "receiver_id": "e-2"}
            first = await client.post("/v1/greetings", json=body, headers=headers)
            again = await client.post("/v1/greetings", json=body, headers=headers)
            other = await client.post(
                "/v1/greetings", json={**body, "greeting_id": "g-9"}, headers=headers
            )
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert other.status_code == 422
        assert "different request" in other.text
        async with runtime.engine.connect() as conn:
            outbox = await conn.scalar(select(func.count()).select_from(sample.kit.outbox))
        assert outbox == 1


async def test_a_poison_record_goes_to_the_dead_letter_topic_and_the_next_is_processed(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, tenant: str
) -> None:
    app = sample.build(settings(database_url, topic_prefix, kafka_bootstrap))
    async with running(app) as runtime:
        topic = f"{topic_prefix}{topics.CHECKINS}"
        key = f"{tenant}/e-2".encode()
        await publish_raw(
            kafka_bootstrap,
            topic,
            b"{not json",
            key=key,
            headers=[("ce_type", b"rhythm.feedback.given.v1")],
        )
        await publish_events(
            kafka_bootstrap,
            [feedback(tenant, "bad", giver="always-fails"), feedback(tenant, "ok")],
            topic_prefix=topic_prefix,
        )
        assert await wait_for(lambda: sample.effect_counts(runtime)) == {"ok": 1}
        dead = await read_records(
            kafka_bootstrap,
            f"{topic_prefix}{topics.dlq_topic('sample')}",
            min_count=2,
            settle_s=0.5,
        )
    reasons = sorted(dict(r.headers)["rhythm_dlq_reason"].decode() for r in dead)
    assert len(dead) == 2
    assert reasons[0].startswith("handler failed 3 times: ValueError: this giver cannot")
    assert reasons[1].startswith("unreadable: not a CloudEvent")
    assert {dict(r.headers)["rhythm_dlq_topic"] for r in dead} == {topic.encode()}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_batch_that_lost_a_race_is_retried_with_no_record_blamed(
    database_url: str,
    topic_prefix: str,
    kafka_bootstrap: str,
    tenant: str,
) -> None:
    app = sample.build(settings(database_url, topic_prefix, kafka_bootstrap))
    collector = _Collect()
    logging.getLogger().addHandler(collector)  # after the app set up its logging
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(logging.getLogger().removeHandler, collector)
        runtime = await stack.enter_async_context(running(app))
        await publish_events(
            kafka_bootstrap,
            [feedback(tenant, "raced", giver="loses-a-race-once"), feedback(tenant, "next")],
            topic_prefix=topic_prefix,
        )
        assert await wait_for(
            lambda: _when(sample.effect_counts(runtime), lambda c: len(c) == 2)
        ) == {"raced": 1, "next": 1}
        dead = await read_records(
            kafka_bootstrap, f"{topic_prefix}{topics.dlq_topic('sample')}", settle_s=0.5
        )
    assert (tenant, "raced") in sample.RACES_LOST
    assert dead == []
    messages = [r.getMessage() for r in collector.records]
    # Retried as a lost race (at once, an info line), not as an outage (a pause, a traceback),
    # and never split into per-event attempts that would count against the record.
    assert "consumer_batch_conflict" in messages
    assert "consumer_batch_failed" not in messages
    assert "event_handler_failed" not in messages


async def test_a_replayed_event_has_no_second_effect(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, tenant: str
) -> None:
    app = sample.build(settings(database_url, topic_prefix, kafka_bootstrap))
    async with running(app) as runtime:
        event_id = str(uuid.uuid4())
        event = feedback(tenant, "f-1")
        await publish_events(
            kafka_bootstrap,
            [event, event],
            topic_prefix=topic_prefix,
            event_ids=[event_id, event_id],
        )
        await publish_events(kafka_bootstrap, [feedback(tenant, "f-2")], topic_prefix=topic_prefix)
        assert await wait_for(
            lambda: _when(sample.effect_counts(runtime), lambda c: "f-2" in c)
        ) == {"f-1": 1, "f-2": 1}


async def _when(counts: Any, ready: Any) -> Any:
    value = await counts
    return value if ready(value) else None


async def _greet_then_fail(runtime: Any, tenant: str) -> None:
    async with runtime.uow() as uow:
        await sample.greet(uow, tenant, "e-1", sample.Greet(greeting_id="g-1", receiver_id="e-2"))
        raise RuntimeError("failure after the event was queued")


async def test_the_inbox_records_a_chunk_of_ids_once_and_names_the_new_ones(
    database_url: str, topic_prefix: str, kafka_bootstrap: str
) -> None:
    """More ids than one multi-row statement takes, with repeats within the call and ids
    recorded before: each is recorded once, and exactly the new ones come back."""
    app = sample.build(settings(database_url, topic_prefix, kafka_bootstrap))
    async with running(app) as runtime:
        before = [f"ev-{uuid.uuid4()}" for _ in range(300)]
        async with runtime.uow() as uow:
            assert await uow.first_times("c", before) == set(before)
        fresh = [f"ev-{uuid.uuid4()}" for _ in range(1_200)]
        ids = [*fresh, *before[::3], *fresh[:50]]
        async with runtime.uow() as uow:
            assert await uow.first_times("c", ids) == set(fresh)
            assert await uow.first_times("other", before[:2]) == set(before[:2])
        inbox = runtime.tables.inbox
        async with runtime.engine.connect() as conn:
            counted = await conn.scalar(select(func.count()).select_from(inbox))
            rows = await conn.scalar(
                select(func.count(func.distinct(inbox.c.event_id))).where(inbox.c.consumer == "c")
            )
        assert (counted, rows) == (1_502, 1_500)
