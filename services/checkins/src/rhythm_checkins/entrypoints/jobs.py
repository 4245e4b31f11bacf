"""The cadence sweep, on a timer inside the service and once on demand (``rhythm checkins
sweep``); the retention of texts after people leave, on a timer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from rhythm_checkins.settings import Settings
from rhythm_checkins.use_cases.cadence import SweepResult, sweep
from rhythm_checkins.use_cases.retention import RetentionResult, remove_due_texts
from rhythm_shared.kit.app import Runtime
from rhythm_shared.kit.jobs import JobSpec
from rhythm_shared.kit.uow import UnitOfWork

log = logging.getLogger("rhythm.checkins.sweep")


UowFactory = Callable[[], UnitOfWork]


async def sweep_once(uow_factory: UowFactory, batch_size: int) -> SweepResult:
    """One batch in its own transaction (rows stay locked only that long)."""
    async with uow_factory() as uow:
        return await sweep(uow, batch_size)


async def sweep_until_done(
    uow_factory: UowFactory, batch_size: int, workers: int = 1
) -> SweepResult:
    """Batches until nothing more is due (or only rows another sweeper holds).

    ``workers`` sweep side by side on their own connections (SKIP LOCKED keeps them off each
    other's rows): a burst of due rows is bound by round trips, not by one connection's CPU.
    """

    async def worker() -> SweepResult:
        total = SweepResult()
        while True:
            result = await sweep_once(uow_factory, batch_size)
            total.add(result)
            if result.handled == 0:
                return total

    total = SweepResult()
    for result in await asyncio.gather(*(worker() for _ in range(max(workers, 1)))):
        total.add(result)
    return total


async def retention_once(uow_factory: UowFactory, settings: Settings) -> RetentionResult:
    """One batch of removals in its own transaction."""
    async with uow_factory() as uow:
        return await remove_due_texts(
            uow,
            texts_days=settings.retain_texts_after_leaving_days,
            feedback_days=settings.retain_feedback_after_leaving_days,
            batch_size=settings.retention_batch_size,
        )


async def retention_until_done(uow_factory: UowFactory, settings: Settings) -> RetentionResult:
    """Batches until nothing more is due (or only rows another replica holds)."""
    total = RetentionResult()
    while True:
        result = await retention_once(uow_factory, settings)
        total.texts += result.texts
        total.feedback += result.feedback
        if result.handled == 0:
            return total


def sweep_workers(runtime: Runtime[Settings]) -> int:
    """Several workers on PostgreSQL; SQLite has one writer at a time anyway."""
    return runtime.settings.sweep_workers if runtime.engine.dialect.name == "postgresql" else 1


def jobs(runtime: Runtime[Settings]) -> Sequence[JobSpec]:
    settings = runtime.settings
    batch = settings.sweep_batch_size
    interval = settings.sweep_interval_s
    workers = sweep_workers(runtime)

    async def run() -> int:
        rounds = await asyncio.gather(*(sweep_once(runtime.uow, batch) for _ in range(workers)))
        return sum(r.handled for r in rounds)

    async def run_retention() -> int:
        return (await retention_once(runtime.uow, settings)).handled

    # Full batches mean more is due now: the kit runs the next round without waiting.
    return [
        JobSpec(name="cadence-sweep", interval_s=interval, run=run, full_round=batch * workers),
        JobSpec(
            name="retention",
            interval_s=settings.retention_interval_s,
            run=run_retention,
            full_round=settings.retention_batch_size,
        ),
    ]
