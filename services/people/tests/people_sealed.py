"""Reading the people topic as an integrator with the key-encryption key does: the data keys
from ``rhythm.keys.v1``, unwrapped, open the sealed names of ``EmployeeUpsertedV2``."""

from __future__ import annotations

import dataclasses
from typing import Any

from rhythm_people.main import Settings
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import Envelope, from_record
from rhythm_shared.contracts.v1 import EmployeeUpserted, PersonKeyDestroyed, PersonKeyIssued
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit import crypto
from rhythm_shared.testing import read_records, wait_for


async def key_events(settings: Settings, min_count: int = 0) -> list[Envelope]:
    records = await read_records(
        settings.kafka_bootstrap_servers,
        settings.topic(topics.KEYS),
        min_count=min_count,
        timeout_s=40 if min_count else 3,
        settle_s=0.3,
    )
    return [from_record(r.headers, r.value) for r in records]


async def data_keys(settings: Settings) -> dict[tuple[str, str], bytes]:
    """(tenant, employee) -> data key, for the keys issued and not destroyed."""
    kek = crypto.load_kek(settings.data_key_encryption_key.get_secret_value())
    found: dict[tuple[str, str], bytes] = {}
    for envelope in await key_events(settings):
        event = envelope.event
        person = (event.tenant_id, getattr(event, "employee_id", ""))
        if isinstance(event, PersonKeyIssued):
            found[person] = crypto.unwrap(
                kek,
                event.wrapped_key,
                tenant_id=event.tenant_id,
                employee_id=event.employee_id,
                key_id=event.key_id,
            )
        elif isinstance(event, PersonKeyDestroyed):
            found.pop(person, None)
    return found


def opened(event: EmployeeUpsertedV2, key: bytes) -> EmployeeUpserted:
    """The v2 upsert as the v1 it stands for, its name and address opened with the key."""
    ids = {"tenant_id": event.tenant_id, "employee_id": event.employee_id}
    state = event.model_dump(exclude={"sealed"})
    return EmployeeUpserted(
        **state,
        email=crypto.unseal(key, event.sealed.email, field="email", **ids),
        display_name=crypto.unseal(key, event.sealed.display_name, field="display_name", **ids),
    )


async def open_people(settings: Settings, found: list[Any]) -> list[Any]:
    """``(record, envelope)`` pairs of the people topic with every v2 upsert opened (its
    envelope keeps the v2 type; the event becomes the opened v1 state)."""
    needed = {
        (e.event.tenant_id, e.event.employee_id)
        for _, e in found
        if isinstance(e.event, EmployeeUpsertedV2)
    }

    async def every_key() -> dict[tuple[str, str], bytes] | None:
        # The key rides on its own topic and may land a moment after the upsert it opens.
        keys = await data_keys(settings)
        return keys if needed <= keys.keys() else None

    keys = await wait_for(every_key, timeout_s=40, interval_s=0.5)
    out = []
    for record, envelope in found:
        event = envelope.event
        if isinstance(event, EmployeeUpsertedV2):
            key = keys[(event.tenant_id, event.employee_id)]
            envelope = dataclasses.replace(envelope, event=opened(event, key))
        out.append((record, envelope))
    return out
