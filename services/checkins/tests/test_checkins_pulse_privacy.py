"""Individual pulse scores leave the service only on the internal topic, unless the tenant opts in
(docs/privacy.md): what really reaches the broker, on both topics, with the setting off and on."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from checkins_harness import CheckinsService, StartCheckins

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    PulseRecorded,
    PulseSource,
    ReflectionSubmitted,
)
from rhythm_shared.testing import read_records

pytestmark = pytest.mark.kafka

PUBLIC = (CheckinCompleted.type, ReflectionSubmitted.type)


async def _reflect_and_complete(svc: CheckinsService) -> str:
    """ana reflects with pulse 4; mia completes the check-in with pulse 2."""
    ana, mia = svc.auth("ana"), svc.auth("mia", "manager")
    created = await svc.client.post(
        "/v1/checkins",
        json={"employee_id": "ana", "scheduled_for": "2026-03-05T10:00:00"},
        headers=ana,
    )
    assert created.status_code == 201, created.text
    cid = str(created.json()["checkin_id"])
    reflected = await svc.client.put(
        f"/v1/checkins/{cid}/reflection", json={"wins": "shipped", "pulse": 4}, headers=ana
    )
    assert reflected.status_code == 200, reflected.text
    svc.clock.travel_to(datetime(2026, 3, 5, 10, tzinfo=UTC))
    done = await svc.client.post(f"/v1/checkins/{cid}/complete", json={"pulse": 2}, headers=mia)
    assert done.status_code == 200, done.text
    # The participants still see the score in the check-in itself.
    assert done.json()["pulse"] == 2
    return cid


async def _public_bodies(svc: CheckinsService) -> dict[str, dict[str, object]]:
    """The raw JSON bodies of the public events on the broker, by CloudEvents type."""
    records = await read_records(
        svc.bootstrap,
        f"{svc.topic_prefix}{topics.CHECKINS}",
        min_count=2,
        settle_s=0.5,
        predicate=lambda r: dict(r.headers or ()).get("ce_type", b"").decode() in PUBLIC,
    )
    return {dict(r.headers or ())["ce_type"].decode(): json.loads(r.value) for r in records}


async def test_by_default_the_public_events_carry_no_pulse_and_the_internal_topic_has_each_score(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        cid = await _reflect_and_complete(svc)

        bodies = await _public_bodies(svc)
        assert set(bodies) == set(PUBLIC)
        for body in bodies.values():
            assert body["pulse"] is None
        internal = await svc.events(topics.INTERNAL_PULSE, min_count=2)
        pulses = [e.event for e in internal]
        assert all(isinstance(p, PulseRecorded) for p in pulses)
        assert sorted(
            (p.source, p.checkin_id, p.pulse, p.employee_id)
            for p in pulses
            if isinstance(p, PulseRecorded)
        ) == [(PulseSource.CHECKIN, cid, 2, "ana"), (PulseSource.REFLECTION, cid, 4, "ana")]
        # Each accompanies its public event: same instant, so reporting can join them.
        [reflection] = await svc.events(topics.CHECKINS, types=(ReflectionSubmitted.type,))
        by_source = {p.source: p for p in pulses if isinstance(p, PulseRecorded)}
        assert by_source[PulseSource.REFLECTION].occurred_at == reflection.event.occurred_at


async def test_a_tenant_that_opts_in_shares_individual_pulses_on_the_public_events(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        hr = svc.auth("hr-1", "hr_admin")
        turned_on = await svc.client.put(
            "/v1/checkins/settings", json={"share_individual_pulse": True}, headers=hr
        )
        assert turned_on.status_code == 200, turned_on.text
        assert turned_on.json() == {
            "reviews_visible_to_manager_chain": False,
            "share_individual_pulse": True,
        }
        await _reflect_and_complete(svc)

        bodies = await _public_bodies(svc)
        shared = {kind: body["pulse"] for kind, body in bodies.items()}
        assert shared == {ReflectionSubmitted.type: 4, CheckinCompleted.type: 2}
        # Reporting reads the internal topic whatever the setting: one source for its aggregates.
        assert len(await svc.events(topics.INTERNAL_PULSE, min_count=2)) == 2
        trail = (await svc.client.get(f"/v1/audit?subject_id={svc.tenant}", headers=hr)).json()
        assert [(r["action"], r["target"]) for r in trail] == [
            ("change_access", f"tenant/{svc.tenant}:share_individual_pulse=on")
        ]


async def test_the_settings_change_one_at_a_time_and_only_for_hr_admin(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        hr = svc.auth("hr-1", "hr_admin")
        put = svc.client.put
        on = await put("/v1/checkins/settings", json={"share_individual_pulse": True}, headers=hr)
        assert on.status_code == 200
        reviews = await put(
            "/v1/checkins/settings", json={"reviews_visible_to_manager_chain": True}, headers=hr
        )
        # The other setting keeps its value.
        assert reviews.json() == {
            "reviews_visible_to_manager_chain": True,
            "share_individual_pulse": True,
        }
        empty = await put("/v1/checkins/settings", json={}, headers=hr)
        assert empty.status_code == 422
        assert "share_individual_pulse" in empty.text
        refused = await put(
            "/v1/checkins/settings",
            json={"share_individual_pulse": True},
            headers=svc.auth("mia", "manager"),
        )
        assert refused.status_code == 403
