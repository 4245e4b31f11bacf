"""Outbound requests (webhooks, Web Push) go only to public addresses, follow no redirects, read
a bounded answer within a deadline, and a slow endpoint holds up only its own deliveries."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from notifications_harness import Answer, BrowserKeys, HttpSink, StartService, b64url, employee
from test_email_delivery import missed
from test_preferences import feedback

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.outbound import OutboundClient, OutboundFailure, refusal
from rhythm_notifications.adapters.push import PushTarget, WebPushSender, at_known_push_service
from rhythm_notifications.adapters.webhooks import WebhookSender
from rhythm_notifications.settings import KNOWN_PUSH_SERVICES
from rhythm_shared.testing import wait_for

#: Where a request must never go: loopback, RFC 1918, link-local (cloud metadata at
#: 169.254.169.254), shared (RFC 6598), multicast, "this network", reserved; and their IPv6 kin.
NON_PUBLIC = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "224.0.0.0/4",
    "0.0.0.0/8",
    "240.0.0.0/4",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "ff00::/8",
]


@given(st.sampled_from(NON_PUBLIC).flatmap(lambda net: st.ip_addresses(network=net)))
def test_no_non_public_address_is_allowed_in_any_spelling(address: Any) -> None:
    assert refusal(str(address)) is not None
    if isinstance(address, ipaddress.IPv4Address):
        # The same address inside IPv6: mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d).
        assert refusal(f"::ffff:{address}") is not None
        assert refusal(f"64:ff9b::{address}") is not None


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "142.250.74.110", "2606:4700:4700::1111", "2a00:1450::1"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(address) is None


def test_web_push_endpoints_in_production_must_be_at_a_known_push_service() -> None:
    services = KNOWN_PUSH_SERVICES
    assert at_known_push_service("https://fcm.googleapis.com/fcm/send/abc", services)
    assert at_known_push_service("https://wns2-by3p.notify.windows.com/w/?token=x", services)
    assert at_known_push_service("https://web.push.apple.com/QGuQ", services)
    assert not at_known_push_service("https://notify.windows.com.evil.example/w", services)
    assert not at_known_push_service("https://evilnotify.windows.com/w", services)
    assert not at_known_push_service("http://169.254.169.254/latest/meta-data/", services)


def guarded(*, allow_private: bool = False, max_response_bytes: int = 1024) -> OutboundClient:
    return OutboundClient(
        allow_private=allow_private, max_response_bytes=max_response_bytes, per_endpoint=4
    )


def port_of(sink: HttpSink) -> int:
    return int(urlsplit(sink.base_url).port or 0)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "[::1]", "0.0.0.0", "[::ffff:127.0.0.1]"]
)
async def test_a_request_to_a_non_public_address_is_refused(host: str, http_sink: HttpSink) -> None:
    client = guarded()
    try:
        answer = await client.post(
            f"http://{host}:{port_of(http_sink)}/hook", content=b"{}", headers={}, deadline_s=2
        )
    finally:
        await client.close()
    assert isinstance(answer, OutboundFailure)
    assert answer.kind == "refused"
    assert "only public addresses are allowed" in answer.detail
    assert http_sink.requests == []


async def test_a_name_that_resolves_to_loopback_is_refused_when_connecting(
    http_sink: HttpSink,
) -> None:
    # The URL names no address: the check is on what the name resolves to, at connect time.
    client = guarded()
    try:
        answer = await client.post(
            f"http://localhost:{port_of(http_sink)}/hook", content=b"{}", headers={}, deadline_s=2
        )
    finally:
        await client.close()
    assert isinstance(answer, OutboundFailure)
    assert answer.detail == (
        "refused: localhost resolves to a loopback address; only public addresses are allowed"
    )
    assert http_sink.requests == []


async def test_a_redirect_is_an_answer_not_an_instruction(http_sink: HttpSink) -> None:
    http_sink.replies["/hook"] = [302]
    http_sink.answers["/hook"] = Answer(headers={"location": http_sink.base_url + "/internal"})
    client = guarded(allow_private=True)
    try:
        answer = await client.post(
            http_sink.base_url + "/hook", content=b"{}", headers={}, deadline_s=2
        )
    finally:
        await client.close()
    assert not isinstance(answer, OutboundFailure)
    assert (answer.status_code, answer.ok) == (302, False)
    assert answer.describe() == "answered 302; redirects are not followed"
    assert http_sink.to("/internal") == []


async def test_an_oversized_answer_is_cut_at_the_cap(http_sink: HttpSink) -> None:
    http_sink.answers["/hook"] = Answer(body=b"x" * 5_000_000)
    client = guarded(allow_private=True, max_response_bytes=1024)
    try:
        answer = await client.post(
            http_sink.base_url + "/hook", content=b"{}", headers={}, deadline_s=5
        )
    finally:
        await client.close()
    assert not isinstance(answer, OutboundFailure)
    assert (answer.status_code, len(answer.body), answer.truncated) == (201, 1024, True)


async def test_an_endpoint_that_answers_too_slowly_is_cut_off_at_the_deadline(
    http_sink: HttpSink,
) -> None:
    http_sink.answers["/hook"] = Answer(delay_s=3)
    client = guarded(allow_private=True)
    try:
        answer = await client.post(
            http_sink.base_url + "/hook", content=b"{}", headers={}, deadline_s=0.3
        )
    finally:
        await client.close()
    assert answer == OutboundFailure("timeout", "no complete answer within 0.3 s")
    [request] = http_sink.to("/hook")
    assert request.answered_at == 0.0  # given up on before the endpoint answered


async def test_a_request_waiting_for_a_busy_endpoint_gives_up_at_its_deadline_too(
    http_sink: HttpSink,
) -> None:
    http_sink.answers["/hook"] = Answer(delay_s=3)
    client = OutboundClient(allow_private=True, max_response_bytes=1024, per_endpoint=1)
    url = http_sink.base_url + "/hook"
    try:
        first = asyncio.create_task(client.post(url, content=b"{}", headers={}, deadline_s=2))

        async def arrived() -> bool:
            return bool(http_sink.to("/hook"))

        await wait_for(arrived, timeout_s=5)
        queued = await client.post(url, content=b"{}", headers={}, deadline_s=0.3)
        assert queued == OutboundFailure("timeout", "endpoint busy (1 at a time, all in flight)")
        assert await first == OutboundFailure("timeout", "no complete answer within 2 s")
    finally:
        await client.close()
    assert len(http_sink.to("/hook")) == 1  # the queued one never went out


async def _register(svc: Any, url: str, tenant: str | None = None) -> None:
    created = await svc.client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "event_types": ["rhythm.checkin.missed.v1"]},
        headers=svc.token("admin", "hr_admin", tenant=tenant),
    )
    assert created.status_code == 201, created.text


async def _queued(svc: Any, count: int) -> list[Any]:
    async def enough() -> list[Any] | None:
        rows = await svc.rows(db.webhook_deliveries)
        return rows if len(rows) >= count else None

    rows: list[Any] = await wait_for(enough, timeout_s=60)
    return rows


@pytest.mark.kafka
async def test_webhooks_to_private_addresses_are_refused_and_the_subscriber_is_told_why(
    start_service: StartService, http_sink: HttpSink, tenant: str
) -> None:
    sender = WebhookSender(guarded(), 2.0)  # OUTBOUND_ALLOW_PRIVATE off, as in production
    async with start_service(webhooks=sender) as svc:
        port = port_of(http_sink)
        for url in (
            f"http://127.0.0.1:{port}/hooks/loopback",
            f"http://localhost:{port}/hooks/name",
            f"http://[::1]:{port}/hooks/v6",
            "http://10.20.30.40/hooks/private",
            "http://169.254.169.254/latest/meta-data/iam/",
        ):
            await _register(svc, url)
        await svc.publish([missed(tenant)])
        await _queued(svc, 5)
        assert await svc.dispatch_webhooks() == 5

        rows = await svc.rows(db.webhook_deliveries)
        assert {(r.status, r.last_status_code) for r in rows} == {("pending", None)}
        assert sorted(r.detail.split(" resolves")[0] for r in rows) == [
            "refused: 10.20.30.40",
            "refused: 127.0.0.1",
            "refused: 169.254.169.254",
            "refused: ::1",
            "refused: localhost",
        ]
        assert http_sink.requests == []


@pytest.mark.kafka
async def test_what_a_webhook_receiver_answers_is_never_echoed_back(
    start_service: StartService, http_sink: HttpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await _register(svc, http_sink.base_url + "/hooks/hr")
        http_sink.replies["/hooks/hr"] = [500]
        http_sink.answers["/hooks/hr"] = Answer(body=b"Traceback: db password=hunter2")
        await svc.publish([missed(tenant)])
        await _queued(svc, 1)
        await svc.dispatch_webhooks()
        [row] = await svc.rows(db.webhook_deliveries)
        assert (row.status, row.last_status_code, row.detail) == ("pending", 500, "answered 500")


@pytest.mark.kafka
async def test_a_slow_endpoint_holds_up_only_its_own_deliveries(
    start_service: StartService, http_sink: HttpSink, tenant: str
) -> None:
    other = f"{tenant}-other"
    with HttpSink() as elsewhere:
        async with start_service() as svc:
            dispatcher = svc.runtime.resources.webhook_dispatcher
            await _register(svc, http_sink.base_url + "/hooks/slow")
            await _register(svc, elsewhere.base_url + "/hooks/fast", tenant=other)
            http_sink.answers["/hooks/slow"] = Answer(delay_s=2)
            await svc.publish([missed(tenant, f"e-{n}") for n in range(6)])
            await svc.publish([missed(other)])
            await _queued(svc, 7)
            # Six due for the slow endpoint: it gets OUTBOUND_PER_ENDPOINT (4) at a time; the other
            # tenant's goes out beside them; and the round returns without waiting for answers.
            assert await dispatcher.run_once() == 5
            assert [r.answered_at for r in http_sink.to("/hooks/slow")] in ([], [0.0] * 4)

            async def fast_sent() -> bool:
                rows = await svc.rows(
                    db.webhook_deliveries, db.webhook_deliveries.c.tenant_id == other
                )
                return [r.status for r in rows] == ["sent"]

            await wait_for(fast_sent, timeout_s=10)  # while the slow endpoint is still thinking
            [fast] = elsewhere.to("/hooks/fast")
            slow = http_sink.to("/hooks/slow")
            assert len(slow) == 4
            assert all(r.answered_at == 0.0 or fast.answered_at < r.answered_at for r in slow)
            await dispatcher.drain()
            assert await dispatcher.run_once() == 2  # the rest of the slow backlog, in its turn
            await dispatcher.drain()
            assert len(http_sink.to("/hooks/slow")) == 6


@pytest.mark.kafka
async def test_a_push_endpoint_on_a_private_address_fails_without_being_reached(
    start_service: StartService, http_sink: HttpSink, tenant: str, vapid_key: str
) -> None:
    pusher = WebPushSender(
        vapid_key, "mailto:ops@acme.example.com", ttl_s=60, timeout_s=2, outbound=guarded()
    )
    keys = BrowserKeys.new()
    async with start_service(pusher=pusher) as svc:
        await svc.add_people(employee(tenant, "e-1"), employee(tenant, "g-1"))
        response = await svc.client.post(
            "/v1/push-subscriptions",
            json={
                "endpoint": http_sink.base_url + "/push/phone",
                "keys": {"p256dh": keys.p256dh, "auth": b64url(keys.auth)},
            },
            headers=svc.token("e-1"),
        )
        assert response.status_code == 201, response.text
        await svc.publish([feedback(tenant, 1)])  # email and push
        await svc.wait_deliveries(2)
        await svc.dispatch()

        rows = {r.channel: r for r in await svc.deliveries()}
        assert (rows["push"].status, rows["push"].reason) == ("failed", "invalid_address")
        assert rows["push"].detail.startswith("refused: 127.0.0.1 resolves to a loopback address")
        assert rows["email"].status == "sent"
        assert http_sink.requests == []


async def test_in_production_a_push_endpoint_elsewhere_than_a_push_service_is_not_contacted(
    http_sink: HttpSink, vapid_key: str
) -> None:
    client = guarded(allow_private=True)
    pusher = WebPushSender(
        vapid_key,
        "mailto:ops@acme.example.com",
        ttl_s=60,
        timeout_s=2,
        outbound=client,
        push_services=KNOWN_PUSH_SERVICES,
    )
    keys = BrowserKeys.new()
    try:
        outcome = await pusher.send(
            PushTarget(http_sink.base_url + "/push/x", keys.p256dh, b64url(keys.auth)),
            {"title": "hello"},
            "t" * 32,
        )
    finally:
        await client.close()
    assert getattr(outcome, "detail", None) == "endpoint is not at a known push service"
    assert http_sink.requests == []
