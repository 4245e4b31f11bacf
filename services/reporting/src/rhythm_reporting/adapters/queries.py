"""Dashboard queries against the active generation. Each reads a handful of rollup rows."""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    and_,
    bindparam,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from rhythm_reporting.adapters.db import (
    NO_MANAGER,
    OBLIGATION_COUNTS,
    UNIT_GOAL_COUNTS,
    UNIT_MONTH_COUNTS,
    checkin_facts,
    directory,
    employees,
    fact_versions,
    feedback_facts,
    goal_facts,
    manager_people,
    manager_period_stats,
    manager_report_counts,
    manager_reports,
    obligation_facts,
    org_units,
    read_model_generations,
    reflection_facts,
    unit_contributor_counts,
    unit_contributors,
    unit_goal_stats,
    unit_month_stats,
    unit_people,
)
from rhythm_reporting.domain.periods import Period
from rhythm_reporting.domain.projection import DROPPED_ARCHIVE_REASONS, TENANT
from rhythm_shared.kit.db import UtcDateTime, chunks
from rhythm_shared.kit.people import PeopleDirectory

Row = dict[str, Any]

#: Where the contributors of each metric family are: (fact table, person, time, unit, filter).
#: A contributor is a person whose facts make the figure, counted where they were at the time.
_SOURCES: dict[str, list[tuple[Any, str, str, str, str | None]]] = {
    "obligations": [(obligation_facts, "employee_id", "due_at", "org_unit_id", None)],
    "checkins": [(checkin_facts, "employee_id", "held_at", "org_unit_id", None)],
    "pulse": [
        (checkin_facts, "employee_id", "held_at", "org_unit_id", "pulse"),
        (reflection_facts, "employee_id", "submitted_at", "org_unit_id", "pulse"),
    ],
    "feedback_given": [(feedback_facts, "giver_id", "given_at", "giver_unit_id", None)],
    "feedback_received": [(feedback_facts, "receiver_id", "given_at", "receiver_unit_id", None)],
}
FAMILIES = frozenset(_SOURCES)


#: The rollup counts (unit_month_stats) that are nonzero wherever a family has facts.
_FAMILY_COUNTS: dict[str, tuple[str, ...]] = {
    "obligations": ("obligations",),
    "checkins": ("checkins",),
    "pulse": ("pulse_responses",),
    "feedback_given": ("feedback_given",),
    "feedback_received": ("feedback_received",),
}


#: Units past this many go as one parameter (:class:`_UnitArray`): rendering thousands of
#: expanding IN parameters costs far more than the database takes to read the facts.
_LONG_LIST = 32


