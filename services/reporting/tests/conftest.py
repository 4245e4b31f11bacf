"""Fixtures of the reporting tests: the real service on real Kafka, SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make the helpers importable

from reporting_harness import Reporting, StartReporting

from rhythm_reporting.main import Settings, build
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock


@pytest.fixture
def reporting_settings(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        topic_partitions=3,
        environment="development",
        consumer_session_timeout_ms=6000,
        consumer_heartbeat_interval_ms=500,
        relay_poll_interval_s=0.05,
        log_json=False,
        consumer_batch_size=300,
    )


@pytest.fixture
def start_reporting(
    reporting_settings: Settings, tenant: str, clock: ManualClock
) -> StartReporting:
    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Reporting]:
        settings = reporting_settings.model_copy(update=overrides)
        app = build(settings, clock=clock)
        async with running(app) as runtime:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Reporting(runtime, client, settings, tenant, clock)

    return start
