"""Slack and Microsoft Teams channels against local HTTP sinks that refuse (400) any payload not
of the shape each platform documents: Block Kit for Slack incoming webhooks, an Adaptive Card
message for Teams incoming webhooks and Workflows. Chat deliveries go through the same routing
table, preferences, quiet hours, daily cap, idempotency keys and retries as email."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from notifications_harness import HttpSink, Service, SmtpSink, StartService, employee
from test_email_delivery import missed
from test_links import APP, stale

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.chat import ChatMessage, slack_payload, teams_payload
from rhythm_notifications.commands import SetChatChannel
from rhythm_notifications.use_cases.tenants import set_chat_channel
from rhythm_shared.contracts.v1 import Channel
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import InvalidInput

pytestmark = pytest.mark.kafka

D = db.deliveries

# ---------------------------------------------------------------------------------------------
# The documented shapes
# ---------------------------------------------------------------------------------------------

#: https://api.slack.com/reference/block-kit/blocks: the block types this service sends.
_SLACK_BLOCKS = {"section", "context", "actions"}


def _slack_text(obj: Any, limit: int) -> str:
    """A Block Kit text object; mrkdwn text holds no raw control character (& < >)."""
    assert set(obj) <= {"type", "text", "verbatim", "emoji"}, obj
    assert obj["type"] in ("mrkdwn", "plain_text"), obj
    text = obj["text"]
    assert isinstance(text, str), obj
    assert 1 <= len(text) <= limit, obj
    if obj["type"] == "mrkdwn":
        assert "<" not in text, f"a link or mention in {text!r}"
        assert ">" not in text, text
        assert re.search(r"&(?!amp;|lt;|gt;)", text) is None, f"a raw & in {text!r}"
        assert obj.get("verbatim") is True, "mrkdwn without verbatim auto-links URLs and @names"
    return text


def check_slack(payload: Any) -> None:
    """An incoming webhook message: https://api.slack.com/messaging/webhooks."""
    assert set(payload) <= {"text", "blocks"}, payload
    assert isinstance(payload["text"], str)
    assert payload["text"]
    blocks = payload["blocks"]
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        assert block["type"] in _SLACK_BLOCKS, block
        if block["type"] == "section":
            _slack_text(block["text"], 3000)
        elif block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
            for element in block["elements"]:
                _slack_text(element, 3000)
        else:
            assert 1 <= len(block["elements"]) <= 25
            for button in block["elements"]:
                assert set(button) <= {"type", "text", "url", "action_id", "style"}, button
                assert button["type"] == "button"
                assert _slack_text(button["text"], 75)
                assert button["text"]["type"] == "plain_text"
                assert button["url"].startswith(("https://", "http://"))
                assert len(button["url"]) <= 3000
                assert len(button["action_id"]) <= 255


def check_teams(payload: Any) -> None:
    """A Teams incoming webhook / Workflows message carrying one Adaptive Card."""
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["body"]
    for element in card["body"]:
        # A TextBlock renders Markdown ([x](url) becomes a link); a TextRun renders none.
        assert element["type"] == "RichTextBlock", element
        for run in element["inlines"]:
            assert run["type"] == "TextRun"
            assert isinstance(run["text"], str)
    for action in card.get("actions", []):
        assert action["type"] == "Action.OpenUrl"
        assert isinstance(action["title"], str)
        assert action["title"]
        assert action["url"].startswith(("https://", "http://"))


def validator(check: Callable[[Any], None]) -> Callable[[bytes], str | None]:
    def validate(body: bytes) -> str | None:
        try:
            check(json.loads(body))
        except (AssertionError, ValueError, KeyError, TypeError) as exc:
            return f"invalid payload: {exc!r}"
        return None

    return validate


# ---------------------------------------------------------------------------------------------
# Escaping (no Kafka needed, but in the same file as the shapes it is held to)
# ---------------------------------------------------------------------------------------------

HOSTILE = ChatMessage(
    title="Missed: your check-in with Mark <!channel> & <https://evil.example|click>",
    body="Eva [pay here](https://evil.example) *now* did not happen.",
    recipient="For Zoë <@U123>",
    link=f"{APP}/checkins/due/ob-1",
    button="Open in Rhythm",
)


