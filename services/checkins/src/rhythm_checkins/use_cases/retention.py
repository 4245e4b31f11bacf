"""Retention after leaving: texts of people who left go once their window has passed.

``departures`` follows the directory (:func:`record_departure`, in the transaction of the people
event). The job claims departures whose window has passed through partial indexes on
``left_at`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas share the work), removes the
texts and marks them removed, so each person's texts are removed once per departure:

* conversation texts (``RETAIN_TEXTS_AFTER_LEAVING_DAYS``): the reflection, GROW agenda and notes
  of the check-ins about them, and the text of their action items;
* feedback (``RETAIN_FEEDBACK_AFTER_LEAVING_DAYS``): the text of feedback they received and the
  prompts of the feedback requests they made.

Rows stay, with their ids, people, kinds, times and pulse: history and the facts reporting holds
keep adding up. Feedback a person gave is the receiver's and stays while the receiver does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.sql.elements import ColumnElement

from rhythm_checkins.adapters.db import (
    action_items,
    checkins,
    departures,
    feedback,
    feedback_requests,
)
from rhythm_checkins.domain.retention import left_before
from rhythm_shared.kit.uow import UnitOfWork

log = logging.getLogger("rhythm.checkins.retention")

#: The check-in columns that hold what was written, never who, when or how much.
CHECKIN_TEXTS = (
    "reflection_wins",
    "reflection_challenges",
    "reflection_help_needed",
    "grow_goal",
    "grow_reality",
    "grow_options",
    "grow_will",
    "notes",
)


async def record_departure(
    uow: UnitOfWork, tenant_id: str, employee_id: str, left_at: datetime | None
) -> None:
    """Follow the directory: a new departure time (or a return) starts the windows afresh."""
    where = (departures.c.tenant_id == tenant_id, departures.c.employee_id == employee_id)
    row = (await uow.session.execute(select(departures).where(*where))).first()
    if (row.left_at if row is not None else None) == left_at:
        return
    values = {"left_at": left_at, "texts_removed_at": None, "feedback_removed_at": None}
    stmt = uow.insert(departures).values(tenant_id=tenant_id, employee_id=employee_id, **values)
    await uow.session.execute(
        stmt.on_conflict_do_update(index_elements=["tenant_id", "employee_id"], set_=values)
    )


@dataclass
class RetentionResult:
    #: People whose conversation texts / received feedback were removed in this round.
    texts: int = 0
    feedback: int = 0

    @property
    def handled(self) -> int:
        return self.texts + self.feedback


async def _claim(
    uow: UnitOfWork, removed_at: ColumnElement[Any], before: datetime, batch_size: int
) -> list[Any]:
    rows = await uow.session.execute(
        select(departures.c.tenant_id, departures.c.employee_id)
        .where(
            departures.c.left_at.is_not(None),
            removed_at.is_(None),
            departures.c.left_at <= before,
        )
        .order_by(departures.c.left_at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    return list(rows)


async def _mark(uow: UnitOfWork, row: Any, column: str, now: datetime) -> None:
    await uow.session.execute(
        update(departures)
        .where(departures.c.tenant_id == row.tenant_id, departures.c.employee_id == row.employee_id)
        .values({column: now})
    )


async def remove_due_texts(
    uow: UnitOfWork, *, texts_days: int, feedback_days: int, batch_size: int
) -> RetentionResult:
    """One batch of each kind, in the caller's transaction."""
    now = uow.clock.now()
    result = RetentionResult()
    for row in await _claim(
        uow, departures.c.texts_removed_at, left_before(now, texts_days), batch_size
    ):
        await uow.session.execute(
            update(checkins)
            .where(checkins.c.tenant_id == row.tenant_id, checkins.c.employee_id == row.employee_id)
            .values(dict.fromkeys(CHECKIN_TEXTS))
        )
        await uow.session.execute(
            update(action_items)
            .where(
                action_items.c.tenant_id == row.tenant_id,
                action_items.c.employee_id == row.employee_id,
            )
            .values(text=None)
        )
        await _mark(uow, row, "texts_removed_at", now)
        result.texts += 1
    for row in await _claim(
        uow, departures.c.feedback_removed_at, left_before(now, feedback_days), batch_size
    ):
        await uow.session.execute(
            update(feedback)
            .where(feedback.c.tenant_id == row.tenant_id, feedback.c.receiver_id == row.employee_id)
            .values(text=None)
        )
        await uow.session.execute(
            update(feedback_requests)
            .where(
                feedback_requests.c.tenant_id == row.tenant_id,
                feedback_requests.c.requester_id == row.employee_id,
            )
            .values(prompt=None)
        )
        await _mark(uow, row, "feedback_removed_at", now)
        result.feedback += 1
    if result.handled:
        log.info(
            "retention_removed_texts",
            extra={"people_texts": result.texts, "people_feedback": result.feedback},
        )
    return result
