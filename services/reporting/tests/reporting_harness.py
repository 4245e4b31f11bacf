"""Test harness: the running service with an HTTP client, tokens, and a fast publisher."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from rhythm_reporting.adapters.db import consumer_positions
from rhythm_reporting.adapters.store import active_generation
from rhythm_reporting.main import Settings
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import new_event_id, to_record
from rhythm_shared.kit.app import Runtime
from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.settings import DEV_JWT_SECRET
from rhythm_shared.testing.kafka import wait_for


@dataclass
class Reporting:
    runtime: Runtime
    client: httpx.AsyncClient
    settings: Settings
    tenant: str
    clock: ManualClock

    def token(self, subject: str, *roles: str, tenant: str | None = None) -> dict[str, str]:
        token = issue_token(
            DEV_JWT_SECRET,
            tenant=tenant or self.tenant,
            subject=subject,
            roles=list(roles),
            now=self.clock.now(),
            ttl=timedelta(days=3650),
        )
        return {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, subject: str = "ceo", *roles: str, **params: Any) -> Any:
        response = await self.client.get(
            f"/v1/dashboards/{path}",
            params=params,
            headers=self.token(subject, *(roles or ("executive",))),
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def consumed(self) -> int:
        """Records applied (or skipped as already applied) by the active generation."""
        async with self.runtime.sessions() as session:
            generation = await active_generation(session)
            total = await session.execute(
                select(func.coalesce(func.sum(consumer_positions.c.next_offset), 0)).where(
                    consumer_positions.c.generation == generation
                )
            )
            return int(total.scalar() or 0)

    async def wait_consumed(self, count: int, timeout_s: float = 60) -> None:
        async def done() -> bool:
            return await self.consumed() >= count

        await wait_for(done, timeout_s=timeout_s, interval_s=0.1)


StartReporting = Callable[..., contextlib.AbstractAsyncContextManager[Reporting]]


async def publish_fast(
    bootstrap: str, events: Iterable[Event], *, topic_prefix: str, ids: Iterable[str] | None = None
) -> int:
    """Publish contract events as CloudEvents records, pipelined (what the relays would send)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    count = 0
    id_iter = iter(ids) if ids is not None else None
    try:
        futures = []
        for event in events:
            eid = next(id_iter) if id_iter is not None else new_event_id()
            record = to_record(event, source="/rhythm/tests", event_id=eid)
            futures.append(
                await producer.send(
                    f"{topic_prefix}{record.topic}",
                    record.value,
                    key=record.key,
                    headers=record.headers,
                )
            )
            count += 1
        for future in futures:
            await future
    finally:
        await producer.stop()
    return count
