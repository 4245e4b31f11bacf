"""Composition root: wires the real adapters; tests pass their own by the same parameters."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from fastapi import FastAPI

from rhythm_notifications.adapters.chat import ChatSender
from rhythm_notifications.adapters.db import kit, metadata
from rhythm_notifications.adapters.email import SmtpConfig, SmtpMailer
from rhythm_notifications.adapters.outbound import OutboundClient
from rhythm_notifications.adapters.push import WebPushSender
from rhythm_notifications.adapters.templates import Templates
from rhythm_notifications.adapters.unit_of_work import SqlNotificationsUnitOfWork, reading
from rhythm_notifications.adapters.webhooks import WebhookSender
from rhythm_notifications.entrypoints import http
from rhythm_notifications.entrypoints.consumers import consumers
from rhythm_notifications.entrypoints.jobs import NotificationsRuntime, Resources, jobs
from rhythm_notifications.settings import Settings
from rhythm_notifications.use_cases.sending import (
    Channels,
    DigestComposer,
    Dispatcher,
    Mailer,
    WebhookDispatcher,
)
from rhythm_shared.kit import crypto
from rhythm_shared.kit.app import ServiceDefinition, create_app
from rhythm_shared.kit.clock import Clock

__all__ = ["Settings", "build"]

MIGRATIONS = Path(__file__).parent / "migrations"


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    mailer: Mailer | None = None,
    pusher: WebPushSender | None = None,
    webhooks: WebhookSender | None = None,
) -> FastAPI:
    settings = settings or Settings()
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    vapid = settings.vapid_private_key.get_secret_value() if settings.vapid_private_key else None
    outbound = OutboundClient(
        allow_private=settings.outbound_allow_private,
        max_response_bytes=settings.outbound_max_response_bytes,
        per_endpoint=settings.outbound_per_endpoint,
    )
    channels = Channels(
        mailer=mailer
        or SmtpMailer(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                security=settings.smtp_security,
                username=settings.smtp_username,
                password=password,
                timeout_s=settings.smtp_timeout_s,
                sender=settings.email_from,
                connections=settings.smtp_connections,
            )
        ),
        pusher=pusher
        or WebPushSender(
            vapid,
            settings.vapid_subject,
            ttl_s=settings.push_ttl_s,
            timeout_s=settings.push_timeout_s,
            outbound=outbound,
            # Any public host in development and tests; only known push services in production.
            push_services=settings.push_services if settings.environment == "production" else None,
        ),
        webhooks=webhooks or WebhookSender(outbound, settings.webhook_timeout_s),
        templates=Templates(),
        chat=ChatSender(outbound, settings.chat_timeout_s),
    )

    # Set by every unit of work that commits pending deliveries: the dispatcher's wake-up.
    due = asyncio.Event()

    async def on_start(runtime: NotificationsRuntime) -> Resources:
        uows, clock = runtime.uow, runtime.clock
        return Resources(
            channels=channels,
            dispatcher=Dispatcher(uows, clock, settings, channels, due),
            webhook_dispatcher=WebhookDispatcher(
                uows, functools.partial(reading, uows), clock, settings, channels.webhooks
            ),
            digests=DigestComposer(uows),
        )

    async def on_stop(runtime: NotificationsRuntime) -> None:
        await runtime.resources.webhook_dispatcher.drain()  # each within its deadline
        await channels.mailer.close()
        await channels.webhooks.close()
        await outbound.close()

    return create_app(
        ServiceDefinition(
            name="notifications",
            settings=settings,
            metadata=metadata,
            tables=kit,
            migrations=MIGRATIONS,
            routers=[http.router],
            consumers=consumers,
            jobs=jobs,
            unit_of_work=functools.partial(
                SqlNotificationsUnitOfWork,
                wake=due.set,
                kek=crypto.load_kek(settings.data_key_encryption_key.get_secret_value()),
            ),
            on_start=on_start,
            on_stop=on_stop,
            clock=clock,
            description="Email, push and webhooks that people act on, never spam.",
        )
    )
