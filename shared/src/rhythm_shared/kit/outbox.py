"""The outbox relay: publishes committed outbox rows in order, then marks them published.

A crash between publish and mark means the row is published again on restart: a duplicate
(absorbed by consumers' inboxes), never a loss. On PostgreSQL, a transaction-scoped advisory lock
keeps one relay publishing at a time, so several replicas never reorder one key's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter
from sqlalchemy import Row, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rhythm_shared.contracts.envelope import TRACE_HEADERS
from rhythm_shared.kit.db import KitTables, write_gate

log = logging.getLogger("rhythm.outbox")
tracer = trace.get_tracer("rhythm.outbox")

PUBLISHED = Counter("rhythm_outbox_published_total", "Outbox events published", ["topic"])
_RELAY_LOCK = 7_301_001


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        tables: KitTables,
        producer: AIOKafkaProducer,
        *,
        topic_prefix: str = "",
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        wakeup: asyncio.Event | None = None,
        reader: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        #: SQLite: what is pending is read through the reader engine (a WAL snapshot, no write
        #: lock), so a round takes the writer slot only to mark what it published.
        self.reader = reader or engine
        self.outbox = tables.outbox
        self.producer = producer
        self.topic_prefix = topic_prefix
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.wakeup = wakeup or asyncio.Event()

    def _pending(self) -> Any:
        return (
            select(self.outbox)
            .where(self.outbox.c.published_at.is_(None))
            .order_by(self.outbox.c.seq)
            .limit(self.batch_size)
        )

    async def publish_pending(self) -> int:
        """One round: publish up to ``batch_size`` rows in order. Returns how many."""
        postgres = self.engine.dialect.name == "postgresql"
        if not postgres and self.reader is not self.engine:
            async with self.reader.connect() as reading:
                rows = (await reading.execute(self._pending())).all()
            if not rows:
                return 0
            await self._send(rows)
            async with write_gate(self.engine), self.engine.connect() as conn:
                await self._mark(conn, [r.seq for r in rows])
            return len(rows)
        async with self.engine.connect() as conn:
            async with write_gate(self.engine):  # SQLite: its reads begin as writers too
                if postgres and not await conn.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _RELAY_LOCK}
                ):
                    await conn.rollback()
                    return 0
                rows = (await conn.execute(self._pending())).all()
                if not rows or not postgres:
                    await conn.rollback()  # SQLite: don't hold the write lock while publishing
            if not rows:
                return 0
            await self._send(rows)
            async with write_gate(self.engine):
                await self._mark(conn, [r.seq for r in rows])
            return len(rows)

    async def _send(self, rows: Sequence[Row[Any]]) -> None:
        futures = []
        for row in rows:
            stored = [(k, v) for k, v in row.headers if k not in TRACE_HEADERS]
            parent = propagate.extract({k: v for k, v in row.headers if k in TRACE_HEADERS})
            topic = f"{self.topic_prefix}{row.topic}"
            # OpenTelemetry messaging conventions: a PRODUCER span "<destination> publish",
            # child of the request that wrote the event; its context rides in the headers.
            with tracer.start_as_current_span(
                f"{topic} publish",
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": topic,
                    "messaging.message.id": row.event_id,
                    "messaging.operation.type": "publish",
                },
            ):
                trace_headers: dict[str, str] = {}
                propagate.inject(trace_headers)
            headers = [(k, v.encode()) for k, v in [*stored, *trace_headers.items()]]
            futures.append(
                await self.producer.send(
                    topic, value=row.payload.encode(), key=row.key.encode(), headers=headers
                )
            )
            PUBLISHED.labels(row.topic).inc()
        await asyncio.gather(*futures)

    async def _mark(self, conn: AsyncConnection, seqs: list[int]) -> None:
        if self.engine.dialect.name != "postgresql":
            await conn.begin()
        await conn.execute(
            update(self.outbox)
            .where(self.outbox.c.seq.in_(seqs))
            .values(published_at=datetime.now(UTC))
        )
        await conn.commit()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; wake on new commits, poll as a safety net."""
        backoff = 0.5
        while not stop.is_set():
            # Cleared before the round reads, not after: a commit while it publishes sets it
            # again and the next round starts at once, rather than after the poll interval.
            self.wakeup.clear()
            try:
                published = await self.publish_pending()
                backoff = 0.5
            except Exception:
                log.exception("outbox_relay_failed", extra={"retry_in_s": backoff})
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if published >= self.batch_size:
                continue
            waiter = asyncio.ensure_future(self.wakeup.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=self.poll_interval_s, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            stopper.cancel()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