def test_a_slack_message_escapes_names_and_carries_one_button_to_the_link() -> None:
    payload = slack_payload(HOSTILE)
    check_slack(payload)
    section, context, actions = payload["blocks"]
    assert section["text"]["text"] == (
        "*Missed: your check-in with Mark &lt;!channel&gt; &amp; "
        "&lt;https://evil.example|click&gt;*\nEva [pay here](https://evil.example) *now* did not "
        "happen."
    )
    assert context["elements"][0]["text"] == "For Zoë &lt;@U123&gt;"
    [button] = actions["elements"]
    assert button["url"] == f"{APP}/checkins/due/ob-1"
    assert button["text"] == {"type": "plain_text", "text": "Open in Rhythm"}
    assert "&lt;!channel&gt;" in payload["text"]
    without = slack_payload(ChatMessage("t", "b", "For Eva", None, "Open in Rhythm"))
    check_slack(without)
    assert [b["type"] for b in without["blocks"]] == ["section", "context"]


def test_a_teams_card_shows_names_as_plain_text_runs_and_opens_only_the_link() -> None:
    payload = teams_payload(HOSTILE)
    check_teams(payload)
    card = payload["attachments"][0]["content"]
    texts = [run["text"] for block in card["body"] for run in block["inlines"]]
    assert texts == [HOSTILE.title, HOSTILE.body, HOSTILE.recipient]  # verbatim, not Markdown
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open in Rhythm", "url": f"{APP}/checkins/due/ob-1"}
    ]
    without = teams_payload(ChatMessage("t", "b", "", None, "Open in Rhythm"))
    check_teams(without)
    assert without["attachments"][0]["content"]["actions"] == []


# ---------------------------------------------------------------------------------------------
# Deliveries
# ---------------------------------------------------------------------------------------------


async def _connect(svc: Service, kind: str, url: str, categories: list[str]) -> None:
    response = await svc.client.put(
        f"/v1/chat-channels/{kind}",
        json={"url": url, "categories": categories},
        headers=svc.token("hr-1", "hr_admin"),
    )
    assert response.status_code == 200, response.text


def _posts(sink: HttpSink, path: str) -> list[Any]:
    """What reached the channel, each message once (a retry sends the same body again)."""
    return [json.loads(body) for body in dict.fromkeys(r.body for r in sink.to(path))]


def _slack_for(posts: list[Any], name: str) -> list[Any]:
    return [p for p in posts if p["blocks"][1]["elements"][0]["text"] == f"For {name}"]


def _teams_for(posts: list[Any], name: str) -> list[Any]:
    return [
        p
        for p in posts
        if p["attachments"][0]["content"]["body"][-1]["inlines"][0]["text"] == f"For {name}"
    ]


