"""In-memory stand-ins for the goals service's ports, for unit tests of the handlers (no
database, no broker): the repositories of :mod:`rhythm_goals.domain.ports` and a unit of work
that carries them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rhythm_goals.domain.model import DueGoal, Goal, KeyResult, Leaver, ProgressRecord, Revision
from rhythm_goals.domain.ports import GoalsUnitOfWork
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import OwnerType
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.testing.fakes import FakeUnitOfWork, InMemoryPeople


class FakeGoalRepository:
    def __init__(self) -> None:
        self.goals: dict[str, Goal] = {}
        self.krs: dict[str, list[KeyResult]] = {}
        self.progress: list[ProgressRecord] = []
        self.revisions: list[Revision] = []
        #: Goal ids whose queued events were deleted with them (the SQL side deletes outbox rows).
        self.deleted: list[str] = []

    async def get(self, tenant_id: str, goal_id: str, *, for_update: bool = False) -> Goal | None:
        goal = self.goals.get(goal_id)
        return goal if goal is not None and goal.tenant_id == tenant_id else None

    async def key_results(self, goal_ids: Iterable[str]) -> dict[str, list[KeyResult]]:
        return {gid: sorted(self.krs.get(gid, []), key=lambda kr: kr.position) for gid in goal_ids}

    async def parent_of(self, tenant_id: str, goal_id: str) -> str | None:
        goal = await self.get(tenant_id, goal_id)
        return None if goal is None else goal.parent_goal_id

    async def children_of(self, tenant_id: str, goal_ids: Sequence[str]) -> list[Goal]:
        children = [
            g
            for g in self.goals.values()
            if g.tenant_id == tenant_id and g.parent_goal_id in goal_ids
        ]
        return sorted(children, key=lambda g: (g.created_at, g.goal_id))

    async def open_goals_of(self, tenant_id: str, employee_id: str) -> list[Goal]:
        return [
            g
            for g in self.goals.values()
            if g.tenant_id == tenant_id
            and g.owner_type == OwnerType.PERSON
            and g.owner_id == employee_id
            and g.archived_at is None
        ]

    async def add(self, goal: Goal, krs: Sequence[KeyResult]) -> None:
        assert goal.goal_id not in self.goals, "goal ids are unique"
        self.goals[goal.goal_id] = goal
        self.krs[goal.goal_id] = list(krs)

    async def change(self, goal_id: str, **values: Any) -> None:
        self.goals[goal_id] = dataclasses.replace(self.goals[goal_id], **values)

    async def replace_key_results(self, goal_id: str, krs: Sequence[KeyResult]) -> None:
        self.krs[goal_id] = list(krs)

    async def measure(
        self,
        goal_id: str,
        key_result_id: str,
        *,
        current: float,
        confidence: float,
        at: datetime,
    ) -> None:
        self.krs[goal_id] = [
            dataclasses.replace(kr, current=current, confidence=confidence, updated_at=at)
            if kr.key_result_id == key_result_id
            else kr
            for kr in self.krs[goal_id]
        ]

    async def add_progress(self, record: ProgressRecord) -> None:
        self.progress.append(record)

    async def add_revision(self, revision: Revision) -> None:
        assert (revision.goal_id, revision.revision) not in {
            (r.goal_id, r.revision) for r in self.revisions
        }, "one revision number per goal"
        self.revisions.append(revision)

    async def claim_stale_checks(self, now: datetime, limit: int) -> list[DueGoal]:
        due = sorted(
            (
                g
                for g in self.goals.values()
                if g.next_stale_check_at is not None and g.next_stale_check_at <= now
            ),
            key=lambda g: g.next_stale_check_at or now,
        )
        return [
            DueGoal(
                goal_id=g.goal_id,
                tenant_id=g.tenant_id,
                owner_id=g.owner_id,
                created_at=g.created_at,
                last_progress_at=g.last_progress_at,
                update_interval_days=g.update_interval_days,
                period_end=g.period_end,
            )
            for g in due[:limit]
        ]

    async def end_stale_checks(
        self, goal_ids: Sequence[str], *, stale_since: datetime | None = None
    ) -> None:
        for goal_id in goal_ids:
            goal = self.goals[goal_id]
            self.goals[goal_id] = dataclasses.replace(
                goal,
                next_stale_check_at=None,
                stale_since=stale_since if stale_since is not None else goal.stale_since,
            )

    async def goal_ids_owned_by(self, tenant_id: str, employee_id: str) -> list[str]:
        return [
            g.goal_id
            for g in self.goals.values()
            if g.tenant_id == tenant_id
            and g.owner_type == OwnerType.PERSON
            and g.owner_id == employee_id
        ]

    async def delete(self, tenant_id: str, goal_ids: Sequence[str]) -> None:
        gone = set(goal_ids)
        for goal in list(self.goals.values()):
            if goal.tenant_id == tenant_id and goal.parent_goal_id in gone:
                self.goals[goal.goal_id] = dataclasses.replace(goal, parent_goal_id=None)
        for goal_id in gone:
            self.goals.pop(goal_id, None)
            self.krs.pop(goal_id, None)
        self.progress = [p for p in self.progress if p.goal_id not in gone]
        self.revisions = [r for r in self.revisions if r.goal_id not in gone]
        self.deleted.extend(goal_ids)

    async def blank_comments_by(self, tenant_id: str, employee_id: str) -> None:
        self.progress = [
            dataclasses.replace(p, comment=None)
            if p.tenant_id == tenant_id and p.recorded_by == employee_id
            else p
            for p in self.progress
        ]
        self.revisions = [
            dataclasses.replace(r, changes={**r.changes, "comment": None})
            if r.tenant_id == tenant_id
            and r.changed_by == employee_id
            and r.action == "progress_recorded"
            and r.changes.get("comment") is not None
            else r
            for r in self.revisions
        ]


class FakeLeaverRepository:
    def __init__(self) -> None:
        self.leavers: dict[tuple[str, str], Leaver] = {}

    async def add(self, leaver: Leaver) -> None:
        self.leavers[(leaver.tenant_id, leaver.employee_id)] = leaver

    async def remove(self, tenant_id: str, employee_id: str) -> None:
        self.leavers.pop((tenant_id, employee_id), None)

    async def claim_due(self, now: datetime, limit: int) -> list[Leaver]:
        due = sorted(
            (leaver for leaver in self.leavers.values() if leaver.archive_goals_at <= now),
            key=lambda leaver: leaver.archive_goals_at,
        )
        return due[:limit]


class FakeGoalsUnitOfWork(FakeUnitOfWork):
    """The kit's fake unit of work with the goals repositories and an in-memory directory;
    ``event_ids`` are the CloudEvents ids of ``events``, in order."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        super().__init__(clock)
        self.goals = FakeGoalRepository()
        self.leavers = FakeLeaverRepository()
        self.people = InMemoryPeople()
        self.event_ids: list[str] = []

    async def publish(self, event: Event, *, event_id: str | None = None) -> str:
        eid = await super().publish(event, event_id=event_id)
        self.event_ids.append(eid)
        return eid


def _conforms(uow: FakeGoalsUnitOfWork) -> GoalsUnitOfWork:
    """mypy checks here that the fakes implement the ports the handlers are typed by."""
    return uow
