"""Links that act: every category's email (a real <a href> button and the text part) and push
carries its link into the tenant's app; a tenant's own base URL wins; without one, no link."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from notifications_harness import BrowserKeys, HttpSink, Service, SmtpSink, StartService, employee
from test_delivery_isolation import scheduled
from test_email_delivery import missed
from test_preferences import NOW, due, escalated, feedback

from rhythm_notifications.adapters import db
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import GoalStale, GoalStatus, GoalStatusChanged

pytestmark = pytest.mark.kafka

D = db.deliveries
APP = "https://rhythm.acme.example.com/app"


def stale(tenant: str) -> GoalStale:
    return GoalStale(
        tenant_id=tenant,
        occurred_at=NOW,
        goal_id="g-stale",
        owner_id="e-1",
        last_progress_at=datetime(2026, 2, 1, 10, 0, tzinfo=UTC),
        update_interval_days=14,
    )


def at_risk(tenant: str) -> GoalStatusChanged:
    return GoalStatusChanged(
        tenant_id=tenant,
        occurred_at=NOW,
        goal_id="g-risky",
        owner_id="e-1",
        from_status=GoalStatus.ON_TRACK,
        to_status=GoalStatus.AT_RISK,
        suggested=True,
    )


#: One event per category, and the link each recipient's message must carry.
def every_category(tenant: str, base: str) -> tuple[list[Event], dict[tuple[str, str], str]]:
    invite = scheduled(tenant, "e-1", NOW + timedelta(days=2)).model_copy(
        update={"manager_id": "m-1"}
    )
    events = [
        due(tenant),
        missed(tenant),
        escalated(tenant, "e-1"),
        stale(tenant),
        at_risk(tenant),
        feedback(tenant, 1),
        invite,
    ]
    links = {
        ("checkin_due", "e-1"): f"{base}/checkins/due/ob-e-1-monthly",
        ("checkin_due", "m-1"): f"{base}/checkins/due/ob-e-1-monthly",
        ("checkin_missed", "e-1"): f"{base}/checkins/due/ob-e-1-monthly-2026-02",
        ("checkin_missed", "m-1"): f"{base}/checkins/due/ob-e-1-monthly-2026-02",
        ("cadence_escalated", "s-1"): f"{base}/checkins/due/ob-e-1",
        ("goal_stale", "e-1"): f"{base}/goals/g-stale",
        ("goal_at_risk", "m-1"): f"{base}/goals/g-risky",
        ("feedback_received", "e-1"): f"{base}/feedback/f-1",
        ("checkin_invitation", "e-1"): f"{base}/checkins/c-e-1",
        ("checkin_invitation", "m-1"): f"{base}/checkins/c-e-1",
    }
    return events, links


async def _subscribe(svc: Service, sink: HttpSink, person: str) -> BrowserKeys:
    keys = BrowserKeys.new()
    response = await svc.client.post(
        "/v1/push-subscriptions",
        json={
            "endpoint": f"{sink.base_url}/push/{person}",
            "keys": {
                "p256dh": keys.p256dh,
                "auth": base64.urlsafe_b64encode(keys.auth).decode().rstrip("="),
            },
        },
        headers=svc.token(person),
    )
    assert response.status_code == 201, response.text
    everything = {c: {"channel": "both"} for c in ("checkin_due", "checkin_missed",
                  "cadence_escalated", "goal_stale", "goal_at_risk", "feedback_received",
                  "checkin_invitation")}  # fmt: skip
    response = await svc.client.put(
        "/v1/preferences", json={"categories": everything}, headers=svc.token(person)
    )
    assert response.status_code == 200, response.text
    return keys


async def _team(svc: Service, tenant: str) -> None:
    await svc.add_people(
        employee(tenant, "m-1", name="Mark"),
        employee(tenant, "e-1", manager_id="m-1", name="Eva"),
        employee(tenant, "s-1", name="Sam"),
        employee(tenant, "g-1", name="Gijs"),
    )


def _hrefs(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', html)


async def test_every_categorys_email_and_push_carry_their_link_into_the_app(
    start_service: StartService, smtp_sink: SmtpSink, http_sink: HttpSink, tenant: str
) -> None:
    async with start_service(
        settings={"app_base_url": APP + "/"}
    ) as svc:  # a trailing slash is no matter
        await _team(svc, tenant)
        browsers = {p: await _subscribe(svc, http_sink, p) for p in ("e-1", "m-1", "s-1")}
        events, links = every_category(tenant, APP)
        await svc.publish(events)
        await svc.wait_deliveries(2 * len(links))
        await svc.dispatch()

        emails = {
            (m.message["X-Rhythm-Category"], m.rcpt_tos[0].split("@")[0]): m.message
            for m in smtp_sink.handler.messages
        }
        assert set(emails) == set(links)
        for key, url in links.items():
            message = emails[key]
            text = message.get_body(("plain",)).get_content()
            html = message.get_body(("html",)).get_content()
            assert f"Open in Rhythm: {url}\n" in text, key
            hrefs = _hrefs(html)
            assert hrefs[0] == url, key  # the button, before the unsubscribe link
            assert hrefs[1].startswith("http://test/v1/unsubscribe?token="), key
            assert len(hrefs) == 2, key

        pushed = {}
        for person, keys in browsers.items():
            for request in http_sink.to(f"/push/{person}"):
                message = keys.decrypt(request.body)
                pushed[(message["category"], person)] = message["url"]
        assert pushed == links
        rows = await svc.deliveries()
        assert {r.status for r in rows} == {"sent"}


async def test_a_digest_links_each_item_and_a_tenants_own_base_url_wins(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    own = "https://perform.acme.example.org"
    async with start_service(settings={"app_base_url": APP}) as svc:
        await _team(svc, tenant)
        hr = svc.token("hr-1", "hr_admin")
        refused = await svc.client.put(
            "/v1/tenant-settings", json={"app_base_url": own}, headers=svc.token("e-1")
        )
        assert refused.status_code == 403
        for bad in ("ftp://x", "https://x.example/?q=1", "not a url"):
            answer = await svc.client.put(
                "/v1/tenant-settings", json={"app_base_url": bad}, headers=hr
            )
            assert answer.status_code == 422, bad
            assert answer.json()["detail"][0]["loc"][-1] == "app_base_url"
        answer = await svc.client.put("/v1/tenant-settings", json={"app_base_url": own}, headers=hr)
        assert answer.status_code == 200, answer.text
        assert answer.json()["app_base_url"] == own
        assert answer.json()["default_app_base_url"] == APP
        got = (await svc.client.get("/v1/tenant-settings", headers=hr)).json()
        assert got["app_base_url"] == own

        response = await svc.client.put(
            "/v1/preferences",
            json={"categories": {"feedback_received": {"channel": "email", "mode": "daily"}}},
            headers=svc.token("e-1"),
        )
        assert response.status_code == 200, response.text
        await svc.publish([feedback(tenant, 1), feedback(tenant, 2)])
        await svc.wait_deliveries(2)
        svc.clock.travel_to(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
        assert await svc.compose_digests() == 2
        await svc.dispatch()

        [digest] = smtp_sink.handler.messages
        text = digest.message.get_body(("plain",)).get_content()
        html = digest.message.get_body(("html",)).get_content()
        for n in (1, 2):
            assert f"- Gijs gave you praise.\n  {own}/feedback/f-{n}\n" in text
        assert f"Open in Rhythm: {own}/\n" in text
        assert _hrefs(html)[:3] == [f"{own}/feedback/f-1", f"{own}/feedback/f-2", f"{own}/"]
        assert APP not in text + html

        # Dropping the override falls back to APP_BASE_URL.
        answer = await svc.client.put(
            "/v1/tenant-settings", json={"app_base_url": None}, headers=hr
        )
        assert answer.status_code == 200
        assert answer.json()["app_base_url"] is None
        await svc.publish([stale(tenant)])
        await svc.wait_deliveries(1, D.c.category == "goal_stale")
        await svc.dispatch()
        [goal] = smtp_sink.handler.to("e-1@acme.example.com")[1:]
        assert (
            f"Open in Rhythm: {APP}/goals/g-stale"
            in goal.message.get_body(("plain",)).get_content()
        )


async def test_without_an_app_base_url_a_message_carries_no_link_at_all(
    start_service: StartService, smtp_sink: SmtpSink, http_sink: HttpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await _team(svc, tenant)
        keys = await _subscribe(svc, http_sink, "e-1")
        await svc.publish([feedback(tenant, 1), stale(tenant)])
        await svc.wait_deliveries(4)
        await svc.dispatch()

        assert len(smtp_sink.handler.messages) == 2
        for received in smtp_sink.handler.messages:
            text = received.message.get_body(("plain",)).get_content()
            html = received.message.get_body(("html",)).get_content()
            assert "Open in Rhythm" not in text + html
            assert [h.split("?")[0] for h in _hrefs(html)] == ["http://test/v1/unsubscribe"]
        messages = [keys.decrypt(r.body) for r in http_sink.to("/push/e-1")]
        assert len(messages) == 2
        assert all("url" not in m for m in messages)
