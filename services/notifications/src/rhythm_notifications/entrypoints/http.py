"""HTTP API: preferences, push subscriptions, delivery history, unsubscribe, webhook endpoints,
the tenant's links and chat channels.

Routes translate: a request into a command for its handler (handlers.py) or into a query
(queries.py), and the result into a response; no rules here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from rhythm_notifications import commands, queries
from rhythm_notifications.adapters.tokens import (
    BadToken,
    ExpiredToken,
    UnsubscribeGrant,
    verify_unsubscribe,
)
from rhythm_notifications.adapters.webhooks import new_secret
from rhythm_notifications.domain.preferences import CategorySetting, PreferencesView
from rhythm_notifications.domain.routing import ChannelChoice, webhook_event_types
from rhythm_notifications.domain.schedule import DeliveryMode
from rhythm_notifications.handlers import COMMAND_HANDLERS
from rhythm_notifications.settings import Settings
from rhythm_shared.contracts.v1 import Channel, NotificationCategory
from rhythm_shared.contracts.v1.values import ONE_LINE
from rhythm_shared.kit.errors import DomainError, NotFound
from rhythm_shared.kit.http import IdempotencyKey, PrincipalDep, RuntimeDep, run_idempotent
from rhythm_shared.kit.uow import UnitOfWork

router = APIRouter(prefix="/v1", tags=["notifications"])


async def handle(uow: UnitOfWork, command: commands.Command) -> Any:
    """Hand ``command`` to its handler (handlers.COMMAND_HANDLERS) in this unit of work (the
    runtime's: a SqlNotificationsUnitOfWork)."""
    return await COMMAND_HANDLERS[type(command)](uow, command)


HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["20:00"])]


class CategorySettingModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: ChannelChoice = Field(description="email, push, both or none.")
    mode: DeliveryMode = Field(
        DeliveryMode.IMMEDIATE, description="immediate, or collected in a daily/weekly digest."
    )


class PreferencesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "quiet_hours_start": "19:00",
                    "quiet_hours_end": "08:30",
                    "working_days": [1, 2, 3, 4, 5],
                    "digest_hour": 9,
                    "categories": {
                        "checkin_missed": {"channel": "email", "mode": "daily"},
                        "feedback_received": {"channel": "push"},
                    },
                }
            ]
        },
    )

    quiet_hours_start: HHMM | None = Field(None, description="Start of quiet hours, local time.")
    quiet_hours_end: HHMM | None = Field(None, description="End of quiet hours, local time.")
    working_days: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5],
        min_length=1,
        max_length=7,
        description="ISO weekdays (Monday = 1) on which messages may arrive.",
    )
    digest_hour: int = Field(9, ge=0, le=23, description="Local hour digests go out.")
    categories: dict[NotificationCategory, CategorySettingModel] = Field(
        default_factory=dict, description="Per category: channel and delivery mode."
    )


class PreferencesOut(BaseModel):
    employee_id: str
    quiet_hours_start: str | None
    quiet_hours_end: str | None
    working_days: list[int]
    digest_hour: int
    categories: dict[str, CategorySettingModel]
    unsubscribed: list[str] = Field(description="Categories stopped by a one-click unsubscribe.")


def _view(view: PreferencesView) -> dict[str, Any]:
    return PreferencesOut(
        employee_id=view.employee_id,
        quiet_hours_start=view.quiet_hours_start,
        quiet_hours_end=view.quiet_hours_end,
        working_days=view.working_days,
        digest_hour=view.digest_hour,
        categories={
            k: CategorySettingModel(channel=v.channel, mode=v.mode)
            for k, v in view.categories.items()
        },
        unsubscribed=view.unsubscribed,
    ).model_dump(mode="json")


@router.get("/preferences", response_model=PreferencesOut, summary="A person's preferences")
async def get_preferences(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    employee_id: Annotated[str | None, Query(description="hr_admin only: someone else")] = None,
) -> dict[str, Any]:
    async with runtime.uow.read() as session:
        view = await queries.preferences(session, principal, employee_id or principal.subject)
    return _view(view)


