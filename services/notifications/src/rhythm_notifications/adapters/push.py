"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291), via pywebpush.

pywebpush is synchronous (requests), so each send runs in a worker thread. A ``Topic`` header
derived from the notification's idempotency key lets the push service replace an undelivered
duplicate instead of showing it twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import requests
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

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


class WebPushSender:
    def __init__(
        self, private_key: str | None, subject: str, *, ttl_s: int, timeout_s: float
    ) -> None:
        self._vapid = Vapid.from_string(private_key) if private_key else None
        self._subject = subject
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s

    @property
    def enabled(self) -> bool:
        return self._vapid is not None

    def _send_sync(self, target: PushTarget, payload: dict[str, Any], topic: str) -> PushOutcome:
        if self._vapid is None:
            return Failed(DeliveryFailure.PROVIDER_ERROR, "web push is not configured (VAPID)")
        try:
            webpush(
                subscription_info={
                    "endpoint": target.endpoint,
                    "keys": {"p256dh": target.p256dh, "auth": target.auth},
                },
                data=json.dumps(payload, separators=(",", ":")),
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._subject},  # a fresh dict: pywebpush adds aud/exp
                ttl=self._ttl_s,
                timeout=self._timeout_s,
                headers={"Topic": topic, "Urgency": "normal"},
            )
        except WebPushException as exc:
            code = exc.status_code
            if code in (404, 410):
                return Gone(f"{code}: subscription expired")
            if code is None or code == 429 or code >= 500:
                return Retry(DeliveryFailure.PROVIDER_ERROR, f"push service answered {code}")
            return Failed(DeliveryFailure.REJECTED, f"push service answered {code}")
        except requests.Timeout as exc:
            return Retry(DeliveryFailure.TIMEOUT, str(exc)[:300])
        except (requests.RequestException, OSError) as exc:
            return Retry(DeliveryFailure.UNREACHABLE, str(exc)[:300])
        except (ValueError, TypeError) as exc:  # a malformed subscription key
            return Failed(DeliveryFailure.INVALID_ADDRESS, f"bad subscription: {exc}"[:300])
        return Sent()

    async def send(self, target: PushTarget, payload: dict[str, Any], topic: str) -> PushOutcome:
        return await asyncio.to_thread(self._send_sync, target, payload, topic)
