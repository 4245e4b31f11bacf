"""Webhook endpoints (hr_admin or an integration) and the events owed to them."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

from rhythm_notifications.commands import (
    ClaimWebhooks,
    DeleteWebhook,
    RecordWebhookResult,
    RegisterWebhook,
    RotateWebhookSecret,
)
from rhythm_notifications.domain.access import WEBHOOKS_ARE_TENANT_WIDE
from rhythm_notifications.domain.delivery import Status
from rhythm_notifications.domain.ports import NotificationsReader, NotificationsUnitOfWork
from rhythm_notifications.domain.validation import check_url
from rhythm_notifications.domain.webhooks import (
    ClaimedWebhook,
    WebhookDelivery,
    WebhookEndpoint,
    webhook_body,
    webhook_id,
)
from rhythm_notifications.use_cases.access import require_access
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.kit.errors import InvalidInput, NotFound


async def register_webhook(uow: NotificationsUnitOfWork, cmd: RegisterWebhook) -> dict[str, Any]:
    principal = cmd.principal
    await require_access(uow, principal, "register_webhook", None, WEBHOOKS_ARE_TENANT_WIDE)
    check_url(cmd.url, "url", allow_http=cmd.allow_http)
    if cmd.event_types is not None:
        unknown = sorted(set(cmd.event_types) - set(cmd.known_types))
        if unknown:
            raise InvalidInput.field("event_types", msg=f"unknown event types: {unknown}")
    endpoint = WebhookEndpoint(
        id=str(uuid.uuid4()),
        tenant_id=principal.tenant,
        url=cmd.url,
        secret=cmd.secret,
        event_types=cmd.event_types,
        description=cmd.description,
        created_at=uow.clock.now(),
    )
    await uow.webhooks.add_endpoint(endpoint)
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "description": endpoint.description,
        "secret": endpoint.secret,
        "created_at": endpoint.created_at,
    }


async def rotate_webhook_secret(
    uow: NotificationsUnitOfWork, cmd: RotateWebhookSecret
) -> dict[str, Any]:
    """The endpoint signs with the new secret from now on; its current secret also signs every
    delivery for the overlap (both signatures in one header), so the receiver can switch at
    any moment of the window. A rotation during an overlap ends the older secret at once."""
    principal = cmd.principal
    await require_access(uow, principal, "rotate_webhook_secret", None, WEBHOOKS_ARE_TENANT_WIDE)
    current = await uow.webhooks.active_endpoint(principal.tenant, cmd.endpoint_id)
    if current is None:
        raise NotFound("no such webhook endpoint")
    now = uow.clock.now()
    keep = cmd.overlap > timedelta(0)
    previous = current.secret if keep else None
    until = now + cmd.overlap if keep else None
    await uow.webhooks.set_secrets(current.id, cmd.secret, previous, until)
    rotated = dataclasses.replace(
        current, secret=cmd.secret, previous_secret=previous, previous_secret_until=until
    )
    return {**rotated.view(now), "secret": cmd.secret}


async def delete_webhook(uow: NotificationsUnitOfWork, cmd: DeleteWebhook) -> None:
    principal = cmd.principal
    await require_access(uow, principal, "delete_webhook", None, WEBHOOKS_ARE_TENANT_WIDE)
    if not await uow.webhooks.deactivate(principal.tenant, cmd.endpoint_id):
        raise NotFound("no such webhook endpoint")


async def forward_to_webhooks(uow: NotificationsUnitOfWork, envelope: Envelope) -> int:
    """Queue the event for every active endpoint of its tenant that wants its type."""
    now = uow.clock.now()
    body: str | None = None
    queued = 0
    for endpoint in await uow.webhooks.active_endpoints(envelope.tenant_id):
        if not endpoint.wants(envelope.type):
            continue
        body = body or webhook_body(envelope)
        queued += await uow.webhooks.queue(
            WebhookDelivery(
                id=webhook_id(endpoint.id, envelope.id),
                tenant_id=envelope.tenant_id,
                endpoint_id=endpoint.id,
                event_id=envelope.id,
                event_type=envelope.type,
                body=body,
                created_at=now,
            )
        )
    return queued


def _full_endpoints(cmd: ClaimWebhooks) -> list[str]:
    """The endpoints that already have ``per_endpoint`` deliveries in flight."""
    per_endpoint = cmd.per_endpoint
    return [e for e, n in cmd.in_flight.items() if per_endpoint is not None and n >= per_endpoint]


async def webhooks_due(reader: NotificationsReader, now: datetime, cmd: ClaimWebhooks) -> bool:
    """Whether :func:`claim_webhooks` would find something to claim (or to suppress) now.

    Asked on a read-only session before a round opens its transaction: most polls find
    nothing due (a tenant without endpoints, a backlog backing off), and on SQLite every
    write transaction waits for, and then holds, the one writer slot that the consumers and
    the email dispatcher need."""
    return await reader.webhooks.any_due(now, skip=_full_endpoints(cmd))


async def claim_webhooks(uow: NotificationsUnitOfWork, cmd: ClaimWebhooks) -> list[ClaimedWebhook]:
    """Claim due webhook deliveries; ones whose dispatcher died are simply retried (receivers
    de-duplicate on webhook-id, as the spec asks them to).

    With ``per_endpoint``, an endpoint gets at most that many in flight (counting
    ``in_flight``, what this dispatcher already sends to it): a slow endpoint's backlog waits
    in the table, not in front of other tenants' deliveries.
    """
    now = uow.clock.now()
    busy = dict(cmd.in_flight)
    per_endpoint = cmd.per_endpoint
    taken = []
    for due in await uow.webhooks.due(now, cmd.limit, skip=_full_endpoints(cmd)):
        if per_endpoint is not None and due.endpoint.active:
            if busy.get(due.endpoint.id, 0) >= per_endpoint:
                continue  # left pending: its lock goes with this transaction
            busy[due.endpoint.id] = busy.get(due.endpoint.id, 0) + 1
        taken.append(due)
    await uow.webhooks.suppress([d.id for d in taken if not d.endpoint.active], "endpoint removed")
    live = [d for d in taken if d.endpoint.active]
    lease_until = now + timedelta(seconds=cmd.lease_s)
    await uow.webhooks.claim([d.id for d in live], cmd.token, now, lease_until)
    return [
        ClaimedWebhook(
            d.id,
            d.endpoint.id,
            d.endpoint.url,
            d.endpoint.signing_secrets(now),
            d.body,
            d.attempts + 1,
        )
        for d in live
    ]


async def record_webhook_result(uow: NotificationsUnitOfWork, cmd: RecordWebhookResult) -> Status:
    now = uow.clock.now()
    ok = cmd.status_code is not None and 200 <= cmd.status_code < 300
    attempts = cmd.delivery.attempts
    if ok:
        status, next_at = Status.SENT, None
    elif cmd.policy.exhausted(attempts):
        status, next_at = Status.FAILED, None
    else:
        status = Status.PENDING
        next_at = now + timedelta(seconds=cmd.policy.delay_s(attempts))
    await uow.webhooks.record(
        cmd.delivery.id,
        cmd.token,
        now,
        status=status,
        status_code=cmd.status_code,
        detail=None if ok else cmd.detail,
        next_attempt_at=next_at,
    )
    return status
