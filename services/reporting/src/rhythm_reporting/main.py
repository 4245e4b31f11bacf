"""Composition root of the reporting service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from rhythm_reporting.adapters.db import kit, metadata
from rhythm_reporting.adapters.store import ensure_active_generation
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.entrypoints.consumers import (
    GROUP,
    BatchApplier,
    LiveIngest,
    every_topic,
    run_live_ingest,
)
from rhythm_reporting.entrypoints.http import dashboard_page_router, dashboards_router
from rhythm_reporting.settings import Settings
from rhythm_shared.contracts.topics import TOPICS, dlq_spec
from rhythm_shared.kit.app import ServiceDefinition, create_app
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.crypto import load_kek
from rhythm_shared.kit.kafka import client_security, ensure_topics, make_producer
from rhythm_shared.kit.runtime import Runtime

__all__ = ["Settings", "build"]

log = logging.getLogger("rhythm.reporting")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

DESCRIPTION = """\
Reporting: is the rhythm of goals, check-ins and feedback alive in the organisation, and where
is it not? It consumes every topic into plain SQL read models (see the `v_*` views) and answers
the executive dashboard under `/v1/dashboards` (page: `/dashboard`). Groups of fewer than five
people are suppressed; every table exports as CSV."""


@dataclass
class Ingest:
    """Reporting's own ingest (position-based exactly-once), started beside the kit's runtime."""

    connecting: asyncio.Task[None] | None = None
    ingest: LiveIngest | None = None
    producer: Any = None
    task: asyncio.Task[None] | None = None


ReportingRuntime = Runtime[Settings, SqlReportingUnitOfWork, Ingest]


def build(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()

    async def on_start(runtime: ReportingRuntime) -> Ingest:
        async with runtime.sessions() as session, session.begin():
            await ensure_active_generation(session, runtime.clock.now())
        state = Ingest()
        if not settings.run_consumers:
            return state

        async def connect() -> None:
            # Like the kit's own Kafka start-up: retried in the background, so reporting starts
            # (and answers dashboards) while the broker is away.
            security = client_security(settings)
            delay = 0.5
            while True:
                producer = make_producer(settings.kafka_bootstrap_servers, security)
                ingest: LiveIngest | None = None
                try:
                    await ensure_topics(
                        settings.kafka_bootstrap_servers,
                        [settings.topic_spec(s) for s in (*TOPICS.values(), dlq_spec(GROUP))],
                        prefix=settings.kafka_topic_prefix,
                        partitions=settings.topic_partitions,
                        replication=settings.topic_replication_factor,
                        security=security,
                    )
                    await producer.start()
                    applier = BatchApplier(
                        runtime.sessions,
                        producer,
                        runtime.clock,
                        topic_prefix=settings.kafka_topic_prefix,
                        max_attempts=settings.consumer_max_attempts,
                        max_record_bytes=settings.consumer_max_record_bytes,
                        kek=load_kek(settings.data_key_encryption_key.get_secret_value()),
                    )
                    ingest = LiveIngest(
                        applier,
                        bootstrap=settings.kafka_bootstrap_servers,
                        topics=every_topic(settings.kafka_topic_prefix),
                        group_id=f"{settings.kafka_topic_prefix}{GROUP}",
                        batch_size=settings.batch_size,
                        session_timeout_ms=settings.consumer_session_timeout_ms,
                        heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
                        security=security,
                    )
                    await ingest.start()
                    break
                except Exception as exc:
                    if ingest is not None:
                        with contextlib.suppress(Exception):
                            await ingest.close()
                    await producer.stop()
                    log.warning("reporting_kafka_unavailable", extra={"error": repr(exc)})
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 15.0)
            state.ingest = ingest
            state.producer = producer
            state.task = asyncio.create_task(run_live_ingest(ingest), name="reporting-ingest")

        state.connecting = asyncio.create_task(connect(), name="reporting-connect")
        return state

    async def on_stop(runtime: ReportingRuntime) -> None:
        state = runtime.resources
        if state.connecting is not None:
            state.connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.connecting
        if state.ingest is not None:
            await state.ingest.stop()
            if state.task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(state.task, 30)
            await state.ingest.close()
            await state.producer.stop()

    return create_app(
        ServiceDefinition(
            name="reporting",
            settings=settings,
            metadata=metadata,
            tables=kit,
            unit_of_work=SqlReportingUnitOfWork,
            migrations=MIGRATIONS,
            routers=[dashboards_router, dashboard_page_router],
            on_start=on_start,
            on_stop=on_stop,
            clock=clock,
            description=DESCRIPTION,
            lag_groups={GROUP: list(TOPICS)} if settings.run_consumers else {},
        )
    )
