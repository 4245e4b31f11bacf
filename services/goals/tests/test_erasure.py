"""Erasure on the real broker, SQLite and PostgreSQL: after ``EmployeeErased`` no API answers with
the person's goals or words, no row and no byte of the database files holds them, the service
reports its part once however often the erasure arrives, and a late upsert brings nothing back.
Upserts v2 (names sealed, the key on rhythm.keys.v1) give the directory v1's state."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from goals_harness import GoalsService, StartGoals, decode
from sqlalchemy import select

from rhythm_goals.adapters.db import kit, metadata, people_tables
from rhythm_goals.entrypoints.consumers import GROUP
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import EmployeeErased, EmployeeUpserted, PersonKeyIssued
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2, SealedPersonalData
from rhythm_shared.kit import crypto
from rhythm_shared.kit.people import PeopleDirectory
from rhythm_shared.testing import publish_events, wait_for

pytestmark = pytest.mark.kafka

# Strings only the erased person's data holds: the byte-level checks look for these.
NAME = "Zuzanna Erasmarker"
EMAIL = "zuzanna.erasmarker@example.com"
TITLE = "Goaltitlemarker9"
DESCRIPTION = "Goaldescmarker9"
KR_TITLE = "Krtitlemarker9"
OWN_COMMENT = "Owncommentmarker9"
COMMENT_ON_REPORT = "Reportcommentmarker9"
MARKERS = (NAME, EMAIL, TITLE, DESCRIPTION, KR_TITLE, OWN_COMMENT, COMMENT_ON_REPORT)


def person(
    svc: GoalsService, employee_id: str, manager_id: str | None, *, at: datetime, **kw: Any
) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=svc.tenant,
        occurred_at=at,
        employee_id=employee_id,
        email=kw.get("email", f"{employee_id}@example.com"),
        display_name=kw.get("name", employee_id.upper()),
        manager_id=manager_id,
        org_unit_id="ou-root",
        time_zone="Europe/Amsterdam",
        locale="en-GB",
        hired_on=date(2024, 1, 1),
    )


async def handled(svc: GoalsService, event_ids: list[str]) -> bool:
    async with svc.runtime.uow() as uow:
        done = (
            await uow.session.scalars(
                select(kit.inbox.c.event_id).where(
                    kit.inbox.c.consumer == GROUP, kit.inbox.c.event_id.in_(event_ids)
                )
            )
        ).all()
    return set(done) == set(event_ids)


async def publish_and_wait(
    svc: GoalsService, events: list[Event], ids: list[str] | None = None
) -> list[str]:
    ids = ids or [str(uuid.uuid4()) for _ in events]
    await publish_events(svc.bootstrap, events, topic_prefix=svc.topic_prefix, event_ids=ids)
    await wait_for(lambda: handled(svc, ids))
    return ids


async def rows_with_markers(svc: GoalsService) -> list[str]:
    """Every row of every table of the service that holds one of the markers."""
    found: list[str] = []
    async with svc.runtime.uow() as uow:
        for table in metadata.sorted_tables:
            for row in await uow.session.execute(select(table)):
                text = repr(tuple(row))
                found.extend(f"{table.name}: {m}" for m in MARKERS if m in text)
    return found


def sqlite_files(svc: GoalsService) -> list[Path]:
    url = svc.runtime.settings.database_url
    if not url.startswith("sqlite"):
        return []
    db = Path(url.split("///", 1)[1])
    return [p for p in (db, db.with_name(db.name + "-wal")) if p.exists()]


def bytes_with_markers(svc: GoalsService) -> list[str]:
    return [
        f"{path.name}: {m}"
        for path in sqlite_files(svc)
        for m in MARKERS
        if m.encode() in (data := path.read_bytes())
        or m.encode("utf-16-le") in data  # SQLite may store text as UTF-16 too
    ]


async def test_an_erased_person_leaves_nothing_in_any_api_row_or_file(
    start_goals: StartGoals,
) -> None:
    async with start_goals(consumers=True) as svc:
        t0 = datetime.now(UTC) - timedelta(days=1)
        svc.clock.travel_to(datetime(2026, 3, 5, 9, tzinfo=UTC))
        await publish_and_wait(
            svc,
            [
                person(svc, "mia", None, at=t0),
                person(svc, "zuz", "mia", at=t0, name=NAME, email=EMAIL),
                person(svc, "bob", "zuz", at=t0),
            ],
        )
        own = await svc.client.post(
            "/v1/goals",
            json={
                "title": TITLE,
                "description": DESCRIPTION,
                "visibility": "tenant",
                "period_start": "2026-03-01",
                "period_end": "2026-03-31",
                "key_results": [
                    {
                        "key_result_id": "kr-1",
                        "title": KR_TITLE,
                        "unit": "%",
                        "start": 0,
                        "target": 100,
                        "direction": "increase",
                    }
                ],
            },
            headers={**svc.auth("zuz"), "Idempotency-Key": "zuz-goal-1"},
        )
        assert own.status_code == 201, own.text
        own_id = own.json()["goal_id"]
        report = await svc.create(
            "zuz",
            owner_type="person",
            owner_id="bob",
            title="Ship the search page",
            visibility="tenant",
            parent_goal_id=own_id,
        )
        assert report.status_code == 201, report.text
        report_id = report.json()["goal_id"]
        for goal_id, comment in ((own_id, OWN_COMMENT), (report_id, COMMENT_ON_REPORT)):
            progress = await svc.client.post(
                f"/v1/goals/{goal_id}/key-results/kr-1/progress",
                json={"value": 30, "confidence": 0.6, "comment": comment},
                headers=svc.auth("zuz"),
            )
            assert progress.status_code == 201, progress.text
        assert await rows_with_markers(svc)  # the markers are there to be found

        erased = EmployeeErased(
            tenant_id=svc.tenant,
            occurred_at=datetime.now(UTC),
            employee_id="zuz",
            erasure_id="er-1",
        )
        # The same record twice (a redelivery), then a retry of an old upsert.
        erasure_ids = [str(uuid.uuid4())]
        await publish_and_wait(svc, [erased, erased], erasure_ids * 2)
        await publish_and_wait(svc, [person(svc, "zuz", "mia", at=t0, name=NAME, email=EMAIL)])

        reports = await svc.records(
            "rhythm.person_data.erased.v1", topic=topics.PRIVACY, settle_s=2.0
        )
        assert [
            decode(r).event.model_dump(include={"employee_id", "erasure_id", "service"})
            for r in reports
        ] == [{"employee_id": "zuz", "erasure_id": "er-1", "service": "goals"}]

        hr = svc.auth("hr-1", "hr_admin")
        assert (await svc.client.get(f"/v1/goals/{own_id}", headers=hr)).status_code == 404
        kept = await svc.client.get(f"/v1/goals/{report_id}", headers=hr)
        assert kept.status_code == 200
        assert kept.json()["parent_goal_id"] is None
        history = await svc.client.get(f"/v1/goals/{report_id}/history", headers=hr)
        assert history.status_code == 200
        answers = [
            (await svc.client.get(path, headers=hr)).text
            for path in ("/v1/goals", "/v1/goals?owner_id=zuz", f"/v1/goals/{report_id}/tree")
        ] + [history.text, kept.text]
        assert not [m for m in MARKERS for a in answers if m in a]

        assert await rows_with_markers(svc) == []
        # The WAL is truncated after the erasure's commit; wait for it, then read the files.
        await wait_for(lambda: _no_markers_in_files(svc), timeout_s=15)

        async with svc.runtime.uow() as uow:
            e = people_tables.employees
            tomb = (
                await uow.session.execute(
                    select(e.c.email, e.c.display_name, e.c.erased_at).where(
                        e.c.tenant_id == svc.tenant, e.c.employee_id == "zuz"
                    )
                )
            ).one()
            assert (tomb.email, tomb.display_name) == (None, None)
            assert tomb.erased_at is not None
            assert (
                await PeopleDirectory(uow.session, people_tables, svc.tenant).person("zuz") is None
            )


async def _no_markers_in_files(svc: GoalsService) -> bool:
    return not bytes_with_markers(svc)


async def test_an_erasure_of_someone_never_seen_is_reported_done(start_goals: StartGoals) -> None:
    async with start_goals(consumers=True) as svc:
        erased = EmployeeErased(
            tenant_id=svc.tenant,
            occurred_at=datetime.now(UTC),
            employee_id="nobody",
            erasure_id="er-2",
        )
        await publish_and_wait(svc, [erased])
        reports = await svc.records("rhythm.person_data.erased.v1", topic=topics.PRIVACY)
        assert [
            decode(r).event.model_dump(include={"employee_id", "service"}) for r in reports
        ] == [{"employee_id": "nobody", "service": "goals"}]


async def test_a_v2_upsert_with_its_key_gives_the_directory_the_v1_state(
    start_goals: StartGoals,
) -> None:
    async with start_goals(consumers=True) as svc:
        t0 = datetime.now(UTC) - timedelta(hours=1)
        v1 = person(svc, "cleo", None, at=t0, name="Cleo Vos", email="cleo@example.com")
        await publish_and_wait(svc, [v1])
        kek = crypto.load_kek(svc.runtime.settings.data_key_encryption_key.get_secret_value())

        async def read(employee_id: str) -> Any:
            async with svc.runtime.uow() as uow:
                directory = PeopleDirectory(uow.session, people_tables, svc.tenant, kek=kek)
                return await directory.person(employee_id)

        by_v1 = await read("cleo")
        key, key_id = crypto.new_data_key(), "k-cleo"
        ids = {"tenant_id": svc.tenant, "employee_id": "cleo"}
        issued = PersonKeyIssued(
            occurred_at=t0,
            key_id=key_id,
            wrapped_key=crypto.wrap(kek, key, key_id=key_id, **ids),
            **ids,
        )
        v2 = EmployeeUpsertedV2(
            occurred_at=t0 + timedelta(minutes=1),
            sealed=SealedPersonalData(
                key_id=key_id,
                email=crypto.seal(key, "cleo@example.com", key_id=key_id, field="email", **ids),
                display_name=crypto.seal(
                    key, "Cleo Vos", key_id=key_id, field="display_name", **ids
                ),
            ),
            **v1.model_dump(
                include={"manager_id", "org_unit_id", "time_zone", "locale", "hired_on", "active"}
            ),
            **ids,
        )
        await publish_and_wait(svc, [issued, v2])
        by_v2 = await read("cleo")
        assert by_v2 is not None
        assert by_v2.display_name == "Cleo Vos"
        assert dataclasses.replace(by_v2, profile_version=None) == dataclasses.replace(
            by_v1, profile_version=None
        )
