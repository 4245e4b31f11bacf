"""Benchmark: the goals staleness job's cost follows the goals that are due, not all goals.

Seeds a SQLite file (the embedded default) with N goals of which D are due for a stale check,
then times the real job round (``rhythm_goals.handlers.mark_stale_goals``: claim due rows
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
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from common import Figure, report
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.dialects import sqlite

from rhythm_goals.adapters.db import goals, kit
from rhythm_goals.adapters.unit_of_work import SqlGoalsUnitOfWork
from rhythm_goals.handlers import mark_stale_goals
from rhythm_goals.main import MIGRATIONS
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head
from rhythm_shared.kit.uow import UnitOfWorkFactory

NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
INSERT_CHUNK = 5000


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


class Dataset:
    """One SQLite file of ``total`` goals of which ``due`` are due, resettable between runs."""

    def __init__(self, path: Path, total: int, due: int) -> None:
        self.path, self.total, self.due = path, total, due
        self.rows = _rows(total, due, random.Random(total * 31 + due))
        self.engine = create_engine(f"sqlite+aiosqlite:///{path}")

    async def seed(self) -> float:
        await upgrade_to_head(self.engine, MIGRATIONS)
        return await asyncio.to_thread(self._insert_all)

    def _insert_all(self) -> float:
        """Bulk insert with the driver's executemany over ready-made tuples, one transaction.

        Values are converted once per column by the column types' own SQLite bind processors,
        so the rows are stored exactly as the service stores them.
        """
        dialect = sqlite.dialect()
        compiled = goals.insert().compile(dialect=dialect)
        names = list(compiled.positiontup or ())
        processors = [goals.c[n].type._cached_bind_processor(dialect) for n in names]
        tuples = [
            tuple(
                p(row.get(n)) if p is not None else row.get(n)
                for n, p in zip(names, processors, strict=True)
            )
            for row in self.rows
        ]
        started = time.perf_counter()
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN")
            for i in range(0, len(tuples), INSERT_CHUNK):
                conn.executemany(str(compiled), tuples[i : i + INSERT_CHUNK])
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            # Fold the write-ahead log into the database now, not during the timed job.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return time.perf_counter() - started

    async def reset(self) -> None:
        """Back to the seeded state: due goals due again, the outbox empty."""
        due = [
            {"g": r["goal_id"], "c": r["next_stale_check_at"]}
            for r in self.rows
            if r["next_stale_check_at"] <= NOW  # type: ignore[operator]
        ]
        stmt = (
            update(goals)
            .where(goals.c.goal_id == bindparam("g"))
            .values(next_stale_check_at=bindparam("c"), stale_since=None)
        )
        await asyncio.to_thread(self._bulk, stmt, due, kit.outbox.delete())

    def _bulk(self, stmt: Any, rows: list[dict[str, object]], *before: Any) -> float:
        # A synchronous engine: one executemany per chunk, in one transaction.
        engine = sa_create_engine(f"sqlite:///{self.path}")
        started = time.perf_counter()
        with engine.begin() as conn:
            for other in before:
                conn.execute(other)
            for i in range(0, len(rows), INSERT_CHUNK):
                conn.execute(stmt, rows[i : i + INSERT_CHUNK])
            conn.exec_driver_sql("ANALYZE")
        with engine.connect() as conn:
            # Fold the write-ahead log into the database now, not during the timed job.
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        return time.perf_counter() - started

    async def plan(self, batch: int) -> str:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT goal_id FROM goals "
                        "WHERE next_stale_check_at <= :now ORDER BY next_stale_check_at LIMIT :n"
                    ),
                    {"now": NOW.replace(tzinfo=None).isoformat(sep=" "), "n": batch},
                )
            ).all()
            await conn.rollback()
        return "; ".join(str(r[-1]) for r in rows)

    async def full_scan(self) -> float:
        """What a job without the index pays every round: read every goal to find the due."""
        started = time.perf_counter()
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(goals.c.goal_id, goals.c.last_progress_at, goals.c.update_interval_days)
            )
            found = sum(
                1
                for r in result
                if r.last_progress_at + timedelta(days=r.update_interval_days) <= NOW
            )
            await conn.rollback()
        assert found == self.due, (found, self.due)
        return time.perf_counter() - started

    async def job(self, batch: int) -> tuple[float, int, float]:
        """Run job rounds until nothing is due: (seconds, rounds, seconds of the empty round)."""
        clock = ManualClock(NOW)
        uow = UnitOfWorkFactory(
            session_factory(self.engine), kit, clock, "/rhythm/goals", SqlGoalsUnitOfWork
        )
        handled = rounds = 0
        started = time.perf_counter()
        while True:
            empty_started = time.perf_counter()
            async with uow() as unit:
                n = await mark_stale_goals(unit, batch)
            if n == 0:
                break
            handled += n
            rounds += 1
        finished = time.perf_counter()
        async with self.engine.connect() as conn:
            outbox = int(await conn.scalar(select(func.count()).select_from(kit.outbox)) or 0)
            await conn.rollback()
        assert handled == self.due == outbox, (handled, self.due, outbox)
        return empty_started - started, rounds, finished - empty_started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 goals of which 2,000 due")
    parser.add_argument("--batch", type=int, default=500, help="goals claimed per transaction")
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs of each (median and best)"
    )
    parser.add_argument("--keep", type=Path, help="keep the SQLite files in this directory")
    args = parser.parse_args()
    total, due = (20_000, 2_000) if args.quick else (200_000, 20_000)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="goals-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"goals staleness benchmark: SQLite, batch {args.batch}, files in {workdir}")
        large = Dataset(workdir / "large.db", total, due)
        base = Dataset(workdir / "baseline.db", due, due)
        for d in (large, base):
            seconds = await d.seed()
            print(f"seeded {d.total:>8,} goals ({d.due:,} due) in {seconds:6.2f} s")
        print(f"query plan of the claim: {await large.plan(args.batch)}")
        scan_s = statistics.median([await large.full_scan() for _ in range(args.repeat)])

        times: dict[str, list[float]] = {"large": [], "baseline": []}
        empty: list[float] = []
        rounds = 0
        # Interleaved, so a busy machine slows both alike.
        for _ in range(args.repeat):
            for label, d in (("large", large), ("baseline", base)):
                seconds, rounds, empty_s = await d.job(args.batch)
                times[label].append(seconds)
                if d is large:
                    empty.append(empty_s)
                await d.reset()
        for label, d in (("large", large), ("baseline", base)):
            median, best = statistics.median(times[label]), min(times[label])
            runs = ", ".join(f"{t:.2f}" for t in times[label])
            print(
                f"{label:8} {d.total:>8,} goals, {d.due:>7,} due, {rounds} rounds: "
                f"median {median:6.2f} s = {d.due / median:6,.0f} goals/s, "
                f"best {best:6.2f} s = {d.due / best:6,.0f} goals/s (runs: {runs})"
            )
        for how, pick in (("median", statistics.median), ("best", min)):
            ratio = pick(times["large"]) / pick(times["baseline"])
            print(
                f"ratio large/baseline job time ({how}): {ratio:.2f}x for "
                f"{large.total / base.total:.0f}x the goals (1.0x: the cost follows what is due)"
            )
        print(
            f"a round with nothing due on {large.total:,} goals: "
            f"{statistics.median(empty) * 1000:.1f} ms; a full scan to find the due ones: "
            f"{scan_s * 1000:.0f} ms ({scan_s / statistics.median(empty):,.0f}x)"
        )
        large_s, base_s = statistics.median(times["large"]), statistics.median(times["baseline"])
        report(
            "goals_staleness",
            [
                Figure(
                    f"staleness job, {large.total:,} goals ({large.due:,} due)",
                    large.due / large_s,
                    "goals/s",
                    f"{base.total:,} goals, all due",
                    base.due / base_s,
                ),
                Figure(
                    f"job time, {large.total:,} goals ({large.due:,} due)",
                    large_s,
                    "s",
                    f"{base.total:,} goals ({base.due:,} due)",
                    base_s,
                ),
                Figure(
                    "round with nothing due",
                    statistics.median(empty) * 1000,
                    "ms",
                    "full scan for due goals",
                    scan_s * 1000,
                ),
            ],
        )
        await large.engine.dispose()
        await base.engine.dispose()
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
