"""Every SQL statement of the people service's write side, as methods of its repositories.

Each repository works on the session of the unit of work it was opened in
(:mod:`rhythm_people.adapters.unit_of_work`) and implements a Protocol of
:mod:`rhythm_people.domain.ports`; every statement is scoped by tenant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_people.adapters import keyring
from rhythm_people.adapters.db import (
    employees,
    erasure_parts,
    erasures,
    kit,
    org_units,
    person_keys,
)
from rhythm_people.domain.erasure import ErasureState
from rhythm_people.domain.model import Employee, OrgUnit, SourceIdentity, StoredEmployee
from rhythm_people.domain.ports import StoredKey, Written
from rhythm_shared.contracts.v1 import PersonKeyIssued
from rhythm_shared.kit.db import chunks

_EMPLOYEE_FIELDS = tuple(Employee.model_fields)
_UNIT_FIELDS = tuple(OrgUnit.model_fields)
#: Rows per statement for bulk writes and IN lists (well under SQLite's variable limit).
CHUNK = 2_000


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


def insert(session: AsyncSession, table: Any) -> Any:
    """A dialect-aware INSERT that supports ``on_conflict_do_*``."""
    bind = session.bind
    postgres = bind is not None and bind.dialect.name == "postgresql"
    return (pg_insert if postgres else sqlite_insert)(table)


async def executemany(session: AsyncSession, stmt: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Run ``stmt`` once per row in ONE driver call, compiling and typing it once per call.

    ``session.execute(stmt, rows)`` does the same, but SQLAlchemy's per-row parameter handling
    costs more than the database's own work for rows this small. Values still go through each
    column type's bind processor for the dialect (UTC datetimes, JSON, booleans), so what is
    stored is exactly what the ORM path would store.
    """
    if not rows:
        return
    conn = await session.connection()
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


