"""Benchmark: the goals staleness job's cost follows the goals that are due, not all goals.

Seeds a SQLite file (the embedded default) with N goals of which D are due for a stale check,
then times the real job round (``rhythm_goals.use_cases.mark_stale_goals``: claim due rows
through ``ix_goals_next_stale_check_at``, write one GoalStale per goal to the outbox, take the
goals out of the index) until nothing is due. Publishing from the outbox to Kafka is the relay's
work and is not timed here.

Compared in the same run against
  * baseline: the same job on a database of D goals, all due (what the cost would be if only
    due goals existed), and
  * full scan: one pass over every goal to find the due ones, which a job without the index
    would pay on every round, whether anything is due or not.

Usage: ``.venv/bin/python bench/goals_staleness.py [--quick] [--batch 500] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from rhythm_goals.adapters.db import goals, kit
from rhythm_goals.main import MIGRATIONS
from rhythm_goals.use_cases import mark_stale_goals
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head
from rhythm_shared.kit.uow import UnitOfWorkFactory

NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
INSERT_CHUNK = 5000


@dataclass
class Run:
    total: int
    due: int
    seed_s: float
    job_s: float
    handled: int
    outbox: int
    rounds: int

    @property
    def rate(self) -> float:
        return self.handled / self.job_s if self.job_s else float("inf")


def _rows(total: int, due: int, rng: random.Random) -> list[dict[str, object]]:
    created = NOW - timedelta(days=40)
    rows: list[dict[str, object]] = []
    for i in range(total):
        is_due = i < due
        # Due: the check time passed in the last 20 days. Not due: it lies 1 to 20 days ahead.
        offset = timedelta(seconds=rng.randint(60, 20 * 86400))
        check = NOW - offset if is_due else NOW + offset
        rows.append(
            {
                "goal_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "tenant_id": f"tenant-{i % 5}",
                "owner_type": "person",
                "owner_id": f"e-{i}",
                "parent_goal_id": None,
                "kind": "okr",
                "title": f"Goal {i}",
                "description": None,
                "visibility": "tenant",
                "period_start": date(2026, 4, 1),
                "period_end": date(2026, 6, 30),
                "update_interval_days": 14,
                "status": "on_track",
                "status_overridden": False,
                "progress": 0.0,
                "confidence": None,
                "revision": 1,
                "created_at": created,
                "created_by": f"e-{i}",
                "updated_at": created,
                "last_progress_at": check - timedelta(days=14),
                "next_stale_check_at": check,
                "stale_since": None,
            }
        )
    rng.shuffle(rows)  # due rows scattered through the table, as in life
    return rows


async def run_once(
    path: Path, total: int, due: int, batch: int, *, scan: bool = False
) -> tuple[Run, float | None, str]:
    await asyncio.to_thread(path.unlink, missing_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    await upgrade_to_head(engine, MIGRATIONS)
    rows = _rows(total, due, random.Random(total * 31 + due))
    started = time.perf_counter()
    async with engine.begin() as conn:
        for i in range(0, len(rows), INSERT_CHUNK):
            await conn.execute(goals.insert(), rows[i : i + INSERT_CHUNK])
    async with engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()
    seed_s = time.perf_counter() - started

    async with engine.connect() as conn:
        plan_rows = (
            await conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT goal_id FROM goals "
                    "WHERE next_stale_check_at <= :now ORDER BY next_stale_check_at LIMIT :n"
                ),
                {"now": NOW.replace(tzinfo=None).isoformat(sep=" "), "n": batch},
            )
        ).all()
        await conn.rollback()
    plan = "; ".join(str(r[-1]) for r in plan_rows)

    scan_s: float | None = None
    if scan:
        # What a job without the index pays each round: read every goal to find the due ones.
        started = time.perf_counter()
        async with engine.connect() as conn:
            result = await conn.execute(
                select(goals.c.goal_id, goals.c.last_progress_at, goals.c.update_interval_days)
            )
            found = sum(
                1
                for r in result
                if r.last_progress_at + timedelta(days=r.update_interval_days) <= NOW
            )
            await conn.rollback()
        scan_s = time.perf_counter() - started
        assert found == due, (found, due)

    uow = UnitOfWorkFactory(session_factory(engine), kit, ManualClock(NOW), source="/rhythm/goals")
    handled = rounds = 0
    started = time.perf_counter()
    while True:
        async with uow() as unit:
            n = await mark_stale_goals(unit, batch)
        if n == 0:
            break
        handled += n
        rounds += 1
    job_s = time.perf_counter() - started
    async with engine.connect() as conn:
        outbox = int(await conn.scalar(select(func.count()).select_from(kit.outbox)) or 0)
        await conn.rollback()
    await engine.dispose()
    assert handled == due == outbox, (handled, due, outbox)
    return Run(total, due, seed_s, job_s, handled, outbox, rounds), scan_s, plan


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 goals of which 2,000 due")
    parser.add_argument("--batch", type=int, default=500, help="goals claimed per transaction")
    parser.add_argument("--keep", type=Path, help="keep the SQLite files in this directory")
    args = parser.parse_args()
    total, due = (20_000, 2_000) if args.quick else (200_000, 20_000)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="goals-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"goals staleness benchmark: SQLite, batch {args.batch}, files in {workdir}")
        big, scan_s, plan = await run_once(workdir / "big.db", total, due, args.batch, scan=True)
        base, _, _ = await run_once(workdir / "base.db", due, due, args.batch)
        print(f"query plan of the claim: {plan}")
        for label, r in (("large", big), ("baseline", base)):
            print(
                f"{label:9} {r.total:>8,} goals, {r.due:>7,} due: seeded in {r.seed_s:6.2f} s; "
                f"job {r.job_s:6.2f} s in {r.rounds} rounds = {r.rate:9,.0f} goals/s "
                f"({r.outbox:,} GoalStale in the outbox)"
            )
        print(
            f"ratio large/baseline job time: {big.job_s / base.job_s:.2f}x "
            f"for {big.total / base.total:.0f}x the goals (1.0x = cost follows what is due)"
        )
        if scan_s is not None:
            print(
                f"full scan of all {big.total:,} goals to find the due ones: {scan_s:.2f} s per "
                f"round, even when nothing is due; one indexed claim of {args.batch}: "
                f"{big.job_s / big.rounds * 1000:.1f} ms"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
