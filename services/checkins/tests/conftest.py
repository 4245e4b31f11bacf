"""Fixtures of the check-ins tests: the real service on real Kafka, SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # make checkins_harness importable

from checkins_harness import CheckinsService, StartCheckins

from rhythm_checkins.main import Settings, build
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock


@pytest.fixture
def settings_for(
    database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "kafka_bootstrap_servers": kafka_bootstrap,
            "kafka_topic_prefix": topic_prefix,
            "topic_partitions": 3,
            "environment": "development",
            "consumer_session_timeout_ms": 6000,
            "consumer_heartbeat_interval_ms": 500,
            "relay_poll_interval_s": 0.05,
            "log_json": False,
            "run_consumers": False,
            "run_jobs": False,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def start_checkins(
    settings_for: Callable[..., Settings],
    kafka_bootstrap: str,
    topic_prefix: str,
    tenant: str,
    clock: ManualClock,
) -> StartCheckins:
    """``async with start_checkins(consumers=False) as svc:`` runs the real service. Jobs never
    run on their own in tests: a test sweeps itself, after it has moved the clock."""

    @contextlib.asynccontextmanager
    async def start(*, consumers: bool = False) -> AsyncIterator[CheckinsService]:
        app = build(settings_for(run_consumers=consumers), clock=clock)
        async with running(app) as runtime:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield CheckinsService(runtime, client, tenant, clock, kafka_bootstrap, topic_prefix)

    return start