class SqlPeopleRepository:
    """Employees and org units (:class:`rhythm_people.domain.ports.PeopleRepository`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- reads ---------------------------------------------------------------------------------

    async def employees(
        self, tenant: str, ids: Iterable[str] | None = None
    ) -> dict[str, StoredEmployee]:
        base = select(employees).where(employees.c.tenant_id == tenant)
        rows: list[Any] = []
        if ids is None:
            rows = list((await self.session.execute(base)).all())
        else:
            for chunk in chunks(sorted(set(ids)), CHUNK):
                stmt = base.where(employees.c.employee_id.in_(chunk))
                rows += (await self.session.execute(stmt)).all()
        return {r.employee_id: _employee(r) for r in rows}

    async def org_units(self, tenant: str, ids: Iterable[str] | None = None) -> dict[str, OrgUnit]:
        base = select(org_units).where(org_units.c.tenant_id == tenant)
        rows: list[Any] = []
        if ids is None:
            rows = list((await self.session.execute(base)).all())
        else:
            for chunk in chunks(sorted(set(ids)), CHUNK):
                stmt = base.where(org_units.c.org_unit_id.in_(chunk))
                rows += (await self.session.execute(stmt)).all()
        return {r.org_unit_id: _unit(r) for r in rows}

    async def manager_chains(
        self, tenant: str, starts: Iterable[str], known: Mapping[str, str | None]
    ) -> dict[str, str | None]:
        return await self._chains(
            starts,
            known,
            lambda ids: self._edges(tenant, employees.c.employee_id, "manager_id", ids),
        )

    async def unit_chains(
        self, tenant: str, starts: Iterable[str], known: Mapping[str, str | None]
    ) -> dict[str, str | None]:
        return await self._chains(
            starts,
            known,
            lambda ids: self._edges(tenant, org_units.c.org_unit_id, "parent_id", ids),
        )

    async def _edges(
        self, tenant: str, id_col: Any, parent: str, ids: Iterable[str]
    ) -> dict[str, str | None]:
        table = id_col.table
        out: dict[str, str | None] = {}
        for chunk in chunks(sorted(set(ids)), CHUNK):
            stmt = select(id_col, table.c[parent]).where(
                (table.c.tenant_id == tenant) & id_col.in_(chunk)
            )
            out.update((r[0], r[1]) for r in (await self.session.execute(stmt)).all())
        return out

    @staticmethod
    async def _chains(
        starts: Iterable[str],
        known: Mapping[str, str | None],
        edges: Callable[[Iterable[str]], Awaitable[dict[str, str | None]]],
    ) -> dict[str, str | None]:
        """The stored edges of ``starts`` and everything above them, one query per level."""
        found: dict[str, str | None] = {}
        frontier = {s for s in starts if s not in known}
        while frontier:
            fetched = await edges(frontier)
            found.update(fetched)
            frontier = {
                p for p in fetched.values() if p is not None and p not in found and p not in known
            }
        return found

    async def page_employees(
        self,
        tenant: str,
        *,
        after: str | None,
        limit: int,
        org_unit_id: str | None,
        manager_id: str | None,
    ) -> list[StoredEmployee]:
        stmt = select(employees).where(employees.c.tenant_id == tenant)
        if after is not None:
            stmt = stmt.where(employees.c.employee_id > after)
        if org_unit_id is not None:
            stmt = stmt.where(employees.c.org_unit_id == org_unit_id)
        if manager_id is not None:
            stmt = stmt.where(employees.c.manager_id == manager_id)
        rows = await self.session.execute(stmt.order_by(employees.c.employee_id).limit(limit))
        return [_employee(r) for r in rows.all()]

    async def page_org_units(self, tenant: str, *, after: str | None, limit: int) -> list[OrgUnit]:
        stmt = select(org_units).where(org_units.c.tenant_id == tenant)
        if after is not None:
            stmt = stmt.where(org_units.c.org_unit_id > after)
        rows = await self.session.execute(stmt.order_by(org_units.c.org_unit_id).limit(limit))
        return [_unit(r) for r in rows.all()]

    async def scim_users(
        self,
        tenant: str,
        *,
        offset: int,
        limit: int,
        user_name: str | None = None,
        external_id: str | None = None,
        employee_id: str | None = None,
    ) -> tuple[int, list[StoredEmployee]]:
        where = [employees.c.tenant_id == tenant, employees.c.scim_deleted_at.is_(None)]
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
        total = await self.session.scalar(select(func.count()).where(*where))
        stmt = select(employees).where(*where).order_by(employees.c.employee_id)
        rows = await self.session.execute(stmt.offset(offset).limit(limit))
        return int(total or 0), [_employee(r) for r in rows.all()]

    async def scim_groups(
        self,
        tenant: str,
        *,
        offset: int,
        limit: int,
        display_name: str | None = None,
        external_id: str | None = None,
        org_unit_id: str | None = None,
    ) -> tuple[int, list[tuple[OrgUnit, str | None]]]:
        where = [org_units.c.tenant_id == tenant, org_units.c.scim_deleted_at.is_(None)]
        if display_name is not None:
            where.append(org_units.c.name == display_name)
        if external_id is not None:
            where.append(org_units.c.external_id == external_id)
        if org_unit_id is not None:
            where.append(org_units.c.org_unit_id == org_unit_id)
        total = await self.session.scalar(select(func.count()).where(*where))
        stmt = select(org_units).where(*where).order_by(org_units.c.org_unit_id)
        rows = await self.session.execute(stmt.offset(offset).limit(limit))
        return int(total or 0), [(_unit(r), r.external_id) for r in rows.all()]

    async def org_unit_named(self, tenant: str, name: str) -> OrgUnit | None:
        base = select(org_units).where(
            (org_units.c.tenant_id == tenant) & org_units.c.scim_deleted_at.is_(None)
        )
        for stmt in (
            base.where(org_units.c.org_unit_id == name),
            base.where(org_units.c.name == name).order_by(org_units.c.org_unit_id).limit(1),
        ):
            row = (await self.session.execute(stmt)).first()
            if row is not None:
                return _unit(row)
        return None

    # -- writes --------------------------------------------------------------------------------

    async def save_org_units(
        self, tenant: str, units: Sequence[OrgUnit], now: datetime, progress: Written | None = None
    ) -> None:
        for chunk in chunks(units, CHUNK):
            values = [{"tenant_id": tenant, "updated_at": now, **u.__dict__} for u in chunk]
            await self._upsert(org_units, ["tenant_id", "org_unit_id"], values)
            if progress:
                progress(len(chunk))

    async def save_employees(
        self,
        tenant: str,
        people: Sequence[Employee],
        now: datetime,
        progress: Written | None = None,
        versions: Mapping[str, datetime] | None = None,
    ) -> None:
        versions = versions or {}
        for chunk in chunks(people, CHUNK):
            values = [
                {
                    "tenant_id": tenant,
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
        stmt = insert(self.session, table)
        new = stmt.excluded
        # Only the columns written: the others (a SCIM identity on a CSV-fed row) stay.
        set_ = {name: new[name] for name in values[0] if name not in keys}
        set_.update({name: make(new) for name, make in overrides.items()})
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_=set_)
        await executemany(self.session, stmt, values)

    def _employee_row(self, tenant: str, employee_id: str) -> Any:
        return (employees.c.tenant_id == tenant) & (employees.c.employee_id == employee_id)

    async def save_versions(self, tenant: str, versions: Mapping[str, datetime]) -> None:
        for employee_id, version in versions.items():
            await self.session.execute(
                update(employees)
                .where(self._employee_row(tenant, employee_id))
                .values(source_updated_at=version)
            )

    async def save_identity(
        self,
        tenant: str,
        employee_id: str,
        identity: SourceIdentity,
        *,
        deleted_at: datetime | None = None,
    ) -> None:
        await self.session.execute(
            update(employees)
            .where(self._employee_row(tenant, employee_id))
            .values(scim_deleted_at=deleted_at, **identity.__dict__)
        )

    async def save_unit_identity(
        self,
        tenant: str,
        org_unit_id: str,
        external_id: str | None,
        *,
        deleted_at: datetime | None = None,
    ) -> None:
        await self.session.execute(
            update(org_units)
            .where(org_units.c.tenant_id == tenant)
            .where(org_units.c.org_unit_id == org_unit_id)
            .values(external_id=external_id, scim_deleted_at=deleted_at)
        )

    async def deactivate(self, tenant: str, employee_id: str, at: datetime) -> None:
        await self.session.execute(
            update(employees)
            .where(self._employee_row(tenant, employee_id))
            .values(active=False, deactivated_at=at, updated_at=at)
        )

    async def delete_employee(self, tenant: str, employee_id: str) -> None:
        await self.session.execute(delete(employees).where(self._employee_row(tenant, employee_id)))


class SqlKeyStore:
    """The people's data keys (:class:`rhythm_people.domain.ports.KeyStore`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def kek(self) -> bytes:
        return keyring.kek()

    async def stored(self, tenant: str, employee_ids: Sequence[str]) -> dict[str, StoredKey]:
        k = person_keys
        found: dict[str, StoredKey] = {}
        for chunk in chunks(sorted(set(employee_ids))):
            result = await self.session.execute(
                select(k.c.employee_id, k.c.key_id, k.c.wrapped_key).where(
                    k.c.tenant_id == tenant, k.c.employee_id.in_(chunk)
                )
            )
            found.update((r.employee_id, StoredKey(r.key_id, r.wrapped_key)) for r in result)
        return found

    async def add(self, issued: Sequence[PersonKeyIssued]) -> None:
        rows = [
            {
                "tenant_id": i.tenant_id,
                "employee_id": i.employee_id,
                "key_id": i.key_id,
                "wrapped_key": i.wrapped_key,
                "issued_at": i.occurred_at,
                "destroyed_at": None,
            }
            for i in issued
        ]
        await executemany(self.session, person_keys.insert(), rows)

    async def destroy(self, tenant: str, employee_id: str, now: datetime) -> str | None:
        k = person_keys
        where = (k.c.tenant_id == tenant, k.c.employee_id == employee_id)
        key_id = await self.session.scalar(select(k.c.key_id).where(*where))
        if key_id is None:
            return None
        await self.session.execute(
            update(k).where(*where).values(wrapped_key=None, destroyed_at=now)
        )
        return str(key_id)


