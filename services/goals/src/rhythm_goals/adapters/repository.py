"""Every SQL statement of the goals write side, as methods of the repositories the unit of work
carries (``uow.goals``, ``uow.leavers``); the Protocols they implement are in
:mod:`rhythm_goals.domain.ports`.

Every read takes the tenant and filters by it: an id from another tenant finds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_goals.adapters.db import (
    goal_revisions,
    goals,
    key_results,
    kit,
    leavers,
    progress_records,
)
from rhythm_goals.domain.model import (
    DueGoal,
    Goal,
    KeyResult,
    Leaver,
    ProgressRecord,
    Revision,
)
from rhythm_shared.contracts.v1 import (
    ArchiveReason,
    Direction,
    GoalKind,
    GoalStatus,
    OwnerType,
    Visibility,
)
from rhythm_shared.kit.db import chunks


def goal_from_row(row: Any) -> Goal:
    return Goal(
        goal_id=row.goal_id,
        tenant_id=row.tenant_id,
        owner_type=OwnerType(row.owner_type),
        owner_id=row.owner_id,
        parent_goal_id=row.parent_goal_id,
        kind=GoalKind(row.kind),
        title=row.title,
        description=row.description,
        visibility=Visibility(row.visibility),
        period_start=row.period_start,
        period_end=row.period_end,
        update_interval_days=row.update_interval_days,
        status=GoalStatus(row.status),
        status_overridden=row.status_overridden,
        progress=row.progress,
        confidence=row.confidence,
        revision=row.revision,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        last_progress_at=row.last_progress_at,
        next_stale_check_at=row.next_stale_check_at,
        stale_since=row.stale_since,
        archived_at=row.archived_at,
        archive_reason=ArchiveReason(row.archive_reason) if row.archive_reason else None,
    )


def key_result_from_row(row: Any) -> KeyResult:
    return KeyResult(
        goal_id=row.goal_id,
        key_result_id=row.key_result_id,
        tenant_id=row.tenant_id,
        position=row.position,
        title=row.title,
        unit=row.unit,
        start=row.start,
        target=row.target,
        current=row.current,
        direction=Direction(row.direction),
        weight=row.weight,
        confidence=row.confidence,
        updated_at=row.updated_at,
    )


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """Column values: enums as their values."""
    return {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}


class SqlGoalRepository:
    """Goals with their key results, progress records and revisions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, goal_id: str, *, for_update: bool = False) -> Goal | None:
        stmt = select(goals).where(goals.c.tenant_id == tenant_id, goals.c.goal_id == goal_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).first()
        return None if row is None else goal_from_row(row)

    async def key_results(self, goal_ids: Iterable[str]) -> dict[str, list[KeyResult]]:
        ids = list(goal_ids)
        out: dict[str, list[KeyResult]] = {gid: [] for gid in ids}
        if not ids:
            return out
        rows = await self.session.execute(
            select(key_results)
            .where(key_results.c.goal_id.in_(ids))
            .order_by(key_results.c.goal_id, key_results.c.position)
        )
        for r in rows:
            out[r.goal_id].append(key_result_from_row(r))
        return out

    async def parent_of(self, tenant_id: str, goal_id: str) -> str | None:
        row = (
            await self.session.execute(
                select(goals.c.parent_goal_id).where(
                    goals.c.tenant_id == tenant_id, goals.c.goal_id == goal_id
                )
            )
        ).first()
        return None if row is None else row.parent_goal_id

    async def children_of(self, tenant_id: str, goal_ids: Sequence[str]) -> list[Goal]:
        rows = await self.session.execute(
            select(goals)
            .where(goals.c.tenant_id == tenant_id, goals.c.parent_goal_id.in_(list(goal_ids)))
            .order_by(goals.c.created_at, goals.c.goal_id)
        )
        return [goal_from_row(r) for r in rows]

    async def open_goals_of(self, tenant_id: str, employee_id: str) -> list[Goal]:
        rows = await self.session.execute(
            select(goals).where(
                goals.c.tenant_id == tenant_id,
                goals.c.owner_type == OwnerType.PERSON.value,
                goals.c.owner_id == employee_id,
                goals.c.archived_at.is_(None),
            )
        )
        return [goal_from_row(r) for r in rows]

    async def add(self, goal: Goal, krs: Sequence[KeyResult]) -> None:
        await self.session.execute(goals.insert().values(**_stored(asdict(goal))))
        if krs:
            await self.session.execute(key_results.insert(), [_stored(asdict(kr)) for kr in krs])

    async def change(self, goal_id: str, **values: Any) -> None:
        await self.session.execute(
            update(goals).where(goals.c.goal_id == goal_id).values(**_stored(values))
        )

    async def replace_key_results(self, goal_id: str, krs: Sequence[KeyResult]) -> None:
        await self.session.execute(key_results.delete().where(key_results.c.goal_id == goal_id))
        if krs:
            await self.session.execute(key_results.insert(), [_stored(asdict(kr)) for kr in krs])

    async def measure(
        self,
        goal_id: str,
        key_result_id: str,
        *,
        current: float,
        confidence: float,
        at: datetime,
    ) -> None:
        await self.session.execute(
            update(key_results)
            .where(key_results.c.goal_id == goal_id, key_results.c.key_result_id == key_result_id)
            .values(current=current, confidence=confidence, updated_at=at)
        )

    async def add_progress(self, record: ProgressRecord) -> None:
        await self.session.execute(progress_records.insert().values(**asdict(record)))

    async def add_revision(self, revision: Revision) -> None:
        await self.session.execute(goal_revisions.insert().values(**asdict(revision)))

    async def claim_stale_checks(self, now: datetime, limit: int) -> list[DueGoal]:
        """Up to ``limit`` goals whose stale check is due, oldest first, through
        ``ix_goals_next_stale_check_at``; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several
        replicas share the work without waiting."""
        rows = await self.session.execute(
            select(
                goals.c.goal_id,
                goals.c.tenant_id,
                goals.c.owner_id,
                goals.c.created_at,
                goals.c.last_progress_at,
                goals.c.update_interval_days,
                goals.c.period_end,
            )
            .where(goals.c.next_stale_check_at <= now)
            .order_by(goals.c.next_stale_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [DueGoal(**r._mapping) for r in rows]

    async def end_stale_checks(
        self, goal_ids: Sequence[str], *, stale_since: datetime | None = None
    ) -> None:
        """The goals leave the staleness index; with ``stale_since`` they are stale from then."""
        values: dict[str, Any] = {"next_stale_check_at": None}
        if stale_since is not None:
            values["stale_since"] = stale_since
        for chunk in chunks(goal_ids, 1000):
            await self.session.execute(
                update(goals).where(goals.c.goal_id.in_(chunk)).values(**values)
            )

    # --- erasure ------------------------------------------------------------------------------

    async def goal_ids_owned_by(self, tenant_id: str, employee_id: str) -> list[str]:
        return list(
            (
                await self.session.scalars(
                    select(goals.c.goal_id).where(
                        goals.c.tenant_id == tenant_id,
                        goals.c.owner_type == OwnerType.PERSON.value,
                        goals.c.owner_id == employee_id,
                    )
                )
            ).all()
        )

    async def delete(self, tenant_id: str, goal_ids: Sequence[str]) -> None:
        """Delete the goals with everything they hold, and their outbox rows (published or not:
        a queued event would carry a title out); goals aligned to them become roots."""
        s = self.session
        for chunk in chunks(goal_ids):
            await s.execute(
                update(goals)
                .where(goals.c.tenant_id == tenant_id, goals.c.parent_goal_id.in_(chunk))
                .values(parent_goal_id=None)
            )
            # Children first: SQLite's foreign keys cascade too, but not every engine is asked to.
            for table in (progress_records, key_results, goal_revisions):
                await s.execute(delete(table).where(table.c.goal_id.in_(chunk)))
            await s.execute(delete(goals).where(goals.c.goal_id.in_(chunk)))
            await s.execute(
                delete(kit.outbox).where(kit.outbox.c.key.in_([f"{tenant_id}/{g}" for g in chunk]))
            )

    async def blank_comments_by(self, tenant_id: str, employee_id: str) -> None:
        """The comments the person wrote, in the progress history and in the revisions that
        recorded them; the values they recorded stay."""
        s = self.session
        await s.execute(
            update(progress_records)
            .where(
                progress_records.c.tenant_id == tenant_id,
                progress_records.c.recorded_by == employee_id,
                progress_records.c.comment.is_not(None),
            )
            .values(comment=None)
        )
        revisions = await s.execute(
            select(goal_revisions.c.seq, goal_revisions.c.changes).where(
                goal_revisions.c.tenant_id == tenant_id,
                goal_revisions.c.changed_by == employee_id,
                goal_revisions.c.action == "progress_recorded",
            )
        )
        for seq, changes in revisions.all():
            if isinstance(changes, dict) and changes.get("comment") is not None:
                await s.execute(
                    update(goal_revisions)
                    .where(goal_revisions.c.seq == seq)
                    .values(changes={**changes, "comment": None})
                )


class SqlLeaverRepository:
    """Deactivations dated ahead (``leavers``), claimed when they take effect."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, leaver: Leaver) -> None:
        await self.session.execute(leavers.insert().values(**asdict(leaver)))

    async def remove(self, tenant_id: str, employee_id: str) -> None:
        await self.session.execute(
            leavers.delete().where(
                leavers.c.tenant_id == tenant_id, leavers.c.employee_id == employee_id
            )
        )

    async def claim_due(self, now: datetime, limit: int) -> list[Leaver]:
        """Up to ``limit`` leavers whose date has come, through ``ix_leavers_archive_goals_at``
        (SKIP LOCKED on PostgreSQL)."""
        rows = await self.session.execute(
            select(leavers)
            .where(leavers.c.archive_goals_at <= now)
            .order_by(leavers.c.archive_goals_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [Leaver(**r._mapping) for r in rows]
