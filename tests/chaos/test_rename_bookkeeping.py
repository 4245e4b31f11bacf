"""The chaos suite's rename check follows the people service, not the order calls return in.

Two renames of one person race: the first is held back (as behind a kill and its retries) until
the second has been applied, so the people service applies the first one last. The check must
expect the first one's name (what the service holds and published last), and still be strict."""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path

import httpx
import pytest

from bench.chaos import checks
from bench.chaos.workload import Api, make_org
from rhythm_people.main import Settings, build
from rhythm_shared.kit.app import running
from rhythm_shared.testing import wait_for

pytestmark = pytest.mark.kafka


class HoldFirstRename(httpx.AsyncBaseTransport):
    """Holds rename 1 before the service sees it until rename 2 has been answered."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.second_answered = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("Idempotency-Key")
        if key == "chaos-rename-1":
            await self.second_answered.wait()
        response = await self.inner.handle_async_request(request)
        if key == "chaos-rename-2":
            self.second_answered.set()
        return response


async def test_the_rename_applied_last_is_the_one_expected_whatever_order_the_calls_return_in(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    tenant = f"chaos-{uuid.uuid4().hex[:6]}"
    settings = Settings(
        environment="development",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'people.db'}",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        topic_partitions=3,
        relay_poll_interval_s=0.05,
        log_json=False,
    )
    app = build(settings)
    org = make_org(tenant, 30, random.Random(13))
    api = Api({"people": "http://people"}, org)
    await api.client.aclose()
    api.client = httpx.AsyncClient(
        transport=HoldFirstRename(httpx.ASGITransport(app=app)), base_url="http://people"
    )
    person = next(e for e, m in org.managers.items() if m)
    async with running(app):
        await api.seed()
        first = asyncio.create_task(api.rename(1, [person]))
        await asyncio.sleep(0.2)
        await api.rename(2, [person])
        await first
        await api.client.aclose()

        applied = checks.people_names(tmp_path, tenant)
        assert applied[person] == f"Person {person[2:]} (v1)"  # the held-back one won
        # ...while the name current when the calls returned, which the check used to expect:
        assert org.names[person] == f"Person {person[2:]} (v2)"

        async def renamed_row() -> checks.Row | None:
            produced = await checks.produced(kafka_bootstrap, topic_prefix, tenant)
            rows = {r.check: r for r in checks.check_http(produced, api.log, org, applied)}
            row = rows["people renamed -> latest EmployeeUpserted"]
            each = rows["people renames -> EmployeeUpserted each"]
            return row if row.actual == 1 and each.actual == 2 else None

        row = await wait_for(renamed_row, timeout_s=30)
    assert (row.expected, row.lost, row.double) == (1, 0, 0)
    assert api.log.renamed[person] == {f"Person {person[2:]} (v1)", f"Person {person[2:]} (v2)"}


def test_the_rename_check_still_fails_when_the_people_service_holds_a_name_nobody_sent() -> None:
    org = make_org("t", 30, random.Random(13))
    api = Api({}, org)
    person = next(e for e, m in org.managers.items() if m)
    api.log.renamed[person] = {"Person A (v1)"}
    rows = {
        r.check: r
        for r in checks.check_http(checks.Produced(), api.log, org, {person: "Person A (v9)"})
    }
    assert rows["people renamed -> latest EmployeeUpserted"].lost == 1
    assert rows["people renames -> EmployeeUpserted each"].lost == 1