@router.put("/preferences", response_model=PreferencesOut, summary="Set a person's preferences")
async def put_preferences(
    body: PreferencesIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
    employee_id: Annotated[str | None, Query(description="hr_admin only: someone else")] = None,
) -> JSONResponse:
    target = employee_id or principal.subject
    command = commands.SetPreferences(
        principal=principal,
        employee_id=target,
        quiet_hours_start=body.quiet_hours_start,
        quiet_hours_end=body.quiet_hours_end,
        working_days=body.working_days,
        digest_hour=body.digest_hour,
        categories={
            k.value: CategorySetting(v.channel, v.mode) for k, v in body.categories.items()
        },
    )

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, _view(await handle(uow, command))

    return await run_idempotent(
        runtime,
        principal,
        idempotency_key,
        {"p": body.model_dump(mode="json"), "t": target},
        action,
    )


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class PushSubscriptionIn(BaseModel):
    """The browser's PushSubscription.toJSON(), as the Push API gives it."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "endpoint": "https://push.example.net/wpush/v2/gAAAAABk",
                    "keys": {
                        "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u"
                        "-Ts1XbjhazAkj7I99e8QcYP7DkM",
                        "auth": "tBHItJI5svbpez7KI4CCXg",
                    },
                }
            ]
        },
    )

    endpoint: str = Field(min_length=1, max_length=2048)
    keys: PushKeys


class PushSubscriptionOut(BaseModel):
    id: str
    endpoint: str
    created_at: datetime


@router.post(
    "/push-subscriptions",
    status_code=201,
    response_model=PushSubscriptionOut,
    summary="Subscribe this browser/device to push",
)
async def subscribe_push(
    body: PushSubscriptionIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    command = commands.SubscribePush(
        principal=principal,
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        allow_http=_settings(runtime).environment != "production",
    )

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, await handle(uow, command)

    return await run_idempotent(
        runtime, principal, idempotency_key, body.model_dump(mode="json"), action
    )


@router.get(
    "/push-subscriptions",
    response_model=list[PushSubscriptionOut],
    summary="My push subscriptions",
)
async def list_push(runtime: RuntimeDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    async with runtime.uow.read() as session:
        return await queries.push_subscriptions(session, principal)


@router.delete(
    "/push-subscriptions/{subscription_id}", status_code=204, summary="Unsubscribe from push"
)
async def unsubscribe_push(
    subscription_id: str, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    command = commands.UnsubscribePush(principal=principal, subscription_id=subscription_id)
    async with runtime.uow() as uow:
        await handle(uow, command)
    return Response(status_code=204)


class DeliveryOut(BaseModel):
    id: str = Field(description="The notification_id in NotificationSent/Failed/Suppressed.")
    recipient_id: str
    category: str
    channel: str | None
    status: str = Field(description="pending, claimed, sending, sent, failed or suppressed.")
    reason: str | None
    detail: str | None
    attempts: int
    source_event_id: str
    source_type: str
    idempotency_key: str
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


@router.get(
    "/deliveries",
    response_model=list[DeliveryOut],
    summary="Delivery history, per recipient and/or per source event",
)
async def list_deliveries(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    recipient_id: str | None = None,
    source_event_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    async with runtime.uow.read() as session:
        return await queries.deliveries(
            session,
            principal,
            recipient_id=recipient_id,
            source_event_id=source_event_id,
            limit=limit,
        )


def _settings(runtime: RuntimeDep) -> Settings:
    settings: Settings = runtime.settings
    return settings


class LinkExpired(DomainError):
    status_code = 410


#: What a person who followed an unusable unsubscribe link reads.
_LINK_EXPIRED = (
    "This unsubscribe link has expired. Use the link in a more recent email from Rhythm, "
    "or change which emails you get in your Rhythm notification settings."
)
_LINK_INVALID = (
    "This unsubscribe link is not valid: it may have been cut short or changed. Use the "
    "link in a more recent email from Rhythm, or change your Rhythm notification settings."
)


def _grant(runtime: RuntimeDep, token: str) -> UnsubscribeGrant:
    """The token's grant, verified against the current and the previous secret; else 410
    (expired) or 404 (not ours), each with a sentence for the person."""
    settings = _settings(runtime)
    try:
        return verify_unsubscribe(settings.unsubscribe_secrets, token, now=runtime.clock.now())
    except ExpiredToken as exc:
        raise LinkExpired(_LINK_EXPIRED) from exc
    except BadToken as exc:
        raise NotFound(_LINK_INVALID) from exc


@router.post(
    "/unsubscribe",
    response_class=PlainTextResponse,
    summary="One-click unsubscribe (RFC 8058): stops email for one category",
    responses={404: {"description": "not a valid link"}, 410: {"description": "expired link"}},
)
async def one_click_unsubscribe(
    runtime: RuntimeDep,
    token: Annotated[str, Query(max_length=1000)],
) -> PlainTextResponse:
    # RFC 8058 §3.1: the POST body is "List-Unsubscribe=One-Click" (form-encoded; we need
    # nothing from it). No cookies, no login: the signed token in the URL is the authority.
    grant = _grant(runtime, token)
    command = commands.Unsubscribe(
        tenant_id=grant.tenant_id, employee_id=grant.employee_id, category=grant.category
    )
    async with runtime.uow() as uow:
        await handle(uow, command)
    return PlainTextResponse(f"Unsubscribed from {grant.category} emails.\n")


@router.get(
    "/unsubscribe",
    response_class=HTMLResponse,
    summary="Unsubscribe page: a GET never unsubscribes (link scanners follow links)",
    responses={404: {"description": "not a valid link"}, 410: {"description": "expired link"}},
)
async def unsubscribe_page(
    runtime: RuntimeDep,
    token: Annotated[str, Query(max_length=1000)],
    accept: Annotated[str, Header(include_in_schema=False)] = "",
) -> HTMLResponse:
    from html import escape

    try:
        grant = _grant(runtime, token)
    except (LinkExpired, NotFound) as exc:
        if "text/html" not in accept:
            raise  # an API client gets the JSON error
        # A person followed the link in a browser: a page, in words.
        page = f"<!DOCTYPE html><html><body><p>{escape(exc.message)}</p></body></html>"
        return HTMLResponse(page, status_code=exc.status_code)
    return HTMLResponse(
        "<!DOCTYPE html><html><body>"
        f"<p>Stop emails about <strong>{escape(grant.category)}</strong>?</p>"
        f'<form method="post" action="?token={escape(token)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form></body></html>'
    )


class WebhookEndpointIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hr.example.com/hooks/rhythm",
                    "event_types": ["rhythm.checkin.missed.v1", "rhythm.goal.stale.v1"],
                    "description": "HR platform",
                }
            ]
        },
    )

    url: str = Field(min_length=1, max_length=2048)
    event_types: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        None,
        max_length=100,
        description="CloudEvents types to receive; null for every goals/check-in event.",
    )
    description: Annotated[str, ONE_LINE] | None = Field(
        None, max_length=200, description="A label for the endpoint, one line."
    )


class WebhookEndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str] | None
    description: str | None
    created_at: datetime
    secret: str | None = Field(
        None,
        description="whsec_ signing secret; shown once, when the endpoint is created or its "
        "secret rotated.",
    )
    previous_secret_expires_at: datetime | None = Field(
        None,
        description="During a rotation's overlap: until when the previous secret also signs "
        "every delivery (a second v1 signature).",
    )


@router.post(
    "/webhook-endpoints",
    status_code=201,
    response_model=WebhookEndpointOut,
    summary="Register a webhook endpoint (hr_admin or integration)",
)
async def register_webhook(
    body: WebhookEndpointIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    command = commands.RegisterWebhook(
        principal=principal,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        secret=new_secret(),
        allow_http=_settings(runtime).environment != "production",
        known_types=webhook_event_types(),
    )

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, await handle(uow, command)

    return await run_idempotent(
        runtime, principal, idempotency_key, body.model_dump(mode="json"), action
    )


@router.get(
    "/webhook-endpoints",
    response_model=list[WebhookEndpointOut],
    summary="The tenant's webhook endpoints",
)
async def list_webhooks(runtime: RuntimeDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    async with runtime.uow.read() as session:
        return await queries.webhook_endpoints(session, principal, runtime.clock)


@router.delete(
    "/webhook-endpoints/{endpoint_id}", status_code=204, summary="Remove a webhook endpoint"
)
async def delete_webhook(
    endpoint_id: str, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    command = commands.DeleteWebhook(principal=principal, endpoint_id=endpoint_id)
    async with runtime.uow() as uow:
        await handle(uow, command)
    return Response(status_code=204)


class RotateSecretIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"overlap_hours": 24}]}
    )

    overlap_hours: float = Field(
        24,
        ge=0,
        le=168,
        description="How long the previous secret keeps signing deliveries beside the new one "
        "(0: at once only the new, e.g. after a leak).",
    )


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=WebhookEndpointOut,
    summary="Rotate a webhook endpoint's secret, the previous one valid for an overlap",
)
async def rotate_webhook_secret(
    endpoint_id: str,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    body: RotateSecretIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    chosen = body or RotateSecretIn()
    command = commands.RotateWebhookSecret(
        principal=principal,
        endpoint_id=endpoint_id,
        secret=new_secret(),
        overlap=timedelta(hours=chosen.overlap_hours),
    )

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, await handle(uow, command)

    return await run_idempotent(
        runtime,
        principal,
        idempotency_key,
        {"e": endpoint_id, "p": chosen.model_dump(mode="json")},
        action,
    )


class TenantSettingsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"app_base_url": "https://rhythm.acme.example.com"}]},
    )

    app_base_url: str | None = Field(
        max_length=2048,
        description="Base URL of the app this tenant's people use, for the links in every "
        "message (https in production); null: the service's APP_BASE_URL.",
    )


class TenantSettingsOut(BaseModel):
    app_base_url: str | None = Field(description="The tenant's own base URL, if it set one.")
    default_app_base_url: str | None = Field(description="APP_BASE_URL, used without one.")
    updated_at: datetime | None


@router.get(
    "/tenant-settings",
    response_model=TenantSettingsOut,
    summary="The tenant's app base URL for links (hr_admin)",
)
async def get_tenant_settings(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    async with runtime.uow.read() as session:
        found = await queries.tenant_settings(session, principal)
    return {**found, "default_app_base_url": _settings(runtime).app_base_url}


@router.put(
    "/tenant-settings",
    response_model=TenantSettingsOut,
    summary="Set the tenant's app base URL for links (hr_admin)",
)
async def put_tenant_settings(
    body: TenantSettingsIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    settings = _settings(runtime)
    command = commands.SetTenantSettings(
        principal=principal,
        app_base_url=body.app_base_url,
        allow_http=settings.environment != "production",
    )

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        found = await handle(uow, command)
        out = {**found, "default_app_base_url": settings.app_base_url}
        return 200, TenantSettingsOut(**out).model_dump(mode="json")

    return await run_idempotent(
        runtime, principal, idempotency_key, body.model_dump(mode="json"), action
    )


class ChatKind(StrEnum):
    slack = "slack"
    teams = "teams"


class ChatChannelIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX",
                    "categories": ["checkin_due", "checkin_missed", "goal_stale"],
                }
            ]
        },
    )

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="The incoming webhook (Slack) or Workflow/incoming webhook (Teams) URL.",
    )
    categories: list[NotificationCategory] = Field(
        min_length=1,
        max_length=len(NotificationCategory),
        description="The categories posted there (the channel's readers see them all).",
    )


class ChatChannelOut(BaseModel):
    kind: str
    url: str = Field(description="Host and last characters only: the URL is a credential.")
    categories: list[str]
    updated_at: datetime


@router.put(
    "/chat-channels/{kind}",
    response_model=ChatChannelOut,
    summary="Connect the tenant's Slack or Teams channel (hr_admin)",
)
async def put_chat_channel(
    kind: ChatKind,
    body: ChatChannelIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    settings = _settings(runtime)
    command = commands.SetChatChannel(
        principal=principal,
        kind=Channel(kind.value),
        url=body.url,
        categories=[c.value for c in body.categories],
        allow_http=settings.environment != "production",
        allow_private=settings.outbound_allow_private,
    )

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        found = await handle(uow, command)
        return 200, ChatChannelOut(**found).model_dump(mode="json")

    return await run_idempotent(
        runtime,
        principal,
        idempotency_key,
        {"k": kind.value, "b": body.model_dump(mode="json")},
        action,
    )


@router.get(
    "/chat-channels",
    response_model=list[ChatChannelOut],
    summary="The tenant's chat channels (hr_admin)",
)
async def list_chat_channels(runtime: RuntimeDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    async with runtime.uow.read() as session:
        return await queries.chat_channels(session, principal)


@router.delete(
    "/chat-channels/{kind}", status_code=204, summary="Disconnect a chat channel (hr_admin)"
)
async def delete_chat_channel(
    kind: ChatKind, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    command = commands.DeleteChatChannel(principal=principal, kind=Channel(kind.value))
    async with runtime.uow() as uow:
        await handle(uow, command)
    return Response(status_code=204)
