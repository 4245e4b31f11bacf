"""Every SQL statement of reporting's write side: loading and bulk-writing the read model of one
generation inside the caller's transaction, the erasure's pseudonymisation, and the generations.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    Table,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_reporting.adapters.db import (
    FACT_TABLES,
    GENERATIONAL_TABLES,
    MEMBERSHIP_ROLLUPS,
    PEOPLE_COLUMNS,
    ROLLUP_TABLES,
    consumer_positions,
    directory,
    employee_versions,
    employees,
    fact_versions,
    key_columns,
    manager_reports,
    org_units,
    read_model_generations,
    unit_contributors,
    value_columns,
)
from rhythm_reporting.domain.ports import RollupRows
from rhythm_reporting.domain.projection import EmployeeVersion, Fact
from rhythm_shared.kit.consumer import ConflictLost
from rhythm_shared.kit.db import chunks

#: Rows per multi-row statement: within both SQLite's and PostgreSQL's 32,766 bound values.
_ROWS_PER_STATEMENT = 4_000
#: Advisory lock keys on PostgreSQL (SQLite's BEGIN IMMEDIATE serialises its writers anyway):
#: the active generation (shared by live writers, exclusive for a rebuild's swap), the org
#: dimension (exclusive for batches that change it), and the space of per-fact locks.
LIVE_WRITER_LOCK = 7_301_600
ORG_DIMENSION_LOCK = 7_301_601
FACT_LOCKS = 7_301_602


class PositionsMoved(ConflictLost):
    """A partition's stored position moved while this batch was applied: another replica owns
    the partition now and applied these records. Not the records' fault: the consumer rolls
    back and retries, and the retry skips what the other replica applied."""


def _lock_hash(kind: str, tenant: str, key: str) -> int:
    """A fact's lock id in FACT_LOCKS (int4); two facts on one id only take turns needlessly."""
    digest = hashlib.blake2b(f"{kind}\x1f{tenant}\x1f{key}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class ReadModelStore:
    """One generation of the read model, seen through one session (one transaction)."""

    def __init__(self, session: AsyncSession, generation: int) -> None:
        self.session = session
        self.generation = generation
        bind = session.get_bind()
        self.dialect = bind.dialect.name
        #: Lock each fact before loading it (:meth:`lock_org_dimension` sets it when shared).
        self.lock_facts = False

    def _insert(self, table: Table) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    # -- generations and positions --------------------------------------------------------

    async def lock_live_writers(self, *, shared: bool = False) -> None:
        """The generation lock on PostgreSQL: live writers hold it shared (they run side by side),
        a rebuild's swap exclusive, so the swap falls wholly between writers' transactions.
        (SQLite's BEGIN IMMEDIATE already lets one writer in at a time.)"""
        if self.dialect == "postgresql":
            function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
            await self.session.execute(text(f"SELECT {function}(:k)"), {"k": LIVE_WRITER_LOCK})

    async def lock_org_dimension(self, *, exclusive: bool) -> None:
        """A batch that changes people or org units re-attributes facts of every partition and
        moves rollups between units: it runs alone (exclusive). Any other batch only reads the
        org dimension, so such batches share the lock and lock the facts they fold instead
        (:meth:`load_facts`)."""
        if self.dialect != "postgresql":
            return
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await self.session.execute(text(f"SELECT {function}(:k)"), {"k": ORG_DIMENSION_LOCK})
        self.lock_facts = not exclusive

    async def _lock_fact_keys(self, kind: str, tenant: str, keys: Iterable[str]) -> None:
        """Lock facts by name (rows that do not exist yet too), in ascending order, so that two
        writers folding the same fact take turns and writers never wait on each other in a
        circle; a wait that still closes one (a fact locked late) ends as a deadlock error,
        which the consumer retries."""
        hashed = sorted({_lock_hash(kind, tenant, k) for k in keys})
        if hashed:
            await self.session.execute(
                text(
                    "SELECT pg_advisory_xact_lock(:space, k)"
                    " FROM unnest(:keys) WITH ORDINALITY AS u(k, i) ORDER BY i"
                ).bindparams(bindparam("keys", type_=ARRAY(Integer))),
                {"space": FACT_LOCKS, "keys": hashed},
            )

    async def positions(self, topics: Iterable[str] | None = None) -> dict[tuple[str, int], int]:
        query = select(
            consumer_positions.c.topic,
            consumer_positions.c.partition,
            consumer_positions.c.next_offset,
        ).where(consumer_positions.c.generation == self.generation)
        if topics is not None:
            query = query.where(consumer_positions.c.topic.in_(list(topics)))
        rows = (await self.session.execute(query)).all()
        return {(r.topic, r.partition): r.next_offset for r in rows}

    async def save_positions(
        self,
        positions: Mapping[tuple[str, int], int],
        now: datetime,
        expected: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """Store the next offset of each partition. With ``expected`` (the positions this
        transaction read before applying its batch), a compare-and-set per partition: a
        partition whose stored position moved since (a replica that lost it to a rebalance and
        finished late, while the new owner applied the same records) refuses the whole batch
        with :class:`PositionsMoved`, and the transaction rolls back."""
        if not positions:
            return
        ordered = sorted(positions.items())
        rows = [
            {
                "generation": self.generation,
                "topic": topic,
                "partition": partition,
                "next_offset": offset,
                "updated_at": now,
            }
            for (topic, partition), offset in ordered
        ]
        if expected is None:
            upsert = self._insert(consumer_positions)
            upsert = upsert.on_conflict_do_update(
                index_elements=["generation", "topic", "partition"],
                set_={
                    "next_offset": upsert.excluded.next_offset,
                    "updated_at": upsert.excluded.updated_at,
                },
            )
            await self.session.execute(upsert, rows)
            return
        p = consumer_positions
        moved = []
        for ((topic, partition), offset), row in zip(ordered, rows, strict=True):
            if (topic, partition) in expected:
                # READ COMMITTED: an UPDATE that waited for a concurrent writer of the row
                # re-checks its WHERE on the committed row, so exactly one of them matches.
                stmt: Any = (
                    update(p)
                    .where(
                        p.c.generation == self.generation,
                        p.c.topic == topic,
                        p.c.partition == partition,
                        p.c.next_offset == expected[(topic, partition)],
                    )
                    .values(next_offset=offset, updated_at=now)
                )
            else:
                stmt = self._insert(p).values(row).on_conflict_do_nothing()
            result = await self.session.execute(stmt)
            if result.rowcount != 1:  # type: ignore[attr-defined]
                moved.append(f"{topic}[{partition}]")
        if moved:
            raise PositionsMoved(
                f"another consumer applied {', '.join(moved)} since this batch began"
            )

    # -- the org dimension -----------------------------------------------------------------

    async def load_unit_parents(self, tenant: str, units: Iterable[str]) -> dict[str, str | None]:
        """Parent pointers of ``units`` and all their known ancestors."""
        known: dict[str, str | None] = {}
        frontier = {u for u in units if u}
        while frontier:
            found: set[str] = set()
            for chunk in chunks(sorted(frontier)):
                rows = await self.session.execute(
                    select(org_units.c.org_unit_id, org_units.c.parent_id).where(
                        org_units.c.generation == self.generation,
                        org_units.c.tenant_id == tenant,
                        org_units.c.org_unit_id.in_(chunk),
                    )
                )
                for unit, parent in rows.all():
                    known[unit] = parent
                    found.add(unit)
            frontier = {p for u in found if (p := known[u])} - set(known)
        return known

    async def org_changed(self) -> None:
        """Raise the generation's org version, with the change (dashboards keep the org in
        memory while it stays the same). Batches that change the org run alone
        (:meth:`lock_org_dimension`), so on PostgreSQL they wait for nobody on this row."""
        t = read_model_generations
        await self.session.execute(
            update(t)
            .where(t.c.generation == self.generation)
            .values(org_version=t.c.org_version + 1)
        )

    async def facts_changed(self, tenant: str, slots: Iterable[tuple[str, str]]) -> None:
        """Raise the numbers of the (family, slot)s whose facts changed, with the change
        (dashboards keep small-group decisions and manager tables in memory while they stay
        the same). Last in a batch and in one order: replicas wait for each other here at
        worst, never in a circle."""
        rows = [{"family": f, "slot": s, "version": 1} for f, s in sorted(set(slots))]
        await self._bulk_upsert(
            fact_versions,
            rows,
            increment=True,
            fixed={"generation": self.generation, "tenant_id": tenant},
        )

    async def save_units(self, tenant: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        stmt = self._insert(org_units)
        stmt = stmt.on_conflict_do_update(
            index_elements=["generation", "tenant_id", "org_unit_id"],
            set_={c: stmt.excluded[c] for c in ("name", "parent_id", "head_id", "updated_at")},
        )
        await self.session.execute(
            stmt, [{"generation": self.generation, "tenant_id": tenant, **r} for r in rows]
        )

    async def load_versions(
        self, tenant: str, people: Iterable[str]
    ) -> dict[str, list[EmployeeVersion]]:
        out: dict[str, list[EmployeeVersion]] = defaultdict(list)
        t = employee_versions
        for chunk in chunks(sorted(set(people))):
            rows = await self.session.execute(
                select(
                    t.c.employee_id,
                    t.c.valid_from,
                    t.c.org_unit_id,
                    t.c.manager_id,
                    t.c.display_name,
                    t.c.active,
                )
                .where(
                    t.c.generation == self.generation,
                    t.c.tenant_id == tenant,
                    t.c.employee_id.in_(chunk),
                )
                .order_by(t.c.employee_id, t.c.valid_from)
            )
            for r in rows.all():
                out[r.employee_id].append(
                    EmployeeVersion(
                        r.valid_from, r.org_unit_id, r.manager_id, r.display_name, r.active
                    )
                )
        return dict(out)

    async def save_versions(
        self, tenant: str, versions: Mapping[str, Sequence[EmployeeVersion]]
    ) -> None:
        rows = []
        for employee_id, history in versions.items():
            for i, v in enumerate(history):
                rows.append(
                    {
                        "generation": self.generation,
                        "tenant_id": tenant,
                        "employee_id": employee_id,
                        "valid_from": v.valid_from,
                        "valid_to": history[i + 1].valid_from if i + 1 < len(history) else None,
                        "org_unit_id": v.org_unit_id,
                        "manager_id": v.manager_id,
                        "display_name": v.display_name,
                        "active": v.active,
                    }
                )
        if not rows:
            return
        stmt = self._insert(employee_versions)
        stmt = stmt.on_conflict_do_update(
            index_elements=["generation", "tenant_id", "employee_id", "valid_from"],
            set_={c: stmt.excluded[c] for c in value_columns(employee_versions)},
        )
        await self.session.execute(stmt, rows)

    async def load_employees(self, tenant: str, people: Iterable[str]) -> dict[str, Fact]:
        return await self._load_rows(employees, "employee_id", tenant, people)

    async def save_employees(self, tenant: str, rows: Iterable[Fact]) -> None:
        await self._upsert_rows(employees, tenant, list(rows))

    # -- facts -------------------------------------------------------------------------------

    async def load_facts(self, kind: str, tenant: str, keys: Iterable[str]) -> dict[str, Fact]:
        table, key = FACT_TABLES[kind]
        if self.lock_facts:
            keys = set(keys)
            await self._lock_fact_keys(kind, tenant, keys)
        return await self._load_rows(table, key, tenant, keys)

    async def load_facts_of_people(
        self, kind: str, tenant: str, people: Iterable[str]
    ) -> dict[str, Fact]:
        table, key = FACT_TABLES[kind]
        out: dict[str, Fact] = {}
        for chunk in chunks(sorted(set(people))):
            condition = or_(*(table.c[col].in_(chunk) for col in PEOPLE_COLUMNS[kind]))
            rows = await self.session.execute(
                select(table).where(
                    table.c.generation == self.generation, table.c.tenant_id == tenant, condition
                )
            )
            for row in rows.mappings().all():
                fact = dict(row)
                out[fact.pop(key)] = _strip(fact)
        return out

    async def save_facts(self, kind: str, tenant: str, facts: Mapping[str, Fact]) -> None:
        table, key = FACT_TABLES[kind]
        rows = []
        for k, f in facts.items():
            f[key] = k
            rows.append(f)
        await self._upsert_rows(table, tenant, rows)

    # -- rollups -----------------------------------------------------------------------------

    async def load_unit_rollups(
        self, table_name: str, tenant: str, units: Iterable[str]
    ) -> dict[str, dict[tuple[Any, ...], dict[str, int]]]:
        """Rows of subtree rollups for ``units``: unit -> rest of key -> counts."""
        table = ROLLUP_TABLES[table_name]
        keys = key_columns(table)[1:]
        values = value_columns(table)
        out: dict[str, dict[tuple[Any, ...], dict[str, int]]] = defaultdict(dict)
        for chunk in chunks(sorted(set(units))):
            rows = await self.session.execute(
                select(table).where(
                    table.c.generation == self.generation,
                    table.c.tenant_id == tenant,
                    table.c.org_unit_id.in_(chunk),
                )
            )
            for row in rows.mappings().all():
                out[row["org_unit_id"]][tuple(row[k] for k in keys)] = {v: row[v] for v in values}
        return dict(out)

    async def add_to_rollup(self, table_name: str, rows: RollupRows) -> None:
        """``count = count + delta`` for each (tenant, key, deltas) row, inserting new rows."""
        if not rows:
            return
        table = ROLLUP_TABLES[table_name]
        values = value_columns(table)
        g = self.generation
        # In key order: replicas that add to the same counters lock them in the same order, so
        # they wait for each other at worst, never in a circle (a deadlock). Rows are built in
        # the table's column order (generation, tenant, key, values), tens of thousands a batch.
        params = [
            (g, tenant, *key, *[deltas.get(v, 0) for v in values])
            for tenant, key, deltas in sorted(rows, key=itemgetter(0, 1))
        ]
        if table_name in MEMBERSHIP_ROLLUPS:
            await self._add_members(table, MEMBERSHIP_ROLLUPS[table_name], params)
        else:
            await self._bulk_upsert_rows(table, params, increment=True)

    async def _add_members(self, table: Table, counts: Table, rows: list[tuple[Any, ...]]) -> None:
        """Add to a membership rollup (its last key column the member, one count column) and
        keep ``counts``, its members per group: each statement adds to many rows at once and
        returns their new counts, so a member that came (0 -> n) or went (n -> 0) is known
        without reading first. A member whose last fact went is no member: its row goes.

        ``rows`` are (generation, tenant, key..., delta) in the table's column order."""
        keys = key_columns(table)
        delta = {row[1:-1]: row[-1] for row in rows}
        groups: dict[tuple[Any, ...], int] = defaultdict(int)
        gone = []
        for chunk in chunks(rows, _ROWS_PER_STATEMENT):
            for returned in await self._upsert_returning(table, chunk):
                now = returned[-1]
                member = tuple(returned[:-1])
                change = (now > 0) - (now - delta[member] > 0)
                if change:
                    groups[member[:-1]] += change
                if now <= 0:
                    gone.append(member)
        await self._delete_keys(table, keys, gone)
        changed = [(self.generation, *group, n) for group, n in sorted(groups.items()) if n]
        await self._bulk_upsert_rows(counts, changed, increment=True)
        group_keys = key_columns(counts)
        (people,) = value_columns(counts)
        fell = [row[1:-1] for row in changed if row[-1] < 0]
        for part in chunks(fell):
            await self.session.execute(
                delete(counts).where(
                    counts.c.generation == self.generation,
                    tuple_(counts.c.tenant_id, *(counts.c[k] for k in group_keys)).in_(part),
                    counts.c[people] <= 0,
                )
            )

    async def _upsert_returning(self, table: Table, rows: list[tuple[Any, ...]]) -> list[Any]:
        """One INSERT ... ON CONFLICT DO UPDATE (count + delta) of all ``rows`` (in the table's
        column order), returning each row's (tenant, key..., new count)."""
        dialect = self.session.get_bind().dialect
        quote = dialect.identifier_preparer.quote
        columns = [c.name for c in table.columns]
        keys = [c.name for c in table.primary_key.columns]
        (value,) = value_columns(table)
        n = len(columns)
        if dialect.paramstyle == "numeric_dollar":
            marks = ", ".join(
                "(" + ", ".join(f"${i * n + j + 1}" for j in range(n)) + ")"
                for i in range(len(rows))
            )
        else:
            marks = ", ".join(["(" + ", ".join("?" * n) + ")"] * len(rows))
        name = quote(table.name)
        returned = [k for k in keys if k != "generation"] + [value]
        sql = (
            f"INSERT INTO {name} ({', '.join(quote(c) for c in columns)}) VALUES {marks} "
            f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET "
            f"{quote(value)} = {name}.{quote(value)} + excluded.{quote(value)} "
            f"RETURNING {', '.join(quote(c) for c in returned)}"
        )
        params = tuple(v for row in rows for v in row)
        connection = await self.session.connection()
        return list((await connection.exec_driver_sql(sql, params)).all())

    async def _delete_keys(self, table: Table, keys: Sequence[str], gone: list[Any]) -> None:
        for chunk in chunks(gone):
            await self.session.execute(
                delete(table).where(
                    table.c.generation == self.generation,
                    tuple_(table.c.tenant_id, *(table.c[k] for k in keys)).in_(chunk),
                )
            )

    # -- erasure -----------------------------------------------------------------------------

    async def erased(self, tenant: str, people: Iterable[str]) -> set[str]:
        wanted = sorted(set(people))
        if not wanted:
            return set()
        e = directory.employees
        found = await self.session.scalars(
            select(e.c.employee_id).where(
                e.c.tenant_id == tenant,
                e.c.employee_id.in_(wanted),
                e.c.erased_at.is_not(None),
            )
        )
        return set(found.all())

    async def data_key(self, tenant: str, employee_id: str) -> tuple[str, str] | None:
        k = directory.keys
        row = (
            await self.session.execute(
                select(k.c.key_id, k.c.wrapped_key).where(
                    k.c.tenant_id == tenant,
                    k.c.employee_id == employee_id,
                    k.c.wrapped_key.is_not(None),
                )
            )
        ).first()
        return None if row is None else (row.key_id, row.wrapped_key)

    async def pseudonymise(self, tenant: str, person: str, alias: str) -> None:
        """Every generation's rows, not only this one's: a rebuild in progress forgets too."""
        session = self.session
        for kind, (table, _) in FACT_TABLES.items():
            for column in PEOPLE_COLUMNS[kind]:
                where = [table.c.tenant_id == tenant, table.c[column] == person]
                values: dict[str, str | None] = {column: alias}
                if kind == "goal":
                    where.append(table.c.owner_type == "person")
                    # A goal of their own may say something of them: its title goes with the name.
                    values["title"] = None
                await session.execute(update(table).where(*where).values(values))
        # The contributors the small-group rule counts: the same person, under the same alias.
        # (Their counts stay: one person becomes one pseudonym.)
        for c in (unit_contributors, manager_reports):
            await session.execute(
                update(c)
                .where(c.c.tenant_id == tenant, c.c.person_id == person)
                .values(person_id=alias)
            )
        # Employees renamed are an org change: what dashboards keep in memory is read again.
        g = read_model_generations
        await session.execute(update(g).values(org_version=g.c.org_version + 1))
        v, e = employee_versions, employees
        await session.execute(
            update(v)
            .where(v.c.tenant_id == tenant, v.c.employee_id == person)
            .values(employee_id=alias, display_name="")
        )
        await session.execute(
            update(e)
            .where(e.c.tenant_id == tenant, e.c.employee_id == person)
            .values(employee_id=alias, display_name=None)
        )

    # -- helpers -----------------------------------------------------------------------------

    async def _load_rows(
        self, table: Table, key: str, tenant: str, keys: Iterable[str]
    ) -> dict[str, Fact]:
        out: dict[str, Fact] = {}
        for chunk in chunks(sorted(set(keys))):
            rows = await self.session.execute(
                select(table).where(
                    table.c.generation == self.generation,
                    table.c.tenant_id == tenant,
                    table.c[key].in_(chunk),
                )
            )
            for row in rows.mappings().all():
                fact = dict(row)
                out[fact.pop(key)] = _strip(fact)
        return out

    async def _upsert_rows(self, table: Table, tenant: str, rows: list[Fact]) -> None:
        await self._bulk_upsert(
            table, rows, increment=False, fixed={"generation": self.generation, "tenant_id": tenant}
        )

    async def _bulk_upsert(
        self,
        table: Table,
        rows: list[dict[str, Any]],
        *,
        increment: bool,
        fixed: Mapping[str, Any] | None = None,
    ) -> None:
        """INSERT ... ON CONFLICT DO UPDATE for many rows through the driver's executemany.

        SQLAlchemy's per-row parameter processing costs more than the database work here, so
        the statement is rendered once and values go through each column's own bind processor.
        ``fixed`` gives columns that are the same in every row (processed once).
        """
        if not rows:
            return
        sql, columns, processors, defaults = _upsert_statement(
            self.session.get_bind().dialect, table, increment
        )
        fixed = fixed or {}
        plan: list[tuple[int, str, Any, Any]] = []  # (kind, column, processor, constant)
        for column, processor in zip(columns, processors, strict=True):
            if column in fixed:
                value = fixed[column]
                plan.append((0, column, None, processor(value) if processor else value))
            else:
                plan.append((1, column, processor, defaults.get(column)))
        params = []
        for row in rows:
            values = []
            for kind, column, processor, constant in plan:
                if kind == 0:
                    values.append(constant)
                    continue
                value = row.get(column)
                if value is None:
                    value = constant
                if value is not None and processor is not None:
                    value = processor(value)
                values.append(value)
            params.append(tuple(values))
        connection = await self.session.connection()
        await connection.exec_driver_sql(sql, params)

    async def _bulk_upsert_rows(
        self, table: Table, rows: list[tuple[Any, ...]], *, increment: bool
    ) -> None:
        """:meth:`_bulk_upsert` of rows given as tuples in the statement's column order, for
        the rollups: only the columns whose type converts values (dates on SQLite) are
        processed."""
        if not rows:
            return
        sql, _, processors, _ = _upsert_statement(self.session.get_bind().dialect, table, increment)
        converting = [(i, p) for i, p in enumerate(processors) if p is not None]
        if converting:
            converted = []
            for row in rows:
                values = list(row)
                for i, processor in converting:
                    if values[i] is not None:
                        values[i] = processor(values[i])
                converted.append(tuple(values))
            rows = converted
        connection = await self.session.connection()
        await connection.exec_driver_sql(sql, rows)


_STATEMENTS: dict[tuple[str, str, bool], tuple[str, list[str], list[Any], dict[str, Any]]] = {}


def _upsert_statement(
    dialect: Any, table: Table, increment: bool
) -> tuple[str, list[str], list[Any], dict[str, Any]]:
    cache_key = (dialect.name, table.name, increment)
    cached = _STATEMENTS.get(cache_key)
    if cached is not None:
        return cached
    quote = dialect.identifier_preparer.quote
    written = [c for c in table.columns if c.computed is None]
    columns = [c.name for c in written]
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in written]
    # A missing flag is false, not null.
    defaults = {c.name: False for c in written if isinstance(c.type, Boolean) and not c.nullable}
    if dialect.paramstyle == "numeric_dollar":
        marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
    else:
        marks = ", ".join("?" for _ in columns)
    keys = [c.name for c in table.primary_key.columns]
    name = quote(table.name)
    updates = ", ".join(
        f"{quote(c)} = {name}.{quote(c)} + excluded.{quote(c)}"
        if increment
        else f"{quote(c)} = excluded.{quote(c)}"
        for c in columns
        if c not in keys
    )
    sql = (
        f"INSERT INTO {name} ({', '.join(quote(c) for c in columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {updates}"
    )
    _STATEMENTS[cache_key] = (sql, columns, processors, defaults)
    return _STATEMENTS[cache_key]


def _strip(fact: Fact) -> Fact:
    fact.pop("generation", None)
    fact.pop("tenant_id", None)
    return fact


# -- generations -----------------------------------------------------------------------------


async def active_generation(session: AsyncSession) -> int | None:
    return (
        await session.execute(
            select(read_model_generations.c.generation).where(
                read_model_generations.c.status == "active"
            )
        )
    ).scalar()


async def ensure_active_generation(session: AsyncSession, now: datetime) -> int:
    current = await active_generation(session)
    if current is not None:
        return current
    await session.execute(
        read_model_generations.insert().values(
            generation=1, status="active", created_at=now, activated_at=now
        )
    )
    return 1


async def start_generation(session: AsyncSession, now: datetime) -> int:
    """A new, empty generation to build; abandoned earlier builds are retired."""
    await session.execute(
        update(read_model_generations)
        .where(read_model_generations.c.status == "building")
        .values(status="retired")
    )
    latest = (
        await session.execute(select(func.max(read_model_generations.c.generation)))
    ).scalar() or 0
    generation = int(latest) + 1
    await session.execute(
        read_model_generations.insert().values(
            generation=generation, status="building", created_at=now
        )
    )
    return generation


async def activate_generation(session: AsyncSession, generation: int, now: datetime) -> None:
    await session.execute(
        update(read_model_generations)
        .where(read_model_generations.c.status == "active")
        .values(status="retired")
    )
    await session.execute(
        update(read_model_generations)
        .where(read_model_generations.c.generation == generation)
        .values(status="active", activated_at=now)
    )


async def retired_generations(session: AsyncSession) -> list[int]:
    rows = await session.execute(
        select(read_model_generations.c.generation).where(
            read_model_generations.c.status == "retired"
        )
    )
    return [r[0] for r in rows.all()]


async def drop_generations(session: AsyncSession, generations: Sequence[int]) -> None:
    """Delete the rows of ``generations`` (the record of each generation stays, as dropped)."""
    for table in (*GENERATIONAL_TABLES, fact_versions, consumer_positions):
        await session.execute(table.delete().where(table.c.generation.in_(generations)))
    await session.execute(
        update(read_model_generations)
        .where(read_model_generations.c.generation.in_(generations))
        .values(status="dropped")
    )
