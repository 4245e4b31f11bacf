"""Erasure on the real broker, SQLite and PostgreSQL: after ``EmployeeErased`` no API answers with
the person's name or address, no row and no byte of the database files holds them (their own
deliveries, digests, preferences and subscriptions go; others' messages keep no name of theirs),
the service reports its part once however often the erasure arrives, and a late upsert brings
nothing back. An upsert v2 (name and address sealed, the key on rhythm.keys.v1) sends as v1 does,
to the opened address."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from notifications_harness import Service, SmtpSink, StartService, employee
from sqlalchemy import select

from rhythm_notifications.adapters import db
from rhythm_notifications.entrypoints.consumers import GROUP
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.v1 import (
    CheckinKind,
    CheckinMissed,
    EmployeeErased,
    PersonDataErased,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2, SealedPersonalData
from rhythm_shared.kit import crypto
from rhythm_shared.kit.people import PeopleDirectory
from rhythm_shared.testing import read_records, wait_for

pytestmark = pytest.mark.kafka

# Strings only the erased person's data holds: the byte-level checks look for these.
NAME = "Zuzanna Erasmarker"
EMAIL = "zuzanna.erasmarker@example.com"
MARKERS = (NAME, EMAIL, "Erasmarker")


def missed(tenant: str, employee_id: str, manager_id: str = "m-1") -> CheckinMissed:
    return CheckinMissed(
        tenant_id=tenant,
        occurred_at=datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
        obligation_id=f"ob-{employee_id}-monthly-2026-02",
        employee_id=employee_id,
        manager_id=manager_id,
        kind=CheckinKind.MONTHLY,
        period_start=date(2026, 2, 1),
        period_end=date(2026, 2, 28),
        due_at=datetime(2026, 2, 27, 16, 0, tzinfo=UTC),
        consecutive_misses=1,
    )


def sealed_upsert(svc: Service, employee_id: str) -> list[Event]:
    """The person as the people service publishes them: their key, then an upsert v2."""
    kek = crypto.load_kek(svc.runtime.settings.data_key_encryption_key.get_secret_value())
    key, key_id = crypto.new_data_key(), f"k-{employee_id}"
    ids = {"tenant_id": svc.tenant, "employee_id": employee_id}
    v1 = employee(svc.tenant, employee_id, manager_id="m-1", name=NAME, email_address=EMAIL)
    return [
        PersonKeyIssued(
            occurred_at=v1.occurred_at,
            key_id=key_id,
            wrapped_key=crypto.wrap(kek, key, key_id=key_id, **ids),
            **ids,
        ),
        EmployeeUpsertedV2(
            occurred_at=v1.occurred_at,
            sealed=SealedPersonalData(
                key_id=key_id,
                email=crypto.seal(key, EMAIL, key_id=key_id, field="email", **ids),
                display_name=crypto.seal(key, NAME, key_id=key_id, field="display_name", **ids),
            ),
            **v1.model_dump(
                include={"manager_id", "org_unit_id", "time_zone", "locale", "hired_on", "active"}
            ),
            **ids,
        ),
    ]


async def publish_and_wait(svc: Service, events: list[Event], ids: list[str]) -> None:
    await svc.publish(events, event_ids=ids)

    async def handled() -> bool:
        rows = await svc.rows(
            db.kit.inbox, db.kit.inbox.c.consumer == GROUP, db.kit.inbox.c.event_id.in_(ids)
        )
        return {r.event_id for r in rows} == set(ids)

    await wait_for(handled, timeout_s=60)


async def rows_with_markers(svc: Service) -> list[str]:
    found: list[str] = []
    async with svc.runtime.uow() as uow:
        for table in db.metadata.sorted_tables:
            for row in await uow.session.execute(select(table)):
                text = repr(tuple(row))
                found.extend(f"{table.name}: {m}" for m in MARKERS if m in text)
    return found


def bytes_with_markers(svc: Service) -> list[str]:
    url = svc.runtime.settings.database_url
    if not url.startswith("sqlite"):
        return []
    path = Path(url.split("///", 1)[1])
    files = [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    return [
        f"{f.name}: {m}"
        for f in files
        for m in MARKERS
        if m.encode() in (data := f.read_bytes()) or m.encode("utf-16-le") in data
    ]


async def erased_reports(svc: Service, person: str, *, settle_s: float = 0.0) -> list[Any]:
    records = await read_records(
        svc.bootstrap,
        f"{svc.prefix}{topics.PRIVACY}",
        settle_s=settle_s,
        predicate=lambda r: b"rhythm.person_data.erased.v1" in dict(r.headers).get("ce_type", b""),
    )
    events = [from_record(r.headers, r.value).event for r in records]
    return [e for e in events if isinstance(e, PersonDataErased) and e.employee_id == person]


async def test_an_erased_person_leaves_nothing_in_any_api_row_or_file(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(employee(tenant, "m-1", name="Mark Manager"))
        await publish_and_wait(svc, sealed_upsert(svc, "zuz"), ["key-zuz", "up-zuz"])
        # Her own settings and the manager's digest of misses (her name in his digest item).
        for subject, body in (
            ("zuz", {"quiet_hours_start": "22:00", "quiet_hours_end": "07:00"}),
            ("m-1", {"categories": {"checkin_missed": {"channel": "email", "mode": "daily"}}}),
        ):
            answer = await svc.client.put("/v1/preferences", json=body, headers=svc.token(subject))
            assert answer.status_code == 200, answer.text
        await svc.publish([missed(tenant, "zuz")])
        await svc.wait_deliveries(2)
        await svc.dispatch()
        # Upsert v2 sends as v1 does: to the address opened with her key, by her name.
        [to_her] = smtp_sink.handler.to(EMAIL)
        assert to_her.message["To"] == f"{NAME} <{EMAIL}>"
        assert await rows_with_markers(svc)  # the test can fail: her strings are there now

        erased = EmployeeErased(
            tenant_id=tenant,
            occurred_at=datetime.now(UTC),
            employee_id="zuz",
            erasure_id="er-1",
        )
        await publish_and_wait(svc, [erased], ["erase-1"])
        await publish_and_wait(svc, [erased], ["erase-1"])  # the same record again

        [report] = await erased_reports(svc, "zuz", settle_s=3.0)
        assert (report.service, report.erasure_id) == ("notifications", "er-1")

        for subject, path in (
            ("m-1", "/v1/deliveries?recipient_id=m-1"),
            ("zuz", "/v1/deliveries?recipient_id=zuz"),
            ("zuz", "/v1/preferences"),
            ("zuz", "/v1/push-subscriptions"),
        ):
            answer = await svc.client.get(path, headers=svc.token(subject))
            assert not [m for m in MARKERS if m in answer.text], (path, answer.text)
        assert await svc.deliveries(db.deliveries.c.recipient_id == "zuz") == []
        r = db.recipient_settings
        assert await svc.rows(r, r.c.tenant_id == tenant, r.c.employee_id == "zuz") == []
        assert await rows_with_markers(svc) == []
        await wait_for(lambda: _no_bytes(svc), timeout_s=10)

        # A late upsert (an HR retry of an old one) brings nothing back.
        late = employee(tenant, "zuz", manager_id="m-1", name=NAME, email_address=EMAIL)
        await publish_and_wait(svc, [late], [str(uuid.uuid4())])
        kek = crypto.load_kek(svc.runtime.settings.data_key_encryption_key.get_secret_value())
        async with svc.runtime.uow() as uow:
            assert (
                await PeopleDirectory(uow.session, db.directory, tenant, kek=kek).person("zuz")
                is None
            )
        assert await rows_with_markers(svc) == []


async def _no_bytes(svc: Service) -> bool:
    return bytes_with_markers(svc) == []


async def test_her_name_leaves_others_messages_when_her_key_is_destroyed_before_the_erasure(
    start_service: StartService, tenant: str
) -> None:
    """The keys topic and the people topic are read in no set order: the destruction of her key
    may come first, and after it her name could no longer be opened to be found."""
    async with start_service() as svc:
        await svc.add_people(employee(tenant, "m-1", name="Mark Manager"))
        await publish_and_wait(svc, sealed_upsert(svc, "zuz"), ["key-zuz", "up-zuz"])
        answer = await svc.client.put(
            "/v1/preferences",
            json={"categories": {"checkin_missed": {"channel": "email", "mode": "daily"}}},
            headers=svc.token("m-1"),
        )
        assert answer.status_code == 200, answer.text
        await svc.publish([missed(tenant, "zuz")])
        await svc.wait_deliveries(2)
        assert await rows_with_markers(svc)  # her name is in the manager's digest item

        now = datetime.now(UTC)
        destroyed = PersonKeyDestroyed(
            tenant_id=tenant, occurred_at=now, employee_id="zuz", key_id="k-zuz"
        )
        await publish_and_wait(svc, [destroyed], ["destroy-zuz"])
        assert await rows_with_markers(svc) == []
        erased = EmployeeErased(
            tenant_id=tenant, occurred_at=now, employee_id="zuz", erasure_id="er-3"
        )
        await publish_and_wait(svc, [erased], ["erase-3"])
        [report] = await erased_reports(svc, "zuz", settle_s=3.0)
        assert report.erasure_id == "er-3"
        assert await rows_with_markers(svc) == []
        await wait_for(lambda: _no_bytes(svc), timeout_s=10)


async def test_an_unknown_person_is_erased_all_the_same_and_reported_done(
    start_service: StartService, tenant: str
) -> None:
    async with start_service() as svc:
        erased = EmployeeErased(
            tenant_id=tenant, occurred_at=datetime.now(UTC), employee_id="nobody", erasure_id="er-2"
        )
        await publish_and_wait(svc, [erased], ["erase-2"])
        [report] = await erased_reports(svc, "nobody")
        assert report.service == "notifications"


async def test_a_sealed_address_without_its_key_is_never_sent_to(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(employee(tenant, "m-1", name="Mark Manager"))
        _key, upsert = sealed_upsert(svc, "zuz")
        await publish_and_wait(svc, [upsert], ["up-zuz"])  # its key never arrived
        await svc.publish([missed(tenant, "zuz")])
        await svc.wait_deliveries(2)
        await svc.dispatch()
        [row] = await svc.deliveries(db.deliveries.c.recipient_id == "zuz")
        assert (row.status, row.reason) == ("failed", "invalid_address")
        assert "no readable address" in row.detail
        assert [m.rcpt_tos for m in smtp_sink.handler.messages] == [["m-1@acme.example.com"]]
