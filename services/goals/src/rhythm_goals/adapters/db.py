"""The goals service's tables and the queries over them.

Every query takes the tenant and filters by it: an id from another tenant finds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_shared.kit.db import BigId, UtcDateTime, define_kit_tables, new_metadata

metadata = new_metadata()
kit = define_kit_tables(metadata)

_ID = 128

# --- the people slice (event-carried state from rhythm.people.v1) -----------------------------

employees = Table(
    "employees",
    metadata,
    Column("tenant_id", String(_ID), primary_key=True),
    Column("employee_id", String(_ID), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("manager_id", String(_ID), nullable=True),
    Column("org_unit_id", String(_ID), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("deactivated_at", UtcDateTime, nullable=True),
    # A deactivation dated ahead: when the leaver's open goals are to be archived.
    Column("archive_goals_at", UtcDateTime, nullable=True),
    Column("source_time", UtcDateTime, nullable=False),
    comment="Who reports to whom and who belongs where, from rhythm.people.v1.",
)
Index(
    "ix_employees_archive_goals_at",
    employees.c.archive_goals_at,
    postgresql_where=employees.c.archive_goals_at.is_not(None),
    sqlite_where=employees.c.archive_goals_at.is_not(None),
)
Index("ix_employees_manager", employees.c.tenant_id, employees.c.manager_id)
Index("ix_employees_org_unit", employees.c.tenant_id, employees.c.org_unit_id)

org_units = Table(
    "org_units",
    metadata,
    Column("tenant_id", String(_ID), primary_key=True),
    Column("org_unit_id", String(_ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("parent_id", String(_ID), nullable=True),
    Column("head_id", String(_ID), nullable=True),
    Column("source_time", UtcDateTime, nullable=False),
    comment="Org units and their heads, from rhythm.people.v1.",
)
Index("ix_org_units_parent", org_units.c.tenant_id, org_units.c.parent_id)
Index("ix_org_units_head", org_units.c.tenant_id, org_units.c.head_id)

# --- goals ------------------------------------------------------------------------------------

goals = Table(
    "goals",
    metadata,
    Column("goal_id", String(_ID), primary_key=True),
    Column("tenant_id", String(_ID), nullable=False),
    Column("owner_type", String(16), nullable=False),
    Column("owner_id", String(_ID), nullable=False),
    Column("parent_goal_id", String(_ID), nullable=True),
    Column("kind", String(8), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("visibility", String(16), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("update_interval_days", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_overridden", Boolean, nullable=False, default=False),
    Column("progress", Float, nullable=False, default=0.0),
    Column("confidence", Float, nullable=True),
    Column("revision", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(_ID), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("last_progress_at", UtcDateTime, nullable=True),
    # When the staleness job should look at the goal next; NULL while it cannot go stale
    # (archived, closed, or already reported stale in the current spell).
    Column("next_stale_check_at", UtcDateTime, nullable=True),
    Column("stale_since", UtcDateTime, nullable=True),
    Column("archived_at", UtcDateTime, nullable=True),
    Column("archive_reason", String(32), nullable=True),
    comment="Goals (OKR objectives and KPIs): owner, period, alignment, status, progress.",
)
# The staleness job reads only due rows through this index, so its cost follows what is due,
# not how many goals exist; rows that cannot go stale stay out of the (partial) index.
Index(
    "ix_goals_next_stale_check_at",
    goals.c.next_stale_check_at,
    postgresql_where=goals.c.next_stale_check_at.is_not(None),
    sqlite_where=goals.c.next_stale_check_at.is_not(None),
)
Index("ix_goals_owner", goals.c.tenant_id, goals.c.owner_type, goals.c.owner_id)
Index("ix_goals_parent", goals.c.tenant_id, goals.c.parent_goal_id)
Index("ix_goals_listing", goals.c.tenant_id, goals.c.created_at, goals.c.goal_id)

key_results = Table(
    "key_results",
    metadata,
    Column("goal_id", String(_ID), primary_key=True),
    Column("key_result_id", String(_ID), primary_key=True),
    Column("tenant_id", String(_ID), nullable=False),
    Column("position", Integer, nullable=False),
    Column("title", String(200), nullable=True),
    Column("unit", String(32), nullable=False),
    Column("start", Float, nullable=False),
    Column("target", Float, nullable=False),
    Column("current", Float, nullable=False),
    Column("direction", String(16), nullable=False),
    Column("weight", Float, nullable=False),
    Column("confidence", Float, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    ForeignKeyConstraint(["goal_id"], ["goals.goal_id"], ondelete="CASCADE"),
    comment="Measurable key results of a goal: from start towards target.",
)

progress_records = Table(
    "progress_records",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(_ID), nullable=False),
    Column("goal_id", String(_ID), nullable=False),
    Column("key_result_id", String(_ID), nullable=False),
    Column("value", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("comment", Text, nullable=True),
    Column("goal_progress", Float, nullable=False),
    Column("recorded_by", String(_ID), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    ForeignKeyConstraint(["goal_id"], ["goals.goal_id"], ondelete="CASCADE"),
    comment="Every value recorded for a key result, with confidence and comment.",
)
Index("ix_progress_records_goal", progress_records.c.goal_id, progress_records.c.seq)

goal_revisions = Table(
    "goal_revisions",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(_ID), nullable=False),
    Column("goal_id", String(_ID), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("action", String(32), nullable=False),
    Column("changes", JSON, nullable=False),
    Column("changed_by", String(_ID), nullable=True),
    Column("changed_at", UtcDateTime, nullable=False),
    ForeignKeyConstraint(["goal_id"], ["goals.goal_id"], ondelete="CASCADE"),
    comment="Every change of a goal: who changed what, and when.",
)
Index(
    "ix_goal_revisions_goal_revision",
    goal_revisions.c.goal_id,
    goal_revisions.c.revision,
    unique=True,
)


# --- the people directory ---------------------------------------------------------------------


@dataclass
class PeopleDirectory:
    """Reads of the people slice for one tenant, memoised for the length of one request."""

    session: AsyncSession
    tenant_id: str
    now: datetime
    _employees: dict[str, Row[Any] | None] = field(default_factory=dict)
    _units: dict[str, Row[Any] | None] = field(default_factory=dict)

    async def employee(self, employee_id: str) -> Row[Any] | None:
        if employee_id not in self._employees:
            self._employees[employee_id] = (
                await self.session.execute(
                    select(employees).where(
                        employees.c.tenant_id == self.tenant_id,
                        employees.c.employee_id == employee_id,
                    )
                )
            ).first()
        return self._employees[employee_id]

    async def unit(self, org_unit_id: str) -> Row[Any] | None:
        if org_unit_id not in self._units:
            self._units[org_unit_id] = (
                await self.session.execute(
                    select(org_units).where(
                        org_units.c.tenant_id == self.tenant_id,
                        org_units.c.org_unit_id == org_unit_id,
                    )
                )
            ).first()
        return self._units[org_unit_id]

    def is_active(self, row: Row[Any]) -> bool:
        return bool(row.active) and (row.deactivated_at is None or row.deactivated_at > self.now)

    async def manager_chain(self, employee_id: str, limit: int = 64) -> list[str]:
        """The employee's manager, their manager, ... (a loop in HR data stops the walk)."""
        chain: list[str] = []
        seen = {employee_id}
        row = await self.employee(employee_id)
        while row is not None and row.manager_id and row.manager_id not in seen:
            if len(chain) >= limit:
                break
            chain.append(row.manager_id)
            seen.add(row.manager_id)
            row = await self.employee(row.manager_id)
        return chain

    async def unit_heads_upwards(self, org_unit_id: str, limit: int = 64) -> list[str]:
        """Heads of the unit and of every unit above it."""
        heads: list[str] = []
        seen: set[str] = set()
        unit_id: str | None = org_unit_id
        while unit_id is not None and unit_id not in seen and len(seen) < limit:
            seen.add(unit_id)
            row = await self.unit(unit_id)
            if row is None:
                break
            if row.head_id:
                heads.append(row.head_id)
            unit_id = row.parent_id
        return heads

    async def responsible_for(self, owner_type: str, owner_id: str) -> frozenset[str]:
        """Who answers for an owner: see :func:`rhythm_goals.domain.may_edit`."""
        if owner_type == "person":
            people = set(await self.manager_chain(owner_id))
            row = await self.employee(owner_id)
            if row is not None:
                people.update(await self.unit_heads_upwards(row.org_unit_id))
            people.discard(owner_id)
            return frozenset(people)
        if owner_type == "org_unit":
            return frozenset(await self.unit_heads_upwards(owner_id))
        return frozenset()

    async def members(self, org_unit_ids: Sequence[str]) -> list[Row[Any]]:
        rows = await self.session.execute(
            select(employees)
            .where(
                employees.c.tenant_id == self.tenant_id,
                employees.c.org_unit_id.in_(list(org_unit_ids)),
            )
            .order_by(employees.c.employee_id)
        )
        return [r for r in rows if self.is_active(r)]

    async def child_units(self, org_unit_id: str) -> list[Row[Any]]:
        rows = await self.session.execute(
            select(org_units)
            .where(org_units.c.tenant_id == self.tenant_id, org_units.c.parent_id == org_unit_id)
            .order_by(org_units.c.org_unit_id)
        )
        return list(rows)

    async def subunits(self, org_unit_id: str, limit: int = 10_000) -> list[str]:
        """The unit and every unit below it."""
        found = [org_unit_id]
        seen = {org_unit_id}
        level = [org_unit_id]
        while level and len(found) < limit:
            rows = await self.session.execute(
                select(org_units.c.org_unit_id).where(
                    org_units.c.tenant_id == self.tenant_id, org_units.c.parent_id.in_(level)
                )
            )
            level = [r.org_unit_id for r in rows if r.org_unit_id not in seen]
            seen.update(level)
            found.extend(level)
        return found


