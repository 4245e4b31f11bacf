"""What the goals use cases need of the world, as Protocols: the SQL adapters
(:mod:`rhythm_goals.adapters.repository`) and the tests' in-memory fakes both implement them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from rhythm_goals.domain.model import DueGoal, Goal, KeyResult, Leaver, ProgressRecord, Revision
from rhythm_shared.kit.ports import People, UnitOfWorkPort


class GoalRepository(Protocol):
    """Goals with their key results, progress records and revisions, of every tenant."""

    async def get(
        self, tenant_id: str, goal_id: str, *, for_update: bool = False
    ) -> Goal | None: ...

    async def key_results(self, goal_ids: Iterable[str]) -> dict[str, list[KeyResult]]:
        """Each goal's key results in their order (an empty list for a goal without)."""
        ...

    async def parent_of(self, tenant_id: str, goal_id: str) -> str | None: ...

    async def children_of(self, tenant_id: str, goal_ids: Sequence[str]) -> list[Goal]:
        """The goals aligned directly under any of ``goal_ids``, oldest first."""
        ...

    async def open_goals_of(self, tenant_id: str, employee_id: str) -> list[Goal]:
        """The person's own goals that are not archived."""
        ...

    async def add(self, goal: Goal, krs: Sequence[KeyResult]) -> None: ...

    async def change(self, goal_id: str, **values: Any) -> None:
        """Set the named fields of :class:`Goal` (and only those)."""
        ...

    async def replace_key_results(self, goal_id: str, krs: Sequence[KeyResult]) -> None: ...

    async def measure(
        self,
        goal_id: str,
        key_result_id: str,
        *,
        current: float,
        confidence: float,
        at: datetime,
    ) -> None:
        """A key result's new current value and confidence."""
        ...

    async def add_progress(self, record: ProgressRecord) -> None: ...

    async def add_revision(self, revision: Revision) -> None: ...

    async def claim_stale_checks(self, now: datetime, limit: int) -> list[DueGoal]:
        """Up to ``limit`` goals whose stale check is due at ``now``, the longest due first;
        a goal another transaction holds is skipped, not waited for."""
        ...

    async def end_stale_checks(
        self, goal_ids: Sequence[str], *, stale_since: datetime | None = None
    ) -> None:
        """The goals need no stale check until progress is recorded; with ``stale_since``
        they are stale since then."""
        ...

    async def goal_ids_owned_by(self, tenant_id: str, employee_id: str) -> list[str]:
        """Every goal the person owns, archived ones included."""
        ...

    async def delete(self, tenant_id: str, goal_ids: Sequence[str]) -> None:
        """Delete the goals with all they hold and the events they queued; goals aligned to
        them become roots."""
        ...

    async def blank_comments_by(self, tenant_id: str, employee_id: str) -> None:
        """Blank the progress comments the person wrote (history and revisions)."""
        ...


class LeaverRepository(Protocol):
    """Deactivations dated ahead, until they take effect."""

    async def add(self, leaver: Leaver) -> None: ...

    async def remove(self, tenant_id: str, employee_id: str) -> None: ...

    async def claim_due(self, now: datetime, limit: int) -> list[Leaver]:
        """Up to ``limit`` leavers whose date is at or before ``now``, earliest first."""
        ...


class GoalsUnitOfWork(UnitOfWorkPort, Protocol):
    """One transaction of the goals service, with its repositories."""

    @property
    def goals(self) -> GoalRepository: ...

    @property
    def leavers(self) -> LeaverRepository: ...

    @property
    def people(self) -> People:
        """The people directory: per-tenant reads, and the projection of the people topics."""
        ...
