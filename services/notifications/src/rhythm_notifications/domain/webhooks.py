"""Webhook endpoints and what they are sent: Standard Webhooks bodies, signing secrets."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rhythm_shared.contracts.envelope import Envelope


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    tenant_id: str
    url: str
    secret: str
    event_types: list[str] | None  # None: every event type
    description: str | None
    created_at: datetime
    active: bool = True
    previous_secret: str | None = None
    previous_secret_until: datetime | None = None

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The current secret, then the previous one while its overlap lasts."""
        until = self.previous_secret_until
        if self.previous_secret is not None and until is not None and until > now:
            return (self.secret, self.previous_secret)
        return (self.secret,)

    def view(self, now: datetime) -> dict[str, Any]:
        until = self.previous_secret_until
        return {
            "id": self.id,
            "url": self.url,
            "event_types": self.event_types,
            "description": self.description,
            "created_at": self.created_at,
            "previous_secret_expires_at": until if until is not None and until > now else None,
        }


@dataclass(frozen=True)
class WebhookDelivery:
    """One event owed to one endpoint (its id is the webhook-id, the same on every retry)."""

    id: str
    tenant_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class DueWebhook:
    """A due webhook delivery with its endpoint, as a dispatcher round reads it."""

    id: str
    endpoint: WebhookEndpoint
    body: str
    attempts: int


@dataclass(frozen=True)
class ClaimedWebhook:
    id: str
    endpoint_id: str
    url: str
    signing_secrets: tuple[str, ...]  # the current secret, then one in its overlap
    body: str
    attempts: int


def webhook_id(endpoint_id: str, event_id: str) -> str:
    return "msg_" + uuid.uuid5(uuid.NAMESPACE_URL, f"{endpoint_id}/{event_id}").hex


def webhook_body(envelope: Envelope) -> str:
    """Standard Webhooks payload shape: ``{"type", "timestamp", "data"}``."""
    return json.dumps(
        {
            "type": envelope.type,
            "timestamp": envelope.time.isoformat(),
            "data": {"id": envelope.id, **envelope.event.model_dump(mode="json")},
        },
        separators=(",", ":"),
        sort_keys=True,
    )
