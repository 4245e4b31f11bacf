"""The people service's tables and the queries on them (every one scoped by tenant)."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from opentelemetry import propagate
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Index,
    String,
    Table,
    and_,
    case,
    func,
    or_,
    select,
    update,
)

from rhythm_people.domain import Employee, OrgUnit, SourceIdentity, StoredEmployee
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import to_record
from rhythm_shared.kit.db import UtcDateTime, define_kit_tables, new_metadata
from rhythm_shared.kit.uow import UnitOfWork

metadata = new_metadata()
kit = define_kit_tables(metadata)

org_units = Table(
    "org_units",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("org_unit_id", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("parent_id", String(128), nullable=True),
    Column("head_id", String(128), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    # An identity provider's id of the unit (SCIM Group externalId) and its SCIM DELETE: the
    # unit stays (no event removes a unit), it is only no longer served as a Group.
    Column("external_id", String(256), nullable=True),
    Column("scim_deleted_at", UtcDateTime, nullable=True),
    comment="Org units as the HR platform last stated them.",
)
Index("ix_org_units_parent", org_units.c.tenant_id, org_units.c.parent_id)
Index("ix_org_units_name", org_units.c.tenant_id, org_units.c.name)

employees = Table(
    "employees",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("employee_id", String(128), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("manager_id", String(128), nullable=True),
    Column("org_unit_id", String(128), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("locale", String(35), nullable=False),
    Column("hired_on", Date, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("deactivated_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    # How an identity provider names the person (SCIM userName and externalId, RFC 7643 §3.1,
    # §4.1) and the department/organization it stated; null for people only HR feeds sent.
    Column("user_name", String(320), nullable=True),
    Column("external_id", String(256), nullable=True),
    Column("department", String(200), nullable=True),
    Column("organization", String(200), nullable=True),
    # The newest version of the person the source stated: an older write is dropped.
    Column("source_updated_at", UtcDateTime, nullable=True),
    # A SCIM DELETE: deactivated, and gone from /scim/v2/Users; the row (history) stays.
    Column("scim_deleted_at", UtcDateTime, nullable=True),
    comment="Employees as the HR platform last stated them, plus their deactivation.",
)
Index("ix_employees_manager", employees.c.tenant_id, employees.c.manager_id)
Index("ix_employees_org_unit", employees.c.tenant_id, employees.c.org_unit_id)
Index("ix_employees_user_name", employees.c.tenant_id, employees.c.user_name)
Index("ix_employees_external_id", employees.c.tenant_id, employees.c.external_id)
Index("ix_employees_email", employees.c.tenant_id, employees.c.email)

_EMPLOYEE_FIELDS = tuple(Employee.model_fields)
_UNIT_FIELDS = tuple(OrgUnit.model_fields)
#: Rows per statement for bulk writes and IN lists (well under SQLite's variable limit).
CHUNK = 2_000


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _employee(row: Any) -> StoredEmployee:
    return StoredEmployee(
        employee=Employee.model_construct(**{f: getattr(row, f) for f in _EMPLOYEE_FIELDS}),
        deactivated_at=row.deactivated_at,
        source_updated_at=row.source_updated_at,
        identity=SourceIdentity(
            user_name=row.user_name,
            external_id=row.external_id,
            department=row.department,
            organization=row.organization,
        ),
        scim_deleted_at=row.scim_deleted_at,
    )


def _unit(row: Any) -> OrgUnit:
    return OrgUnit.model_construct(**{f: getattr(row, f) for f in _UNIT_FIELDS})


class PeopleRepository:
    """Reads and writes people state inside a unit of work."""

    def __init__(self, uow: UnitOfWork, tenant: str) -> None:
        self.uow = uow
        self.tenant = tenant

    # -- reads ---------------------------------------------------------------------------------

    async def employees(self, ids: Iterable[str] | None = None) -> dict[str, StoredEmployee]:
        """The stored employees with ``ids`` (all of the tenant's when ``ids`` is None)."""
        base = select(employees).where(employees.c.tenant_id == self.tenant)
        rows: list[Any] = []
        if ids is None:
            rows = list((await self.uow.session.execute(base)).all())
        else:
            for chunk in _chunks(sorted(set(ids))):
                stmt = base.where(employees.c.employee_id.in_(chunk))
                rows += (await self.uow.session.execute(stmt)).all()
        return {r.employee_id: _employee(r) for r in rows}

    async def org_units(self, ids: Iterable[str] | None = None) -> dict[str, OrgUnit]:
        base = select(org_units).where(org_units.c.tenant_id == self.tenant)
        rows: list[Any] = []
        if ids is None:
            rows = list((await self.uow.session.execute(base)).all())
        else:
            for chunk in _chunks(sorted(set(ids))):
                stmt = base.where(org_units.c.org_unit_id.in_(chunk))
                rows += (await self.uow.session.execute(stmt)).all()
        return {r.org_unit_id: _unit(r) for r in rows}

    async def manager_edges(self, ids: Iterable[str]) -> dict[str, str | None]:
        return await self._edges(employees.c.employee_id, employees.c.manager_id, ids)

    async def unit_edges(self, ids: Iterable[str]) -> dict[str, str | None]:
        return await self._edges(org_units.c.org_unit_id, org_units.c.parent_id, ids)

    async def _edges(self, id_col: Any, parent_col: Any, ids: Iterable[str]) -> dict[str, Any]:
        table = id_col.table
        out: dict[str, str | None] = {}
        for chunk in _chunks(sorted(set(ids))):
            stmt = select(id_col, parent_col).where(
                (table.c.tenant_id == self.tenant) & id_col.in_(chunk)
            )
            out.update((r[0], r[1]) for r in (await self.uow.session.execute(stmt)).all())
        return out

    async def chains_upward(
        self, starts: Iterable[str], edges: Callable[[Iterable[str]], Any], known: dict[str, Any]
    ) -> dict[str, str | None]:
        """The stored edges of ``starts`` and everything above them, one query per level."""
        found: dict[str, str | None] = {}
        frontier = {s for s in starts if s not in known}
        while frontier:
            fetched: dict[str, str | None] = await edges(frontier)
            found.update(fetched)
            frontier = {
                p for p in fetched.values() if p is not None and p not in found and p not in known
            }
        return found

    async def page_employees(
        self, *, after: str | None, limit: int, org_unit_id: str | None, manager_id: str | None
    ) -> list[StoredEmployee]:
        stmt = select(employees).where(employees.c.tenant_id == self.tenant)
        if after is not None:
            stmt = stmt.where(employees.c.employee_id > after)
        if org_unit_id is not None:
            stmt = stmt.where(employees.c.org_unit_id == org_unit_id)
        if manager_id is not None:
            stmt = stmt.where(employees.c.manager_id == manager_id)
        rows = await self.uow.session.execute(stmt.order_by(employees.c.employee_id).limit(limit))
        return [_employee(r) for r in rows.all()]

    async def scim_users(
        self,
        *,
        offset: int,
        limit: int,
        user_name: str | None = None,
        external_id: str | None = None,
        employee_id: str | None = None,
    ) -> tuple[int, list[StoredEmployee]]:
        """SCIM's view of the employees (none deleted over SCIM), by id, with the total count.

        A person no identity provider named has their email as ``userName``.
        """
        where = [employees.c.tenant_id == self.tenant, employees.c.scim_deleted_at.is_(None)]
        if user_name is not None:
            where.append(
                or_(
                    employees.c.user_name == user_name,
                    and_(employees.c.user_name.is_(None), employees.c.email == user_name),
                )
            )
        if external_id is not None:
            where.append(employees.c.external_id == external_id)
        if employee_id is not None:
            where.append(employees.c.employee_id == employee_id)
        total = await self.uow.session.scalar(select(func.count()).where(*where))
        stmt = select(employees).where(*where).order_by(employees.c.employee_id)
        rows = await self.uow.session.execute(stmt.offset(offset).limit(limit))
        return int(total or 0), [_employee(r) for r in rows.all()]

    async def org_unit_named(self, name: str) -> OrgUnit | None:
        """The unit that ``name`` names: the unit with that id, else the first with that name."""
        base = select(org_units).where(
            (org_units.c.tenant_id == self.tenant) & org_units.c.scim_deleted_at.is_(None)
        )
        for stmt in (
            base.where(org_units.c.org_unit_id == name),
            base.where(org_units.c.name == name).order_by(org_units.c.org_unit_id).limit(1),
        ):
            row = (await self.uow.session.execute(stmt)).first()
            if row is not None:
                return _unit(row)
        return None

    async def scim_groups(
        self,
        *,
        offset: int,
        limit: int,
        display_name: str | None = None,
        external_id: str | None = None,
        org_unit_id: str | None = None,
    ) -> tuple[int, list[tuple[OrgUnit, str | None]]]:
        """SCIM's view of the org units (none deleted over SCIM), by id, with the total."""
        where = [org_units.c.tenant_id == self.tenant, org_units.c.scim_deleted_at.is_(None)]
        if display_name is not None:
            where.append(org_units.c.name == display_name)
        if external_id is not None:
            where.append(org_units.c.external_id == external_id)
        if org_unit_id is not None:
            where.append(org_units.c.org_unit_id == org_unit_id)
        total = await self.uow.session.scalar(select(func.count()).where(*where))
        stmt = select(org_units).where(*where).order_by(org_units.c.org_unit_id)
        rows = await self.uow.session.execute(stmt.offset(offset).limit(limit))
        return int(total or 0), [(_unit(r), r.external_id) for r in rows.all()]

    async def save_unit_identity(
        self, org_unit_id: str, external_id: str | None, *, deleted_at: datetime | None = None
    ) -> None:
        await self.uow.session.execute(
            update(org_units)
            .where(org_units.c.tenant_id == self.tenant)
            .where(org_units.c.org_unit_id == org_unit_id)
            .values(external_id=external_id, scim_deleted_at=deleted_at)
        )

    async def page_org_units(self, *, after: str | None, limit: int) -> list[OrgUnit]:
        stmt = select(org_units).where(org_units.c.tenant_id == self.tenant)
        if after is not None:
            stmt = stmt.where(org_units.c.org_unit_id > after)
        rows = await self.uow.session.execute(stmt.order_by(org_units.c.org_unit_id).limit(limit))
        return [_unit(r) for r in rows.all()]

    # -- writes --------------------------------------------------------------------------------

    async def save_org_units(
        self, units: Sequence[OrgUnit], now: datetime, progress: Callable[[int], None] | None = None
    ) -> None:
        for chunk in _chunks(units):
            values = [{"tenant_id": self.tenant, "updated_at": now, **u.__dict__} for u in chunk]
            await self._upsert(org_units, ["tenant_id", "org_unit_id"], values)
            if progress:
                progress(len(chunk))

    async def save_employees(
        self,
        people: Sequence[Employee],
        now: datetime,
        progress: Callable[[int], None] | None = None,
        versions: Mapping[str, datetime] | None = None,
    ) -> None:
        versions = versions or {}
        for chunk in _chunks(people):
            values = [
                {
                    "tenant_id": self.tenant,
                    "updated_at": now,
                    "deactivated_at": None,
                    "source_updated_at": versions.get(e.employee_id),
                    **e.__dict__,
                }
                for e in chunk
            ]
            # Only an active upsert ends a deactivation; an inactive one keeps when it began.
            # A write without a version keeps the version stored.
            await self._upsert(
                employees,
                ["tenant_id", "employee_id"],
                values,
                deactivated_at=lambda new: case(
                    (new.active, None), else_=employees.c.deactivated_at
                ),
                source_updated_at=lambda new: func.coalesce(
                    new.source_updated_at, employees.c.source_updated_at
                ),
            )
            if progress:
                progress(len(chunk))

    async def _upsert(
        self,
        table: Table,
        keys: list[str],
        values: list[dict[str, Any]],
        **overrides: Callable[[Any], Any],
    ) -> None:
        if not values:
            return
        stmt = self.uow.insert(table)
        new = stmt.excluded
        # Only the columns written: the others (a SCIM identity on a CSV-fed row) stay.
        set_ = {name: new[name] for name in values[0] if name not in keys}
        set_.update({name: make(new) for name, make in overrides.items()})
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_=set_)
        await executemany(self.uow, stmt, values)

    async def save_versions(self, versions: Mapping[str, datetime]) -> None:
        for employee_id, version in versions.items():
            await self.uow.session.execute(
                update(employees)
                .where(employees.c.tenant_id == self.tenant)
                .where(employees.c.employee_id == employee_id)
                .values(source_updated_at=version)
            )

    async def save_identity(
        self, employee_id: str, identity: SourceIdentity, *, deleted_at: datetime | None = None
    ) -> None:
        await self.uow.session.execute(
            update(employees)
            .where(employees.c.tenant_id == self.tenant)
            .where(employees.c.employee_id == employee_id)
            .values(scim_deleted_at=deleted_at, **identity.__dict__)
        )

    async def deactivate(self, employee_id: str, at: datetime) -> None:
        await self.uow.session.execute(
            update(employees)
            .where(employees.c.tenant_id == self.tenant)
            .where(employees.c.employee_id == employee_id)
            .values(active=False, deactivated_at=at, updated_at=at)
        )


