"""Housekeeping: the kit's own tables stay as large as their purpose needs, not forever.

* outbox rows, once published, are only there for inspection: kept ``outbox_keep_days``;
* inbox rows de-duplicate redelivered records: redelivery comes from a rewind after a crash or a
  rebalance, within minutes, so ``inbox_keep_days`` (30) is far more than enough; an operator who
  rewinds a group further than that must expect non-idempotent effects again;
* idempotency keys answer a client's retry of a write: kept ``idempotency_keep_days``.

Each round deletes at most ``batch`` rows per table through an index on the time column, so a
round holds locks briefly and a full round runs again at once (see :class:`JobSpec`). Services
prune their own history with the same :class:`Housekeeper` and rules of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Column, ColumnElement, Table, delete, select, tuple_

from rhythm_shared.kit.db import KitTables
from rhythm_shared.kit.uow import UnitOfWorkFactory

log = logging.getLogger("rhythm.housekeeping")

PRUNED = Counter("rhythm_pruned_rows_total", "Rows deleted by housekeeping", ["table"])


@dataclass(frozen=True)
class Retention:
    outbox_days: float
    inbox_days: float
    idempotency_days: float
    audit_days: float = 365


@dataclass(frozen=True)
class Prune:
    """Delete rows of ``table`` whose ``column`` is older than ``days`` (and match ``where``)."""

    table: Table
    column: Column[Any]
    days: float
    where: tuple[ColumnElement[bool], ...] = ()


def kit_rules(tables: KitTables, retention: Retention) -> list[Prune]:
    return [
        # `published_at < cutoff` never matches NULL: an unpublished row is never deleted.
        Prune(tables.outbox, tables.outbox.c.published_at, retention.outbox_days),
        Prune(tables.inbox, tables.inbox.c.processed_at, retention.inbox_days),
        Prune(tables.idempotency, tables.idempotency.c.created_at, retention.idempotency_days),
        *(
            [Prune(tables.audit, tables.audit.c.at, retention.audit_days)]
            if tables.audit is not None
            else []
        ),
    ]


class Housekeeper:
    def __init__(
        self, uow: UnitOfWorkFactory[Any], rules: Sequence[Prune], batch: int = 5_000
    ) -> None:
        self.uow = uow
        self.rules = list(rules)
        self.batch = batch

    async def run_once(self) -> int:
        """One round: delete what has outlived its retention; returns the most rows deleted
        by one rule (a full batch means there is more to delete)."""
        most = 0
        for rule in self.rules:
            deleted = await self._prune(rule)
            if deleted:
                PRUNED.labels(rule.table.name).inc(deleted)
                log.info("pruned", extra={"table": rule.table.name, "rows": deleted})
            most = max(most, deleted)
        return most

    async def _prune(self, rule: Prune) -> int:
        keys = list(rule.table.primary_key.columns)
        async with self.uow() as uow:
            cutoff = uow.clock.now() - timedelta(days=rule.days)
            oldest = (
                select(*keys)
                .where(rule.column < cutoff, *rule.where)
                .order_by(rule.column)
                .limit(self.batch)
            )
            match = keys[0].in_(oldest) if len(keys) == 1 else tuple_(*keys).in_(oldest)
            result = await uow.session.execute(delete(rule.table).where(match))
            return int(result.rowcount or 0)