class _UnitArray(TypeDecorator[list[str]]):
    """Unit ids as one parameter: a text array on PostgreSQL, a JSON array on SQLite."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(String()))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: list[str] | None, dialect: Dialect) -> Any:
        return value if dialect.name == "postgresql" or value is None else json.dumps(value)


class _InArray(FunctionElement[bool]):
    """``column`` is one of the :class:`_UnitArray` parameter's ids. PostgreSQL's = ANY is the
    form its planner gives an expanded IN list (an index range per id, OR IS NULL a BitmapOr);
    SQLite's IN over json_each ranges over the column's index once per id. A function to
    SQLAlchemy (``as_comparison``: a condition), so its statements are cached."""

    inherit_cache = True


@compiles(_InArray)
def _in_json_each(element: _InArray, compiler: SQLCompiler, **kw: Any) -> str:
    column, array = (compiler.process(c, **kw) for c in element.clauses)
    return f"{column} IN (SELECT value FROM json_each({array}))"


@compiles(_InArray, "postgresql")
def _any_of_array(element: _InArray, compiler: SQLCompiler, **kw: Any) -> str:
    column, array = (compiler.process(c, **kw) for c in element.clauses)
    return f"{column} = ANY({array})"


def _in_units(column: Any, units: Sequence[str | None]) -> ColumnElement[bool]:
    """Facts in ``units``; None stands for facts with no unit."""
    named = sorted(u for u in set(units) if u is not None)
    conditions: list[ColumnElement[bool]] = []
    if len(named) > _LONG_LIST:
        array = bindparam(None, named, _UnitArray())
        conditions.append(_InArray(column, array).as_comparison(1, 2))
    elif named:
        conditions.append(column.in_(named))
    if None in units:
        conditions.append(column.is_(None))
    return or_(*conditions)


def _unordered(column: Any) -> Any:
    """The column as an expression: an index on it alone no longer offers its order, so the
    planner ranges over the (unit, time, person) index rather than walking all of a tenant's
    people in order (SQLite chose that for DISTINCT, reading every fact)."""
    return column.concat("")


#: Cells counted per statement: each is a scalar subquery, a column of the one row returned.
_CELLS_PER_STATEMENT = 200


def _capped_count(people: Select[Any] | CompoundSelect[Any], cap: int, i: int) -> Any:
    """How many rows ``people`` has, up to ``cap``, as a scalar subquery (column ``c{i}``)."""
    capped: Select[Any] = select(literal_column("1")).select_from(people.subquery()).limit(cap)
    return select(func.count()).select_from(capped.subquery()).scalar_subquery().label(f"c{i}")


#: The columns of :meth:`Queries.managers`' rows, in order.
MANAGER_COLUMNS = ("manager_id", "org_unit_id", "team_size", *OBLIGATION_COUNTS)

_ACTIVE = select(read_model_generations.c.generation, read_model_generations.c.org_version).where(
    read_model_generations.c.status == "active"
)


def _padded(n: int) -> int:
    """``n`` rounded up to a power of two: few statement sizes to build and compile."""
    return 1 << max(n - 1, 0).bit_length()


@functools.cache
def _own_facts_statement(family: str, size: int, *, named: bool) -> Select[Any]:
    """(unit, month) of the cells ``u0, m0, s0, e0`` ... (unit, month label, its bounds) that
    have facts of ``family`` in the unit itself (``named`` False: facts with no unit, whatever
    the unit given); generation and tenant bound as ``g``, ``tenant``. Built once: a request's
    cells are its parameters."""
    cells = union_all(
        *(
            select(
                bindparam(f"u{i}", type_=String).label("unit"),
                bindparam(f"m{i}", type_=String).label("month"),
                bindparam(f"s{i}", type_=UtcDateTime).label("start"),
                bindparam(f"e{i}", type_=UtcDateTime).label("end"),
            )
            for i in range(size)
        )
    ).subquery("cells")
    checks = []
    for table, _, at, unit, required in _SOURCES[family]:
        where = [
            table.c.generation == bindparam("g"),
            table.c.tenant_id == bindparam("tenant"),
            table.c[unit] == cells.c.unit if named else table.c[unit].is_(None),
            table.c[at] >= cells.c.start,
            table.c[at] < cells.c.end,
        ]
        if required is not None:
            where.append(table.c[required].is_not(None))
        checks.append(select(literal_column("1")).where(*where).exists())
    return select(cells.c.unit, cells.c.month).where(or_(*checks))


class Queries:
    def __init__(
        self, conn: AsyncConnection, tenant: str, generation: int, org_version: int = 0
    ) -> None:
        self.conn = conn
        self.tenant = tenant
        self.g = generation
        #: The active generation's org version when the request began (store.org_changed).
        self.org_version = org_version
        #: Who heads what, for access decisions (domain/access.py), on the same connection.
        self.directory = PeopleDirectory(AsyncSession(bind=conn), directory, tenant)

    @classmethod
    async def open(cls, conn: AsyncConnection, tenant: str) -> Queries:
        row = (await conn.execute(_ACTIVE)).first()
        generation, org_version = row if row is not None else (0, 0)
        return cls(conn, tenant, int(generation), int(org_version))

    async def org_version_now(self) -> tuple[int, int]:
        """(generation, org version) active now: on PostgreSQL a later statement of the same
        request can see a commit that the first did not."""
        row = (await self.conn.execute(_ACTIVE)).first()
        return (int(row[0]), int(row[1])) if row is not None else (0, 0)

    async def _rows(self, query: Select[Any]) -> list[Row]:
        result = await self.conn.execute(query)
        keys = list(result.keys())  # zipped with plain tuples: a RowMapping costs more
        return [dict(zip(keys, r, strict=True)) for r in result.all()]

    # -- the org ---------------------------------------------------------------------------

    async def unit(self, unit: str) -> Row | None:
        rows = await self._rows(
            select(org_units.c.org_unit_id, org_units.c.name, org_units.c.parent_id).where(
                org_units.c.generation == self.g,
                org_units.c.tenant_id == self.tenant,
                org_units.c.org_unit_id == unit,
            )
        )
        return rows[0] if rows else None

    async def all_units(self) -> list[Row]:
        return await self._rows(
            select(
                org_units.c.org_unit_id,
                org_units.c.name,
                org_units.c.parent_id,
                org_units.c.head_id,
            ).where(org_units.c.generation == self.g, org_units.c.tenant_id == self.tenant)
        )

    async def headed_by(self, employee_id: str) -> list[str]:
        rows = await self.conn.execute(
            select(org_units.c.org_unit_id)
            .where(
                org_units.c.generation == self.g,
                org_units.c.tenant_id == self.tenant,
                org_units.c.head_id == employee_id,
            )
            .order_by(org_units.c.org_unit_id)
        )
        return [r[0] for r in rows.all()]

    async def ancestors(self, unit: str) -> list[str]:
        """The unit and its ancestors (bounded walk: bad data must not loop)."""
        chain = [unit]
        current: str | None = unit
        while current is not None and len(chain) < 100:
            row = await self.unit(current)
            current = row["parent_id"] if row else None
            if current is None or current in chain:
                break
            chain.append(current)
        return chain

    async def children(self, unit: str) -> list[Row]:
        condition = (
            org_units.c.parent_id.is_(None) if unit == TENANT else org_units.c.parent_id == unit
        )
        return await self._rows(
            select(org_units.c.org_unit_id, org_units.c.name)
            .where(
                org_units.c.generation == self.g, org_units.c.tenant_id == self.tenant, condition
            )
            .order_by(org_units.c.name, org_units.c.org_unit_id)
        )

    def subtree(self, unit: str) -> Select[Any]:
        """SELECT of the ids of ``unit`` and every unit below it (recursive; UNION stops cycles)."""
        base = select(literal(unit).label("org_unit_id")).cte("subtree", recursive=True)
        step = select(org_units.c.org_unit_id).where(
            org_units.c.generation == self.g,
            org_units.c.tenant_id == self.tenant,
            org_units.c.parent_id == base.c.org_unit_id,
        )
        tree = base.union(step)
        return select(tree.c.org_unit_id)

    async def all_people(self) -> dict[str, int]:
        rows = await self.conn.execute(
            select(unit_people.c.org_unit_id, unit_people.c.people).where(
                unit_people.c.generation == self.g, unit_people.c.tenant_id == self.tenant
            )
        )
        return {r[0]: int(r[1]) for r in rows.all()}

    async def people(self, units: Sequence[str]) -> dict[str, int]:
        rows = await self.conn.execute(
            select(unit_people.c.org_unit_id, unit_people.c.people).where(
                unit_people.c.generation == self.g,
                unit_people.c.tenant_id == self.tenant,
                unit_people.c.org_unit_id.in_(list(units)),
            )
        )
        return {r[0]: int(r[1]) for r in rows.all()}

    async def names(self, people: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(people))
        if not ids:
            return {}
        rows = await self.conn.execute(
            select(employees.c.employee_id, employees.c.display_name).where(
                employees.c.generation == self.g,
                employees.c.tenant_id == self.tenant,
                employees.c.employee_id.in_(ids),
            )
        )
        return {r[0]: r[1] for r in rows.all()}

    # -- rollups -----------------------------------------------------------------------------

    async def monthly(self, units: Sequence[str], months: Sequence[str]) -> list[Row]:
        """unit_month_stats rows of ``units`` for ``months`` (missing rows are all zeros)."""
        t = unit_month_stats
        return await self._rows(
            select(t.c.org_unit_id, t.c.month, *(t.c[c] for c in UNIT_MONTH_COUNTS)).where(
                t.c.generation == self.g,
                t.c.tenant_id == self.tenant,
                t.c.org_unit_id.in_(list(units)),
                t.c.month.in_(list(months)),
            )
        )

    async def goals(self, units: Sequence[str], start: date, end: date) -> list[Row]:
        """unit_goal_stats of ``units`` summed over goal periods that overlap [start, end]."""
        t = unit_goal_stats
        return await self._rows(
            select(t.c.org_unit_id, *(func.sum(t.c[c]).label(c) for c in UNIT_GOAL_COUNTS))
            .where(
                t.c.generation == self.g,
                t.c.tenant_id == self.tenant,
                t.c.org_unit_id.in_(list(units)),
                t.c.period_start <= end,
                t.c.period_end >= start,
            )
            .group_by(t.c.org_unit_id)
        )

    async def subtree_units(self, unit: str) -> list[str]:
        rows = await self.conn.execute(self.subtree(unit))
        return [r[0] for r in rows.all()]

    async def managers(self, period: str) -> list[tuple[Any, ...]]:
        """The tenant's managers with obligations in ``period`` as :data:`MANAGER_COLUMNS`
        (their own unit now, their team size, their reports' obligation counts), worst share
        missed first: the ranking index (ix_manager_period_stats_rank) in its order."""
        t, mp = manager_period_stats, manager_people
        home = employees.alias("home")
        team = func.coalesce(mp.c.people, 0)
        joined = t.outerjoin(
            mp,
            (mp.c.generation == t.c.generation)
            & (mp.c.tenant_id == t.c.tenant_id)
            & (mp.c.manager_id == t.c.manager_id),
        ).outerjoin(
            home,
            (home.c.generation == t.c.generation)
            & (home.c.tenant_id == t.c.tenant_id)
            & (home.c.employee_id == t.c.manager_id),
        )
        query = (
            select(
                t.c.manager_id,
                home.c.org_unit_id,
                team.label("team_size"),
                *(t.c[c] for c in OBLIGATION_COUNTS),
            )
            .select_from(joined)
            .where(t.c.generation == self.g, t.c.tenant_id == self.tenant, t.c.period == period)
            .order_by(t.c.missed_share.desc(), t.c.obligations.desc(), t.c.manager_id.desc())
        )
        return [tuple(r) for r in (await self.conn.execute(query)).all()]

    async def versions(self, family: str, slots: Sequence[str]) -> tuple[int, ...]:
        """The numbers of a family's ``slots`` (store.facts_changed; 0 for one with no row)."""
        t = fact_versions
        rows = await self.conn.execute(
            select(t.c.slot, t.c.version).where(
                t.c.generation == self.g,
                t.c.tenant_id == self.tenant,
                t.c.family == family,
                t.c.slot.in_(sorted(set(slots))),
            )
        )
        found = {r[0]: int(r[1]) for r in rows.all()}
        return tuple(found.get(s, 0) for s in slots)

    async def goals_needing_attention(
        self, unit: str, start: date, end: date, limit: int, *, small: bool
    ) -> list[Row]:
        t = goal_facts
        query = select(
            t.c.goal_id,
            t.c.title,
            t.c.owner_type,
            t.c.owner_id,
            t.c.org_unit_id,
            t.c.status,
            t.c.progress_bp,
            t.c.confidence_bp,
            t.c.last_progress_at,
            t.c.is_stale,
            t.c.period_end,
        ).where(
            t.c.generation == self.g,
            t.c.tenant_id == self.tenant,
            t.c.needs_attention.is_(True),
            t.c.visibility == "tenant",
            t.c.period_start <= end,
            t.c.period_end >= start,
        )
        if unit != TENANT:
            units = await self.subtree_units(unit) if small else self.subtree(unit)
            query = query.where(t.c.org_unit_id.in_(units))
        # at_risk, off_track, then on_track-but-stale; least progress first. A large scope walks
        # ix_goal_facts_attention_order and stops at the limit; a small one (order written so
        # no index serves it) starts from its units and sorts the few goals it finds.
        status, progress = (
            (t.c.status, t.c.progress_bp)
            if not small
            else (
                func.lower(t.c.status),
                t.c.progress_bp + 0,
            )
        )
        query = query.order_by(status, progress.asc().nulls_first(), t.c.goal_id).limit(limit)
        return await self._rows(query)

    # -- contributors (the small-group rule, domain/metrics.py) --------------------------------
    #
    # A monthly cell's contributors are kept at ingest (unit_contributors: one row per unit
    # subtree, family, month and person) and so is their number (unit_contributor_counts: one
    # row per cell), which is all the rule asks of most cells. The facts' (unit, time, person)
    # indexes of migrations 0005 and 0006 serve a unit's own facts (the residual of rule 2) and
    # goals. ``cap`` stops a scan once that many people are found (the rule mostly asks only
    # whether a group is small). A fact's person is selected as an expression so that no
    # planner walks the per-person index for its order instead. A request asks for many
    # residuals at once (``outside_counts``): each a capped scalar subquery, one column of a
    # single row, so a level of the tree costs a statement, not one per cell.

    async def contributors(
        self,
        family: str,
        start: datetime,
        end: datetime,
        units: Sequence[str | None],
        cap: int | None = None,
    ) -> int:
        """Distinct people whose facts of ``family`` fall in [start, end) in ``units`` (None: a
        fact with no unit), counting up to ``cap``."""
        return await self._count_people(self._fact_people(family, start, end, units), cap)

    async def rolled_up_contributors(self, family: str, month: str, unit: str) -> int:
        """Distinct people of ``family`` in ``month`` in the subtree of ``unit`` ('*': the whole
        tenant): read from the sizes kept at ingest (unit_contributor_counts), one row."""
        return (await self.rolled_up_counts(family, [(unit, month)]))[0]

    async def contributors_outside(
        self,
        family: str,
        month: str,
        own: Sequence[str | None],
        subtrees: Sequence[str],
        cap: int | None = None,
    ) -> int:
        """Distinct people of ``family`` in ``month`` with facts in the units ``own`` (only
        there, not below; None: no unit) or in the subtrees of ``subtrees``, up to ``cap``."""
        start, end = Period.parse(month).bounds
        selects = [
            *self._fact_people(family, start, end, own),
            *self._rolled_up_people(family, month, subtrees),
        ]
        return await self._count_people(selects, cap)

    async def rolled_up_counts(self, family: str, cells: Sequence[tuple[str, str]]) -> list[int]:
        """:meth:`rolled_up_contributors` of many (unit, month) cells, in a few statements."""
        t = unit_contributor_counts
        wanted = set(cells)
        months = sorted({m for _, m in wanted})
        found: dict[tuple[str, str], int] = {}
        # Units IN and months IN: ranges of the primary key (a row-value IN scans in SQLite).
        for chunk in chunks(sorted({u for u, _ in wanted}), 500):
            rows = await self.conn.execute(
                select(t.c.org_unit_id, t.c.month, t.c.people).where(
                    t.c.generation == self.g,
                    t.c.tenant_id == self.tenant,
                    t.c.org_unit_id.in_(chunk),
                    t.c.family == family,
                    t.c.month.in_(months),
                )
            )
            found.update({(r[0], r[1]): int(r[2]) for r in rows.all()})
        return [found.get(cell, 0) for cell in cells]

    async def outside_counts(
        self,
        family: str,
        cells: Sequence[tuple[str, Sequence[str | None], Sequence[str]]],
        cap: int,
    ) -> list[int]:
        """:meth:`contributors_outside` of many (month, own, subtrees) cells, in a few
        statements (each cell's people joined by the database, then capped)."""
        out: list[int] = []
        for chunk in chunks(cells, _CELLS_PER_STATEMENT):
            columns = []
            for i, (month, own, subtrees) in enumerate(chunk):
                start, end = Period.parse(month).bounds
                selects = [
                    *self._fact_people(family, start, end, own),
                    *self._rolled_up_people(family, month, subtrees),
                ]
                if not selects:
                    columns.append(literal(0).label(f"c{i}"))
                    continue
                people = union(*selects) if len(selects) > 1 else selects[0].distinct()
                columns.append(_capped_count(people, cap, i))
            row = (await self.conn.execute(select(*columns))).one()
            out += [int(n) for n in row]
        return out

    async def own_facts(
        self, family: str, cells: Sequence[tuple[str | None, str]]
    ) -> set[tuple[str | None, str]]:
        """Of the (unit, month) cells, those with facts of ``family`` in the unit itself (not
        below; None: facts with no unit): one EXISTS per cell in one statement, built once per
        family and size."""
        found: set[tuple[str | None, str]] = set()
        for named in (True, False):
            wanted = sorted({(u or "", m) for u, m in cells if (u is not None) == named})
            for chunk in chunks(wanted, _CELLS_PER_STATEMENT):
                size = _padded(len(chunk))
                padded = [*chunk, *[chunk[-1]] * (size - len(chunk))]  # repeats change nothing
                params: dict[str, Any] = {"g": self.g, "tenant": self.tenant}
                for i, (unit, month) in enumerate(padded):
                    start, end = Period.parse(month).bounds
                    params.update({f"u{i}": unit, f"m{i}": month, f"s{i}": start, f"e{i}": end})
                statement = _own_facts_statement(family, size, named=named)
                rows = await self.conn.execute(statement, params)
                found.update(((r[0] if named else None), r[1]) for r in rows.all())
        return found

    def _fact_people(
        self, family: str, start: datetime, end: datetime, units: Sequence[str | None]
    ) -> list[Select[Any]]:
        if not units:
            return []
        selects = []
        for table, person, at, unit, required in _SOURCES[family]:
            where = [
                table.c.generation == self.g,
                table.c.tenant_id == self.tenant,
                table.c[at] >= start,
                table.c[at] < end,
                _in_units(table.c[unit], units),
            ]
            if required is not None:
                where.append(table.c[required].is_not(None))
            selects.append(select(_unordered(table.c[person]).label("person")).where(*where))
        return selects

    def _rolled_up_people(self, family: str, month: str, units: Sequence[str]) -> list[Select[Any]]:
        """The people of the subtrees of ``units``: one SELECT, a range of the primary key per
        unit (the caller makes them distinct)."""
        if not units:
            return []
        t = unit_contributors
        return [
            select(t.c.person_id).where(
                t.c.generation == self.g,
                t.c.tenant_id == self.tenant,
                t.c.org_unit_id.in_(sorted(set(units))),
                t.c.family == family,
                t.c.month == month,
            )
        ]

    async def units_with_facts(self, family: str, months: Sequence[str]) -> list[str]:
        """The units (leaves and their ancestors, as the rollups hold them) with facts of
        ``family`` in ``months``: every fact of the tenant is in one of them or has no unit."""
        t = unit_month_stats
        rows = await self.conn.execute(
            select(t.c.org_unit_id)
            .where(
                t.c.generation == self.g,
                t.c.tenant_id == self.tenant,
                t.c.month.in_(list(months)),
                t.c.org_unit_id != TENANT,
                or_(*(t.c[c] != 0 for c in _FAMILY_COUNTS[family])),
            )
            .distinct()
        )
        return sorted(r[0] for r in rows.all())

    async def unknown_units_with_facts(
        self, family: str, months: Sequence[str]
    ) -> dict[str, list[str]]:
        """:meth:`units_with_facts` of each of ``months`` (month -> units) that the org does
        not know (facts can name a unit before, or without, its OrgUnitUpserted): first the
        rollups' units the org lacks, whatever the month (two index walks; most often only the
        tenant's '*'), then, if any, the months and family of those alone. All the others are in
        the org's tree, in memory."""
        t, o = unit_month_stats, org_units
        unknown = (
            select(t.c.org_unit_id)
            .where(t.c.generation == self.g, t.c.tenant_id == self.tenant)
            .except_(
                select(o.c.org_unit_id).where(
                    o.c.generation == self.g, o.c.tenant_id == self.tenant
                )
            )
        )
        candidates = [u for (u,) in (await self.conn.execute(unknown)).all() if u != TENANT]
        if not candidates:
            return {}
        rows = await self.conn.execute(
            select(t.c.month, t.c.org_unit_id)
            .where(
                t.c.generation == self.g,
                t.c.tenant_id == self.tenant,
                t.c.month.in_(list(months)),
                _in_units(t.c.org_unit_id, candidates),
                or_(*(t.c[c] != 0 for c in _FAMILY_COUNTS[family])),
            )
            .distinct()
        )
        out: dict[str, list[str]] = {}
        for month, unit in rows.all():
            out.setdefault(month, []).append(unit)
        return {month: sorted(units) for month, units in out.items()}

    async def month_reports(self, month: str) -> dict[str | None, int]:
        """Distinct people with obligations due in ``month``, by the manager the obligation
        names (None: no manager), as kept at ingest (manager_report_counts)."""
        t = manager_report_counts
        rows = await self.conn.execute(
            select(t.c.manager_id, t.c.people).where(
                t.c.generation == self.g, t.c.tenant_id == self.tenant, t.c.month == month
            )
        )
        return {(None if r[0] == NO_MANAGER else r[0]): int(r[1]) for r in rows.all()}

    async def reports_of(self, month: str, managers: Collection[str | None], cap: int) -> set[str]:
        """People with obligations due in ``month`` that name one of ``managers`` (None: no
        manager), up to ``cap`` of them (manager_reports: one index range per manager)."""
        t = manager_reports
        named = sorted({NO_MANAGER if m is None else m for m in managers})
        people: set[str] = set()
        for chunk in chunks(named, 500):
            query = (
                select(_unordered(t.c.person_id))
                .where(
                    t.c.generation == self.g,
                    t.c.tenant_id == self.tenant,
                    t.c.month == month,
                    t.c.manager_id.in_(chunk),
                )
                .distinct()
                .limit(cap - len(people))
            )
            people.update(r[0] for r in (await self.conn.execute(query)).all())
            if len(people) >= cap:
                break
        return people

    async def outside_team(self, month: str, units: Sequence[str], manager: str, cap: int) -> int:
        """People with obligations due in ``month`` in ``units`` that name another manager than
        ``manager``, or none, up to ``cap``."""
        t = obligation_facts
        start, end = Period.parse(month).bounds
        query = select(_unordered(t.c.employee_id)).where(
            t.c.generation == self.g,
            t.c.tenant_id == self.tenant,
            t.c.due_at >= start,
            t.c.due_at < end,
            _in_units(t.c.org_unit_id, units),
            or_(t.c.manager_id.is_(None), t.c.manager_id != manager),
        )
        return await self._count_people([query], cap)

    async def goal_units(self, overlaps: tuple[date, date]) -> list[str]:
        """The units (as the rollups hold them) with goals whose period overlaps ``overlaps``:
        every counted goal of the tenant is in one of them or has no unit."""
        t = unit_goal_stats
        rows = await self.conn.execute(
            select(t.c.org_unit_id)
            .where(
                t.c.generation == self.g,
                t.c.tenant_id == self.tenant,
                t.c.org_unit_id != TENANT,
                t.c.period_start <= overlaps[1],
                t.c.period_end >= overlaps[0],
                t.c.goals != 0,
            )
            .distinct()
        )
        return sorted(r[0] for r in rows.all())

    async def goal_owners(
        self,
        overlaps: tuple[date, date],
        units: Sequence[str | None] | None,
        not_overlapping: tuple[date, date] | None = None,
        cap: int | None = None,
    ) -> int:
        """Distinct people owning counted goals whose period overlaps ``overlaps`` (and not
        ``not_overlapping``), by the owner's unit when the goal was created (None: no unit;
        ``units`` None: in any unit or none), counting up to ``cap``."""
        if units is not None and not units:
            return 0
        return await self._count_people([self._goal_owners(overlaps, units, not_overlapping)], cap)

    async def goal_owner_counts(
        self, overlaps: tuple[date, date], cells: Sequence[Sequence[str | None]], cap: int
    ) -> list[int]:
        """:meth:`goal_owners` of many cells (each its units), up to ``cap``, in a few
        statements (each cell a capped scalar subquery)."""
        out: list[int] = []
        for chunk in chunks(cells, _CELLS_PER_STATEMENT):
            columns = [
                _capped_count(self._goal_owners(overlaps, units).distinct(), cap, i)
                if units
                else literal(0).label(f"c{i}")
                for i, units in enumerate(chunk)
            ]
            row = (await self.conn.execute(select(*columns))).one()
            out += [int(n) for n in row]
        return out

    def _goal_owners(
        self,
        overlaps: tuple[date, date],
        units: Sequence[str | None] | None,
        not_overlapping: tuple[date, date] | None = None,
    ) -> Select[Any]:
        t = goal_facts

        def overlap(span: tuple[date, date]) -> ColumnElement[bool]:
            return and_(t.c.period_start <= span[1], t.c.period_end >= span[0])

        where = [
            t.c.generation == self.g,
            t.c.tenant_id == self.tenant,
            t.c.owner_type == "person",
            t.c.created_at.is_not(None),
            or_(
                t.c.archived_reason.is_(None),
                t.c.archived_reason.not_in(sorted(DROPPED_ARCHIVE_REASONS)),
            ),
            overlap(overlaps),
        ]
        if units is not None:
            where.append(_in_units(t.c.org_unit_id, units))
        if not_overlapping is not None:
            where.append(not_(overlap(not_overlapping)))
        return select(_unordered(t.c.owner_id)).where(*where)

    async def _count_people(self, selects: Sequence[Select[Any]], cap: int | None) -> int:
        """Distinct people over ``selects`` (one column each), counting up to ``cap``. Each is
        read on its own, capped, and the people joined here: a capped UNION would be read in
        full first."""
        people: set[str] = set()
        for query in selects:
            query = query.distinct()
            if cap is not None:
                query = query.limit(cap)
            people.update(r[0] for r in (await self.conn.execute(query)).all())
        return len(people) if cap is None else min(len(people), cap)

    async def unit_names(self, ids: Iterable[str]) -> dict[str, str]:
        wanted = sorted({i for i in ids if i})
        if not wanted:
            return {}
        rows = await self.conn.execute(
            select(org_units.c.org_unit_id, org_units.c.name).where(
                org_units.c.generation == self.g,
                org_units.c.tenant_id == self.tenant,
                org_units.c.org_unit_id.in_(wanted),
            )
        )
        return {r[0]: r[1] or r[0] for r in rows.all()}


__all__ = ["Queries"]