# --- goal reads -------------------------------------------------------------------------------


async def load_goal(
    session: AsyncSession, tenant_id: str, goal_id: str, *, for_update: bool = False
) -> Row[Any] | None:
    stmt = select(goals).where(goals.c.tenant_id == tenant_id, goals.c.goal_id == goal_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def load_key_results(
    session: AsyncSession, goal_ids: Iterable[str]
) -> dict[str, list[Row[Any]]]:
    ids = list(goal_ids)
    out: dict[str, list[Row[Any]]] = {gid: [] for gid in ids}
    if not ids:
        return out
    rows = await session.execute(
        select(key_results)
        .where(key_results.c.goal_id.in_(ids))
        .order_by(key_results.c.goal_id, key_results.c.position)
    )
    for r in rows:
        out[r.goal_id].append(r)
    return out


async def parent_of(session: AsyncSession, tenant_id: str, goal_id: str) -> str | None:
    row = (
        await session.execute(
            select(goals.c.parent_goal_id).where(
                goals.c.tenant_id == tenant_id, goals.c.goal_id == goal_id
            )
        )
    ).first()
    return None if row is None else row.parent_goal_id


async def children_of(
    session: AsyncSession, tenant_id: str, goal_ids: Sequence[str]
) -> list[Row[Any]]:
    rows = await session.execute(
        select(goals)
        .where(goals.c.tenant_id == tenant_id, goals.c.parent_goal_id.in_(list(goal_ids)))
        .order_by(goals.c.created_at, goals.c.goal_id)
    )
    return list(rows)
