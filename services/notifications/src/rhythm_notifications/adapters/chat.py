"""Chat channels: a tenant's Slack incoming webhook (Block Kit) and Microsoft Teams incoming
webhook or Workflow (Adaptive Card), posted through adapters/outbound.py like every webhook.

Names come from the HR platform, so each format gets its own escaping and nothing a name holds
can become a link or a mention:

- Slack: ``&``, ``<`` and ``>`` escaped in mrkdwn (``<…>`` is how Slack spells links and
  mentions), ``verbatim: true`` (no automatic links, channel names or @mentions);
- Teams: the texts are ``TextRun``s of a ``RichTextBlock``, which render no Markdown at all
  (a ``TextBlock`` would turn ``[x](https://…)`` into a link).

The only link is the one this service chose: the button.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rhythm_notifications.adapters.outbound import OutboundClient, OutboundFailure
from rhythm_notifications.domain.delivery import Failed, Outcome, Retry, Sent
from rhythm_shared.contracts.v1 import Channel, DeliveryFailure

#: The delivery channels that are chat channels.
CHAT_CHANNELS = (Channel.SLACK, Channel.TEAMS)


@dataclass(frozen=True)
class ChatMessage:
    title: str  # the email's subject
    body: str  # its first line
    recipient: str  # who it is for (a channel is read by many)
    link: str | None
    button: str  # the button's label, in the recipient's language


def slack_escape(text: str) -> str:
    """Slack's three control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(message: ChatMessage) -> dict[str, Any]:
    """``{"text", "blocks"}``: a section (mrkdwn), a context naming the recipient, a button."""
    title, body = slack_escape(message.title), slack_escape(message.body)
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(f"*{title}*\n{body}", 3000), "verbatim": True},
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _cut(slack_escape(message.recipient), 3000),
                    "verbatim": True,
                }
            ],
        },
    ]
    if message.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": _cut(message.button, 75)},
                        "url": message.link,
                        "action_id": "open",
                    }
                ],
            }
        )
    return {"text": _cut(title, 3000), "blocks": blocks}


def teams_payload(message: ChatMessage) -> dict[str, Any]:
    """A message with one Adaptive Card 1.4 attachment; texts as TextRuns (no Markdown)."""

    def run(text: str, **style: Any) -> dict[str, Any]:
        return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, **style}]}

    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            run(message.title, weight="Bolder", size="Medium"),
            run(message.body),
            run(message.recipient, isSubtle=True),
        ],
        "actions": [],
    }
    if message.link:
        card["actions"].append(
            {"type": "Action.OpenUrl", "title": message.button, "url": message.link}
        )
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def payload(channel: Channel, message: ChatMessage) -> dict[str, Any]:
    return slack_payload(message) if channel is Channel.SLACK else teams_payload(message)


class ChatSender:
    """Posts chat messages through the outbound client (public addresses only, no redirects,
    size and time limits); the answer is judged by its status only."""

    def __init__(self, outbound: OutboundClient, timeout_s: float) -> None:
        self._outbound = outbound
        self._timeout_s = timeout_s

    async def send(self, channel: Channel, url: str, message: ChatMessage) -> Outcome:
        body = json.dumps(payload(channel, message), separators=(",", ":")).encode()
        headers = {"content-type": "application/json", "user-agent": "Rhythm-Notifications/1"}
        answer = await self._outbound.post(
            url, content=body, headers=headers, deadline_s=self._timeout_s
        )
        if isinstance(answer, OutboundFailure):
            if answer.kind in ("refused", "invalid_url"):
                return Failed(DeliveryFailure.INVALID_ADDRESS, answer.detail)
            if answer.kind == "timeout":
                return Retry(DeliveryFailure.TIMEOUT, answer.detail)
            return Retry(DeliveryFailure.UNREACHABLE, answer.detail)
        if answer.ok:
            return Sent()
        code = answer.status_code
        if code == 429 or code >= 500:
            return Retry(DeliveryFailure.PROVIDER_ERROR, f"{channel.value} {answer.describe()}")
        # 400 (a payload it refuses), 403/404/410 (the webhook was removed or its channel archived)
        return Failed(DeliveryFailure.REJECTED, f"{channel.value} {answer.describe()}")
