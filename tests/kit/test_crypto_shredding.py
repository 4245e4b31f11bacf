"""Crypto-shredding: names and addresses sealed per person; destroying the key reads them out."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rhythm_shared.contracts.v1 import EmployeeErased, PersonKeyDestroyed, PersonKeyIssued
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2, SealedPersonalData
from rhythm_shared.kit import crypto
from rhythm_shared.kit.db import create_engine, new_metadata, session_factory
from rhythm_shared.kit.people import (
    DirectoryProjection,
    PeopleDirectory,
    define_directory_tables,
    fold_employee,
)
from tests.kit.test_people_directory import upsert

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TENANT = "acme"
KEK = secrets.token_bytes(32)


def sealed_upsert(at: int, key: bytes, key_id: str, name: str, employee: str = "e-1") -> Any:
    ids = {"key_id": key_id, "tenant_id": TENANT, "employee_id": employee}
    return EmployeeUpsertedV2(
        tenant_id=TENANT,
        occurred_at=T0 + timedelta(minutes=at),
        employee_id=employee,
        sealed=SealedPersonalData(
            key_id=key_id,
            email=crypto.seal(key, f"{employee}@acme.example.com", field="email", **ids),
            display_name=crypto.seal(key, name, field="display_name", **ids),
        ),
        manager_id=None,
        org_unit_id="ou-1",
        time_zone="Europe/Amsterdam",
        locale="nl",
        hired_on=date(2024, 1, 1),
    )


def issued(key: bytes, key_id: str, employee: str = "e-1") -> PersonKeyIssued:
    return PersonKeyIssued(
        tenant_id=TENANT,
        occurred_at=T0,
        employee_id=employee,
        key_id=key_id,
        wrapped_key=crypto.wrap(KEK, key, tenant_id=TENANT, employee_id=employee, key_id=key_id),
    )


def test_a_sealed_value_opens_only_for_its_own_tenant_person_and_field() -> None:
    key = crypto.new_data_key()
    ids = {"tenant_id": TENANT, "employee_id": "e-1"}
    sealed = crypto.seal(key, "Ana de Vries", key_id="k-1", field="display_name", **ids)
    assert "Ana" not in sealed
    assert crypto.unseal(key, sealed, field="display_name", **ids) == "Ana de Vries"
    with pytest.raises(crypto.Unreadable):
        crypto.unseal(key, sealed, field="email", **ids)
    with pytest.raises(crypto.Unreadable):
        crypto.unseal(key, sealed, field="display_name", tenant_id=TENANT, employee_id="e-2")
    with pytest.raises(crypto.Unreadable):
        crypto.unseal(crypto.new_data_key(), sealed, field="display_name", **ids)


def test_a_wrapped_key_unwraps_only_with_the_key_encryption_key() -> None:
    key = crypto.new_data_key()
    ids = {"tenant_id": TENANT, "employee_id": "e-1", "key_id": "k-1"}
    wrapped = crypto.wrap(KEK, key, **ids)
    assert crypto.unwrap(KEK, wrapped, **ids) == key
    with pytest.raises(crypto.Unreadable):
        crypto.unwrap(secrets.token_bytes(32), wrapped, **ids)


def test_the_key_encryption_key_setting_must_be_32_bytes_of_base64() -> None:
    good = base64.urlsafe_b64encode(KEK).decode()
    assert crypto.load_kek(good) == KEK
    assert crypto.load_kek(base64.b64encode(KEK).decode()) == KEK
    with pytest.raises(crypto.InvalidKey):
        crypto.load_kek(base64.b64encode(b"short").decode())


def test_an_erasure_is_final_whatever_arrives_after_it() -> None:
    erased = EmployeeErased(
        tenant_id=TENANT, occurred_at=T0 + timedelta(minutes=5), employee_id="e-1", erasure_id="x"
    )
    state = fold_employee(fold_employee(None, upsert(1), "ev-1"), erased, "ev-2")
    for late in (upsert(0), upsert(9)):
        state = fold_employee(state, late, "ev-9")
    assert state.erased
    assert state.display_name is None
    assert state.email is None
    assert not state.known
    # ... and before anything else arrived, too.
    assert fold_employee(fold_employee(None, erased, "ev-2"), upsert(1), "ev-1").erased


metadata = new_metadata()
tables = define_directory_tables(metadata)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield session_factory(engine)
    await engine.dispose()


async def _read(sessions: async_sessionmaker[AsyncSession], kek: bytes | None) -> Any:
    async with sessions() as session:
        return await PeopleDirectory(session, tables, TENANT, kek=kek).person("e-1")


async def test_the_directory_opens_sealed_names_while_the_key_lives_and_never_after(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    projection = DirectoryProjection(tables)
    key = crypto.new_data_key()
    async with sessions() as session, session.begin():
        # The upsert may arrive before its key: the directory keeps the sealed values.
        await projection.apply_employee(session, sealed_upsert(1, key, "k-1", "Ana"), "ev-1")
    person = await _read(sessions, KEK)
    assert person is not None
    assert person.display_name is None  # no key yet
    async with sessions() as session, session.begin():
        await projection.keys.apply(session, issued(key, "k-1"))
    person = await _read(sessions, KEK)
    assert person.display_name == "Ana"
    assert person.email == "e-1@acme.example.com"
    assert (await _read(sessions, None)).display_name is None  # without the KEK: sealed
    async with sessions() as session, session.begin():
        await projection.keys.apply(
            session,
            PersonKeyDestroyed(tenant_id=TENANT, occurred_at=T0, employee_id="e-1", key_id="k-1"),
        )
        await projection.keys.apply(session, issued(key, "k-1"))  # a replay brings nothing back
    person = await _read(sessions, KEK)
    assert person is not None
    assert person.display_name is None
    assert person.email is None


async def test_an_erased_person_is_gone_from_the_directory_with_their_key(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    projection = DirectoryProjection(tables)
    key = crypto.new_data_key()
    erased = EmployeeErased(
        tenant_id=TENANT, occurred_at=T0 + timedelta(minutes=5), employee_id="e-1", erasure_id="x"
    )
    async with sessions() as session, session.begin():
        await projection.keys.apply(session, issued(key, "k-1"))
        await projection.apply_employee(session, sealed_upsert(1, key, "k-1", "Ana"), "ev-1")
        change = await projection.apply_employee(session, erased, "ev-2")
        assert change.before is not None
        assert change.after.erased
        await projection.apply_employee(session, sealed_upsert(9, key, "k-1", "Ana"), "ev-3")
    assert await _read(sessions, KEK) is None
    async with sessions() as session:
        row = (
            await session.execute(tables.keys.select().where(tables.keys.c.employee_id == "e-1"))
        ).one()
        assert row.wrapped_key is None
        person_row = (await session.execute(tables.employees.select())).one()
        assert person_row.display_name is None
        assert person_row.email is None
