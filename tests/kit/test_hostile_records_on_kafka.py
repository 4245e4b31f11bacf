"""Hostile records on a real broker, through each service's real consumer group.

On ``rhythm.people.v1`` (which every consumer group reads), one partition receives each kind of
poison the chaos suite knows (body not UTF-8, invalid JSON, deep nesting, oversized, missing or
garbled ``ce_`` headers, unknown type, valid JSON of the wrong shape), then a readable event its
handler raises on, then a valid event. Each service must apply the valid event, and park every
other record in ``rhythm.dlq.<group>`` with its reason — none of them may stop the partition.

The handler that raises is a stand-in for a bug: the service's handlers (reporting: its
projection) are wrapped to raise for one event id; everything else is the service as it ships.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import import_module
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from bench.chaos.workload import POISON_KINDS, hostile
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import Envelope, to_record
from rhythm_shared.contracts.v1 import EmployeeUpserted
from rhythm_shared.kit import app as kit_app
from rhythm_shared.kit.app import running
from rhythm_shared.kit.consumer import ConsumerSpec, EventConsumer
from rhythm_shared.kit.kafka import DLQ_REASON
from rhythm_shared.kit.uow import UnitOfWork
from rhythm_shared.testing import read_records, wait_for

pytestmark = pytest.mark.kafka

SERVICES = ["goals", "checkins", "notifications", "reporting"]
MAX_RECORD_BYTES = 64 * 1024
RAISES = "hostile-handler-raises"


def employee(tenant: str, employee_id: str) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=tenant,
        occurred_at=datetime.now(UTC),
        employee_id=employee_id,
        email=f"{employee_id}@acme.example.com",
        display_name="Ana de Vries",
        org_unit_id="ou-1",
        time_zone="Europe/Amsterdam",
        locale="nl",
        hired_on="2023-09-01",
    )


class RaisingConsumer(EventConsumer):
    """The kit's consumer with each handler wrapped to raise for the one event id ``RAISES``."""

    def __init__(self, spec: ConsumerSpec, *args: Any, **kwargs: Any) -> None:
        def failing(handler: Callable[..., Any]) -> Callable[..., Any]:
            async def handle(uow: UnitOfWork, envelope: Envelope) -> None:
                if envelope.id == RAISES:
                    raise ValueError("this event cannot be applied")
                await handler(uow, envelope)

            return handle

        handlers = {t: failing(h) for t, h in spec.handlers.items()}
        super().__init__(dataclasses.replace(spec, handlers=handlers), *args, **kwargs)


def raise_in_projection(monkeypatch: pytest.MonkeyPatch) -> None:
    consumers = import_module("rhythm_reporting.entrypoints.consumers")
    project = consumers.project_events

    async def projecting(uow: Any, command: Any) -> Any:
        if any(envelope.id == RAISES for envelope in command.events):
            raise ValueError("this event cannot be applied")
        return await project(uow, command)

    monkeypatch.setattr(consumers, "project_events", projecting)


async def applied(runtime: Any, service: str, tenant: str, event_id: str) -> bool:
    async with runtime.engine.connect() as conn:
        if service == "reporting":
            versions = import_module("rhythm_reporting.adapters.db").employee_versions
            query = select(versions.c.employee_id).where(
                versions.c.tenant_id == tenant, versions.c.employee_id == "e-valid"
            )
        else:
            inbox = runtime.tables.inbox
            query = select(inbox.c.event_id).where(
                inbox.c.consumer == service, inbox.c.event_id == event_id
            )
        return (await conn.execute(query)).first() is not None


@pytest.mark.parametrize("service", SERVICES)
async def test_hostile_records_are_dead_lettered_with_reasons_and_the_next_is_applied(
    service: str,
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if service == "reporting":
        raise_in_projection(monkeypatch)
    else:
        monkeypatch.setattr(kit_app, "EventConsumer", RaisingConsumer)
    module = import_module(f"rhythm_{service}.main")
    settings = module.Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        topic_partitions=3,
        environment="development",
        consumer_session_timeout_ms=6000,
        consumer_heartbeat_interval_ms=500,
        consumer_max_attempts=2,
        consumer_max_record_bytes=MAX_RECORD_BYTES,
        relay_poll_interval_s=0.05,
        log_json=False,
        run_jobs=False,
    )
    key = f"{tenant}/e-valid".encode()  # one partition: the valid event comes after the poison
    now = datetime.now(UTC)
    poison = [hostile(kind, tenant, topics.PEOPLE, n, now) for n, kind in enumerate(POISON_KINDS)]
    # The other two garbage-header variants: a duplicated ce_type, a header without a value.
    later = [
        n + len(POISON_KINDS) * k for k in (1, 2) for n in [POISON_KINDS.index("garbage_headers")]
    ]
    poison += [hostile("garbage_headers", tenant, topics.PEOPLE, n, now) for n in later]
    raising = to_record(employee(tenant, "e-raises"), source="/rhythm/tests", event_id=RAISES)
    valid = to_record(employee(tenant, "e-valid"), source="/rhythm/tests", event_id="valid-1")
    async with running(module.build(settings)) as runtime:
        await wait_for(lambda: _connected(runtime), timeout_s=60)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        sent: dict[int, str] = {}
        try:
            for name, value, headers in [
                *((p.poison_id or "", p.value, p.headers) for p in poison),
                ("raises", raising.value, raising.headers),
                ("valid", valid.value, valid.headers),
            ]:
                meta = await producer.send_and_wait(
                    f"{topic_prefix}{topics.PEOPLE}", value, key=key, headers=headers
                )
                sent[meta.offset] = name
        finally:
            await producer.stop()
        assert await wait_for(lambda: applied(runtime, service, tenant, "valid-1"), timeout_s=60)
        dead = await read_records(
            kafka_bootstrap,
            f"{topic_prefix}{topics.dlq_topic(service)}",
            min_count=len(poison) + 1,
            settle_s=1.0,
        )
    reasons = {
        sent[int(dict(r.headers)["rhythm_dlq_offset"])]: dict(r.headers)[DLQ_REASON].decode()
        for r in dead
    }
    assert sorted(reasons) == sorted([*(str(p.poison_id) for p in poison), "raises"])
    assert len(dead) == len(reasons), "each record is dead-lettered once"
    by_kind = {kind: reasons[f"poison-{n}"] for n, kind in enumerate(POISON_KINDS)}
    assert "body is not UTF-8" in by_kind["non_utf8"]
    assert "nests deeper" in by_kind["deep_nesting"]
    assert f"over the limit of {MAX_RECORD_BYTES}" in by_kind["oversized"]
    assert all(reason.startswith("unreadable: ") for reason in by_kind.values())
    assert "unknown ce_type" in by_kind["unknown_type"]
    assert "Input should be a valid dictionary" in by_kind["wrong_shape"]
    assert reasons["raises"].startswith("handler failed 2 times: ValueError: this event cannot")


async def _connected(runtime: Any) -> bool:
    # Services connect to Kafka in the background; consumers start once connected.
    event = getattr(runtime, "kafka_connected", None)
    return event is None or event.is_set()
