"""Web Push (VAPID, aes128gcm) and Standard Webhooks against a real local HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from notifications_harness import BrowserKeys, HttpSink, SmtpSink, StartService, employee
from sqlalchemy import event
from test_email_delivery import missed
from test_preferences import due, feedback

from rhythm_notifications.adapters import db
from rhythm_shared.testing import wait_for

pytestmark = pytest.mark.kafka

D = db.deliveries


async def test_push_reaches_every_live_subscription_and_a_gone_one_is_removed(
    start_service: StartService, smtp_sink: SmtpSink, http_sink: HttpSink, tenant: str
) -> None:
    phone, old = BrowserKeys.new(), BrowserKeys.new()
    async with start_service() as svc:
        await svc.add_people(employee(tenant, "e-1"), employee(tenant, "g-1", name="Gijs"))
        for path, keys in (("/push/phone", phone), ("/push/old", old)):
            response = await svc.client.post(
                "/v1/push-subscriptions",
                json={
                    "endpoint": http_sink.base_url + path,
                    "keys": {
                        "p256dh": keys.p256dh,
                        "auth": base64.urlsafe_b64encode(keys.auth).decode().rstrip("="),
                    },
                },
                headers=svc.token("e-1"),
            )
            assert response.status_code == 201, response.text
        http_sink.replies["/push/old"] = [410]

        await svc.publish([feedback(tenant, 1)])  # feedback defaults to email and push
        await svc.wait_deliveries(2)
        await svc.dispatch()

        [request] = http_sink.to("/push/phone")
        assert request.headers["content-encoding"] == "aes128gcm"
        assert request.headers["authorization"].startswith("vapid t=")
        assert request.headers["ttl"] == str(24 * 3600)
        assert request.headers["urgency"] == "normal"
        assert len(request.headers["topic"]) == 32
        message = phone.decrypt(request.body)
        assert message["title"] == "Gijs gave you feedback"
        assert message["body"] == "Gijs gave you praise."
        assert message["category"] == "feedback_received"
        assert len(http_sink.to("/push/old")) == 1

        listed = (await svc.client.get("/v1/push-subscriptions", headers=svc.token("e-1"))).json()
        assert [s["endpoint"] for s in listed] == [http_sink.base_url + "/push/phone"]
        rows = await svc.deliveries()
        assert sorted((r.channel, r.status) for r in rows) == [("email", "sent"), ("push", "sent")]
        assert len(smtp_sink.handler.to("e-1@acme.example.com")) == 1


async def test_push_subscriptions_are_validated_and_private(
    start_service: StartService, http_sink: HttpSink, tenant: str
) -> None:
    keys = BrowserKeys.new()
    async with start_service(consumers=False) as svc:
        bad = await svc.client.post(
            "/v1/push-subscriptions",
            json={"endpoint": "ftp://x", "keys": {"p256dh": "abc", "auth": "abc"}},
            headers=svc.token("e-1"),
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "endpoint"]
        short = await svc.client.post(
            "/v1/push-subscriptions",
            json={"endpoint": http_sink.base_url + "/p", "keys": {"p256dh": "abc", "auth": "abc"}},
            headers=svc.token("e-1"),
        )
        assert short.status_code == 422
        assert short.json()["detail"][0]["loc"] == ["body", "keys", "p256dh"]
        auth = base64.urlsafe_b64encode(keys.auth).decode()
        created = await svc.client.post(
            "/v1/push-subscriptions",
            json={
                "endpoint": http_sink.base_url + "/p",
                "keys": {"p256dh": keys.p256dh, "auth": auth},
            },
            headers=svc.token("e-1"),
        )
        assert created.status_code == 201
        sub_id = created.json()["id"]
        other_person = await svc.client.delete(
            f"/v1/push-subscriptions/{sub_id}", headers=svc.token("e-2")
        )
        other_tenant = await svc.client.delete(
            f"/v1/push-subscriptions/{sub_id}", headers=svc.token("e-1", tenant="other")
        )
        assert (other_person.status_code, other_tenant.status_code) == (404, 404)
        mine = await svc.client.delete(f"/v1/push-subscriptions/{sub_id}", headers=svc.token("e-1"))
        assert mine.status_code == 204


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's side of https://www.standardwebhooks.com/, written from the spec."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body.decode()}"
    expected = base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(sig, expected)
        for version, sig in (s.split(",", 1) for s in headers["webhook-signature"].split())
    )


async def test_webhooks_are_signed_per_standard_webhooks_and_retried_with_backoff(
    start_service: StartService, http_sink: HttpSink, tenant: str
) -> None:
    async with start_service() as svc:
        refused = await svc.client.post(
            "/v1/webhook-endpoints",
            json={"url": http_sink.base_url + "/hooks/hr"},
            headers=svc.token("e-1", "employee"),
        )
        assert refused.status_code == 403
        created = await svc.client.post(
            "/v1/webhook-endpoints",
            json={
                "url": http_sink.base_url + "/hooks/hr",
                "event_types": ["rhythm.checkin.missed.v1"],
                "description": "HR platform",
            },
            headers=svc.token("admin", "hr_admin"),
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret[6:])) == 24
        listed = await svc.client.get(
            "/v1/webhook-endpoints", headers=svc.token("i", "integration")
        )
        assert [e["secret"] for e in listed.json()] == [None]  # shown once, at creation

        http_sink.replies["/hooks/hr"] = [503]
        [event_id] = await svc.publish([missed(tenant)])
        await svc.publish([due(tenant)])  # not a type this endpoint asked for

        async def queued() -> bool:
            return bool(await svc.rows(db.webhook_deliveries))

        await wait_for(queued)
        assert await svc.dispatch_webhooks() == 1
        [row] = await svc.rows(db.webhook_deliveries)
        assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 503)
        assert await svc.dispatch_webhooks() == 0  # backing off
        svc.later(seconds=11)
        assert await svc.dispatch_webhooks() == 1
        [row] = await svc.rows(db.webhook_deliveries)
        assert (row.status, row.attempts) == ("sent", 2)

        first, second = http_sink.to("/hooks/hr")
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == row.id
        assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
        for request in (first, second):
            assert verify_standard_webhook(secret, request.headers, request.body)
            assert not verify_standard_webhook(secret, request.headers, request.body + b" ")
        body = json.loads(second.body)
        assert body["type"] == "rhythm.checkin.missed.v1"
        assert body["data"]["id"] == event_id
        assert body["data"]["obligation_id"] == "ob-e-1-monthly-2026-02"
        assert datetime.fromisoformat(body["timestamp"]) == datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


async def test_a_webhook_round_with_nothing_due_takes_no_write_transaction(
    start_service: StartService, http_sink: HttpSink, tenant: str
) -> None:
    """A round asks on a read-only session first; only something to claim opens a unit of
    work. Seen from the write engine: on SQLite the round's reads go to the reader engine, so
    it sees none of them; on PostgreSQL (one engine) it sees a plain SELECT, nothing that
    locks or writes. The claim that follows once a delivery is due shows the listener sees
    what a round writes."""
    async with start_service() as svc:
        sqlite = svc.runtime.engine.dialect.name == "sqlite"
        statements: list[str] = []

        def seen(
            conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
        ) -> None:
            statements.append(statement)

        def round_writes() -> list[str]:
            found = [
                s
                for s in statements
                if "webhook_deliveries" in s
                and (sqlite or "FOR UPDATE" in s or s.split()[0] in ("INSERT", "UPDATE", "DELETE"))
            ]
            statements.clear()
            return found

        engine = svc.runtime.engine.sync_engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            assert await svc.dispatch_webhooks() == 0
            assert round_writes() == []  # the tenant has no endpoint at all

            created = await svc.client.post(
                "/v1/webhook-endpoints",
                json={"url": http_sink.base_url + "/hooks/hr"},
                headers=svc.token("admin", "hr_admin"),
            )
            assert created.status_code == 201, created.text
            http_sink.replies["/hooks/hr"] = [503]
            await svc.publish([missed(tenant)])

            async def queued() -> bool:
                return bool(await svc.rows(db.webhook_deliveries))

            await wait_for(queued)
            assert await svc.dispatch_webhooks() == 1  # answered 503: retried in 10 s
            statements.clear()
            assert await svc.dispatch_webhooks() == 0
            assert round_writes() == []  # owed, but not due yet

            svc.later(seconds=11)
            assert await svc.dispatch_webhooks() == 1
            assert any(s.startswith("UPDATE webhook_deliveries") for s in round_writes())
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        [row] = await svc.rows(db.webhook_deliveries)
        assert (row.status, row.attempts) == ("sent", 2)
