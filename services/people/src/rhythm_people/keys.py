"""Per-person data keys (crypto-shredding): the people service makes, keeps and destroys them.

A person's name and address ride on ``rhythm.people.v1`` sealed with a data key of theirs
(``EmployeeUpsertedV2``; :mod:`rhythm_shared.kit.crypto`). The key is made on the person's first
upsert by any route (HTTP, batch, CSV, SCIM: all go through ``sync_people``), kept here wrapped
by the key-encryption key, and published once as ``PersonKeyIssued`` on the compacted
``rhythm.keys.v1`` — in the same transaction as the upsert and ahead of it in the outbox, so a
consumer that reads both topics in order has the key before the sealed name. Erasure destroys
it (``PersonKeyDestroyed`` under the same record key, which compaction keeps instead).

The people service's own ``employees`` table keeps the names in the clear: it is the HR record
Rhythm received, and an erasure deletes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, String, Table, select, update

from rhythm_people.adapters.db import executemany, metadata
from rhythm_people.domain import Employee
from rhythm_shared.contracts.v1 import PersonKeyDestroyed, PersonKeyIssued
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.contracts.v2.people import SealedPersonalData
from rhythm_shared.kit import crypto
from rhythm_shared.kit.db import UtcDateTime
from rhythm_shared.kit.settings import ServiceSettings
from rhythm_shared.kit.uow import UnitOfWork

person_keys = Table(
    "person_keys",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("employee_id", String(128), primary_key=True),
    Column("key_id", String(128), nullable=False),
    # Wrapped by the key-encryption key; NULL once destroyed (the person's erasure).
    Column("wrapped_key", String(512), nullable=True),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("destroyed_at", UtcDateTime, nullable=True),
    comment="Each person's data key, wrapped (crypto-shredding); destroyed by their erasure.",
)

_CHUNK = 500


class _Keyring:
    """The process's key-encryption key (one per deployment, DATA_KEY_ENCRYPTION_KEY)."""

    kek: bytes | None = None


_KEYRING = _Keyring()


def use_settings(settings: ServiceSettings) -> None:
    """Take the key-encryption key from the service's settings (the composition root calls it
    when the service starts, so the use cases, whatever their route, seal with it)."""
    _KEYRING.kek = crypto.load_kek(settings.data_key_encryption_key.get_secret_value())


def _kek() -> bytes:
    if _KEYRING.kek is None:
        raise RuntimeError("no key-encryption key: the people service was not started")
    return _KEYRING.kek


@dataclass(frozen=True)
class DataKey:
    key_id: str
    key: bytes


async def _stored(uow: UnitOfWork, tenant: str, ids: Sequence[str]) -> dict[str, Any]:
    k = person_keys
    rows: dict[str, Any] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        result = await uow.session.execute(
            select(k.c.employee_id, k.c.key_id, k.c.wrapped_key).where(
                k.c.tenant_id == tenant, k.c.employee_id.in_(chunk)
            )
        )
        rows.update((r.employee_id, r) for r in result)
    return rows


async def keys_for(
    uow: UnitOfWork, tenant: str, employee_ids: Iterable[str], now: datetime
) -> tuple[dict[str, DataKey], list[PersonKeyIssued]]:
    """Each person's data key, made (and stored, and announced) for those who have none yet."""
    kek = _kek()
    ids = sorted(set(employee_ids))
    stored = await _stored(uow, tenant, ids)
    keys: dict[str, DataKey] = {}
    issued: list[PersonKeyIssued] = []
    new_rows: list[dict[str, Any]] = []
    for employee_id in ids:
        row = stored.get(employee_id)
        if row is not None and row.wrapped_key is not None:
            keys[employee_id] = DataKey(
                row.key_id,
                crypto.unwrap(
                    kek,
                    row.wrapped_key,
                    tenant_id=tenant,
                    employee_id=employee_id,
                    key_id=row.key_id,
                ),
            )
            continue
        if row is not None:  # destroyed: an erased person is refused before this (erasure.py)
            raise RuntimeError(f"the data key of {employee_id!r} was destroyed")
        key_id, key = crypto.new_key_id(), crypto.new_data_key()
        wrapped = crypto.wrap(kek, key, tenant_id=tenant, employee_id=employee_id, key_id=key_id)
        keys[employee_id] = DataKey(key_id, key)
        new_rows.append(
            {
                "tenant_id": tenant,
                "employee_id": employee_id,
                "key_id": key_id,
                "wrapped_key": wrapped,
                "issued_at": now,
                "destroyed_at": None,
            }
        )
        issued.append(
            PersonKeyIssued(
                tenant_id=tenant,
                occurred_at=now,
                employee_id=employee_id,
                key_id=key_id,
                wrapped_key=wrapped,
            )
        )
    if new_rows:
        await executemany(uow, person_keys.insert(), new_rows)
    return keys, issued


def sealed_upsert(tenant: str, e: Employee, key: DataKey, now: datetime) -> EmployeeUpsertedV2:
    """``EmployeeUpsertedV2``: the person's state with their email and name sealed."""
    ids = {"key_id": key.key_id, "tenant_id": tenant, "employee_id": e.employee_id}
    state = e.__dict__
    sealed = SealedPersonalData.model_construct(
        key_id=key.key_id,
        email=crypto.seal(key.key, e.email, field="email", **ids),
        display_name=crypto.seal(key.key, e.display_name, field="display_name", **ids),
    )
    # The fields were validated with the contract's own types: construct without re-validating.
    return EmployeeUpsertedV2.model_construct(
        tenant_id=tenant,
        occurred_at=now,
        sealed=sealed,
        **{k: v for k, v in state.items() if k not in ("email", "display_name")},
    )


async def upserts(
    uow: UnitOfWork, tenant: str, employees: Sequence[Employee], now: datetime
) -> tuple[list[PersonKeyIssued], list[EmployeeUpsertedV2]]:
    """The events of a sync's changed employees: the keys issued for people who had none (to
    be published first), and every one's ``EmployeeUpsertedV2``."""
    keys, issued = await keys_for(uow, tenant, (e.employee_id for e in employees), now)
    return issued, [sealed_upsert(tenant, e, keys[e.employee_id], now) for e in employees]


async def destroy(
    uow: UnitOfWork, tenant: str, employee_id: str, now: datetime
) -> PersonKeyDestroyed | None:
    """Destroy the person's data key (None: they never had one, their records were v1)."""
    k = person_keys
    where = (k.c.tenant_id == tenant, k.c.employee_id == employee_id)
    key_id = await uow.session.scalar(select(k.c.key_id).where(*where))
    if key_id is None:
        return None
    await uow.session.execute(update(k).where(*where).values(wrapped_key=None, destroyed_at=now))
    return PersonKeyDestroyed(
        tenant_id=tenant, occurred_at=now, employee_id=employee_id, key_id=key_id
    )
