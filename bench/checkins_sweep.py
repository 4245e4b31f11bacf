"""Benchmark: the cadence sweep's cost follows the obligations that are due, not all obligations.

A tenant of 200,000 employees with monthly and quarterly policies; 50,000 monthly obligations
whose reminders fall due in the same hour. The same due set is swept on two databases:

  * small: 200,000 obligation rows in all (the due ones, and next quarter's reviews), and
  * large: 2,000,000 rows (the same, plus next month's obligations planned ahead and eight
    months of closed history per employee).

Rows are seeded with bulk inserts (COPY on PostgreSQL, multi-row INSERTs on SQLite). The timed
work is the real sweep (``rhythm_checkins.entrypoints.jobs.sweep_until_done``: claim due rows
through ``ix_obligations_next_action_at`` with FOR UPDATE SKIP LOCKED in batches, record each
fact's natural key, move the state, write the event to the outbox) until nothing is due:

  1. reminders: at the end of the hour, 50,000 CheckinDue;
  2. misses: after due + grace, 50,000 CheckinMissed (with the consecutive-miss lookup).

Publishing the outbox to Kafka is the relay's work and is not timed here.

Usage: ``.venv/bin/python bench/checkins_sweep.py [--quick] [--batch 500] [--database-url URL]``
(default: a fresh database on the test PostgreSQL, dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from rhythm_checkins.adapters.db import (
    cadence_facts,
    cadence_policies,
    directory,
    kit,
    obligations,
)
from rhythm_checkins.adapters.unit_of_work import SqlCheckinsUnitOfWork
from rhythm_checkins.domain.obligations import obligation_id
from rhythm_checkins.entrypoints.jobs import sweep_until_done
from rhythm_checkins.use_cases.cadence import policy_id_for
from rhythm_shared.contracts.v1.values import CheckinKind, PolicyScope
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head
from rhythm_shared.kit.uow import UnitOfWorkFactory

sys.path.insert(0, str(Path(__file__).parent))
from common import Figure, median, report

MIGRATIONS = Path(str(__import__("rhythm_checkins").__file__)).parent / "migrations"
TENANT = "bench-tenant"
HOUR = datetime(2026, 3, 28, 15, 0, tzinfo=UTC)  # the hour in which the reminders fall due
LEAD, GRACE = timedelta(days=3), timedelta(days=5)
ZONES = ("Europe/Amsterdam", "Europe/London", "America/New_York", "Asia/Kolkata")
DEFAULT_ADMIN = "postgresql+asyncpg://rhythm:rhythm@127.0.0.1:55432/rhythm_test"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

OBLIGATION_COLUMNS = [
    "id",
    "tenant_id",
    "employee_id",
    "manager_id",
    "kind",
    "frequency",
    "policy_id",
    "period_start",
    "period_end",
    "due_at",
    "remind_at",
    "miss_at",
    "state",
    "next_action_at",
    "consecutive_misses",
    "checkin_id",
    "created_at",
    "updated_at",
]


def emp(i: int) -> str:
    return f"e{i:07d}"


def manager(i: int) -> str:
    return emp(i // 8) if i >= 8 else "ceo"


def _month(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return start, nxt - timedelta(days=1)


def obligation_rows(employees_n: int, due_n: int, large: bool) -> Iterator[tuple[Any, ...]]:
    """Obligation rows as tuples in OBLIGATION_COLUMNS order."""
    policy = policy_id_for(TENANT, PolicyScope.TENANT, TENANT)
    monthly, quarterly = CheckinKind.MONTHLY, CheckinKind.QUARTERLY_REVIEW

    def row(
        i: int,
        kind: CheckinKind,
        period: tuple[date, date],
        due: datetime,
        state: str,
        next_at: datetime | None,
    ) -> tuple[Any, ...]:
        return (
            obligation_id(TENANT, emp(i), kind, period[0]),
            TENANT,
            emp(i),
            manager(i),
            kind.value,
            "monthly" if kind == monthly else "quarterly",
            policy,
            period[0],
            period[1],
            due,
            due - LEAD,
            due + GRACE,
            state,
            next_at,
            0,
            None,
            EPOCH,
            EPOCH,
        )

    march = _month(2026, 3)
    for i in range(due_n):
        # Spread over the hour: remind_at = due - lead falls in [HOUR, HOUR + 1h).
        remind = HOUR + timedelta(seconds=(i * 3600) // due_n)
        yield row(i, monthly, march, remind + LEAD, "open", remind)
    q2 = (date(2026, 4, 1), date(2026, 6, 30))
    q2_due = datetime(2026, 6, 30, 15, tzinfo=UTC)
    for i in range(due_n, employees_n):
        yield row(i, quarterly, q2, q2_due, "open", q2_due - LEAD)
    if not large:
        return
    april = _month(2026, 4)
    april_due = datetime(2026, 4, 30, 15, tzinfo=UTC)
    for i in range(employees_n):
        yield row(i, monthly, april, april_due, "open", april_due - LEAD)
    for back in range(1, 9):  # Feb 2026 back to Jul 2025: closed history
        year, month = (2026, 3 - back) if back < 3 else (2025, 15 - back)
        period = _month(year, month)
        due = datetime.combine(period[1], datetime.min.time(), tzinfo=UTC) + timedelta(hours=15)
        for i in range(employees_n):
            yield row(i, monthly, period, due, "closed", None)


def employee_rows(n: int) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        yield (
            TENANT,
            emp(i),
            manager(i),
            f"ou-{i // 200}",
            ZONES[i % len(ZONES)],
            "en",
            date(2020, 1, 6),
            True,
            None,
            EPOCH,
            "",
        )


EMPLOYEE_COLUMNS = [
    "tenant_id",
    "employee_id",
    "manager_id",
    "org_unit_id",
    "time_zone",
    "locale",
    "hired_on",
    "active",
    "deactivated_at",
    "profile_at",
    "profile_event_id",
]


def chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def bulk_insert(
    engine: AsyncEngine, table: Any, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> int:
    count = 0
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            for chunk in chunks(rows, 100_000):
                await raw.copy_records_to_table(table.name, records=chunk, columns=columns)
                count += len(chunk)
            await conn.commit()
        return count
    async with engine.begin() as conn:
        for chunk in chunks(rows, 20_000):
            await conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in chunk])
            count += len(chunk)
    return count


@dataclass
class Scenario:
    name: str
    url: str
    total_rows: int = 0
    seed_s: float = 0.0
    remind_s: list[float] = field(default_factory=list)
    miss_s: list[float] = field(default_factory=list)
    reminded: int = 0
    missed: int = 0
    outbox: int = 0


async def seed(engine: AsyncEngine, employees_n: int, due_n: int, large: bool) -> int:
    await upgrade_to_head(engine, MIGRATIONS)
    async with engine.begin() as conn:
        await conn.execute(
            cadence_policies.insert().values(
                tenant_id=TENANT,
                policy_id=policy_id_for(TENANT, PolicyScope.TENANT, TENANT),
                scope="tenant",
                scope_id=TENANT,
                rules=[
                    {
                        "kind": "monthly",
                        "frequency": "monthly",
                        "grace_days": 5,
                        "lead_time_days": 3,
                    },
                    {
                        "kind": "quarterly_review",
                        "frequency": "quarterly",
                        "grace_days": 10,
                        "lead_time_days": 7,
                    },
                ],
                escalate_after=2,
                escalate_to="skip_level",
                ramp_up_days=30,
                hr_contact_id=None,
                updated_at=EPOCH,
            )
        )
    await bulk_insert(engine, directory.employees, EMPLOYEE_COLUMNS, employee_rows(employees_n))
    total = await bulk_insert(
        engine, obligations, OBLIGATION_COLUMNS, obligation_rows(employees_n, due_n, large)
    )
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    return total


async def reset(engine: AsyncEngine) -> None:
    """Put the due set back as it was before a sweep, so rounds can be repeated."""
    async with engine.begin() as conn:
        await conn.execute(
            update(obligations)
            .where(obligations.c.period_start == date(2026, 3, 1))
            .values(state="open", next_action_at=obligations.c.remind_at, consecutive_misses=0)
        )
        await conn.execute(delete(cadence_facts))
        await conn.execute(delete(kit.outbox))
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))


async def sweep_round(scenario: Scenario, batch: int, workers: int, due_n: int) -> None:
    engine = create_engine(scenario.url)
    try:
        await reset(engine)
        if engine.dialect.name != "postgresql":
            workers = 1
        clock = ManualClock(HOUR + timedelta(hours=1))
        uow = UnitOfWorkFactory(
            session_factory(engine),
            kit,
            clock,
            source="/rhythm/checkins",
            unit_of_work=SqlCheckinsUnitOfWork,
        )
        started = time.perf_counter()
        reminders = await sweep_until_done(uow, batch, workers)
        scenario.remind_s.append(time.perf_counter() - started)
        clock.travel_to(HOUR + LEAD + GRACE + timedelta(hours=1))
        started = time.perf_counter()
        misses = await sweep_until_done(uow, batch, workers)
        scenario.miss_s.append(time.perf_counter() - started)
        async with engine.connect() as conn:
            scenario.outbox = int(
                await conn.scalar(select(func.count()).select_from(kit.outbox)) or 0
            )
        scenario.reminded, scenario.missed = reminders.reminded, misses.missed
        assert reminders.reminded == due_n, f"{reminders.reminded} reminders for {due_n} due"
        assert misses.missed == due_n, f"{misses.missed} misses for {due_n} due"
        assert scenario.outbox == 2 * due_n
        print(
            f"  {scenario.name}: {reminders.reminded:,} reminders in {scenario.remind_s[-1]:.2f}s,"
            f" {misses.missed:,} misses in {scenario.miss_s[-1]:.2f}s",
            flush=True,
        )
    finally:
        await engine.dispose()


async def fresh_postgres(admin_url: str) -> str:
    name = f"bench_checkins_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres(admin_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20,000/200,000 rows, 5,000 due")
    parser.add_argument("--batch", type=int, default=500, help="rows claimed per sweep batch")
    parser.add_argument(
        "--workers", type=int, default=4, help="concurrent sweep workers (PostgreSQL; 1 on SQLite)"
    )
    parser.add_argument("--rounds", type=int, help="measured rounds per size (default 3; 2 full)")
    parser.add_argument("--database-url", help="sqlite+aiosqlite:///PREFIX for SQLite files")
    args = parser.parse_args()
    employees_n, due_n = (20_000, 5_000) if args.quick else (200_000, 50_000)
    rounds = args.rounds or (3 if args.quick else 2)
    admin = os.environ.get("RHYTHM_TEST_POSTGRES_URL", DEFAULT_ADMIN)
    sqlite = bool(args.database_url and args.database_url.startswith("sqlite"))
    scenarios: list[Scenario] = []
    try:
        for name, large in (("small", False), ("large", True)):
            if sqlite:
                url = f"{args.database_url}-{name}-{uuid.uuid4().hex[:6]}.db"
            else:
                url = await fresh_postgres(admin)
            scenario = Scenario(name, url)
            scenarios.append(scenario)
            engine = create_engine(url)
            started = time.perf_counter()
            scenario.total_rows = await seed(engine, employees_n, due_n, large)
            scenario.seed_s = time.perf_counter() - started
            await engine.dispose()
            print(
                f"  {name}: {scenario.total_rows:,} obligation rows seeded in "
                f"{scenario.seed_s:.1f}s",
                flush=True,
            )
        # Interleaved rounds: the machine's noise falls on both sizes alike; medians reported.
        for _ in range(rounds):
            for scenario in scenarios:
                await sweep_round(scenario, args.batch, args.workers, due_n)
    finally:
        for scenario in scenarios:
            if sqlite:
                await asyncio.to_thread(
                    Path(scenario.url.split("///", 1)[1]).unlink, missing_ok=True
                )
            else:
                await drop_postgres(admin, scenario.url)
    small, large_ = scenarios
    rs, rl = median(small.remind_s), median(large_.remind_s)
    ms, ml = median(small.miss_s), median(large_.miss_s)
    workers = 1 if sqlite else args.workers
    bench = (
        f"checkins_sweep ({'sqlite' if sqlite else 'postgresql'}, {employees_n:,} employees, "
        f"{due_n:,} due in one hour, batch {args.batch}, {workers} workers, median of {rounds})"
    )
    s_rows, l_rows = f"{small.total_rows:,} rows", f"{large_.total_rows:,} rows"
    report(
        bench,
        [
            Figure(f"CheckinDue/s at {s_rows}", due_n / rs, "obligations/s"),
            Figure(f"CheckinDue/s at {l_rows}", due_n / rl, "obligations/s"),
            Figure(f"CheckinMissed/s at {s_rows}", due_n / ms, "obligations/s"),
            Figure(f"CheckinMissed/s at {l_rows}", due_n / ml, "obligations/s"),
            Figure(f"reminder sweep at {l_rows}", rl, "s", f"at {s_rows}", rs),
            Figure(f"miss sweep at {l_rows}", ml, "s", f"at {s_rows}", ms),
        ],
    )
    print(
        f"  rows x{large_.total_rows / small.total_rows:.0f} with the same {due_n:,} due: "
        f"sweep time x{(rl + ml) / (rs + ms):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
