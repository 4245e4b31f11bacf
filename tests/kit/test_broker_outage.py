"""A broker outage costs no write: the API keeps answering and stays ready, its events wait in
the outbox, and they are published (and consumed) when the broker returns (issue 13)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.testing import read_records, wait_for
from tests.kit import sample
from tests.kit.own_broker import OwnBroker, own_broker
from tests.kit.test_kit import auth, settings

pytestmark = pytest.mark.kafka


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OwnBroker]:
    with own_broker(tmp_path, monkeypatch) as own:
        yield own


def _broker_up() -> float | None:
    return REGISTRY.get_sample_value("rhythm_broker_up", {"service": "sample"})


async def _greet(client: httpx.AsyncClient, tenant: str, greeting: str) -> None:
    response = await client.post(
        "/v1/greetings",
        json={"greeting_id": greeting, "receiver_id": "e-2"},
        headers=auth(tenant),
    )
    assert response.status_code == 201, response.text


async def _published(bootstrap: str, prefix: str, wanted: set[str]) -> set[str]:
    records = await read_records(
        bootstrap,
        f"{prefix}{topics.CHECKINS}",
        min_count=len(wanted),
        timeout_s=60,
        predicate=lambda r: from_record(r.headers, r.value).event.feedback_id in wanted,  # type: ignore[attr-defined]
    )
    return {from_record(r.headers, r.value).event.feedback_id for r in records}  # type: ignore[attr-defined]


async def test_a_service_starts_takes_writes_and_stays_ready_while_the_broker_is_away(
    broker: OwnBroker, tmp_path: Path, tenant: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await asyncio.to_thread(broker.stop)
    app = sample.build(
        settings(f"sqlite+aiosqlite:///{tmp_path / 'sample.db'}", prefix, broker.bootstrap)
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://sample") as client,
    ):
        runtime: Any = app.state.runtime
        # Started without a broker: the API answers, is ready, and takes writes into its outbox.
        assert (await client.get("/readyz")).status_code == 200
        await _greet(client, tenant, "while-never-seen")
        health = await wait_for(lambda: _health(client, "down"), timeout_s=15)
        assert health["kafka_connected"] is False
        assert _broker_up() == 0

        await asyncio.to_thread(broker.start)
        await asyncio.wait_for(runtime.kafka_connected.wait(), 60)
        assert await _published(broker.bootstrap, prefix, {"while-never-seen"}) == {
            "while-never-seen"
        }
        await wait_for(lambda: _health(client, "up"), timeout_s=15)
        assert _broker_up() == 1
        effects = await wait_for(lambda: sample.effect_counts(runtime), timeout_s=60)
        assert effects == {"while-never-seen": 1}

        # A broker lost while running: same story.
        await asyncio.to_thread(broker.stop)
        await wait_for(lambda: _health(client, "down"), timeout_s=15)
        assert (await client.get("/readyz")).status_code == 200
        await _greet(client, tenant, "while-away")
        await asyncio.to_thread(broker.start)
        assert await _published(broker.bootstrap, prefix, {"while-away"}) == {"while-away"}
        effects = await wait_for(lambda: _when_both(sample.effect_counts(runtime)), timeout_s=90)
        assert effects == {"while-never-seen": 1, "while-away": 1}


async def _health(client: httpx.AsyncClient, status: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (await client.get("/healthz")).json()
    return body if body["broker"]["status"] == status else None


async def _when_both(counts: Any) -> Any:
    value = await counts
    return value if len(value) == 2 else None


@pytest.mark.parametrize("service", ["goals", "checkins", "notifications", "reporting", "people"])
async def test_every_service_starts_and_is_ready_with_no_broker_at_all(
    service: str, tmp_path: Path
) -> None:
    import importlib
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"
    main = importlib.import_module(f"rhythm_{service}.main")
    app = main.build(
        main.Settings(
            environment="development",
            database_url=f"sqlite+aiosqlite:///{tmp_path / service}.db",
            kafka_bootstrap_servers=nowhere,
            log_json=False,
        )
    )
    async with (
        asyncio.timeout(60),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client,
    ):
        assert (await client.get("/readyz")).status_code == 200
        health = await wait_for(lambda: _health(client, "down"), timeout_s=15)
        assert health["kafka_connected"] is False
