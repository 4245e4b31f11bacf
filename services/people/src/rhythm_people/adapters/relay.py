"""The outbox relay of a bulk import: the kit's relay, minus its per-event overhead.

The kit's :class:`OutboxRelay` opens an OpenTelemetry PRODUCER span and bumps a metric per
event, which is right for the trickle of a running service. An import of 200,000 rows has no
request to trace and would spend as long on that bookkeeping as on sending, so this relay sends
the stored records as they are (the same key, value and CloudEvents headers) and counts once per
round. Order, the PostgreSQL relay lock and mark-after-ack are the kit's, unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, func, select

from rhythm_shared.contracts.v1.people import OrgUnitUpserted
from rhythm_shared.kit.outbox import PUBLISHED, OutboxRelay
from rhythm_shared.kit.runtime import Runtime


class BulkOutboxRelay(OutboxRelay):
    async def _send(self, rows: Sequence[Row[Any]]) -> None:
        send = self.producer.send
        futures = [
            await send(
                f"{self.topic_prefix}{row.topic}",
                value=row.payload.encode(),
                key=row.key.encode(),
                headers=[(k, v.encode()) for k, v in row.headers],
            )
            for row in rows
        ]
        await asyncio.gather(*futures)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.topic] = counts.get(row.topic, 0) + 1
        for topic, n in counts.items():
            PUBLISHED.labels(topic).inc(n)


async def relay_outbox(
    runtime: Runtime[Any, Any, Any],
    chunk: int,
    *,
    on_total: Callable[[int], None] | None = None,
    on_done: Callable[[int], None] | None = None,
    stall_timeout_s: float = 120.0,
) -> int:
    """Relay every pending outbox row, org units first, until the outbox is drained."""
    assert runtime.producer is not None
    outbox = runtime.tables.outbox
    relay = BulkOutboxRelay(
        runtime.engine,
        runtime.tables,
        runtime.producer,
        topic_prefix=runtime.settings.kafka_topic_prefix,
        batch_size=chunk,
    )
    pending = outbox.c.published_at.is_(None)
    async with runtime.engine.connect() as conn:
        total = int(await conn.scalar(select(func.count()).where(pending)) or 0)
        last_unit = await conn.scalar(
            select(func.max(outbox.c.seq)).where(
                pending & (outbox.c.event_type == OrgUnitUpserted.type)
            )
        )
        units_first = int(
            await conn.scalar(select(func.count()).where(pending & (outbox.c.seq <= last_unit)))
            or 0
            if last_unit is not None
            else 0
        )
    if on_total:
        on_total(total)
    done = 0
    last_remaining, stalled_since = total, time.monotonic()
    while True:
        # A round ends only when every record of it is acknowledged: a round that stops where
        # the org units stop sends no employee before every unit is on the broker.
        relay.batch_size = min(chunk, units_first) if units_first > 0 else chunk
        sent = await relay.publish_pending()
        units_first = max(0, units_first - sent)
        done += sent
        if sent == 0:
            async with runtime.engine.connect() as conn:
                remaining = int(await conn.scalar(select(func.count()).where(pending)) or 0)
            if remaining == 0:
                break
            # Another relay (a running people service) holds the lock and is publishing them.
            if remaining < last_remaining:
                last_remaining, stalled_since = remaining, time.monotonic()
            elif time.monotonic() - stalled_since > stall_timeout_s:
                raise TimeoutError(
                    f"{remaining} events wait in the outbox and no relay is publishing them; "
                    "the people service's relay publishes them once it runs"
                )
            done = max(done, total - remaining)
            await asyncio.sleep(0.2)
        if on_done:
            on_done(min(done, total))
    return done
