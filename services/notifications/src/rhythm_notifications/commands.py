"""Every command the notifications service accepts: frozen models, imperative names.

HTTP request models stay in entrypoints/http.py, which translates them into these; the timed
jobs build the dispatching commands. A command carries everything its handler decides on
(the caller, and what the settings allow), so a handler needs nothing but the unit of work.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, InstanceOf, SkipValidation

from rhythm_notifications.domain.delivery import Claimed, Outcome, RetryPolicy
from rhythm_notifications.domain.preferences import CategorySetting
from rhythm_notifications.domain.webhooks import ClaimedWebhook
from rhythm_shared.contracts.v1 import Channel, SuppressionReason
from rhythm_shared.kit.auth import Principal


class Command(BaseModel):
    model_config = ConfigDict(frozen=True)


Caller = InstanceOf[Principal]


# --- preferences and push subscriptions ------------------------------------------------------


class SetPreferences(Command):
    """Replace the schedule; set the categories named (others keep what they had)."""

    principal: Caller
    employee_id: str
    quiet_hours_start: str | None
    quiet_hours_end: str | None
    working_days: list[int]
    digest_hour: int
    categories: dict[str, InstanceOf[CategorySetting]]


class Unsubscribe(Command):
    """RFC 8058 one-click: stop email for this person and category (the link is the grant)."""

    tenant_id: str
    employee_id: str
    category: str


class SubscribePush(Command):
    principal: Caller
    endpoint: str
    p256dh: str
    auth: str
    allow_http: bool


class UnsubscribePush(Command):
    principal: Caller
    subscription_id: str


# --- webhooks ---------------------------------------------------------------------------------


class RegisterWebhook(Command):
    principal: Caller
    url: str
    event_types: list[str] | None
    description: str | None
    secret: str
    allow_http: bool
    known_types: list[str]


class RotateWebhookSecret(Command):
    principal: Caller
    endpoint_id: str
    secret: str
    overlap: timedelta


class DeleteWebhook(Command):
    principal: Caller
    endpoint_id: str


# --- the tenant's configuration ----------------------------------------------------------------


class SetTenantSettings(Command):
    """Set (or, with None, drop) the tenant's own app base URL."""

    principal: Caller
    app_base_url: str | None
    allow_http: bool


class SetChatChannel(Command):
    principal: Caller
    kind: Channel  # slack | teams
    url: str
    categories: list[str]
    allow_http: bool
    allow_private: bool


class DeleteChatChannel(Command):
    principal: Caller
    kind: Channel


# --- dispatching (the timed jobs) ---------------------------------------------------------------


class RecoverExpiredDeliveries(Command):
    limit: int
    max_recoveries: int = 3


class ClaimDueDeliveries(Command):
    limit: int
    lease_s: float
    token: str
    max_age: timedelta = timedelta(hours=96)
    kek: bytes | None = None


class MarkSending(Command):
    delivery_ids: list[str]
    token: str


class RecordOutcomes(Command):
    """What the channels said about deliveries of one claim, recorded together."""

    outcomes: list[tuple[InstanceOf[Claimed], Annotated[Outcome, SkipValidation]]]
    token: str
    policy: InstanceOf[RetryPolicy]


class SuppressClaimed(Command):
    delivery: InstanceOf[Claimed]
    token: str
    reason: SuppressionReason


class RemovePushSubscription(Command):
    """The push service answered 404/410: the subscription is gone for good."""

    subscription_id: str


class ComposeDigests(Command):
    limit: int


class ClaimWebhooks(Command):
    limit: int
    lease_s: float
    token: str
    in_flight: dict[str, int] = {}
    per_endpoint: int | None = None


class RecordWebhookResult(Command):
    delivery: InstanceOf[ClaimedWebhook]
    token: str
    status_code: int | None
    detail: str
    policy: InstanceOf[RetryPolicy]