async def test_slack_and_teams_get_what_email_gets_under_the_same_rules(
    start_service: StartService, smtp_sink: SmtpSink, http_sink: HttpSink, tenant: str
) -> None:
    http_sink.validators["/slack"] = validator(check_slack)
    http_sink.validators["/teams"] = validator(check_teams)
    http_sink.replies["/slack"] = [500]  # Slack has a bad moment: retried like any delivery
    async with start_service(settings={"app_base_url": APP}) as svc:
        await svc.add_people(
            employee(tenant, "m-1", name="Mark <!channel> & <https://evil.example|win>"),
            employee(tenant, "e-1", manager_id="m-1", name="Eva [x](https://evil.example)"),
            # 09:00 UTC is 22:00 in Auckland: quiet hours until 08:00 there (19:00 UTC).
            employee(tenant, "z-1", manager_id="m-1", name="Zoë", time_zone="Pacific/Auckland"),
        )
        await _connect(
            svc, "slack", f"{http_sink.base_url}/slack", ["checkin_missed", "goal_stale"]
        )
        await _connect(svc, "teams", f"{http_sink.base_url}/teams", ["checkin_missed"])
        opt_out = await svc.client.put(
            "/v1/preferences",
            json={"categories": {"goal_stale": {"channel": "none"}}},
            headers=svc.token("e-1"),
        )
        assert opt_out.status_code == 200, opt_out.text

        first = missed(tenant)
        [first_id] = await svc.publish([first])
        await svc.publish([first], event_ids=[first_id])  # redelivered: decided once
        await svc.wait_deliveries(6)
        await svc.publish([missed(tenant, "z-1"), stale(tenant)])
        rows = await svc.wait_deliveries(11)  # 3 each to e-1, m-1, z-1; m-1's 2nd; the stale
        decided = {(r.recipient_id, r.category, r.channel, r.status, r.reason) for r in rows}
        assert decided == {
            *{(p, "checkin_missed", c, "pending", None) for p in ("e-1", "m-1", "z-1")
              for c in ("email", "slack", "teams")},
            ("m-1", "checkin_missed", None, "suppressed", "digested"),  # the daily cap
            ("e-1", "goal_stale", None, "suppressed", "opted_out"),  # her preference, chat too
        }  # fmt: skip
        keys = {r.idempotency_key for r in rows if r.recipient_id == "e-1" and r.channel}
        assert keys == {
            f"missed:e-1:ob-e-1-monthly-2026-02:e-1:{c}" for c in ("email", "slack", "teams")
        }
        zoe = [r for r in rows if r.recipient_id == "z-1"]
        assert {r.next_attempt_at for r in zoe} == {datetime(2026, 3, 2, 19, 0, tzinfo=UTC)}

        await svc.dispatch()
        assert len(http_sink.to("/slack")) == 2  # one answered 500
        assert len(http_sink.to("/teams")) == 2
        retried = await svc.deliveries(
            D.c.channel == "slack", D.c.status == "pending", D.c.recipient_id != "z-1"
        )
        assert len(retried) == 1
        assert retried[0].reason == "provider_error"
        svc.later(minutes=10)
        await svc.dispatch()
        assert len(http_sink.to("/slack")) == 3

        slack, teams = _posts(http_sink, "/slack"), _posts(http_sink, "/teams")
        link = f"{APP}/checkins/due/ob-e-1-monthly-2026-02"
        [to_eva] = _slack_for(slack, "Eva [x](https://evil.example)")
        section = to_eva["blocks"][0]["text"]["text"]
        assert section.startswith(
            "*Missed: your monthly check-in with Mark &lt;!channel&gt; &amp; "
            "&lt;https://evil.example|win&gt;*\nThe monthly check-in with Mark"
        )
        assert to_eva["blocks"][2]["elements"][0]["url"] == link
        [eva_card] = _teams_for(teams, "Eva [x](https://evil.example)")
        card = eva_card["attachments"][0]["content"]
        assert card["actions"][0]["url"] == link
        assert (
            len(_slack_for(slack, "Mark &lt;!channel&gt; &amp; &lt;https://evil.example|win&gt;"))
            == 1
        )

        # Zoë's wait for the morning in Auckland, on every channel alike.
        assert not _slack_for(slack, "Zoë")
        svc.clock.travel_to(datetime(2026, 3, 2, 19, 0, tzinfo=UTC))
        await svc.dispatch()
        assert len(_slack_for(_posts(http_sink, "/slack"), "Zoë")) == 1
        assert len(_teams_for(_posts(http_sink, "/teams"), "Zoë")) == 1
        assert len(smtp_sink.handler.to("z-1@acme.example.com")) == 1

        # Mark's capped second notice arrives in his digest: in chat too, with its own key.
        svc.clock.travel_to(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
        assert await svc.compose_digests() == 1
        await svc.dispatch()
        digests = await svc.deliveries(D.c.category == "digest")
        assert sorted((r.channel, r.status) for r in digests) == [
            ("email", "sent"), ("slack", "sent"), ("teams", "sent"),
        ]  # fmt: skip
        assert all(r.idempotency_key.endswith(f":m-1:{r.channel}") for r in digests)
        assert http_sink.refusals == []
        sent = await svc.deliveries(D.c.status == "sent")
        assert len(sent) == 12


async def test_a_payload_the_platform_refuses_fails_and_a_disconnected_channel_fails_clearly(
    start_service: StartService, http_sink: HttpSink, tenant: str
) -> None:
    http_sink.validators["/slack"] = validator(lambda payload: check_teams(payload))  # wrong
    async with start_service(settings={"app_base_url": APP}) as svc:
        await svc.add_people(employee(tenant, "m-1"), employee(tenant, "e-1", manager_id="m-1"))
        await _connect(svc, "slack", f"{http_sink.base_url}/slack", ["checkin_missed"])
        await _connect(svc, "teams", f"{http_sink.base_url}/teams", ["checkin_missed"])
        await svc.publish([missed(tenant)])
        await svc.wait_deliveries(6)
        gone = await svc.client.delete(
            "/v1/chat-channels/teams", headers=svc.token("hr-1", "hr_admin")
        )
        assert gone.status_code == 204
        await svc.dispatch()
        chat = await svc.deliveries(D.c.channel.in_(["slack", "teams"]))
        assert {(r.channel, r.status, r.reason) for r in chat} == {
            ("slack", "failed", "rejected"),
            ("teams", "failed", "unreachable"),
        }
        assert {r.detail for r in chat} == {
            "slack answered 400",
            "the teams channel was disconnected",
        }
        assert len(http_sink.refusals) == 2
        assert http_sink.to("/teams") == []


async def test_chat_channels_are_hr_admins_to_configure_and_their_urls_are_checked(
    start_service: StartService, http_sink: HttpSink, tenant: str
) -> None:
    url = f"{http_sink.base_url}/services/T0/B0/secret-part-abcd"
    async with start_service(consumers=False) as svc:
        hr = svc.token("hr-1", "hr_admin")
        body = {"url": url, "categories": ["checkin_due"]}
        for who in (svc.token("e-1"), svc.token("m-1", "employee", "manager")):
            assert (
                await svc.client.put("/v1/chat-channels/slack", json=body, headers=who)
            ).status_code == 403
            assert (await svc.client.get("/v1/chat-channels", headers=who)).status_code == 403
        for kind, bad, where in (
            ("slack", {"url": "ftp://x", "categories": ["checkin_due"]}, "url"),
            ("slack", {"url": url, "categories": []}, "categories"),
            ("slack", {"url": url, "categories": ["nope"]}, "categories"),
            ("discord", body, "kind"),
        ):
            answer = await svc.client.put(f"/v1/chat-channels/{kind}", json=bad, headers=hr)
            assert answer.status_code == 422, answer.text
            assert where in answer.json()["detail"][0]["loc"], answer.text

        answer = await svc.client.put("/v1/chat-channels/slack", json=body, headers=hr)
        assert answer.status_code == 200, answer.text
        assert answer.json()["url"] == f"{http_sink.base_url}/…abcd"  # the URL is a credential
        listed = await svc.client.get("/v1/chat-channels", headers=hr)
        assert [c["kind"] for c in listed.json()] == ["slack"]
        assert "secret-part" not in listed.text
        assert (await svc.client.delete("/v1/chat-channels/slack", headers=hr)).status_code == 204
        again = await svc.client.delete("/v1/chat-channels/slack", headers=hr)
        assert again.status_code == 204  # disconnected either way
        assert (await svc.client.get("/v1/chat-channels", headers=hr)).json() == []

        # What the tests' local sink needs (OUTBOUND_ALLOW_PRIVATE) is refused otherwise, and
        # in production only https is taken.
        principal = Principal("hr-1", tenant, frozenset({"hr_admin"}))
        for bad_url, why in (
            ("https://127.0.0.1/hook", "loopback address"),
            ("https://localhost/hook", "loopback address"),
            ("https://10.1.2.3/hook", "private address"),
            ("https://169.254.169.254/latest", "link-local address"),
            ("https://[::ffff:192.168.0.1]/hook", "private address"),
            ("http://hooks.slack.com/services/T0/B0/x", "must be an absolute https URL"),
        ):
            command = SetChatChannel(
                principal=principal,
                kind=Channel.SLACK,
                url=bad_url,
                categories=["checkin_due"],
                allow_http=False,
                allow_private=False,
            )
            with pytest.raises(InvalidInput) as refused:
                async with svc.runtime.uow() as uow:
                    await set_chat_channel(uow, command)
            assert why in str(refused.value), (bad_url, str(refused.value))
