"""Retention after leaving: a departed person's texts are removed once their window has passed,
and only then; the rows, ids, times and scores stay; a rehired person keeps theirs. SQLite and
PostgreSQL, with a manual clock; the rows are read back from the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from checkins_harness import CheckinsService, StartCheckins, employee
from sqlalchemy import select

from rhythm_checkins.adapters.db import action_items, checkins, feedback, feedback_requests
from rhythm_checkins.domain.records import CHECKIN_TEXTS
from rhythm_checkins.entrypoints.jobs import retention_until_done
from rhythm_checkins.settings import Settings
from rhythm_checkins.use_cases.retention import RetentionResult
from rhythm_shared.contracts.v1 import EmployeeDeactivated

pytestmark = pytest.mark.kafka

LEFT = datetime(2026, 3, 10, 17, tzinfo=UTC)


async def _conversation(svc: CheckinsService, who: str) -> None:
    """A completed check-in about ``who`` with every kind of text, feedback to them, and a
    request of theirs."""
    me, mia = svc.auth(who), svc.auth("mia", "manager")
    cid = (
        await svc.client.post(
            "/v1/checkins",
            json={"employee_id": who, "scheduled_for": "2026-03-05T10:00:00"},
            headers=me,
        )
    ).json()["checkin_id"]
    text = {"wins": "w", "challenges": "c", "help_needed": f"{who} help", "pulse": 4}
    assert (
        await svc.client.put(f"/v1/checkins/{cid}/reflection", json=text, headers=me)
    ).status_code == 200
    grow = {"goal": "g", "reality": "r", "options": "o", "will": "w", "notes": f"{who} notes"}
    assert (
        await svc.client.put(f"/v1/checkins/{cid}/notes", json=grow, headers=mia)
    ).status_code == 200
    item = {"owner_id": who, "text": f"{who} action"}
    assert (
        await svc.client.post(f"/v1/checkins/{cid}/action-items", json=item, headers=mia)
    ).status_code == 201
    svc.clock.travel_to(datetime(2026, 3, 5, 10, tzinfo=UTC))
    assert (
        await svc.client.post(f"/v1/checkins/{cid}/complete", json={}, headers=mia)
    ).status_code == 200
    given = {"receiver_id": who, "kind": "praise", "text": f"praise for {who}"}
    assert (await svc.client.post("/v1/feedback", json=given, headers=mia)).status_code == 201
    asked = {"from_id": "mia", "prompt": f"{who} asks"}
    assert (
        await svc.client.post("/v1/feedback/requests", json=asked, headers=me)
    ).status_code == 201


async def _texts(svc: CheckinsService, who: str) -> dict[str, Any]:
    """Everything written about ``who`` as it is stored, with the ids and times beside it."""
    t = svc.tenant
    async with svc.runtime.uow() as uow:
        s = uow.session
        [c] = (await s.execute(select(checkins).where(checkins.c.employee_id == who))).all()
        [i] = (await s.execute(select(action_items).where(action_items.c.employee_id == who))).all()
        [f] = (await s.execute(select(feedback).where(feedback.c.receiver_id == who))).all()
        [r] = (
            await s.execute(
                select(feedback_requests).where(feedback_requests.c.requester_id == who)
            )
        ).all()
    assert t == c.tenant_id
    return {
        "checkin": {name: getattr(c, name) for name in CHECKIN_TEXTS},
        "kept": (c.id, c.held_at, c.pulse, i.id, i.created_at, f.id, f.kind, f.created_at, r.id),
        "action_item": i.text,
        "feedback": f.text,
        "prompt": r.prompt,
    }


def _removed(texts: dict[str, Any], *, conversation: bool, feedback_too: bool) -> bool:
    gone = [*texts["checkin"].values(), texts["action_item"]]
    received = [texts["feedback"], texts["prompt"]]
    return (
        all(v is None for v in gone) == conversation
        and all(v is not None for v in gone) != conversation
        and all(v is None for v in received) == feedback_too
        and all(v is not None for v in received) != feedback_too
    )


async def _retention(svc: CheckinsService, at: datetime, **windows: int) -> RetentionResult:
    svc.clock.travel_to(at)
    settings = svc.runtime.settings
    assert isinstance(settings, Settings)
    return await retention_until_done(svc.runtime.uow, settings.model_copy(update=windows))


async def test_a_leavers_texts_are_kept_for_the_window_then_removed_once_keeping_the_facts(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        await _conversation(svc, "ana")
        await _conversation(svc, "ben")
        before = await _texts(svc, "ana")
        assert before["checkin"]["notes"] == "ana notes"
        await svc.apply(
            EmployeeDeactivated(
                tenant_id=svc.tenant, occurred_at=LEFT, employee_id="ana", effective_at=LEFT
            )
        )

        # Defaults: 365 days for each. A day before the window ends nothing is touched.
        nothing = await _retention(svc, LEFT + timedelta(days=364, hours=23))
        assert nothing.handled == 0
        assert await _texts(svc, "ana") == before

        removed = await _retention(svc, LEFT + timedelta(days=365, minutes=1))
        assert (removed.texts, removed.feedback) == (1, 1)
        after = await _texts(svc, "ana")
        assert _removed(after, conversation=True, feedback_too=True)
        # Ids, times, kinds and the pulse stay: history and reporting's facts still add up.
        assert after["kept"] == before["kept"]
        # Someone who did not leave keeps everything.
        assert _removed(await _texts(svc, "ben"), conversation=False, feedback_too=False)
        # Once: a later round finds nothing due.
        assert (await _retention(svc, LEFT + timedelta(days=400))).handled == 0


async def test_conversation_texts_and_feedback_have_windows_of_their_own(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        await _conversation(svc, "ana")
        await svc.apply(
            EmployeeDeactivated(
                tenant_id=svc.tenant, occurred_at=LEFT, employee_id="ana", effective_at=LEFT
            )
        )
        windows = {"retain_texts_after_leaving_days": 30, "retain_feedback_after_leaving_days": 90}
        first = await _retention(svc, LEFT + timedelta(days=31), **windows)
        assert (first.texts, first.feedback) == (1, 0)
        assert _removed(await _texts(svc, "ana"), conversation=True, feedback_too=False)
        second = await _retention(svc, LEFT + timedelta(days=91), **windows)
        assert (second.texts, second.feedback) == (0, 1)
        assert _removed(await _texts(svc, "ana"), conversation=True, feedback_too=True)


async def test_a_rehired_person_keeps_their_texts(start_checkins: StartCheckins) -> None:
    async with start_checkins() as svc:
        await svc.team()
        await _conversation(svc, "ana")
        before = await _texts(svc, "ana")
        await svc.apply(
            EmployeeDeactivated(
                tenant_id=svc.tenant, occurred_at=LEFT, employee_id="ana", effective_at=LEFT
            ),
            # Back a month later: an upsert newer than the deactivation clears it.
            employee(svc.tenant, "ana", "mia", at=LEFT + timedelta(days=30)),
        )
        assert (await _retention(svc, LEFT + timedelta(days=800))).handled == 0
        assert await _texts(svc, "ana") == before


async def test_someone_the_hr_platform_marks_inactive_has_left_from_that_update(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        await _conversation(svc, "ana")
        await svc.apply(employee(svc.tenant, "ana", "mia", active=False, at=LEFT))
        assert (await _retention(svc, LEFT + timedelta(days=364))).handled == 0
        assert (await _retention(svc, LEFT + timedelta(days=366))).handled == 2
        assert _removed(await _texts(svc, "ana"), conversation=True, feedback_too=True)
