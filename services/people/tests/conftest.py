"""Fixtures of the people service's tests: settings on a fresh database and topic namespace."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

# importlib mode: this folder's helpers (people_sealed, test_http) import by name, as in every
# service, whichever `tests` package the whole suite happened to import first.
sys.path.insert(0, str(Path(__file__).parent))

from rhythm_people.main import Settings
from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.settings import DEV_JWT_SECRET


@pytest.fixture
def settings(database_url: str, topic_prefix: str, kafka_bootstrap: str) -> Settings:
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
    )


@pytest.fixture
def auth() -> Callable[..., dict[str, str]]:
    def headers(tenant: str, *roles: str, subject: str = "hr-sync") -> dict[str, str]:
        token = issue_token(
            DEV_JWT_SECRET,
            tenant=tenant,
            subject=subject,
            roles=list(roles or ("integration",)),
            now=datetime.now(UTC),
        )
        return {"Authorization": f"Bearer {token}"}

    return headers
