"""Access: who the caller is to the person comes from the people directory, never from the body.

The hole this guards: an employee scheduled a check-in about a colleague and named themselves
the manager; the check-in's preparation then showed the colleague's goals and the open action
items of the colleague's private 1:1, and completing it would have closed the colleague's
obligation.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from checkins_harness import StartCheckins, employee

pytestmark = pytest.mark.kafka

LATER = datetime(2026, 3, 2, 8, tzinfo=UTC)
WHEN = "2026-03-05T10:00:00+01:00"


def locs(response: object) -> list[list[object]]:
    return [e["loc"] for e in response.json()["detail"]]  # type: ignore[attr-defined]


async def test_an_employee_cannot_schedule_a_checkin_about_a_colleague_naming_themselves_manager(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.set_policy()
        await svc.team()  # boss <- mia <- ana, ben
        # ben's real 1:1 with mia has an open action item.
        mia = svc.auth("mia", "employee", "manager")
        real = await svc.client.post(
            "/v1/checkins", json={"employee_id": "ben", "scheduled_for": WHEN}, headers=mia
        )
        assert real.status_code == 201, real.text
        item = await svc.client.post(
            f"/v1/checkins/{real.json()['checkin_id']}/action-items",
            json={"owner_id": "ben", "text": "private: ask about the burnout"},
            headers=mia,
        )
        assert item.status_code == 201, item.text

        for roles in (("employee",), ("employee", "manager")):
            forged = await svc.client.post(
                "/v1/checkins",
                json={"employee_id": "ben", "manager_id": "ana", "scheduled_for": WHEN},
                headers=svc.auth("ana", *roles),
            )
            assert forged.status_code == 422, forged.text
            assert locs(forged) == [["body", "manager_id"]]
            assert "burnout" not in forged.text
        # Without naming a manager, ana is neither ben nor his manager.
        unnamed = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ben", "scheduled_for": WHEN},
            headers=svc.auth("ana", "employee", "manager"),
        )
        assert unnamed.status_code == 403, unnamed.text
        # The manager cannot name someone else as the manager either (the skip-level, say).
        other = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "manager_id": "boss", "scheduled_for": WHEN},
            headers=mia,
        )
        assert (other.status_code, locs(other)) == (422, [["body", "manager_id"]])
        # Nor can the skip-level schedule in the manager's name.
        skip = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "manager_id": "mia", "scheduled_for": WHEN},
            headers=svc.auth("boss", "employee", "manager"),
        )
        assert skip.status_code == 403, skip.text
        # Nothing was scheduled about ben but mia's own check-in, and nobody but him and mia
        # sees its action items.
        listed = (
            await svc.client.get("/v1/checkins?employee_id=ben", headers=svc.auth("ben"))
        ).json()
        assert [(c["manager_id"], c["initiated_by_id"]) for c in listed] == [("mia", "mia")]
        assert "burnout" not in (await svc.client.get("/v1/checkins", headers=svc.auth("ana"))).text


async def test_naming_the_directory_manager_is_accepted_and_the_initiator_is_the_caller(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        named = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "manager_id": "mia", "scheduled_for": WHEN},
            headers=svc.auth("ana"),
        )
        assert named.status_code == 201, named.text
        assert (named.json()["initiated_by"], named.json()["initiated_by_id"]) == (
            "employee",
            "ana",
        )
        by_manager = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "scheduled_for": WHEN},
            headers=svc.auth("mia", "manager"),
        )
        assert (by_manager.json()["initiated_by"], by_manager.json()["initiated_by_id"]) == (
            "manager",
            "mia",
        )
        # An employee without a manager in the directory has nobody to hold it with.
        top = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "boss", "manager_id": "mia", "scheduled_for": WHEN},
            headers=svc.auth("boss"),
        )
        assert (top.status_code, locs(top)) == (422, [["body", "manager_id"]])


async def test_a_manager_who_lost_the_report_no_longer_completes_their_open_checkin(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.set_policy()
        await svc.team()
        cid = (
            await svc.client.post(
                "/v1/checkins",
                json={"employee_id": "ana", "scheduled_for": WHEN},
                headers=svc.auth("mia"),
            )
        ).json()["checkin_id"]
        await svc.apply(employee(svc.tenant, "max", "boss"))
        await svc.apply(employee(svc.tenant, "ana", "max", at=LATER))
        # The open check-in moves to ana's new manager with the rest of what is owed.
        moved = (await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("ana"))).json()
        assert moved["manager_id"] == "max"
        svc.clock.travel_to(datetime(2026, 3, 5, 10, tzinfo=UTC))
        gone = await svc.client.post(
            f"/v1/checkins/{cid}/complete", json={}, headers=svc.auth("mia")
        )
        assert gone.status_code == 404, gone.text
        done = await svc.client.post(
            f"/v1/checkins/{cid}/complete", json={}, headers=svc.auth("max")
        )
        assert done.status_code == 200, done.text
