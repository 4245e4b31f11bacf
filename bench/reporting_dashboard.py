"""Dashboard latency for a 200,000-employee tenant on the embedded default (SQLite).

    .venv/bin/python bench/reporting_dashboard.py              # 200,000 employees, 6 months
    .venv/bin/python bench/reporting_dashboard.py --quick      # 20,000 employees
    .venv/bin/python bench/reporting_dashboard.py --db /tmp/r.db --reuse   # skip the load

The generator (bench/reporting_data.py) feeds the real projection (the same code the Kafka
ingest runs, without the broker) into a fresh SQLite file; then every dashboard endpoint is
requested through the real FastAPI app (in-process ASGI, JSON encoding included) for several
org units and periods, and p50/p95 are printed. Target: p95 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import httpx
from common import Figure, report

sys.path.insert(0, str(Path(__file__).parent))

from reporting_data import stream

from rhythm_reporting.adapters.db import kit
from rhythm_reporting.adapters.store import ensure_active_generation
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.handlers import project_events
from rhythm_reporting.main import Settings, build
from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.clock import ManualClock, SystemClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head
from rhythm_shared.kit.settings import DEV_JWT_SECRET

TENANT = "bench"
MIGRATIONS = Path(__file__).resolve().parent.parent / (
    "services/reporting/src/rhythm_reporting/migrations"
)
ENDPOINTS = [
    "cadence-adherence",
    "cadence-adherence/by-unit",
    "manager-adherence",
    "ownership",
    "feedback",
    "goals",
    "goals/attention",
    "workload-pulse",
]


async def load(url: str, employees: int, months: int, batch: int) -> int:
    engine = create_engine(url)
    await upgrade_to_head(engine, MIGRATIONS)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await ensure_active_generation(session, datetime.now(UTC))
    events = stream(TENANT, employees, months)
    count = 0
    started = time.perf_counter()
    while chunk := list(islice(events, batch)):
        async with SqlReportingUnitOfWork(
            sessions, kit, SystemClock(), "reporting", generation=1
        ) as uow:
            command = ProjectEvents.of((f"ev-{count + i}", e) for i, e in enumerate(chunk))
            await uow.prepare(command.events)  # as the consumer does: the chunk's people read ahead
            await project_events(uow, command)
        count += len(chunk)
        if count % (batch * 50) < batch:
            rate = count / (time.perf_counter() - started)
            print(f"  loaded {count:,} events ({rate:,.0f}/s)", flush=True)
    await engine.dispose()
    print(f"loaded {count:,} events in {time.perf_counter() - started:.0f} s")
    return count


async def measure(url: str, rounds: int) -> dict[str, list[float]]:
    clock = ManualClock(datetime(2026, 1, 15, 9, tzinfo=UTC))
    settings = Settings(
        database_url=url,
        environment="development",
        run_consumers=False,
        run_relay=False,
        run_jobs=False,
        log_level="WARNING",
    )
    app = build(settings, clock=clock)
    token = issue_token(
        DEV_JWT_SECRET,
        tenant=TENANT,
        subject="ceo",
        roles=["executive"],
        now=datetime.now(UTC),  # verified against the real time
        ttl=timedelta(days=1),
    )
    timings: dict[str, list[float]] = {e: [] for e in [*ENDPOINTS, "units"]}
    # Only the HTTP side is measured: no lifespan (no broker needed); dashboards read through
    # the runtime's read-only sessions, which exist from the start.
    runtime = app.state.runtime
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(runtime.engine.dispose)
        stack.push_async_callback(runtime.reader.dispose)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://bench",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            scopes = ["*", "div0", "dep3", "grp12", "team7"]
            periods = ["2025-Q4", "2025-Q3", "2025-11", "2025"]
            for r in range(rounds + 1):
                for scope in scopes:
                    for period in periods:
                        for endpoint in ENDPOINTS:
                            started = time.perf_counter()
                            response = await client.get(
                                f"/v1/dashboards/{endpoint}",
                                params={"unit": scope, "period": period},
                            )
                            elapsed = (time.perf_counter() - started) * 1000
                            assert response.status_code == 200, response.text
                            if r:  # the first round warms caches
                                timings[endpoint].append(elapsed)
                started = time.perf_counter()
                assert (await client.get("/v1/dashboards/units")).status_code == 200
                if r:
                    timings["units"].append((time.perf_counter() - started) * 1000)
            sample = (
                await client.get("/v1/dashboards/cadence-adherence", params={"period": "2025-Q4"})
            ).json()
            print("sample (whole tenant, 2025-Q4):", sample["scope"], sample["summary"])
    return timings


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, default=200_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="20,000 employees")
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temp file)")
    parser.add_argument("--reuse", action="store_true", help="use --db as loaded before")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    employees = 20_000 if args.quick else args.employees
    path = args.db or Path(tempfile.mkdtemp(prefix="rhythm-bench-")) / "reporting.db"
    url = f"sqlite+aiosqlite:///{path}"
    if not args.reuse:
        path.unlink(missing_ok=True)
        print(f"generating a {employees:,}-employee tenant, {args.months} months, into {path}")
        await load(url, employees, args.months, args.batch)
    timings = await measure(url, args.rounds)
    # The unit picker (the whole org tree, loaded once per page) is reported on its own.
    everything = [t for name, ts in timings.items() if name != "units" for t in ts]
    print(f"\n{'endpoint':32} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for endpoint, values in timings.items():
        print(
            f"{endpoint:32} {len(values):>5} {statistics.median(values):>8.1f} "
            f"{p(values, 0.95):>8.1f} {max(values):>8.1f}"
        )
    print(
        f"{'ALL dashboard metric requests':32} {len(everything):>5} "
        f"{statistics.median(everything):>8.1f} {p(everything, 0.95):>8.1f} {max(everything):>8.1f}"
    )
    verdict = "meets" if p(everything, 0.95) < 100 else "MISSES"
    print(f"p95 {p(everything, 0.95):.1f} ms {verdict} the 100 ms target ({employees:,} employees)")
    report(
        "reporting_dashboard",
        [
            Figure(
                f"dashboard p95, {employees:,} employees",
                p(everything, 0.95),
                "ms",
                "target",
                100.0,
            ),
            Figure(f"dashboard p50, {employees:,} employees", statistics.median(everything), "ms"),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
