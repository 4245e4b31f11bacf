"""What the use cases need of storage: the repositories and the unit of work that carries them.

The SQL implementations are in :mod:`rhythm_checkins.adapters`; the in-memory ones the unit
tests use are in ``tests/checkins_fakes.py``. Both satisfy these protocols (mypy checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol

from rhythm_checkins.domain.policy import CadencePolicy
from rhythm_checkins.domain.records import (
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
from rhythm_shared.kit.ports import People, UnitOfWorkPort


class CheckinRepository(Protocol):
    """Check-ins, their action items, and the tenant's settings for them."""

    async def get(self, tenant_id: str, checkin_id: str, *, lock: bool = False) -> Checkin | None:
        """``lock``: for update, until the unit of work ends."""
        ...

    async def add(self, checkin: Checkin) -> None: ...

    async def update(self, checkin_id: str, **values: Any) -> None: ...

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
        """Newest first; ``participant``: the employee or the manager of the check-in."""
        ...

    async def last_held(
        self, tenant_id: str, employee_id: str, *, other_than: str
    ) -> datetime | None:
        """When the employee's last completed check-in (not ``other_than``) was held."""
        ...

    async def hand_over(
        self, tenant_id: str, employee_id: str, manager_id: str, now: datetime
    ) -> list[str]:
        """The employee's check-ins still to be held go to ``manager_id``; returns their ids."""
        ...

    async def action_items(
        self, tenant_id: str, employee_id: str, *, of_checkin: str | None, open_ones: bool
    ) -> list[ActionItem]:
        """The employee's items of ``of_checkin`` and (``open_ones``) every open one, oldest
        first."""
        ...

    async def add_action_item(self, item: ActionItem) -> None: ...

    async def action_item(self, tenant_id: str, item_id: str) -> ActionItem | None: ...

    async def set_action_item_done(self, item_id: str, done_at: datetime | None) -> None: ...

    async def settings(self, tenant_id: str) -> TenantSettings: ...

    async def save_settings(
        self, tenant_id: str, settings: TenantSettings, now: datetime
    ) -> None: ...

    async def remove_texts(self, tenant_id: str, employee_id: str) -> None:
        """The texts of the check-ins about the employee and of their action items (retention)."""
        ...

    async def forget_person(self, tenant_id: str, person: str) -> None:
        """Erasure: check-ins about them go with their items (and their outbox rows); the texts
        of items they owned elsewhere go."""
        ...


class FeedbackRepository(Protocol):
    async def get(self, tenant_id: str, feedback_id: str) -> Feedback | None: ...

    async def add(self, feedback: Feedback) -> None: ...

    async def listing(
        self,
        tenant_id: str,
        *,
        receiver_id: str | None = None,
        giver_id: str | None = None,
        limit: int = 100,
    ) -> list[Feedback]:
        """Newest first."""
        ...

    async def request(
        self, tenant_id: str, request_id: str, *, lock: bool = False
    ) -> FeedbackRequest | None: ...

    async def add_request(self, request: FeedbackRequest) -> None: ...

    async def answer_request(self, request_id: str, feedback_id: str) -> None: ...

    async def open_requests(self, tenant_id: str, from_id: str) -> list[FeedbackRequest]:
        """Unanswered requests addressed to ``from_id``, oldest first."""
        ...

    async def remove_received_texts(self, tenant_id: str, employee_id: str) -> None:
        """The texts of feedback they received and the prompts of their requests (retention)."""
        ...

    async def forget_person(self, tenant_id: str, person: str) -> None:
        """Erasure: feedback they received and requests they made or were asked go; the texts
        of feedback they gave go."""
        ...


