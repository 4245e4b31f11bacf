"""Housekeeping: the kit's own tables stay as large as their purpose needs, not forever.

* outbox rows, once published, are only there for inspection: kept ``outbox_keep_days``;
* inbox rows de-duplicate redelivered records: redelivery comes from a rewind after a crash or a
  rebalance, within minutes, so ``inbox_keep_days`` (30) is far more than enough; an operator who
  rewinds a group further than that must expect non-idempotent effects again;
* idempotency keys answer a client's retry of a write: kept ``idempotency_keep_days``.

Each round deletes at most ``batch`` rows per table through an index on the time column, so a
round holds locks briefly and a full round runs again at once (see :class:`JobSpec`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Column, Table, delete, select, tuple_

from rhythm_shared.kit.db import KitTables
from rhythm_shared.kit.uow import UnitOfWorkFactory

log = logging.getLogger("rhythm.housekeeping")

PRUNED = Counter("rhythm_pruned_rows_total", "Rows deleted by housekeeping", ["table"])


@dataclass(frozen=True)
class Retention:
    outbox_days: float
    inbox_days: float
    idempotency_days: float


class Housekeeper:
    def __init__(
        self, uow: UnitOfWorkFactory, tables: KitTables, retention: Retention, batch: int = 5_000
    ) -> None:
        self.uow = uow
        self.tables = tables
        self.retention = retention
        self.batch = batch

    async def run_once(self) -> int:
        """One round: delete what has outlived its retention; returns the most rows deleted
        from one table (a full batch means there is more to delete)."""
        t = self.tables
        rounds = [
            (t.outbox, t.outbox.c.published_at, self.retention.outbox_days),
            (t.inbox, t.inbox.c.processed_at, self.retention.inbox_days),
            (t.idempotency, t.idempotency.c.created_at, self.retention.idempotency_days),
        ]
        most = 0
        for table, column, days in rounds:
            deleted = await self._prune(table, column, days)
            if deleted:
                PRUNED.labels(table.name).inc(deleted)
                log.info("pruned", extra={"table": table.name, "rows": deleted})
            most = max(most, deleted)
        return most

    async def _prune(self, table: Table, column: Column[Any], days: float) -> int:
        keys = list(table.primary_key.columns)
        async with self.uow() as uow:
            cutoff = uow.clock.now() - timedelta(days=days)
            # `column < cutoff` never matches NULL: an unpublished outbox row is never deleted.
            oldest = select(*keys).where(column < cutoff).order_by(column).limit(self.batch)
            match = keys[0].in_(oldest) if len(keys) == 1 else tuple_(*keys).in_(oldest)
            result = await uow.session.execute(delete(table).where(match))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
