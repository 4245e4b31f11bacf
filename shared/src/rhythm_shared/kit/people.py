"""The people directory: every service's one view of people and org units (rhythm.people.v1).

Identity comes from the token; relationships (who manages whom, who heads which unit) come from
here only. Each service keeps the directory in its own database (event-carried state) and
projects the people topic into it with one rule, :func:`fold_employee` / :func:`fold_org_unit`:

* last writer wins by the HR platform's time (``occurred_at``), ties broken by the event id, so
  a late, older ``EmployeeUpserted`` (an HR platform retrying) changes nothing, and any order of
  the same events ends in the same state;
* a deactivation (dated now or ahead) holds until an upsert newer than it (a rehire, or HR
  taking it back); an upsert older than the deactivation does not undo it;
* an erasure is final: the person's row keeps their id and nothing else, and no later event
  about the id (a delayed retry of an old upsert) brings anything back.

Names and addresses arrive sealed (``EmployeeUpserted`` v2, :mod:`rhythm_shared.kit.crypto`) and
stay sealed in the directory; reads open them with the person's data key, which arrives on
``rhythm.keys.v1`` (:class:`KeyStore`). An erased person's key is gone, so nothing opens them.

The rule is pure (no database) so it can be checked over every order of events; the tables and
queries are below it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Delete,
    Index,
    Insert,
    MetaData,
    Select,
    String,
    Table,
    Update,
    event,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql import visitors

from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    EmployeeErased,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.kit import crypto
from rhythm_shared.kit.db import UtcDateTime, chunks, where_one_of
from rhythm_shared.kit.directory import (
    DIRECTORY_EVENTS,
    EMPLOYEE_EVENTS,
    MAX_DEPTH,
    EmployeeEvent,
    OrgUnit,
    OrgUnitChange,
    Person,
    PersonChange,
    Version,
    fold_employee,
    fold_org_unit,
)

__all__ = [
    "DIRECTORY_EVENTS",
    "EMPLOYEE_EVENTS",
    "MAX_DEPTH",
    "DirectoryProjection",
    "DirectoryTables",
    "EmployeeEvent",
    "KeyStore",
    "OrgUnit",
    "OrgUnitChange",
    "PeopleDirectory",
    "Person",
    "PersonChange",
    "SqlPeople",
    "Version",
    "define_directory_tables",
    "fold_employee",
    "fold_org_unit",
]

_ID = 128


# --- tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryTables:
    employees: Table
    org_units: Table
    keys: Table


def define_directory_tables(metadata: MetaData) -> DirectoryTables:
    """The directory's tables on a service's metadata (created by
    :mod:`rhythm_shared.kit.schema`)."""
    employees = Table(
        "directory_employees",
        metadata,
        Column("tenant_id", String(_ID), primary_key=True),
        Column("employee_id", String(_ID), primary_key=True),
        Column("email", String(320), nullable=True),
        Column("display_name", String(200), nullable=True),
        Column("manager_id", String(_ID), nullable=True),
        Column("org_unit_id", String(_ID), nullable=True),
        Column("time_zone", String(64), nullable=False),
        Column("locale", String(35), nullable=False),
        Column("hired_on", Date, nullable=True),
        Column("active", Boolean, nullable=False),
        Column("deactivated_at", UtcDateTime, nullable=True),
        Column("profile_at", UtcDateTime, nullable=True),
        Column("profile_event_id", String(64), nullable=True),
        Column("deactivation_at", UtcDateTime, nullable=True),
        Column("deactivation_event_id", String(64), nullable=True),
        Column("erased_at", UtcDateTime, nullable=True),
        comment="The people directory: employees as rhythm.people.v1 last said (kit).",
    )
    Index("ix_directory_employees_manager", employees.c.tenant_id, employees.c.manager_id)
    Index("ix_directory_employees_org_unit", employees.c.tenant_id, employees.c.org_unit_id)
    org_units = Table(
        "directory_org_units",
        metadata,
        Column("tenant_id", String(_ID), primary_key=True),
        Column("org_unit_id", String(_ID), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("parent_id", String(_ID), nullable=True),
        Column("head_id", String(_ID), nullable=True),
        Column("version_at", UtcDateTime, nullable=False),
        Column("version_event_id", String(64), nullable=False),
        comment="The people directory: org units as rhythm.people.v1 last said (kit).",
    )
    Index("ix_directory_org_units_parent", org_units.c.tenant_id, org_units.c.parent_id)
    Index("ix_directory_org_units_head", org_units.c.tenant_id, org_units.c.head_id)
    keys = Table(
        "directory_keys",
        metadata,
        Column("tenant_id", String(_ID), primary_key=True),
        Column("employee_id", String(_ID), primary_key=True),
        Column("key_id", String(_ID), nullable=False),
        # Wrapped by the key-encryption key; NULL once destroyed (the person's erasure).
        Column("wrapped_key", String(512), nullable=True),
        Column("destroyed_at", UtcDateTime, nullable=True),
        comment="Per-person data keys from rhythm.keys.v1, wrapped (kit; crypto-shredding).",
    )
    return DirectoryTables(employees=employees, org_units=org_units, keys=keys)


def _version(at: datetime | None, event_id: str | None) -> Version | None:
    return None if at is None or event_id is None else (at, event_id)


def _person(row: Any) -> Person:
    return Person(
        employee_id=row.employee_id,
        email=row.email,
        display_name=row.display_name,
        manager_id=row.manager_id,
        org_unit_id=row.org_unit_id,
        time_zone=row.time_zone,
        locale=row.locale,
        hired_on=row.hired_on,
        active=bool(row.active),
        deactivated_at=row.deactivated_at,
        profile_version=_version(row.profile_at, row.profile_event_id),
        deactivation_version=_version(row.deactivation_at, row.deactivation_event_id),
        erased=row.erased_at is not None,
    )


def _person_values(person: Person, now: datetime) -> dict[str, Any]:
    profile = person.profile_version or (None, None)
    deactivation = person.deactivation_version or (None, None)
    return {
        "email": person.email,
        "display_name": person.display_name,
        "manager_id": person.manager_id,
        "org_unit_id": person.org_unit_id,
        "time_zone": person.time_zone,
        "locale": person.locale,
        "hired_on": person.hired_on,
        "active": person.active,
        "deactivated_at": person.deactivated_at,
        "profile_at": profile[0],
        "profile_event_id": profile[1],
        "deactivation_at": deactivation[0],
        "deactivation_event_id": deactivation[1],
        "erased_at": now if person.erased else None,
    }


def _unit(row: Any) -> OrgUnit:
    return OrgUnit(
        org_unit_id=row.org_unit_id,
        name=row.name,
        parent_id=row.parent_id,
        head_id=row.head_id,
        version=(row.version_at, row.version_event_id),
    )


# --- projection -----------------------------------------------------------------------------

#: ``session.info`` key: the projections with writes not yet sent on that session.
_PENDING = "rhythm.directory.pending"
#: ``session.info`` key: the session's hooks that flush and drop them are in place.
_HOOKED = "rhythm.directory.hooked"


class DirectoryProjection:
    """Applies people events to the directory inside the caller's transaction.

    Writes are held back and sent together (write-behind): what an event changes folds into the
    rows this projection has read (read ahead, or one at a time), and :meth:`flush` writes every
    changed row in one upsert per table. A burst of people events then costs a statement per
    chunk, not one per event. Nothing can read around it: the flush runs by itself before any
    statement on the session that names a directory table (whoever issues it: the directory's
    queries, a service's own SQL, another view of the directory on the same session) and before
    the transaction commits; a rollback drops what was held back.
    """

    def __init__(self, tables: DirectoryTables) -> None:
        self.tables = tables
        self.keys = KeyStore(tables)
        #: Rows as this transaction has them (None: no row): read ahead, read, or written.
        self._people: dict[tuple[str, str], Person | None] = {}
        self._units: dict[tuple[str, str], OrgUnit | None] = {}
        #: Rows changed and not written yet: (tenant, id) -> the row's values.
        self._pending_people: dict[tuple[str, str], dict[str, Any]] = {}
        self._pending_units: dict[tuple[str, str], dict[str, Any]] = {}
        self._names = frozenset(t.name for t in (tables.employees, tables.org_units, tables.keys))

    async def read_ahead(self, session: AsyncSession, people: Iterable[tuple[str, str]]) -> None:
        """Read the rows of ``people`` (tenant, employee) in one statement per tenant and 500,
        so that applying a batch of their events reads none of them one at a time."""
        e = self.tables.employees
        dialect = session.get_bind().dialect
        for tenant_id, chunk in _wanted(people, self._people):
            query = select(e).where(e.c.tenant_id == tenant_id)
            rows = await session.execute(where_one_of(query, e.c.employee_id, chunk, dialect))
            found = {r.employee_id: _person(r) for r in rows}
            for employee_id in chunk:
                self._people[(tenant_id, employee_id)] = found.get(employee_id)

    async def read_ahead_units(
        self, session: AsyncSession, units: Iterable[tuple[str, str]]
    ) -> None:
        """:meth:`read_ahead` for org units (tenant, org unit)."""
        u = self.tables.org_units
        dialect = session.get_bind().dialect
        for tenant_id, chunk in _wanted(units, self._units):
            query = select(u).where(u.c.tenant_id == tenant_id)
            rows = await session.execute(where_one_of(query, u.c.org_unit_id, chunk, dialect))
            found = {r.org_unit_id: _unit(r) for r in rows}
            for org_unit_id in chunk:
                self._units[(tenant_id, org_unit_id)] = found.get(org_unit_id)

    async def apply_employee(
        self, session: AsyncSession, event: EmployeeEvent, event_id: str
    ) -> PersonChange:
        """Apply an upsert (v1 or v2), a deactivation or an erasure. An erasure also destroys
        the person's data key here, whatever order the key's own events arrive in."""
        key = (event.tenant_id, event.employee_id)
        if key not in self._people:
            await self.read_ahead(session, [key])
        before = self._people[key]
        after = fold_employee(before, event, event_id)
        if isinstance(event, EmployeeErased):
            await self.keys.destroy(session, event.tenant_id, event.employee_id, event.occurred_at)
        if after != before:
            self._people[key] = after
            self._hold(session, self._pending_people, key, _person_values(after, event.occurred_at))
        return PersonChange(before=before, after=after)

    async def apply_org_unit(
        self, session: AsyncSession, event: OrgUnitUpserted, event_id: str
    ) -> OrgUnitChange:
        key = (event.tenant_id, event.org_unit_id)
        if key not in self._units:
            await self.read_ahead_units(session, [key])
        before = self._units[key]
        after = fold_org_unit(before, event, event_id)
        if after != before:
            assert after.version is not None
            self._units[key] = after
            values = {
                "name": after.name,
                "parent_id": after.parent_id,
                "head_id": after.head_id,
                "version_at": after.version[0],
                "version_event_id": after.version[1],
            }
            self._hold(session, self._pending_units, key, values)
        return OrgUnitChange(before=before, after=after)

    async def flush(self, session: AsyncSession) -> None:
        """Write the rows changed so far (done by itself before a directory read and before
        commit; see the class docstring)."""
        await session.run_sync(self._flush)

    def _hold(
        self,
        session: AsyncSession,
        pending: dict[tuple[str, str], dict[str, Any]],
        key: tuple[str, str],
        values: dict[str, Any],
    ) -> None:
        pending[key] = values
        sync = session.sync_session
        if not sync.info.get(_HOOKED):
            sync.info[_HOOKED] = True
            event.listen(sync, "do_orm_execute", _flush_before_directory_statement)
            event.listen(sync, "before_commit", _flush_all)
            event.listen(sync, "after_commit", _forget_all)
            event.listen(sync, "after_soft_rollback", _drop_all)
        projections = sync.info.setdefault(_PENDING, [])
        if self not in projections:
            projections.append(self)

    def _flush(self, session: Session) -> None:
        people, self._pending_people = self._pending_people, {}
        units, self._pending_units = self._pending_units, {}
        e, u = self.tables.employees, self.tables.org_units
        for table, rows, id_column in (
            (e, people, "employee_id"),
            (u, units, "org_unit_id"),
        ):
            if rows:
                session.execute(
                    _upsert(session, table, ("tenant_id", id_column)),
                    [{"tenant_id": t, id_column: i, **v} for (t, i), v in rows.items()],
                )

    def _drop(self) -> None:
        """The transaction ended: what it read may change now; after a rollback, nothing held
        back is written."""
        self._pending_people, self._pending_units = {}, {}
        self._people, self._units = {}, {}


def _upsert(session: Session, table: Table, key: tuple[str, ...]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE every other column, for executemany."""
    stmt = _insert(session, table)
    return stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key},
    )


