"""In-memory stand-ins of the check-ins service's storage, for unit tests of the handlers.

Each repository keeps its records in dicts and has the methods of its protocol in
:mod:`rhythm_checkins.domain.ports` (mypy checks that :class:`FakeCheckinsUnitOfWork` is a
``CheckinsUnitOfWork``). Locks are not modelled: a unit test runs one handler at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from rhythm_checkins.domain.conversations import CheckinState
from rhythm_checkins.domain.obligations import OUTSTANDING, ObligationState
from rhythm_checkins.domain.policy import CadencePolicy
from rhythm_checkins.domain.ports import CheckinsUnitOfWork
from rhythm_checkins.domain.records import (
    CHECKIN_TEXTS,
    ActionItem,
    Checkin,
    Decision,
    Departure,
    Feedback,
    FeedbackRequest,
    Goal,
    NewFact,
    Obligation,
    TenantSettings,
)
from rhythm_shared.contracts.v1 import OwnerType, Visibility
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.testing.fakes import FakeUnitOfWork, InMemoryPeople


def _outstanding(o: Obligation) -> bool:
    return o.state in OUTSTANDING


class InMemoryCheckinRepository:
    def __init__(self) -> None:
        self.rows: dict[str, Checkin] = {}
        self.items: dict[str, ActionItem] = {}
        self.tenant_settings: dict[str, TenantSettings] = {}

    async def get(self, tenant_id: str, checkin_id: str, *, lock: bool = False) -> Checkin | None:
        row = self.rows.get(checkin_id)
        return row if row is not None and row.tenant_id == tenant_id else None

    async def add(self, checkin: Checkin) -> None:
        assert checkin.id not in self.rows
        self.rows[checkin.id] = checkin

    async def update(self, checkin_id: str, **values: Any) -> None:
        if checkin_id in self.rows:
            self.rows[checkin_id] = dataclasses.replace(self.rows[checkin_id], **values)

    async def listing(
        self,
        tenant_id: str,
        *,
        employee_id: str | None = None,
        manager_id: str | None = None,
        participant: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> list[Checkin]:
        found = [
            c
            for c in self.rows.values()
            if c.tenant_id == tenant_id
            and (employee_id is None or c.employee_id == employee_id)
            and (manager_id is None or c.manager_id == manager_id)
            and (participant is None or participant in (c.employee_id, c.manager_id))
            and (state is None or c.state == state)
        ]
        return sorted(found, key=lambda c: c.scheduled_for, reverse=True)[:limit]

    async def last_held(
        self, tenant_id: str, employee_id: str, *, other_than: str
    ) -> datetime | None:
        held = [
            c.held_at
            for c in self.rows.values()
            if c.tenant_id == tenant_id
            and c.employee_id == employee_id
            and c.state == CheckinState.COMPLETED.value
            and c.id != other_than
            and c.held_at is not None
        ]
        return max(held, default=None)

    async def hand_over(
        self, tenant_id: str, employee_id: str, manager_id: str, now: datetime
    ) -> list[str]:
        ids = [
            c.id
            for c in self.rows.values()
            if c.tenant_id == tenant_id
            and c.employee_id == employee_id
            and c.state == CheckinState.SCHEDULED.value
            and c.manager_id != manager_id
        ]
        for i in ids:
            await self.update(i, manager_id=manager_id, updated_at=now)
        return ids

    async def action_items(
        self, tenant_id: str, employee_id: str, *, of_checkin: str | None, open_ones: bool
    ) -> list[ActionItem]:
        found = [
            i
            for i in self.items.values()
            if i.tenant_id == tenant_id
            and i.employee_id == employee_id
            and (
                (of_checkin is not None and i.checkin_id == of_checkin)
                or (open_ones and i.done_at is None)
            )
        ]
        return sorted(found, key=lambda i: i.created_at)

    async def add_action_item(self, item: ActionItem) -> None:
        self.items[item.id] = item

    async def action_item(self, tenant_id: str, item_id: str) -> ActionItem | None:
        item = self.items.get(item_id)
        return item if item is not None and item.tenant_id == tenant_id else None

    async def set_action_item_done(self, item_id: str, done_at: datetime | None) -> None:
        self.items[item_id] = dataclasses.replace(self.items[item_id], done_at=done_at)

    async def settings(self, tenant_id: str) -> TenantSettings:
        return self.tenant_settings.get(tenant_id, TenantSettings())

    async def save_settings(self, tenant_id: str, settings: TenantSettings, now: datetime) -> None:
        self.tenant_settings[tenant_id] = settings

    async def remove_texts(self, tenant_id: str, employee_id: str) -> None:
        for c in list(self.rows.values()):
            if c.tenant_id == tenant_id and c.employee_id == employee_id:
                await self.update(c.id, **dict.fromkeys(CHECKIN_TEXTS))
        for i in list(self.items.values()):
            if i.tenant_id == tenant_id and i.employee_id == employee_id:
                self.items[i.id] = dataclasses.replace(i, text=None)

    async def forget_person(self, tenant_id: str, person: str) -> None:
        about = {
            c.id for c in self.rows.values() if c.tenant_id == tenant_id and c.employee_id == person
        }
        for i in list(self.items.values()):
            if i.tenant_id != tenant_id:
                continue
            if i.employee_id == person or i.checkin_id in about:
                del self.items[i.id]
            elif i.owner_id == person:
                self.items[i.id] = dataclasses.replace(i, text=None)
        for c in about:
            del self.rows[c]


class InMemoryFeedbackRepository:
    def __init__(self) -> None:
        self.rows: dict[str, Feedback] = {}
        self.requests: dict[str, FeedbackRequest] = {}

    async def get(self, tenant_id: str, feedback_id: str) -> Feedback | None:
        row = self.rows.get(feedback_id)
        return row if row is not None and row.tenant_id == tenant_id else None

    async def add(self, feedback: Feedback) -> None:
        self.rows[feedback.id] = feedback

    async def listing(
        self,
        tenant_id: str,
        *,
        receiver_id: str | None = None,
        giver_id: str | None = None,
        limit: int = 100,
    ) -> list[Feedback]:
        found = [
            f
            for f in self.rows.values()
            if f.tenant_id == tenant_id
            and (receiver_id is None or f.receiver_id == receiver_id)
            and (giver_id is None or f.giver_id == giver_id)
        ]
        return sorted(found, key=lambda f: f.created_at, reverse=True)[:limit]

    async def request(
        self, tenant_id: str, request_id: str, *, lock: bool = False
    ) -> FeedbackRequest | None:
        row = self.requests.get(request_id)
        return row if row is not None and row.tenant_id == tenant_id else None

    async def add_request(self, request: FeedbackRequest) -> None:
        self.requests[request.id] = request

    async def answer_request(self, request_id: str, feedback_id: str) -> None:
        self.requests[request_id] = dataclasses.replace(
            self.requests[request_id], feedback_id=feedback_id
        )

    async def open_requests(self, tenant_id: str, from_id: str) -> list[FeedbackRequest]:
        found = [
            r
            for r in self.requests.values()
            if r.tenant_id == tenant_id and r.from_id == from_id and r.feedback_id is None
        ]
        return sorted(found, key=lambda r: r.created_at)

    async def remove_received_texts(self, tenant_id: str, employee_id: str) -> None:
        for f in list(self.rows.values()):
            if f.tenant_id == tenant_id and f.receiver_id == employee_id:
                self.rows[f.id] = dataclasses.replace(f, text=None)
        for r in list(self.requests.values()):
            if r.tenant_id == tenant_id and r.requester_id == employee_id:
                self.requests[r.id] = dataclasses.replace(r, prompt=None)

    async def forget_person(self, tenant_id: str, person: str) -> None:
        for f in list(self.rows.values()):
            if f.tenant_id != tenant_id:
                continue
            if f.receiver_id == person:
                del self.rows[f.id]
            elif f.giver_id == person:
                self.rows[f.id] = dataclasses.replace(f, text=None)
        for r in list(self.requests.values()):
            if r.tenant_id == tenant_id and person in (r.requester_id, r.from_id):
                del self.requests[r.id]


class InMemoryCadenceRepository:
    def __init__(self, covered: Callable[[str], dict[str, str | None]]) -> None:
        self.policies_: dict[tuple[str, str], CadencePolicy] = {}
        self.obligations: dict[str, Obligation] = {}
        self.facts: dict[tuple[str, str], NewFact] = {}
        self.plan_at: dict[tuple[str, str], datetime | None] = {}
        #: The tenant's employees that :meth:`plan_covered` plans, with their org unit.
        self._covered = covered

    async def policies(self, tenant_id: str) -> list[CadencePolicy]:
        return [p for (t, _), p in self.policies_.items() if t == tenant_id]

    async def policy(self, tenant_id: str, policy_id: str) -> CadencePolicy | None:
        return self.policies_.get((tenant_id, policy_id))

    async def save_policy(self, tenant_id: str, policy: CadencePolicy, now: datetime) -> None:
        self.policies_[(tenant_id, policy.policy_id)] = policy

    async def plan_covered(
        self, tenant_id: str, org_unit_ids: Sequence[str] | None, at: datetime
    ) -> None:
        for employee_id, unit in self._covered(tenant_id).items():
            if org_unit_ids is None or unit in org_unit_ids:
                self.plan_at[(tenant_id, employee_id)] = at

    async def add_obligations(self, obligations: Sequence[Obligation]) -> int:
        taken = {
            (o.tenant_id, o.employee_id, o.kind, o.period_start) for o in self.obligations.values()
        }
        added = 0
        for o in obligations:
            if (
                o.id in self.obligations
                or (o.tenant_id, o.employee_id, o.kind, o.period_start) in taken
            ):
                continue
            self.obligations[o.id] = o
            added += 1
        return added

    def _set(self, obligation_id: str, **values: Any) -> None:
        self.obligations[obligation_id] = dataclasses.replace(
            self.obligations[obligation_id], **values
        )

    async def follow_plan(self, obligations: Sequence[Obligation], now: datetime) -> None:
        for o in obligations:
            held = self.obligations.get(o.id)
            if held is None or not _outstanding(held):
                continue
            if (held.due_at, held.remind_at, held.miss_at) == (o.due_at, o.remind_at, o.miss_at):
                continue
            later = o.remind_at if held.state == ObligationState.OPEN.value else o.miss_at
            self._set(
                o.id,
                due_at=o.due_at,
                remind_at=o.remind_at,
                miss_at=o.miss_at,
                next_action_at=later,
                updated_at=now,
            )

    async def cancel_unplanned(
        self, tenant_id: str, employee_id: str, *, after: date, keep: Sequence[str], now: datetime
    ) -> None:
        for o in list(self.obligations.values()):
            if (
                o.tenant_id == tenant_id
                and o.employee_id == employee_id
                and _outstanding(o)
                and o.period_start > after
                and o.id not in keep
            ):
                self._set(
                    o.id, state=ObligationState.CANCELLED.value, next_action_at=None, updated_at=now
                )

    async def cancel_outstanding(
        self, tenant_id: str, employee_id: str, *, due_from: datetime | None, now: datetime
    ) -> int:
        cancelled = 0
        for o in list(self.obligations.values()):
            if (
                o.tenant_id == tenant_id
                and o.employee_id == employee_id
                and _outstanding(o)
                and (due_from is None or o.due_at >= due_from)
            ):
                self._set(
                    o.id, state=ObligationState.CANCELLED.value, next_action_at=None, updated_at=now
                )
                cancelled += 1
        return cancelled

    async def set_plan_at(self, tenant_id: str, employee_id: str, plan_at: datetime | None) -> None:
        self.plan_at[(tenant_id, employee_id)] = plan_at

    async def claim_planning(self, now: datetime, batch_size: int) -> list[tuple[str, str]]:
        due = sorted(
            ((at, key) for key, at in self.plan_at.items() if at is not None and at <= now)
        )
        return [key for _, key in due[:batch_size]]

    async def claim_due(self, now: datetime, batch_size: int) -> list[Obligation]:
        due = [
            o
            for o in self.obligations.values()
            if o.next_action_at is not None and o.next_action_at <= now
        ]
        return sorted(due, key=lambda o: o.next_action_at or now)[:batch_size]

    async def by_ids(self, ids: Sequence[str]) -> dict[str, Obligation]:
        return {i: self.obligations[i] for i in ids if i in self.obligations}

    async def record_facts(self, facts: Sequence[NewFact]) -> dict[tuple[str, str], str]:
        fresh: dict[tuple[str, str], str] = {}
        for f in facts:
            key = (f.obligation_id, f.fact)
            if key not in self.facts:
                self.facts[key] = f
                fresh[key] = f.event_id
        return fresh

    async def save_decisions(self, decisions: Sequence[Decision], now: datetime) -> None:
        for d in decisions:
            self._set(
                d.obligation_id,
                state=d.state,
                next_action_at=d.next_action_at,
                consecutive_misses=d.consecutive_misses,
                updated_at=now,
            )

    async def fulfillable(
        self, tenant_id: str, employee_id: str, kind: str, held_on: date
    ) -> list[Obligation]:
        found = [
            o
            for o in self.obligations.values()
            if o.tenant_id == tenant_id
            and o.employee_id == employee_id
            and o.kind == kind
            and o.period_start <= held_on
            and o.state != ObligationState.CANCELLED.value
        ]
        return sorted(found, key=lambda o: o.period_start)

    async def close(self, obligation_id: str, checkin_id: str, now: datetime) -> None:
        if _outstanding(self.obligations[obligation_id]):
            self._set(
                obligation_id,
                state=ObligationState.CLOSED.value,
                next_action_at=None,
                checkin_id=checkin_id,
                updated_at=now,
            )

    async def listing(
        self, tenant_id: str, employee_id: str, state: str | None = None
    ) -> list[Obligation]:
        found = [
            o
            for o in self.obligations.values()
            if o.tenant_id == tenant_id
            and o.employee_id == employee_id
            and (not state or o.state == state)
        ]
        return sorted(found, key=lambda o: o.period_start)

    async def hand_over(
        self, tenant_id: str, employee_id: str, manager_id: str, now: datetime
    ) -> None:
        for o in list(self.obligations.values()):
            if o.tenant_id == tenant_id and o.employee_id == employee_id and _outstanding(o):
                self._set(o.id, manager_id=manager_id, updated_at=now)

    async def forget_person(self, tenant_id: str, person: str) -> None:
        owed = {
            o.id
            for o in self.obligations.values()
            if o.tenant_id == tenant_id and o.employee_id == person
        }
        for key in [k for k in self.facts if k[0] in owed]:
            del self.facts[key]
        for o in owed:
            del self.obligations[o]
        self.plan_at.pop((tenant_id, person), None)


class InMemoryGoalRepository:
    def __init__(self, erased: Callable[[str, str], bool]) -> None:
        self.rows: dict[tuple[str, str], Goal] = {}
        self.progress: list[tuple[str, str, float, datetime]] = []
        #: Whether the directory keeps (tenant, employee) as erased.
        self._erased = erased

    async def upsert(self, goal: Goal) -> None:
        key = (goal.tenant_id, goal.goal_id)
        held = self.rows.get(key)
        self.rows[key] = goal if held is None else dataclasses.replace(goal, progress=held.progress)

    async def archive(self, tenant_id: str, goal_id: str, now: datetime) -> None:
        if (tenant_id, goal_id) in self.rows:
            self.rows[(tenant_id, goal_id)] = dataclasses.replace(
                self.rows[(tenant_id, goal_id)], archived=True, updated_at=now
            )

    async def record_progress(
        self, tenant_id: str, goal_id: str, progress: float, recorded_at: datetime, now: datetime
    ) -> None:
        if (tenant_id, goal_id) in self.rows:
            self.rows[(tenant_id, goal_id)] = dataclasses.replace(
                self.rows[(tenant_id, goal_id)], progress=progress, updated_at=now
            )
        self.progress.append((tenant_id, goal_id, progress, recorded_at))

    async def unknown(self, tenant_id: str, goal_ids: Sequence[str]) -> set[str]:
        live = {g for (t, g), goal in self.rows.items() if t == tenant_id and not goal.archived}
        return set(goal_ids) - live

    async def of_owners(
        self, tenant_id: str, owner_id: str, other_id: str, *, other_private: bool
    ) -> list[Goal]:
        found = [
            g
            for g in self.rows.values()
            if g.tenant_id == tenant_id
            and not g.archived
            and (
                g.owner_id == owner_id
                or (
                    g.owner_id == other_id
                    and (other_private or g.visibility != Visibility.PRIVATE.value)
                )
            )
        ]
        return sorted(found, key=lambda g: (g.owner_id, g.goal_id))

    async def progress_at(self, tenant_id: str, goal_id: str, at: datetime) -> float | None:
        before = [
            (when, p)
            for t, g, p, when in self.progress
            if t == tenant_id and g == goal_id and when <= at
        ]
        return max(before)[1] if before else None

    async def owner_erased(self, tenant_id: str, employee_id: str) -> bool:
        return self._erased(tenant_id, employee_id)

    async def forget_owner(self, tenant_id: str, person: str) -> None:
        own = {
            g.goal_id
            for g in self.rows.values()
            if g.tenant_id == tenant_id
            and g.owner_type == OwnerType.PERSON.value
            and g.owner_id == person
        }
        self.progress = [p for p in self.progress if not (p[0] == tenant_id and p[1] in own)]
        for g in own:
            del self.rows[(tenant_id, g)]


class InMemoryDepartureRepository:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Departure] = {}

    async def get(self, tenant_id: str, employee_id: str) -> Departure | None:
        return self.rows.get((tenant_id, employee_id))

    async def save(self, departure: Departure) -> None:
        self.rows[(departure.tenant_id, departure.employee_id)] = departure

    def _due(self, removed: str, before: datetime, batch_size: int) -> list[Departure]:
        due = [
            d
            for d in self.rows.values()
            if d.left_at is not None and getattr(d, removed) is None and d.left_at <= before
        ]
        return sorted(due, key=lambda d: d.left_at or before)[:batch_size]

    async def claim_texts_due(self, before: datetime, batch_size: int) -> list[Departure]:
        return self._due("texts_removed_at", before, batch_size)

    async def claim_feedback_due(self, before: datetime, batch_size: int) -> list[Departure]:
        return self._due("feedback_removed_at", before, batch_size)

    async def mark_removed(
        self, tenant_id: str, employee_id: str, *, texts: bool, now: datetime
    ) -> None:
        key = (tenant_id, employee_id)
        held = self.rows[key]
        self.rows[key] = (
            dataclasses.replace(held, texts_removed_at=now)
            if texts
            else dataclasses.replace(held, feedback_removed_at=now)
        )

    async def forget(self, tenant_id: str, employee_id: str) -> None:
        self.rows.pop((tenant_id, employee_id), None)


class FakeCheckinsUnitOfWork(FakeUnitOfWork):
    """The kit's fake unit of work with this service's repositories in memory; the directory
    is the kit's in-memory one (fill it with ``uow.people.add_person(...)``)."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        super().__init__(clock)
        self.people = InMemoryPeople()
        self.checkins = InMemoryCheckinRepository()
        self.feedback = InMemoryFeedbackRepository()
        self.cadence = InMemoryCadenceRepository(self._covered)
        self.goals = InMemoryGoalRepository(self._erased)
        self.departures = InMemoryDepartureRepository()

    def _erased(self, tenant_id: str, employee_id: str) -> bool:
        person = self.people.employees.get((tenant_id, employee_id))
        return person is not None and person.erased

    def _covered(self, tenant_id: str) -> dict[str, str | None]:
        """The active, described employees of the tenant and their units (what the SQL
        ``plan_covered`` selects from the directory)."""
        return {
            p.employee_id: p.org_unit_id
            for (t, _), p in self.people.employees.items()
            if t == tenant_id and p.known and p.active
        }


def _conforms(uow: FakeCheckinsUnitOfWork) -> CheckinsUnitOfWork:
    return uow  # mypy checks the fake is a CheckinsUnitOfWork