async def executemany(uow: UnitOfWork, stmt: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Run ``stmt`` once per row in ONE driver call, compiling and typing it once per call.

    ``session.execute(stmt, rows)`` does the same, but SQLAlchemy's per-row parameter handling
    costs more than the database's own work for rows this small. Values still go through each
    column type's bind processor for the dialect (UTC datetimes, JSON, booleans), so what is
    stored is exactly what the ORM path would store.
    """
    if not rows:
        return
    conn = await uow.session.connection()
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=list(rows[0]), for_executemany=True)
    names = list(compiled.positiontup or ())
    processors = [
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    pairs = list(zip(names, processors, strict=True))
    params = [
        tuple(process(row[name]) if process else row[name] for name, process in pairs)
        for row in rows
    ]
    await conn.exec_driver_sql(compiled.string, params)


def time_ordered_event_id() -> str:
    """A UUIDv7 (RFC 9562): unique like any ce_id, but in creation order.

    The outbox's unique index on event ids then grows at its end instead of at random pages,
    which keeps a bulk insert of hundreds of thousands of rows cache-friendly.
    """
    ms = time.time_ns() // 1_000_000
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | secrets.randbits(76)
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant bits
    return str(uuid.UUID(int=value))


#: CloudEvents ``source`` of everything this service publishes.
SOURCE = "/rhythm/people"


async def publish_all(
    uow: UnitOfWork, events: Sequence[Event], progress: Callable[[int], None] | None = None
) -> int:
    """Queue many events in the outbox of ``uow``'s transaction, in order, in bulk inserts.

    The rows are exactly what :meth:`UnitOfWork.publish` writes (the same CloudEvents record),
    but one INSERT per chunk instead of one per event: an HR sync of 200,000 people would
    otherwise spend most of its time in round trips. The relay is not woken by these rows;
    callers that want prompt delivery set ``runtime.uow.events_committed`` after commit.
    """
    trace_headers: dict[str, str] = {}
    propagate.inject(trace_headers)
    now = uow.clock.now()
    outbox = uow.tables.outbox
    for chunk in _chunks(events):
        rows = []
        for event in chunk:
            eid = time_ordered_event_id()
            record = to_record(event, source=SOURCE, event_id=eid, trace_headers=trace_headers)
            rows.append(
                {
                    "event_id": eid,
                    "topic": record.topic,
                    "key": record.key.decode(),
                    "event_type": event.type,
                    "headers": [[k, v.decode()] for k, v in record.headers],
                    "payload": record.value.decode(),
                    "created_at": now,
                }
            )
        await executemany(uow, outbox.insert(), rows)
        if progress:
            progress(len(chunk))
    return len(events)