def _insert(session: Session, table: Table) -> Any:
    """A dialect-aware INSERT that supports ``ON CONFLICT``."""
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)


def _flush_before_directory_statement(state: ORMExecuteState) -> None:
    projections: list[DirectoryProjection] = state.session.info.get(_PENDING, [])
    if any(p._pending_people or p._pending_units for p in projections) and _names_any(
        state.statement, set().union(*(p._names for p in projections))
    ):
        _flush_all(state.session)


def _names_any(statement: Any, names: set[str]) -> bool:
    """Whether ``statement`` names one of the tables ``names`` (anything but a Core statement,
    raw SQL say, is taken to name them all)."""
    if not isinstance(statement, Select | Insert | Update | Delete):
        return True
    return any(isinstance(e, Table) and e.name in names for e in visitors.iterate(statement))


def _flush_all(session: Session) -> None:
    for projection in session.info.get(_PENDING, []):
        projection._flush(session)


def _drop_all(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.nested:
        return  # a savepoint: what was held back before it is still to be written
    _forget_all(session)


def _forget_all(session: Session) -> None:
    for projection in session.info.pop(_PENDING, []):
        projection._drop()


def _wanted(
    keys: Iterable[tuple[str, str]], known: dict[tuple[str, str], Any]
) -> list[tuple[str, Sequence[str]]]:
    """The (tenant, ids) not in ``known`` yet, by tenant and 500."""
    wanted: dict[str, set[str]] = {}
    for tenant_id, entity_id in keys:
        if (tenant_id, entity_id) not in known:
            wanted.setdefault(tenant_id, set()).add(entity_id)
    return [
        (tenant_id, chunk) for tenant_id, ids in wanted.items() for chunk in chunks(sorted(ids))
    ]


class KeyStore:
    """The people service's per-person data keys, as ``rhythm.keys.v1`` delivers them."""

    def __init__(self, tables: DirectoryTables) -> None:
        self.table = tables.keys

    async def apply(
        self, session: AsyncSession, event: PersonKeyIssued | PersonKeyDestroyed
    ) -> None:
        if isinstance(event, PersonKeyDestroyed):
            await self.destroy(session, event.tenant_id, event.employee_id, event.occurred_at)
            return
        # A key arrives once; a destroyed key is never brought back: an existing row wins.
        await session.execute(
            _insert(session.sync_session, self.table)
            .values(
                tenant_id=event.tenant_id,
                employee_id=event.employee_id,
                key_id=event.key_id,
                wrapped_key=event.wrapped_key,
            )
            .on_conflict_do_nothing()
        )

    async def destroy(
        self, session: AsyncSession, tenant_id: str, employee_id: str, at: datetime
    ) -> None:
        k = self.table
        where = (k.c.tenant_id == tenant_id, k.c.employee_id == employee_id)
        if (await session.execute(select(k.c.key_id).where(*where))).first() is None:
            await session.execute(
                k.insert().values(
                    tenant_id=tenant_id, employee_id=employee_id, key_id="-", destroyed_at=at
                )
            )
            return
        await session.execute(k.update().where(*where).values(wrapped_key=None, destroyed_at=at))


def _open(
    value: str | None, key: bytes | None, *, tenant_id: str, employee_id: str, field: str
) -> str | None:
    """A directory value in the clear: as v1 sent it, or opened with the person's key."""
    if value is None or not crypto.is_sealed(value):
        return value
    if key is None:
        return None
    try:
        return crypto.unseal(key, value, tenant_id=tenant_id, employee_id=employee_id, field=field)
    except crypto.Unreadable:
        return None


# --- queries --------------------------------------------------------------------------------


@dataclass
class PeopleDirectory:
    """Reads of the directory for one tenant, memoised for the length of one unit of work.

    Only people an upsert has described count as known (:attr:`Person.known`); a bare
    deactivation of someone never described is kept for when the upsert arrives.
    """

    session: AsyncSession
    tables: DirectoryTables
    tenant_id: str
    #: The key-encryption key, to open sealed names and addresses (None: they read as None).
    kek: bytes | None = None
    _people: dict[str, Person | None] = field(default_factory=dict)
    _units: dict[str, OrgUnit | None] = field(default_factory=dict)

    async def person(self, employee_id: str) -> Person | None:
        if employee_id not in self._people:
            await self.people([employee_id])
        return self._people[employee_id]

    async def people(self, employee_ids: Iterable[str]) -> dict[str, Person]:
        """The known people among ``employee_ids`` (one query for those not read yet)."""
        wanted = sorted(set(employee_ids))
        missing = [i for i in wanted if i not in self._people]
        e = self.tables.employees
        for chunk in chunks(missing):
            rows = await self.session.execute(
                select(e).where(e.c.tenant_id == self.tenant_id, e.c.employee_id.in_(chunk))
            )
            found = {r.employee_id: _person(r) for r in rows}
            found = await self._opened(found)
            for employee_id in chunk:
                person = found.get(employee_id)
                self._people[employee_id] = person if person is not None and person.known else None
        return {i: p for i in wanted if (p := self._people[i]) is not None}

    async def _opened(self, people: dict[str, Person]) -> dict[str, Person]:
        """The people with their sealed name and address opened (where their key is known)."""
        sealed = [
            p.employee_id
            for p in people.values()
            if crypto.is_sealed(p.email) or crypto.is_sealed(p.display_name)
        ]
        if not sealed:
            return people
        keys: dict[str, bytes] = {}
        if self.kek is not None:
            k = self.tables.keys
            rows = await self.session.execute(
                select(k.c.employee_id, k.c.key_id, k.c.wrapped_key).where(
                    k.c.tenant_id == self.tenant_id,
                    k.c.employee_id.in_(sealed),
                    k.c.wrapped_key.is_not(None),
                )
            )
            for r in rows:
                try:
                    keys[r.employee_id] = crypto.unwrap(
                        self.kek,
                        r.wrapped_key,
                        tenant_id=self.tenant_id,
                        employee_id=r.employee_id,
                        key_id=r.key_id,
                    )
                except crypto.Unreadable:
                    continue
        out = dict(people)
        for employee_id in sealed:
            p = people[employee_id]
            key = keys.get(employee_id)
            ids = {"tenant_id": self.tenant_id, "employee_id": employee_id}
            out[employee_id] = dataclasses.replace(
                p,
                email=_open(p.email, key, field="email", **ids),
                display_name=_open(p.display_name, key, field="display_name", **ids),
            )
        return out

    async def manager_of(self, employee_id: str) -> str | None:
        person = await self.person(employee_id)
        return None if person is None else person.manager_id

    async def manager_chain(self, employee_id: str) -> list[str]:
        """The employee's manager, their manager, ... up to the top (a loop stops the walk)."""
        chain: list[str] = []
        seen = {employee_id}
        person = await self.person(employee_id)
        while person is not None and person.manager_id and person.manager_id not in seen:
            if len(chain) >= MAX_DEPTH:
                break
            chain.append(person.manager_id)
            seen.add(person.manager_id)
            person = await self.person(person.manager_id)
        return chain

    async def direct_reports(self, manager_id: str) -> list[Person]:
        e = self.tables.employees
        rows = await self.session.execute(
            select(e)
            .where(e.c.tenant_id == self.tenant_id, e.c.manager_id == manager_id)
            .order_by(e.c.employee_id)
        )
        known = {p.employee_id: p for r in rows if (p := _person(r)).known}
        people = list((await self._opened(known)).values())
        for p in people:
            self._people.setdefault(p.employee_id, p)
        return people

    async def all_reports(self, manager_id: str) -> list[str]:
        """Everyone below ``manager_id`` in the manager tree (level by level, loops cut)."""
        e = self.tables.employees
        found: list[str] = []
        seen = {manager_id}
        level = [manager_id]
        depth = 0
        while level and depth < MAX_DEPTH:
            depth += 1
            below: list[str] = []
            for chunk in chunks(level):
                rows = await self.session.execute(
                    select(e.c.employee_id).where(
                        e.c.tenant_id == self.tenant_id, e.c.manager_id.in_(chunk)
                    )
                )
                below.extend(r.employee_id for r in rows if r.employee_id not in seen)
            below = sorted(set(below))
            seen.update(below)
            found.extend(below)
            level = below
        return found

    async def org_unit(self, org_unit_id: str) -> OrgUnit | None:
        if org_unit_id not in self._units:
            u = self.tables.org_units
            row = (
                await self.session.execute(
                    select(u).where(u.c.tenant_id == self.tenant_id, u.c.org_unit_id == org_unit_id)
                )
            ).first()
            self._units[org_unit_id] = None if row is None else _unit(row)
        return self._units[org_unit_id]

    async def units_upwards(self, org_unit_id: str) -> list[OrgUnit]:
        """The unit and every unit above it, nearest first (a loop stops the walk)."""
        units: list[OrgUnit] = []
        seen: set[str] = set()
        unit_id: str | None = org_unit_id
        while unit_id is not None and unit_id not in seen and len(seen) < MAX_DEPTH:
            seen.add(unit_id)
            unit = await self.org_unit(unit_id)
            if unit is None:
                break
            units.append(unit)
            unit_id = unit.parent_id
        return units

    async def unit_heads_upwards(self, org_unit_id: str) -> list[str]:
        """Heads of the unit and of every unit above it, nearest first."""
        return [u.head_id for u in await self.units_upwards(org_unit_id) if u.head_id]

    async def unit_heads_above(self, employee_id: str) -> list[str]:
        """Heads of the person's unit and of every unit above it (the person excluded)."""
        person = await self.person(employee_id)
        if person is None or person.org_unit_id is None:
            return []
        return [h for h in await self.unit_heads_upwards(person.org_unit_id) if h != employee_id]

    async def subunits(self, org_unit_id: str) -> list[str]:
        """The unit and every unit below it (level by level, loops cut)."""
        u = self.tables.org_units
        found = [org_unit_id]
        seen = {org_unit_id}
        level = [org_unit_id]
        depth = 0
        while level and depth < MAX_DEPTH:
            depth += 1
            below: list[str] = []
            for chunk in chunks(level):
                rows = await self.session.execute(
                    select(u.c.org_unit_id).where(
                        u.c.tenant_id == self.tenant_id, u.c.parent_id.in_(chunk)
                    )
                )
                below.extend(r.org_unit_id for r in rows if r.org_unit_id not in seen)
            below = sorted(set(below))
            seen.update(below)
            found.extend(below)
            level = below
        return found

    async def child_units(self, org_unit_id: str) -> list[OrgUnit]:
        u = self.tables.org_units
        rows = await self.session.execute(
            select(u)
            .where(u.c.tenant_id == self.tenant_id, u.c.parent_id == org_unit_id)
            .order_by(u.c.org_unit_id)
        )
        return [_unit(r) for r in rows]

    async def members(self, org_unit_ids: Sequence[str]) -> list[Person]:
        """The known people of the given units (active or not: callers decide)."""
        e = self.tables.employees
        people: list[Person] = []
        for chunk in chunks(list(org_unit_ids)):
            rows = await self.session.execute(
                select(e)
                .where(e.c.tenant_id == self.tenant_id, e.c.org_unit_id.in_(chunk))
                .order_by(e.c.employee_id)
            )
            known = {p.employee_id: p for r in rows if (p := _person(r)).known}
            people.extend((await self._opened(known)).values())
        return sorted(people, key=lambda p: p.employee_id)

    async def heads_units(self, employee_id: str) -> list[str]:
        """The units ``employee_id`` heads."""
        u = self.tables.org_units
        rows = await self.session.execute(
            select(u.c.org_unit_id)
            .where(u.c.tenant_id == self.tenant_id, u.c.head_id == employee_id)
            .order_by(u.c.org_unit_id)
        )
        return [r.org_unit_id for r in rows]


class SqlPeople:
    """The directory as a unit of work's repository (:class:`rhythm_shared.kit.ports.People`):
    reads for one tenant at a time, and the projection of people events, on the unit of work's
    session."""

    def __init__(self, session: AsyncSession, tables: DirectoryTables, kek: bytes | None = None):
        self.session = session
        self.tables = tables
        self.kek = kek
        self._projection = DirectoryProjection(tables)
        self._directories: dict[str, PeopleDirectory] = {}

    def directory(self, tenant_id: str) -> PeopleDirectory:
        """The tenant's directory, memoised for the length of the unit of work."""
        if tenant_id not in self._directories:
            self._directories[tenant_id] = PeopleDirectory(
                self.session, self.tables, tenant_id, kek=self.kek
            )
        return self._directories[tenant_id]

    async def read_ahead(self, envelopes: Iterable[Envelope]) -> None:
        """Before a batch of events is applied: read the people and org units its events name
        in one statement (per tenant and 500) instead of one statement per event."""
        envelopes = list(envelopes)
        people = [
            (e.event.tenant_id, e.event.employee_id)
            for e in envelopes
            if isinstance(e.event, EMPLOYEE_EVENTS)
        ]
        units = [
            (e.event.tenant_id, e.event.org_unit_id)
            for e in envelopes
            if isinstance(e.event, OrgUnitUpserted)
        ]
        if people:
            await self._projection.read_ahead(self.session, people)
        if units:
            await self._projection.read_ahead_units(self.session, units)

    async def apply_employee(self, event: EmployeeEvent, event_id: str) -> PersonChange:
        self._directories.pop(event.tenant_id, None)  # what it remembered may be stale now
        return await self._projection.apply_employee(self.session, event, event_id)

    async def apply_org_unit(self, event: OrgUnitUpserted, event_id: str) -> OrgUnitChange:
        self._directories.pop(event.tenant_id, None)
        return await self._projection.apply_org_unit(self.session, event, event_id)

    async def apply_key(self, event: PersonKeyIssued | PersonKeyDestroyed) -> None:
        self._directories.pop(event.tenant_id, None)
        await self._projection.keys.apply(self.session, event)
