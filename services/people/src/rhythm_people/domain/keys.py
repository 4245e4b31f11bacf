"""Per-person data keys (crypto-shredding): made, opened and used to seal. Pure.

A person's name and address ride on ``rhythm.people.v1`` sealed with a data key of theirs
(``EmployeeUpsertedV2``; :mod:`rhythm_shared.kit.crypto`). The key is made on the person's first
upsert by any route (HTTP, batch, CSV, SCIM: all go through ``sync_people``), kept by the people
service wrapped by the key-encryption key, and published once as ``PersonKeyIssued`` on the
compacted ``rhythm.keys.v1`` — in the same transaction as the upsert and ahead of it in the
outbox, so a consumer that reads both topics in order has the key before the sealed name.
Erasure destroys it (``PersonKeyDestroyed`` under the same record key, which compaction keeps
instead).

The people service's own ``employees`` table keeps the names in the clear: it is the HR record
Rhythm received, and an erasure deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rhythm_people.domain.model import Employee
from rhythm_shared.contracts.v1 import PersonKeyIssued
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.contracts.v2.people import SealedPersonalData
from rhythm_shared.kit import crypto


@dataclass(frozen=True)
class DataKey:
    key_id: str
    key: bytes


def issue_key(
    kek: bytes, tenant: str, employee_id: str, now: datetime
) -> tuple[DataKey, PersonKeyIssued]:
    """A new data key for a person, and its announcement (the key wrapped by ``kek``)."""
    key_id, key = crypto.new_key_id(), crypto.new_data_key()
    wrapped = crypto.wrap(kek, key, tenant_id=tenant, employee_id=employee_id, key_id=key_id)
    issued = PersonKeyIssued(
        tenant_id=tenant,
        occurred_at=now,
        employee_id=employee_id,
        key_id=key_id,
        wrapped_key=wrapped,
    )
    return DataKey(key_id, key), issued


def open_key(kek: bytes, tenant: str, employee_id: str, key_id: str, wrapped: str) -> DataKey:
    """A stored data key, unwrapped."""
    key = crypto.unwrap(kek, wrapped, tenant_id=tenant, employee_id=employee_id, key_id=key_id)
    return DataKey(key_id, key)


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
