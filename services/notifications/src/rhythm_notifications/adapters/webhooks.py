"""Outbound webhooks signed per the Standard Webhooks spec (https://www.standardwebhooks.com/).

Headers: ``webhook-id`` (the same on every retry, so receivers de-duplicate), ``webhook-timestamp``
(Unix seconds of this attempt) and ``webhook-signature`` = ``v1,`` + base64(HMAC-SHA256(key,
"{id}.{timestamp}.{body}")), where the key is the base64 part of the ``whsec_`` secret. During a
secret rotation's overlap the header carries one signature per secret, space-separated, the new
one first (the spec lets a receiver accept any of them), so a receiver on either secret verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from rhythm_notifications.adapters.outbound import OutboundClient, OutboundFailure

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format marker, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_header(signing_secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """``webhook-signature``: one ``v1,<sig>`` per secret, space-separated."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in signing_secrets)


@dataclass(frozen=True)
class WebhookResult:
    status_code: int | None
    detail: str  # what failed, in this service's words: shown to the subscriber

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """Posts through the outbound client (public addresses only, no redirects, size and time
    limits: see adapters/outbound.py)."""

    def __init__(self, outbound: OutboundClient, timeout_s: float) -> None:
        self._outbound = outbound
        self._timeout_s = timeout_s

    async def post(
        self, url: str, *, msg_id: str, timestamp: int, body: str, signing_secrets: Sequence[str]
    ) -> WebhookResult:
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(signing_secrets, msg_id, timestamp, body),
            "user-agent": "Rhythm-Webhooks/1",
        }
        answer = await self._outbound.post(
            url, content=body.encode(), headers=headers, deadline_s=self._timeout_s
        )
        if isinstance(answer, OutboundFailure):
            return WebhookResult(None, answer.detail)
        # The receiver's body is never stored or shown: only its status, in our words.
        return WebhookResult(answer.status_code, "" if answer.ok else answer.describe())

    async def close(self) -> None:
        await self._outbound.close()
