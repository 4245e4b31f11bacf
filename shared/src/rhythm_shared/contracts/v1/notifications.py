"""``rhythm.notifications.v1``: what became of each notification, keyed by recipient.

The rendered message stays in the notifications service; these say who, how, what about and
which event caused it, so reporting can measure reach and nobody needs the content.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event, Identifier
from rhythm_shared.contracts.v1.values import (
    Channel,
    DeliveryFailure,
    NotificationCategory,
    SuppressionReason,
)


class _NotificationEvent(Event):
    """Common fields, ordered per recipient (no ``type``: not an event by itself)."""

    topic: ClassVar[str] = topics.NOTIFICATIONS
    entity: ClassVar[str] = "recipient"
    entity_field: ClassVar[str] = "recipient_id"

    notification_id: Identifier = Field(description="Identifier of the notification.")
    recipient_id: Identifier = Field(description="Employee id of the recipient.")


class NotificationSent(_NotificationEvent):
    """A notification was handed to its channel (SMTP server, push service, webhook, chat)."""

    type: ClassVar[str] = "rhythm.notification.sent.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-25T08:00:04Z",
                    "notification_id": "n-81ac",
                    "recipient_id": "e-0007",
                    "channel": "email",
                    "category": "checkin_due",
                    "source_event_id": "0b7e4f4e-2d55-4a0c-9d0e-6f1c8d1f2a11",
                }
            ]
        }
    )

    channel: Channel = Field(
        description="How it was delivered (email, push, slack, teams; more may come)."
    )
    category: NotificationCategory = Field(description="What it was about.")
    source_event_id: Identifier = Field(
        description="ce_id of the event that caused it (for a digest: the digest run's id)."
    )


class NotificationFailed(_NotificationEvent):
    """A notification could not be delivered after its retries."""

    type: ClassVar[str] = "rhythm.notification.failed.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-25T08:12:30Z",
                    "notification_id": "n-81ad",
                    "recipient_id": "e-1042",
                    "channel": "email",
                    "category": "checkin_due",
                    "source_event_id": "0b7e4f4e-2d55-4a0c-9d0e-6f1c8d1f2a11",
                    "reason": "bounced",
                    "attempts": 5,
                }
            ]
        }
    )

    channel: Channel = Field(
        description="The channel that failed (email, push, slack, teams; more may come)."
    )
    category: NotificationCategory = Field(description="What it was about.")
    source_event_id: Identifier = Field(
        description="ce_id of the event that caused it (for a digest: the digest run's id)."
    )
    reason: DeliveryFailure = Field(description="Why delivery failed.")
    attempts: int = Field(ge=1, description="How many delivery attempts were made.")


class NotificationSuppressed(_NotificationEvent):
    """A notification was deliberately not sent (preference, digest, unknown or inactive person)."""

    type: ClassVar[str] = "rhythm.notification.suppressed.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-18T11:20:02Z",
                    "notification_id": "n-81ae",
                    "recipient_id": "e-1042",
                    "category": "feedback_received",
                    "source_event_id": "5f7c2a90-1b1e-4c55-8f0a-3f9e0d2b7c44",
                    "reason": "digested",
                }
            ]
        }
    )

    category: NotificationCategory = Field(description="What it would have been about.")
    source_event_id: Identifier = Field(description="ce_id of the event that would have caused it.")
    reason: SuppressionReason = Field(description="Why it was not sent.")
