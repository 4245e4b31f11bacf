"""Fixtures of the goals tests: the real service (real Kafka, SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make goals_harness importable

from goals_harness import GoalsService, StartGoals

from rhythm_goals.main import Settings, build
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock


@pytest.fixture
def start_goals(
    database_url: str, kafka_bootstrap: str, topic_prefix: str, tenant: str, clock: ManualClock
) -> StartGoals:
    """``async with start_goals(consumers=False) as svc:`` runs the real service for a test.

    Jobs never run on their own in tests: a test calls the staleness round itself, after it
    has moved the clock.
    """

    @contextlib.asynccontextmanager
    async def start(*, consumers: bool = False) -> AsyncIterator[GoalsService]:
        settings = Settings(
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
        )
        app = build(settings, clock=clock)
        async with running(app) as runtime:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield GoalsService(runtime, client, tenant, clock, kafka_bootstrap, topic_prefix)

    return start
