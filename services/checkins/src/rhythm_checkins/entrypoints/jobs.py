"""The cadence sweep, on a timer inside the service and once on demand (``rhythm checkins
sweep``); the retention of texts after people leave, on a timer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from rhythm_checkins.adapters.unit_of_work import CheckinsRuntime, SqlCheckinsUnitOfWork
from rhythm_checkins.commands import RemoveDueTexts, SweepCadence
from rhythm_checkins.handlers import handle
from rhythm_checkins.settings import Settings
from rhythm_checkins.use_cases.cadence import SweepResult
from rhythm_checkins.use_cases.retention import RetentionResult
from rhythm_shared.kit.jobs import JobSpec

UowFactory = Callable[[], SqlCheckinsUnitOfWork]


async def sweep_once(uow_factory: UowFactory, batch_size: int) -> SweepResult:
    """One batch in its own transaction (rows stay locked only that long)."""
    async with uow_factory() as uow:
        result: SweepResult = await handle(uow, SweepCadence(batch_size=batch_size))
        return result


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
    command = RemoveDueTexts(
        texts_days=settings.retain_texts_after_leaving_days,
        feedback_days=settings.retain_feedback_after_leaving_days,
        batch_size=settings.retention_batch_size,
    )
    async with uow_factory() as uow:
        result: RetentionResult = await handle(uow, command)
        return result


async def retention_until_done(uow_factory: UowFactory, settings: Settings) -> RetentionResult:
    """Batches until nothing more is due (or only rows another replica holds)."""
    total = RetentionResult()
    while True:
        result = await retention_once(uow_factory, settings)
        total.texts += result.texts
        total.feedback += result.feedback
        if result.handled == 0:
            return total


def sweep_workers(runtime: CheckinsRuntime) -> int:
    """Several workers on PostgreSQL; SQLite has one writer at a time anyway."""
    return runtime.settings.sweep_workers if runtime.engine.dialect.name == "postgresql" else 1


def jobs(runtime: CheckinsRuntime) -> Sequence[JobSpec]:
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
