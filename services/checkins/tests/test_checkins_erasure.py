"""Erasure on the real broker, SQLite and PostgreSQL: after ``EmployeeErased`` no API answers with
what the person wrote or what was written about them, no row and no byte of the database files
holds it, the service reports its part once however often the erasure arrives, and nothing that
arrives later (an old upsert, a goal of theirs) brings anything back. The check-ins they held as
a manager stay for the other employee, without the texts of the action items they owned.
Upserts v2 (names sealed, the key on rhythm.keys.v1) give the directory v1's state."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from checkins_harness import MONTHLY_POLICY, CheckinsService, StartCheckins, employee
from sqlalchemy import func, select

from rhythm_checkins.adapters.db import directory, kit, metadata, obligations, planning
from rhythm_checkins.entrypoints.consumers import GROUP
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    EmployeeErased,
    EmployeeUpserted,
    GoalCreated,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2, SealedPersonalData
from rhythm_shared.kit import crypto
from rhythm_shared.kit.people import PeopleDirectory
from rhythm_shared.testing import publish_events, wait_for

pytestmark = pytest.mark.kafka

# Strings only the erased person's data holds: the byte-level checks look for these.
NAME = "Zuzanna Erasmarker"
EMAIL = "zuzanna.erasmarker@example.com"
REFLECTION = "Reflectionmarker7"
NOTES = "Notesmarker7"
ACTION = "Actionmarker7"
MANAGER_ACTION = "Manageractionmarker7"
RECEIVED = "Receivedmarker7"
GIVEN = "Givenmarker7"
PROMPT_MADE = "Promptmademarker7"
PROMPT_ASKED = "Promptaskedmarker7"
GOAL_TITLE = "Goaltitlemarker7"
LATE_GOAL_TITLE = "Lategoalmarker7"
MARKERS = (
    NAME,
    EMAIL,
    REFLECTION,
    NOTES,
    ACTION,
    MANAGER_ACTION,
    RECEIVED,
    GIVEN,
    PROMPT_MADE,
    PROMPT_ASKED,
    GOAL_TITLE,
    LATE_GOAL_TITLE,
)
#: What the erased manager wrote in their report's check-in: the report's record, it stays.
BENS_NOTES = "Ben's one-to-one notes"


def zuz(svc: CheckinsService, at: datetime) -> EmployeeUpserted:
    upsert = employee(svc.tenant, "zuz", "mia", at=at)
    return EmployeeUpserted.model_validate(
        {**upsert.model_dump(), "display_name": NAME, "email": EMAIL}
    )


def goal(svc: CheckinsService, goal_id: str, title: str) -> GoalCreated:
    return GoalCreated.model_validate(
        {
            "tenant_id": svc.tenant,
            "occurred_at": "2026-03-02T08:00:00Z",
            "goal_id": goal_id,
            "owner_type": "person",
            "owner_id": "zuz",
            "kind": "okr",
            "title": title,
            "visibility": "tenant",
            "period_start": "2026-03-01",
            "period_end": "2026-03-31",
            "update_interval_days": 14,
            "key_results": [
                {
                    "key_result_id": "kr-1",
                    "unit": "%",
                    "start": 0,
                    "target": 100,
                    "direction": "increase",
                    "weight": 1,
                },
            ],
        }
    )


async def handled(svc: CheckinsService, event_ids: list[str]) -> bool:
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
    svc: CheckinsService, events: list[Event], ids: list[str] | None = None
) -> list[str]:
    ids = ids or [str(uuid.uuid4()) for _ in events]
    await publish_events(svc.bootstrap, events, topic_prefix=svc.topic_prefix, event_ids=ids)
    await wait_for(lambda: handled(svc, ids))
    return ids


async def rows_with_markers(svc: CheckinsService) -> list[str]:
    """Every row of every table of the service that holds one of the markers."""
    found: list[str] = []
    async with svc.runtime.uow() as uow:
        for table in metadata.sorted_tables:
            for row in await uow.session.execute(select(table)):
                text = repr(tuple(row))
                found.extend(f"{table.name}: {m}" for m in MARKERS if m in text)
    return found


async def no_markers_in_files(svc: CheckinsService) -> bool:
    """The SQLite database and its write-ahead log, read as bytes, hold no marker."""
    url = svc.runtime.settings.database_url
    if not url.startswith("sqlite"):
        return True
    db = Path(url.split("///", 1)[1])
    for path in (db, db.with_name(db.name + "-wal")):
        data = path.read_bytes() if path.exists() else b""
        if any(m.encode() in data or m.encode("utf-16-le") in data for m in MARKERS):
            return False
    return True


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def conversations(svc: CheckinsService) -> dict[str, str]:
    """zuz's own check-in (every text), ben's check-in with zuz as manager, feedback both ways,
    requests both ways; the ids."""
    me, mia, ben = svc.auth("zuz"), svc.auth("mia", "manager"), svc.auth("ben")
    own = (
        await ok(
            await svc.client.post(
                "/v1/checkins",
                json={"employee_id": "zuz", "scheduled_for": "2026-03-05T10:00:00"},
                headers=me,
            ),
            201,
        )
    )["checkin_id"]
    reflection = {"wins": REFLECTION, "challenges": "c", "help_needed": "h", "pulse": 4}
    await ok(await svc.client.put(f"/v1/checkins/{own}/reflection", json=reflection, headers=me))
    grow = {"goal": "g", "reality": "r", "options": "o", "will": "w", "notes": NOTES}
    await ok(await svc.client.put(f"/v1/checkins/{own}/notes", json=grow, headers=mia))
    await ok(
        await svc.client.post(
            f"/v1/checkins/{own}/action-items",
            json={"owner_id": "zuz", "text": ACTION},
            headers=mia,
        ),
        201,
    )
    bens = (
        await ok(
            await svc.client.post(
                "/v1/checkins",
                json={"employee_id": "ben", "scheduled_for": "2026-03-06T10:00:00"},
                headers=me,
            ),
            201,
        )
    )["checkin_id"]
    await ok(
        await svc.client.put(
            f"/v1/checkins/{bens}/notes", json={**grow, "notes": BENS_NOTES}, headers=me
        )
    )
    for owner, text in (("zuz", MANAGER_ACTION), ("ben", "Ben books the workshop")):
        await ok(
            await svc.client.post(
                f"/v1/checkins/{bens}/action-items",
                json={"owner_id": owner, "text": text},
                headers=me,
            ),
            201,
        )
    received = {"receiver_id": "zuz", "kind": "praise", "text": RECEIVED}
    await ok(
        await svc.client.post(
            "/v1/feedback", json=received, headers={**mia, "Idempotency-Key": "fb-1"}
        ),
        201,
    )
    given = {"receiver_id": "ben", "kind": "praise", "text": GIVEN}
    await ok(await svc.client.post("/v1/feedback", json=given, headers=me), 201)
    await ok(
        await svc.client.post(
            "/v1/feedback/requests", json={"from_id": "mia", "prompt": PROMPT_MADE}, headers=me
        ),
        201,
    )
    await ok(
        await svc.client.post(
            "/v1/feedback/requests", json={"from_id": "zuz", "prompt": PROMPT_ASKED}, headers=ben
        ),
        201,
    )
    return {"own": own, "bens": bens}


async def test_an_erased_person_leaves_nothing_in_any_api_row_or_file(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins(consumers=True) as svc:
        svc.clock.travel_to(datetime(2026, 3, 2, 9, tzinfo=UTC))
        t0 = datetime(2026, 3, 1, tzinfo=UTC)
        t = svc.tenant
        await publish_and_wait(
            svc,
            [
                employee(t, "boss", None, at=t0),
                employee(t, "mia", "boss", at=t0),
                zuz(svc, t0),
                employee(t, "ben", "zuz", at=t0),
                goal(svc, "g-zuz", GOAL_TITLE),
            ],
        )
        assert (await svc.set_policy(MONTHLY_POLICY)).status_code == 200
        await svc.sweep()
        assert await svc.obligations("zuz")
        ids = await conversations(svc)
        assert len(await rows_with_markers(svc)) >= len(MARKERS) - 1  # all but the late goal

        erased = EmployeeErased(
            tenant_id=t, occurred_at=datetime.now(UTC), employee_id="zuz", erasure_id="er-1"
        )
        # The same record twice (a redelivery); then an old upsert retried and a late goal.
        await publish_and_wait(svc, [erased, erased], [str(uuid.uuid4())] * 2)
        await publish_and_wait(svc, [zuz(svc, t0), goal(svc, "g-late", LATE_GOAL_TITLE)])
        await svc.sweep(datetime(2026, 4, 20, 9, tzinfo=UTC))

        reports = await svc.events(
            topics.PRIVACY, types=("rhythm.person_data.erased.v1",), settle_s=2.0
        )
        assert [
            r.event.model_dump(include={"employee_id", "erasure_id", "service"}) for r in reports
        ] == [{"employee_id": "zuz", "erasure_id": "er-1", "service": "checkins"}]

        hr, mia, ben = svc.auth("hr-1", "hr_admin"), svc.auth("mia", "manager"), svc.auth("ben")
        for who in (hr, mia):
            assert (
                await svc.client.get(f"/v1/checkins/{ids['own']}", headers=who)
            ).status_code == 404
        kept = await ok(await svc.client.get(f"/v1/checkins/{ids['bens']}", headers=ben))
        answers = [str(kept)]
        for who, path in (
            (ben, "/v1/checkins"),
            (ben, f"/v1/checkins/{ids['bens']}/preparation"),
            (ben, "/v1/feedback"),
            (ben, "/v1/feedback/requests"),
            (mia, "/v1/feedback"),
            (mia, "/v1/feedback/requests"),
            (mia, "/v1/checkins?employee_id=zuz"),
            (hr, "/v1/cadence/obligations?employee_id=zuz"),
        ):
            response = await svc.client.get(path, headers=who)
            assert response.status_code in (200, 404), (path, response.text)
            answers.append(response.text)
        assert [m for m in MARKERS for a in answers if m in a] == []
        assert BENS_NOTES in str(kept)  # ben's record of the conversation stays

        assert await rows_with_markers(svc) == []
        # The WAL is truncated after the erasure's commit; wait for it, then read the files.
        await wait_for(lambda: no_markers_in_files(svc), timeout_s=15)

        async with svc.runtime.uow() as uow:
            s = uow.session
            for table in (obligations, planning):
                count = await s.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.tenant_id == t, table.c.employee_id == "zuz")
                )
                assert count == 0, table.name
            e = directory.employees
            tomb = (
                await s.execute(
                    select(e.c.email, e.c.display_name, e.c.erased_at).where(
                        e.c.tenant_id == t, e.c.employee_id == "zuz"
                    )
                )
            ).one()
            assert (tomb.email, tomb.display_name) == (None, None)
            assert tomb.erased_at is not None


async def test_an_erasure_of_someone_never_seen_is_reported_done(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins(consumers=True) as svc:
        erased = EmployeeErased(
            tenant_id=svc.tenant,
            occurred_at=datetime.now(UTC),
            employee_id="nobody",
            erasure_id="er-2",
        )
        await publish_and_wait(svc, [erased])
        reports = await svc.events(topics.PRIVACY, types=("rhythm.person_data.erased.v1",))
        assert [r.event.model_dump(include={"employee_id", "service"}) for r in reports] == [
            {"employee_id": "nobody", "service": "checkins"}
        ]


async def test_a_v2_upsert_with_its_key_gives_the_directory_the_v1_state(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins(consumers=True) as svc:
        t0 = datetime.now(UTC) - timedelta(hours=1)
        v1 = employee(svc.tenant, "cleo", None, at=t0, hired_on=date(2024, 2, 1))
        await publish_and_wait(svc, [v1])
        kek = crypto.load_kek(svc.runtime.settings.data_key_encryption_key.get_secret_value())

        async def read(employee_id: str) -> Any:
            async with svc.runtime.uow() as uow:
                people = PeopleDirectory(uow.session, directory, svc.tenant, kek=kek)
                return await people.person(employee_id)

        by_v1 = await read("cleo")
        key, key_id = crypto.new_data_key(), "k-cleo"
        ids = {"tenant_id": svc.tenant, "employee_id": "cleo"}
        issued = PersonKeyIssued(
            occurred_at=t0,
            key_id=key_id,
            wrapped_key=crypto.wrap(kek, key, key_id=key_id, **ids),
            **ids,
        )
        sealed = SealedPersonalData(
            key_id=key_id,
            email=crypto.seal(key, str(v1.email), key_id=key_id, field="email", **ids),
            display_name=crypto.seal(
                key, v1.display_name, key_id=key_id, field="display_name", **ids
            ),
        )
        v2 = EmployeeUpsertedV2(
            occurred_at=t0 + timedelta(minutes=1),
            sealed=sealed,
            **v1.model_dump(
                include={"manager_id", "org_unit_id", "time_zone", "locale", "hired_on", "active"}
            ),
            **ids,
        )
        await publish_and_wait(svc, [issued, v2])
        by_v2 = await read("cleo")
        assert by_v2 is not None
        assert by_v2.display_name == v1.display_name
        assert dataclasses.replace(by_v2, profile_version=None) == dataclasses.replace(
            by_v1, profile_version=None
        )
