"""Retention after leaving: texts of people who left go once their window has passed.

``departures`` follows the directory (:func:`record_departure`, in the transaction of the people
event). The job claims departures whose window has passed (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so replicas share the work), removes the texts and marks them removed, so each
person's texts are removed once per departure:

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

from rhythm_checkins.commands import RemoveDueTexts
from rhythm_checkins.domain.ports import CheckinsUnitOfWork
from rhythm_checkins.domain.records import Departure
from rhythm_checkins.domain.retention import left_before

log = logging.getLogger("rhythm.checkins.retention")


async def record_departure(
    uow: CheckinsUnitOfWork, tenant_id: str, employee_id: str, left_at: datetime | None
) -> None:
    """Follow the directory: a new departure time (or a return) starts the windows afresh."""
    row = await uow.departures.get(tenant_id, employee_id)
    if (row.left_at if row is not None else None) == left_at:
        return
    await uow.departures.save(Departure(tenant_id, employee_id, left_at))


@dataclass
class RetentionResult:
    #: People whose conversation texts / received feedback were removed in this round.
    texts: int = 0
    feedback: int = 0

    @property
    def handled(self) -> int:
        return self.texts + self.feedback


async def remove_due_texts(uow: CheckinsUnitOfWork, cmd: RemoveDueTexts) -> RetentionResult:
    """One batch of each kind, in the caller's transaction."""
    now = uow.clock.now()
    result = RetentionResult()
    for d in await uow.departures.claim_texts_due(left_before(now, cmd.texts_days), cmd.batch_size):
        await uow.checkins.remove_texts(d.tenant_id, d.employee_id)
        await uow.departures.mark_removed(d.tenant_id, d.employee_id, texts=True, now=now)
        result.texts += 1
    before = left_before(now, cmd.feedback_days)
    for d in await uow.departures.claim_feedback_due(before, cmd.batch_size):
        await uow.feedback.remove_received_texts(d.tenant_id, d.employee_id)
        await uow.departures.mark_removed(d.tenant_id, d.employee_id, texts=False, now=now)
        result.feedback += 1
    if result.handled:
        log.info(
            "retention_removed_texts",
            extra={"people_texts": result.texts, "people_feedback": result.feedback},
        )
    return result
