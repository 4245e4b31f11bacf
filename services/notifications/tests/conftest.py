"""Fixtures of the notifications tests: the real service (real Kafka, SQLite or PostgreSQL),
a real SMTP server and a real HTTP server standing in for push services and webhook receivers."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make the harness importable

from notifications_harness import HttpSink, Service, SmtpSink, StartService, vapid_private_key

from rhythm_notifications.main import Settings, build
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    with HttpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def vapid_key() -> str:
    return str(vapid_private_key())


@pytest.fixture
def start_service(
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    tenant: str,
    clock: ManualClock,
    smtp_sink: SmtpSink,
    vapid_key: str,
) -> StartService:
    """``async with start_service() as svc:`` runs the real service for a test.

    Jobs never run on their own: a test moves the clock and runs a round itself
    (``svc.dispatch()``), so what is due is decided by the test, not by timing.
    """

    @contextlib.asynccontextmanager
    async def start(
        *, consumers: bool = True, settings: dict[str, Any] | None = None, **adapters: Any
    ) -> AsyncIterator[Service]:
        """``settings``: more settings for this test (ones not chosen below)."""
        chosen = settings or {}
        service_settings = Settings(
            database_url=database_url,
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_topic_prefix=topic_prefix,
            topic_partitions=3,
            environment="development",
            consumer_session_timeout_ms=6000,
            consumer_heartbeat_interval_ms=500,
            relay_poll_interval_s=0.05,
            log_json=False,
            run_consumers=consumers,
            run_jobs=False,
            smtp_port=smtp_sink.port,
            email_from="Rhythm <rhythm@acme.example.com>",
            public_base_url="http://test",
            vapid_private_key=vapid_key,
            vapid_subject="mailto:ops@acme.example.com",
            delivery_retry_base_s=60,
            delivery_lease_s=120,
            webhook_retry_base_s=10,
            outbound_allow_private=True,  # the HTTP sink listens on 127.0.0.1
            **chosen,
        )
        app = build(service_settings, clock=clock, **adapters)
        async with running(app) as runtime:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Service(runtime, client, tenant, clock, kafka_bootstrap, topic_prefix)

    return start