class CadenceRepository(Protocol):
    """Policies, obligations, their facts, and when each employee is planned next."""

    async def policies(self, tenant_id: str) -> list[CadencePolicy]: ...

    async def policy(self, tenant_id: str, policy_id: str) -> CadencePolicy | None: ...

    async def save_policy(self, tenant_id: str, policy: CadencePolicy, now: datetime) -> None: ...

    async def plan_covered(
        self, tenant_id: str, org_unit_ids: Sequence[str] | None, at: datetime
    ) -> None:
        """Plan at ``at`` the active, described employees (of ``org_unit_ids``, None: all)."""
        ...

    async def add_obligations(self, obligations: Sequence[Obligation]) -> int:
        """Those not there yet; returns how many were added."""
        ...

    async def follow_plan(self, obligations: Sequence[Obligation], now: datetime) -> None:
        """Outstanding ones among them take the due, remind and miss times given."""
        ...

    async def cancel_unplanned(
        self, tenant_id: str, employee_id: str, *, after: date, keep: Sequence[str], now: datetime
    ) -> None:
        """Outstanding ones of periods starting after ``after`` and not in ``keep``."""
        ...

    async def cancel_outstanding(
        self, tenant_id: str, employee_id: str, *, due_from: datetime | None, now: datetime
    ) -> int: ...

    async def set_plan_at(
        self, tenant_id: str, employee_id: str, plan_at: datetime | None
    ) -> None: ...

    async def claim_planning(self, now: datetime, batch_size: int) -> list[tuple[str, str]]:
        """(tenant, employee) due for planning, soonest first, locked (SKIP LOCKED)."""
        ...

    async def claim_due(self, now: datetime, batch_size: int) -> list[Obligation]:
        """Obligations whose next action is due, soonest first, locked (SKIP LOCKED)."""
        ...

    async def by_ids(self, ids: Sequence[str]) -> dict[str, Obligation]: ...

    async def record_facts(self, facts: Sequence[NewFact]) -> dict[tuple[str, str], str]:
        """Insert the facts not recorded yet; returns (obligation_id, fact) → event_id of those
        inserted now."""
        ...

    async def save_decisions(self, decisions: Sequence[Decision], now: datetime) -> None: ...

    async def fulfillable(
        self, tenant_id: str, employee_id: str, kind: str, held_on: date
    ) -> list[Obligation]:
        """Not cancelled, of periods starting by ``held_on``, oldest first, locked."""
        ...

    async def close(self, obligation_id: str, checkin_id: str, now: datetime) -> None:
        """An outstanding obligation is fulfilled by ``checkin_id``."""
        ...

    async def listing(
        self, tenant_id: str, employee_id: str, state: str | None = None
    ) -> list[Obligation]: ...

    async def hand_over(
        self, tenant_id: str, employee_id: str, manager_id: str, now: datetime
    ) -> None:
        """The employee's outstanding obligations go to ``manager_id``."""
        ...

    async def forget_person(self, tenant_id: str, person: str) -> None:
        """Erasure: their obligations, facts, planning go."""
        ...


class GoalRepository(Protocol):
    """The goals slice: goals from rhythm.goals.v1 and their progress."""

    async def upsert(self, goal: Goal) -> None: ...

    async def archive(self, tenant_id: str, goal_id: str, now: datetime) -> None: ...

    async def record_progress(
        self, tenant_id: str, goal_id: str, progress: float, recorded_at: datetime, now: datetime
    ) -> None: ...

    async def unknown(self, tenant_id: str, goal_ids: Sequence[str]) -> set[str]:
        """Those of ``goal_ids`` that are not live goals of the tenant."""
        ...

    async def of_owners(
        self, tenant_id: str, owner_id: str, other_id: str, *, other_private: bool
    ) -> list[Goal]:
        """Live goals of ``owner_id`` and ``other_id`` (private ones of the other only with
        ``other_private``), by owner and id."""
        ...

    async def progress_at(self, tenant_id: str, goal_id: str, at: datetime) -> float | None: ...

    async def owner_erased(self, tenant_id: str, employee_id: str) -> bool: ...

    async def forget_owner(self, tenant_id: str, person: str) -> None: ...


class DepartureRepository(Protocol):
    """Who left when, and whether their texts were removed (retention)."""

    async def get(self, tenant_id: str, employee_id: str) -> Departure | None: ...

    async def save(self, departure: Departure) -> None: ...

    async def claim_texts_due(self, before: datetime, batch_size: int) -> list[Departure]: ...

    async def claim_feedback_due(self, before: datetime, batch_size: int) -> list[Departure]: ...

    async def mark_removed(
        self, tenant_id: str, employee_id: str, *, texts: bool, now: datetime
    ) -> None:
        """Texts (``texts``) or received feedback removed now."""
        ...

    async def forget(self, tenant_id: str, employee_id: str) -> None: ...


class CheckinsReader(Protocol):
    """What the read side needs: the repositories and the people directory."""

    @property
    def checkins(self) -> CheckinRepository: ...

    @property
    def feedback(self) -> FeedbackRepository: ...

    @property
    def cadence(self) -> CadenceRepository: ...

    @property
    def goals(self) -> GoalRepository: ...

    @property
    def people(self) -> People:
        """The people directory: ``people.directory(tenant)`` reads one tenant's."""
        ...


class CheckinsUnitOfWork(CheckinsReader, UnitOfWorkPort, Protocol):
    """What the handlers are typed by: one transaction with the repositories; the directory
    (``people``) also takes in people events there."""

    @property
    def departures(self) -> DepartureRepository: ...
