"""pytest fixtures: the broker, the databases (SQLite always, PostgreSQL when reachable)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.kafka import broker_reachable

IN_CI = os.environ.get("CI", "").lower() == "true"
DEFAULT_POSTGRES = "postgresql+asyncpg://rhythm:rhythm@127.0.0.1:55432/rhythm_test"


def pytest_configure(config: pytest.Config) -> None:
    # Services fail closed: without ENVIRONMENT they run as production and refuse the development
    # secrets the tests sign with. The suite, and every service process it starts, is development.
    os.environ["ENVIRONMENT"] = "development"


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS if set; else testcontainers where Docker answers; else the
    project's own launcher (``rhythm infra up``)."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        if not asyncio.run(broker_reachable(configured, timeout_s=10)):
            pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS={configured} does not answer")
        yield configured
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    bootstrap = "127.0.0.1:9092"
    if not asyncio.run(broker_reachable(bootstrap, timeout_s=2)):
        subprocess.run(["rhythm", "infra", "up"], check=True)  # noqa: S607 (the venv command)
    yield bootstrap


def _postgres_url() -> str:
    return os.environ.get("RHYTHM_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


async def _postgres_reachable(url: str) -> bool:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def postgres_databases(count: int = 1) -> AsyncIterator[list[str]]:
    """``count`` new, empty PostgreSQL databases (their URLs), dropped afterwards; skips the
    test where PostgreSQL is not reachable (fails in CI)."""
    admin_url = _postgres_url()
    if not await _postgres_reachable(admin_url):
        if IN_CI:
            pytest.fail(f"PostgreSQL at {admin_url} is not reachable in CI")
        pytest.skip("PostgreSQL is not reachable (run `make infra-up` where it is installed)")
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for name in names:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url)
        yield [url.set(database=n).render_as_string(hide_password=False) for n in names]
    finally:
        async with admin.connect() as conn:
            for name in names:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database dropped after."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "service.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    async with postgres_databases() as [url]:
        yield url


@pytest.fixture
async def topic_prefix(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A fresh namespace of topics per test, so tests never read each other's events.

    The test's topics are deleted afterwards: a broker keeps every partition's metadata in
    memory, and a whole suite would otherwise leave thousands behind.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield prefix
    await delete_topics(kafka_bootstrap, prefix)


async def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        await admin.start()
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    except Exception as exc:  # cleanup must never fail a test that passed
        warnings.warn(f"could not delete the test's topics {prefix}*: {exc!r}", stacklevel=1)
    finally:
        await admin.close()


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
