"""The outbox relay of a bulk import: the kit's relay, minus its per-event overhead.

The kit's :class:`OutboxRelay` opens an OpenTelemetry PRODUCER span and bumps a metric per
event, which is right for the trickle of a running service. An import of 200,000 rows has no
request to trace and would spend as long on that bookkeeping as on sending, so this relay sends
the stored records as they are (the same key, value and CloudEvents headers) and counts once per
round. Order, the PostgreSQL relay lock and mark-after-ack are the kit's, unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from rhythm_shared.kit.outbox import PUBLISHED, OutboxRelay


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