class SqlErasureRepository:
    """Erasures and their parts (:class:`rhythm_people.domain.ports.ErasureRepository`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erased_among(self, tenant: str, employee_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(sorted(set(employee_ids))):
            rows = await self.session.execute(
                select(erasures.c.employee_id).where(
                    erasures.c.tenant_id == tenant, erasures.c.employee_id.in_(chunk)
                )
            )
            found.update(rows.scalars())
        return found

    async def of_person(self, tenant: str, employee_id: str) -> ErasureState | None:
        return await self._one(
            (erasures.c.tenant_id == tenant) & (erasures.c.employee_id == employee_id)
        )

    async def get(self, tenant: str, erasure_id: str) -> ErasureState | None:
        return await self._one(
            (erasures.c.tenant_id == tenant) & (erasures.c.erasure_id == erasure_id)
        )

    async def _one(self, where: Any) -> ErasureState | None:
        row = (await self.session.execute(select(erasures).where(where))).first()
        if row is None:
            return None
        parts = await self.session.execute(
            select(erasure_parts.c.service, erasure_parts.c.erased_at).where(
                erasure_parts.c.erasure_id == row.erasure_id
            )
        )
        return ErasureState(
            erasure_id=row.erasure_id,
            employee_id=row.employee_id,
            requested_at=row.requested_at,
            completed_at=row.completed_at,
            parts={p.service: p.erased_at for p in parts},
        )

    async def add(self, tenant: str, erasure_id: str, employee_id: str, at: datetime) -> None:
        await self.session.execute(
            erasures.insert().values(
                erasure_id=erasure_id, tenant_id=tenant, employee_id=employee_id, requested_at=at
            )
        )

    async def record_part(self, erasure_id: str, service: str, at: datetime) -> bool:
        stmt = (
            insert(self.session, erasure_parts)
            .values(erasure_id=erasure_id, service=service, erased_at=at)
            .on_conflict_do_nothing()
        )
        return bool((await self.session.execute(stmt)).rowcount == 1)  # type: ignore[attr-defined]

    async def complete(self, erasure_id: str, at: datetime) -> None:
        await self.session.execute(
            erasures.update().where(erasures.c.erasure_id == erasure_id).values(completed_at=at)
        )

    async def withdraw_events(self, tenant: str, employee_id: str) -> None:
        # v1 events carry the name in the clear; what is not sent yet never goes out.
        o = kit.outbox
        await self.session.execute(
            delete(o).where(o.c.key == f"{tenant}/{employee_id}", o.c.published_at.is_(None))
        )
