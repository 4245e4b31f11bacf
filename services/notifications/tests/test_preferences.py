"""Preferences at work: quiet hours defer, digests batch, the daily cap, opt-outs, unsubscribe."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import urlparse

import pytest
from notifications_harness import SmtpSink, StartService, employee
from test_email_delivery import missed

from rhythm_notifications.adapters import db
from rhythm_shared.contracts.v1 import (
    CadenceEscalated,
    CheckinCompleted,
    CheckinDue,
    CheckinKind,
    EscalationLevel,
    FeedbackGiven,
    FeedbackKind,
    Initiator,
)

pytestmark = pytest.mark.kafka

D = db.deliveries
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def due(
    tenant: str, employee_id: str = "e-1", kind: CheckinKind = CheckinKind.MONTHLY
) -> CheckinDue:
    return CheckinDue(
        tenant_id=tenant,
        occurred_at=NOW,
        obligation_id=f"ob-{employee_id}-{kind.value}",
        employee_id=employee_id,
        manager_id="m-1",
        kind=kind,
        period_start=date(2026, 3, 1),
        period_end=date(2026, 3, 31),
        due_at=datetime(2026, 3, 5, 16, 0, tzinfo=UTC),
    )


def feedback(tenant: str, n: int, giver: str = "g-1") -> FeedbackGiven:
    return FeedbackGiven(
        tenant_id=tenant,
        occurred_at=NOW,
        feedback_id=f"f-{n}",
        giver_id=giver,
        receiver_id="e-1",
        kind=FeedbackKind.PRAISE,
        requested=False,
    )


def escalated(tenant: str, employee_id: str) -> CadenceEscalated:
    return CadenceEscalated(
        tenant_id=tenant,
        occurred_at=NOW,
        obligation_id=f"ob-{employee_id}",
        employee_id=employee_id,
        manager_id="m-1",
        escalated_to_id="s-1",
        level=EscalationLevel.SKIP_LEVEL,
        consecutive_misses=3,
    )


async def test_quiet_hours_defer_a_message_to_the_next_open_moment_in_the_recipients_zone(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(
            employee(tenant, "m-1"),  # Amsterdam: 10:00, open
            employee(tenant, "e-1", manager_id="m-1", time_zone="Asia/Tokyo"),  # 18:00 there
        )
        response = await svc.client.put(
            "/v1/preferences",
            json={"quiet_hours_start": "17:00", "quiet_hours_end": "08:00"},
            headers=svc.token("e-1"),
        )
        assert response.status_code == 200, response.text
        await svc.publish([due(tenant)])
        await svc.wait_deliveries(2)
        await svc.dispatch()
        assert [m.rcpt_tos for m in smtp_sink.handler.messages] == [["m-1@acme.example.com"]]
        [waiting] = await svc.deliveries(D.c.recipient_id == "e-1")
        assert waiting.status == "pending"
        # 08:00 on Tuesday in Tokyo is 23:00 on Monday in UTC.
        assert waiting.next_attempt_at == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)

        svc.clock.travel_to(datetime(2026, 3, 2, 22, 59, tzinfo=UTC))
        await svc.dispatch()
        assert smtp_sink.handler.count() == 1
        svc.later(minutes=1)
        await svc.dispatch()
        [late] = smtp_sink.handler.to("e-1@acme.example.com")
        # Due 16:00 UTC on Thursday is 01:00 on Friday in Tokyo: dates are the recipient's.
        assert (
            late.message["Subject"] == "Your monthly check-in with M 1 is due Friday 6 March 2026"
        )


async def test_a_daily_digest_batches_a_category_into_one_email(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(
            employee(tenant, "e-1", name="Eva"),
            employee(tenant, "g-1", name="Gijs"),
            employee(tenant, "g-2", name="Greet"),
        )
        response = await svc.client.put(
            "/v1/preferences",
            json={"categories": {"feedback_received": {"channel": "email", "mode": "daily"}}},
            headers=svc.token("e-1"),
        )
        assert response.status_code == 200, response.text
        await svc.publish([feedback(tenant, 1), feedback(tenant, 2, "g-2"), feedback(tenant, 3)])
        rows = await svc.wait_deliveries(3)
        assert {(r.status, r.reason) for r in rows} == {("suppressed", "digested")}
        assert await svc.compose_digests() == 0
        await svc.dispatch()
        assert smtp_sink.handler.count() == 0

        # The digest goes out at 09:00 Amsterdam on the next working day (08:00 UTC).
        svc.clock.travel_to(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
        assert await svc.compose_digests() == 3
        assert await svc.compose_digests() == 0
        await svc.dispatch()
        [digest] = smtp_sink.handler.messages
        assert digest.message["Subject"] == "Your Rhythm digest: 3 updates"
        text = digest.message.get_body(("plain",)).get_content()
        assert text.count("\n- ") == 3
        assert "- Gijs gave you praise." in text
        assert "- Greet gave you praise." in text
        [sent] = await svc.deliveries(D.c.category == "digest")
        assert (sent.status, sent.channel) == ("sent", "email")


async def test_a_manager_digest_says_how_many_reports_have_an_overdue_checkin(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        reports = [employee(tenant, f"e-{i}", manager_id="m-1") for i in range(1, 9)]
        await svc.add_people(employee(tenant, "m-1", locale="en-GB"), *reports)
        await svc.client.put(
            "/v1/preferences",
            json={"categories": {"checkin_missed": {"channel": "email", "mode": "daily"}}},
            headers=svc.token("m-1"),
        )
        await svc.publish([missed(tenant, f"e-{i}") for i in (1, 2, 3, 4)])
        await svc.wait_deliveries(8)
        held = CheckinCompleted(
            tenant_id=tenant,
            occurred_at=NOW,
            checkin_id="c-4",
            kind=CheckinKind.MONTHLY,
            employee_id="e-4",
            manager_id="m-1",
            held_at=NOW,
            initiated_by=Initiator.EMPLOYEE,
            obligation_id="ob-e-4-monthly-2026-02",
        )
        await svc.publish([held])

        async def caught_up() -> bool:
            rows = await svc.rows(db.overdue_checkins)
            return len(rows) == 3

        from rhythm_shared.testing import wait_for

        await wait_for(caught_up)
        await svc.dispatch()
        assert len(smtp_sink.handler.to("m-1@acme.example.com")) == 0  # digested
        assert smtp_sink.handler.count() == 4  # each report hears of their own miss

        svc.clock.travel_to(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
        await svc.compose_digests()
        await svc.dispatch()
        [digest] = smtp_sink.handler.to("m-1@acme.example.com")
        text = digest.message.get_body(("plain",)).get_content()
        assert "3 of your 8 reports have an overdue check-in." in text
        assert text.count("\n- ") == 4
        html = digest.message.get_body(("html",)).get_content()
        assert "<strong>3 of your 8 reports have an overdue check-in.</strong>" in html


async def test_nobody_gets_two_messages_of_a_category_a_day_except_escalations(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(
            employee(tenant, "m-1"),
            employee(tenant, "s-1"),
            employee(tenant, "e-1", manager_id="m-1"),
            employee(tenant, "e-2", manager_id="m-1"),
        )
        await svc.publish(
            [
                due(tenant, "e-1", CheckinKind.MONTHLY),
                due(tenant, "e-1", CheckinKind.QUARTERLY_REVIEW),
                escalated(tenant, "e-1"),
                escalated(tenant, "e-2"),
            ]
        )
        await svc.wait_deliveries(6)
        await svc.dispatch()
        assert len(smtp_sink.handler.to("e-1@acme.example.com")) == 1
        assert len(smtp_sink.handler.to("m-1@acme.example.com")) == 1
        assert len(smtp_sink.handler.to("s-1@acme.example.com")) == 2
        digested = await svc.deliveries(D.c.reason == "digested")
        assert sorted(r.recipient_id for r in digested) == ["e-1", "m-1"]
        # The one that waited is in the next daily digest, not lost.
        svc.clock.travel_to(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
        await svc.compose_digests()
        await svc.dispatch()
        [digest] = [
            m
            for m in smtp_sink.handler.to("e-1@acme.example.com")
            if "digest" in m.message["Subject"]
        ]
        assert "quarterly review" in digest.message.get_body(("plain",)).get_content()


async def test_critical_notices_skip_the_digest_but_respect_a_channel_opt_out(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(employee(tenant, "m-1"), employee(tenant, "s-1"))
        await svc.client.put(
            "/v1/preferences",
            json={"categories": {"cadence_escalated": {"channel": "email", "mode": "weekly"}}},
            headers=svc.token("s-1"),
        )
        await svc.publish([escalated(tenant, "e-1")])
        await svc.wait_deliveries(1)
        await svc.dispatch()
        assert len(smtp_sink.handler.to("s-1@acme.example.com")) == 1

        await svc.client.put(
            "/v1/preferences",
            json={"categories": {"cadence_escalated": {"channel": "none"}}},
            headers=svc.token("s-1"),
        )
        await svc.publish([escalated(tenant, "e-2")])
        [row] = await svc.wait_deliveries(1, D.c.status == "suppressed")
        assert row.reason == "opted_out"
        await svc.dispatch()
        assert len(smtp_sink.handler.to("s-1@acme.example.com")) == 1


async def test_one_click_unsubscribe_stops_that_category_and_only_that_one(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(
            employee(tenant, "m-1"),
            employee(tenant, "e-1", manager_id="m-1"),
            employee(tenant, "g-1"),
        )
        await svc.publish([due(tenant)])
        await svc.wait_deliveries(2)
        await svc.dispatch()
        [first] = smtp_sink.handler.to("e-1@acme.example.com")
        url = urlparse(first.message["List-Unsubscribe"].strip("<>"))
        target = f"{url.path}?{url.query}"

        page = await svc.client.get(target)  # a link scanner's GET changes nothing
        assert page.status_code == 200
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
        prefs = (await svc.client.get("/v1/preferences", headers=svc.token("e-1"))).json()
        assert prefs["unsubscribed"] == []

        # RFC 8058: a POST with "List-Unsubscribe=One-Click", no cookies, no login.
        response = await svc.client.post(
            target,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200
        prefs = (await svc.client.get("/v1/preferences", headers=svc.token("e-1"))).json()
        assert prefs["unsubscribed"] == ["checkin_due"]
        assert prefs["categories"]["checkin_due"]["channel"] == "none"

        svc.later(days=1)
        await svc.publish([due(tenant, kind=CheckinKind.QUARTERLY_REVIEW), feedback(tenant, 1)])
        await svc.wait_deliveries(5)
        await svc.dispatch()
        [suppressed] = await svc.deliveries(D.c.status == "suppressed")
        assert (suppressed.recipient_id, suppressed.reason) == ("e-1", "unsubscribed")
        mails = smtp_sink.handler.to("e-1@acme.example.com")
        assert [m.message["X-Rhythm-Category"] for m in mails] == [
            "checkin_due",
            "feedback_received",
        ]

        forged = await svc.client.post(target[:-3] + "abc")
        assert forged.status_code == 404
