"""One delivery's failure touches no other: a hostile name, a crash loop, a stale message."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from notifications_harness import BrowserKeys, HttpSink, SmtpSink, StartService, b64url, employee
from sqlalchemy import update
from test_email_delivery import missed
from test_preferences import NOW, due, feedback

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.outbound import OutboundClient
from rhythm_notifications.adapters.push import PushOutcome, PushTarget, WebPushSender
from rhythm_notifications.adapters.webhooks import WebhookResult, WebhookSender
from rhythm_notifications.commands import ClaimDueDeliveries, RecoverExpiredDeliveries
from rhythm_notifications.use_cases.dispatching import (
    claim_due_deliveries,
    recover_expired_deliveries,
)
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinDue,
    CheckinKind,
    CheckinScheduled,
    FeedbackGiven,
    Initiator,
    NotificationFailed,
)
from rhythm_shared.testing import read_records, wait_for

pytestmark = pytest.mark.kafka

D = db.deliveries


async def _rename(svc: object, employee_id: str, display_name: str) -> None:
    """Put a name straight into the directory, as an older feed (or a bug upstream) could."""
    async with svc.runtime.uow() as uow:  # type: ignore[attr-defined]
        await uow.session.execute(
            update(db.directory.employees)
            .where(db.directory.employees.c.employee_id == employee_id)
            .values(display_name=display_name)
        )


async def test_a_name_with_a_line_break_fails_only_its_own_delivery(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        people = [employee(tenant, f"m-{n}") for n in range(1, 4)]
        people += [employee(tenant, f"e-{n}", manager_id=f"m-{n}") for n in range(1, 4)]
        await svc.add_people(*people)
        await _rename(svc, "e-2", "Eve\r\nBcc: victim@elsewhere.example.com")
        await svc.publish([missed(tenant, f"e-{n}", f"m-{n}") for n in range(1, 4)])
        await svc.wait_deliveries(6)
        await svc.dispatch()

        rows = {r.recipient_id: r for r in await svc.deliveries()}
        assert (rows["e-2"].status, rows["e-2"].reason) == ("failed", "invalid_address")
        assert "control character" in rows["e-2"].detail
        assert {pid: r.status for pid, r in rows.items() if pid != "e-2"} == {
            "e-1": "sent",
            "e-3": "sent",
            "m-1": "sent",
            "m-2": "sent",  # the manager of the person with the hostile name too
            "m-3": "sent",
        }
        assert smtp_sink.handler.to("e-2@acme.example.com") == []
        assert all("victim" not in " ".join(m.rcpt_tos) for m in smtp_sink.handler.messages)
        assert smtp_sink.handler.count() == 5


async def test_a_delivery_whose_dispatcher_keeps_dying_fails_after_a_bounded_number_of_recoveries(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(employee(tenant, "e-1", manager_id="m-1"), employee(tenant, "m-1"))
        await svc.publish([missed(tenant)])
        await svc.wait_deliveries(2)
        # Claim the deliveries as a dispatcher would, then die before handing them over: their
        # lease runs out and the next round takes them back, once per expiry (3 by default).
        for _ in range(4):
            async with svc.runtime.uow() as uow:
                claimed = await claim_due_deliveries(
                    uow, ClaimDueDeliveries(limit=10, lease_s=120, token=str(uuid.uuid4()))
                )
            assert len(claimed) == 2
            svc.later(seconds=121)
            async with svc.runtime.uow() as uow:
                await recover_expired_deliveries(
                    uow, RecoverExpiredDeliveries(limit=10, max_recoveries=3)
                )
        assert await svc.dispatch() == 0  # nothing left to claim

        rows = await svc.deliveries()
        assert [(r.status, r.reason, r.recoveries) for r in rows] == 2 * [
            ("failed", "provider_error", 3)
        ]
        assert "given up" in rows[0].detail
        assert smtp_sink.handler.count() == 0
        outcomes = await read_records(
            svc.bootstrap, f"{svc.prefix}rhythm.notifications.v1", min_count=2, settle_s=0.3
        )
        failed = [from_record(r.headers, r.value).event for r in outcomes]
        assert [type(e) for e in failed] == [NotificationFailed, NotificationFailed]


def scheduled(tenant: str, employee_id: str, starts: datetime) -> CheckinScheduled:
    return CheckinScheduled(
        tenant_id=tenant,
        occurred_at=NOW - timedelta(hours=1),
        checkin_id=f"c-{employee_id}",
        kind=CheckinKind.MONTHLY,
        employee_id=employee_id,
        manager_id=f"m-{employee_id}",
        scheduled_for=starts,
        initiated_by=Initiator.EMPLOYEE,
    )


def held(tenant: str, obligation: CheckinDue) -> CheckinCompleted:
    return CheckinCompleted(
        tenant_id=tenant,
        occurred_at=NOW,
        checkin_id=f"c-{obligation.obligation_id}",
        kind=obligation.kind,
        employee_id=obligation.employee_id,
        manager_id=obligation.manager_id,
        held_at=NOW,
        initiated_by=Initiator.EMPLOYEE,
        obligation_id=obligation.obligation_id,
        due_at=obligation.due_at,
    )


async def _expired(svc: object) -> dict[str, str]:
    rows = await svc.deliveries()  # type: ignore[attr-defined]
    return {r.recipient_id: f"{r.status}:{r.reason}" for r in rows}


async def test_an_invitation_to_a_checkin_that_has_begun_is_suppressed_as_expired(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(
            *(employee(tenant, pid) for pid in ("m-e-1", "m-e-2")),
            employee(tenant, "e-1", manager_id="m-e-1"),
            employee(tenant, "e-2", manager_id="m-e-2"),
        )
        await svc.publish(
            [
                scheduled(tenant, "e-1", NOW - timedelta(minutes=5)),  # begun when it arrives
                scheduled(tenant, "e-2", NOW + timedelta(minutes=30)),  # begins while it waits
            ]
        )
        await svc.wait_deliveries(4)
        svc.later(minutes=31)  # the dispatcher was away until after the start
        await svc.dispatch()

        assert await _expired(svc) == {
            "e-1": "suppressed:expired",
            "m-e-1": "suppressed:expired",
            "e-2": "suppressed:expired",
            "m-e-2": "suppressed:expired",
        }
        assert smtp_sink.handler.count() == 0


async def test_a_reminder_for_an_obligation_already_held_is_suppressed_in_either_order(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(
            employee(tenant, "m-1"),
            *(employee(tenant, f"e-{n}", manager_id="m-1") for n in (1, 2, 3)),
        )
        waiting, late, open_one = due(tenant, "e-1"), due(tenant, "e-2"), due(tenant, "e-3")
        await svc.publish([waiting, open_one])
        await svc.wait_deliveries(2)
        # Held before the reminder went out; and another held before its reminder even arrived
        # (check-ins and cadence are different topics: no order between them).
        await svc.publish([held(tenant, waiting), held(tenant, late)])

        async def closed() -> bool:
            rows = await svc.rows(db.closed_obligations)
            return len([r for r in rows if r.tenant_id == tenant]) == 2

        await wait_for(closed, timeout_s=30)
        await svc.publish([late])

        async def late_one_arrived() -> bool:
            return "e-2" in await _expired(svc)

        # Wait for that reminder itself: a count of rows could be met by other deliveries first.
        await wait_for(late_one_arrived, timeout_s=60)
        await svc.dispatch()

        statuses = await _expired(svc)
        assert {pid: statuses[pid] for pid in ("e-1", "e-2", "e-3")} == {
            "e-1": "suppressed:expired",
            "e-2": "suppressed:expired",
            "e-3": "sent:None",
        }
        assert [m.rcpt_tos for m in smtp_sink.handler.to("e-3@acme.example.com")] == [
            ["e-3@acme.example.com"]
        ]
        assert smtp_sink.handler.to("e-1@acme.example.com") == []
        assert smtp_sink.handler.to("e-2@acme.example.com") == []


async def test_nothing_older_than_the_maximum_age_is_sent_not_even_on_a_replay(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(
            *(employee(tenant, pid) for pid in ("m-1", "m-2", "m-3")),
            *(employee(tenant, f"e-{n}", manager_id=f"m-{n}") for n in (1, 2, 3)),
        )
        last_quarter = missed(tenant, "e-1", "m-1").model_copy(
            update={"occurred_at": NOW - timedelta(days=90)}
        )
        await svc.publish([last_quarter, missed(tenant, "e-2", "m-2")])
        await svc.wait_deliveries(4)
        await svc.dispatch()
        assert await _expired(svc) == {
            "e-1": "suppressed:expired",
            "m-1": "suppressed:expired",
            "e-2": "sent:None",
            "m-2": "sent:None",
        }
        # Decided in time, but its send was held up past the maximum age (96 hours by default).
        await svc.publish([missed(tenant, "e-3", "m-3")])
        await svc.wait_deliveries(6)
        svc.later(hours=97)
        await svc.dispatch()
        statuses = await _expired(svc)
        assert (statuses["e-3"], statuses["m-3"]) == ("suppressed:expired", "suppressed:expired")
        assert sorted(a for m in smtp_sink.handler.messages for a in m.rcpt_tos) == [
            "e-2@acme.example.com",
            "m-2@acme.example.com",
        ]


class CrashingWebhooks(WebhookSender):
    """A sender with a bug that only one endpoint's deliveries trigger."""

    async def post(
        self, url: str, *, msg_id: str, timestamp: int, body: str, signing_secrets: Sequence[str]
    ) -> WebhookResult:
        if "/hooks/bad" in url:
            raise RuntimeError("a bug in the sender")
        return await super().post(
            url, msg_id=msg_id, timestamp=timestamp, body=body, signing_secrets=signing_secrets
        )


