"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291), via pywebpush.

pywebpush only encrypts here; the request goes through adapters/outbound.py. A ``Topic`` header
derived from the notification's idempotency key lets the push service replace an undelivered
duplicate instead of showing it twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException

from rhythm_notifications.adapters.outbound import OutboundClient, OutboundFailure
from rhythm_notifications.domain.delivery import Failed, Outcome, Retry, Sent
from rhythm_shared.contracts.v1 import DeliveryFailure


@dataclass(frozen=True)
class PushTarget:
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class Gone:
    """The push service says the subscription no longer exists (404/410): remove it."""

    detail: str


PushOutcome = Outcome | Gone


def push_topic(idempotency_key: str) -> str:
    # RFC 8030 §5.4: at most 32 characters of the URL-safe base64 alphabet.
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def at_known_push_service(endpoint: str, services: Sequence[str]) -> bool:
    """Whether the endpoint's host is one of ``services`` (``*.`` matches any subdomain)."""
    host = (urlsplit(endpoint).hostname or "").lower().rstrip(".")
    for service in services:
        service = service.lower().rstrip(".")
        if service.startswith("*."):
            if host.endswith(service[1:]) and len(host) > len(service) - 1:
                return True
        elif host == service:
            return True
    return False


class WebPushSender:
    """Encrypts with pywebpush, signs with py_vapid, and posts through the outbound client
    (public addresses only, no redirects, size and time limits: see adapters/outbound.py).

    ``push_services``: the hosts endpoints may be at (None: any public host, for development).
    """

    def __init__(
        self,
        private_key: str | None,
        subject: str,
        *,
        ttl_s: int,
        timeout_s: float,
        outbound: OutboundClient,
        push_services: Sequence[str] | None = None,
    ) -> None:
        self._vapid = Vapid.from_string(private_key) if private_key else None
        self._subject = subject
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._outbound = outbound
        self._push_services = push_services

    @property
    def enabled(self) -> bool:
        return self._vapid is not None

    def _request(
        self, target: PushTarget, payload: dict[str, Any], topic: str
    ) -> tuple[bytes, dict[str, str]]:
        assert self._vapid is not None
        pusher = WebPusher(
            {"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}}
        )
        body = pusher.encode(json.dumps(payload, separators=(",", ":")).encode(), "aes128gcm")
        parts = urlsplit(target.endpoint)
        # RFC 8292 §2: aud is the push service's origin; a JWT lives at most 24 h (12 h here).
        claims: dict[str, str | int] = {
            "sub": self._subject,
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(time.time()) + 12 * 3600,
        }
        headers = {str(k).lower(): str(v) for k, v in self._vapid.sign(claims).items()}
        headers.update(
            {
                "content-encoding": "aes128gcm",  # RFC 8291
                "ttl": str(self._ttl_s),  # RFC 8030 §5.2
                "topic": topic,  # RFC 8030 §5.4
                "urgency": "normal",  # RFC 8030 §5.3
            }
        )
        return bytes(body["body"]), headers

    async def send(self, target: PushTarget, payload: dict[str, Any], topic: str) -> PushOutcome:
        if self._vapid is None:
            return Failed(DeliveryFailure.PROVIDER_ERROR, "web push is not configured (VAPID)")
        if self._push_services is not None and not at_known_push_service(
            target.endpoint, self._push_services
        ):
            return Failed(
                DeliveryFailure.INVALID_ADDRESS, "endpoint is not at a known push service"
            )
        try:
            body, headers = self._request(target, payload, topic)
        except (WebPushException, ValueError, TypeError) as exc:  # a malformed subscription key
            return Failed(DeliveryFailure.INVALID_ADDRESS, f"bad subscription keys ({exc!r})"[:300])
        answer = await self._outbound.post(
            target.endpoint, content=body, headers=headers, deadline_s=self._timeout_s
        )
        if isinstance(answer, OutboundFailure):
            if answer.kind in ("refused", "invalid_url"):
                return Failed(DeliveryFailure.INVALID_ADDRESS, answer.detail)
            if answer.kind == "timeout":
                return Retry(DeliveryFailure.TIMEOUT, answer.detail)
            return Retry(DeliveryFailure.UNREACHABLE, answer.detail)
        code = answer.status_code
        if answer.ok:
            return Sent()
        if code in (404, 410):
            return Gone(f"push service {answer.describe()}: subscription expired")
        if code == 429 or code >= 500:
            return Retry(DeliveryFailure.PROVIDER_ERROR, f"push service {answer.describe()}")
        return Failed(DeliveryFailure.REJECTED, f"push service {answer.describe()}")