class CrashingPusher(WebPushSender):
    async def send(self, target: PushTarget, payload: dict[str, Any], topic: str) -> PushOutcome:
        if "/push/bad" in target.endpoint:
            raise RuntimeError("a bug in the pusher")
        return await super().send(target, payload, topic)


def _outbound() -> OutboundClient:
    return OutboundClient(allow_private=True, max_response_bytes=1024, per_endpoint=4)


async def test_a_webhook_or_push_that_crashes_its_sender_fails_alone(
    start_service: StartService,
    http_sink: HttpSink,
    smtp_sink: SmtpSink,
    tenant: str,
    vapid_key: str,
) -> None:
    webhooks = CrashingWebhooks(_outbound(), 2.0)
    pusher = CrashingPusher(
        vapid_key, "mailto:ops@acme.example.com", ttl_s=60, timeout_s=2, outbound=_outbound()
    )
    async with start_service(webhooks=webhooks, pusher=pusher) as svc:
        await svc.add_people(*(employee(tenant, pid) for pid in ("e-1", "e-2", "g-1")))
        for pid, path in (("e-1", "/push/bad"), ("e-2", "/push/good")):
            keys = BrowserKeys.new()
            subscribed = await svc.client.post(
                "/v1/push-subscriptions",
                json={
                    "endpoint": http_sink.base_url + path,
                    "keys": {"p256dh": keys.p256dh, "auth": b64url(keys.auth)},
                },
                headers=svc.token(pid),
            )
            assert subscribed.status_code == 201, subscribed.text
        for path in ("/hooks/bad", "/hooks/good"):
            created = await svc.client.post(
                "/v1/webhook-endpoints",
                json={"url": http_sink.base_url + path, "event_types": [FeedbackGiven.type]},
                headers=svc.token("admin", "hr_admin"),
            )
            assert created.status_code == 201, created.text
        to_e2 = feedback(tenant, 2).model_copy(update={"receiver_id": "e-2"})
        await svc.publish([feedback(tenant, 1), to_e2])  # email and push to each
        await svc.wait_deliveries(4)
        await svc.dispatch()

        rows = {(r.recipient_id, r.channel): r for r in await svc.deliveries()}
        bad = rows[("e-1", "push")]
        assert (bad.status, bad.reason) == ("failed", "provider_error")
        assert bad.detail == "could not be built or sent (RuntimeError)"
        assert {k: r.status for k, r in rows.items() if k != ("e-1", "push")} == {
            ("e-1", "email"): "sent",
            ("e-2", "email"): "sent",
            ("e-2", "push"): "sent",
        }
        assert len(http_sink.to("/push/good")) == 1

        async def queued() -> bool:
            return len(await svc.rows(db.webhook_deliveries)) == 4

        await wait_for(queued, timeout_s=30)
        assert await svc.dispatch_webhooks() == 4
        hooks = await svc.rows(db.webhook_deliveries)
        assert sorted((r.status, r.detail) for r in hooks) == [
            ("pending", "could not be sent (RuntimeError)"),
            ("pending", "could not be sent (RuntimeError)"),
            ("sent", None),
            ("sent", None),
        ]
        assert len(http_sink.to("/hooks/good")) == 2
