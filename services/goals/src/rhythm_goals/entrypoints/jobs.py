"""Timed jobs: the staleness sweep, and archiving the goals of people who have left."""

from __future__ import annotations

from collections.abc import Sequence

from rhythm_goals import use_cases
from rhythm_goals.settings import Settings
from rhythm_shared.kit.app import Runtime
from rhythm_shared.kit.jobs import JobSpec


def staleness_job(runtime: Runtime) -> JobSpec:
    """One round claims at most a batch of due goals in one transaction; a full batch runs the
    next round at once, so a burst of due goals drains without waiting for the interval."""
    settings = runtime.settings
    batch = settings.staleness_batch_size if isinstance(settings, Settings) else 500
    interval = settings.staleness_interval_s if isinstance(settings, Settings) else 60.0

    async def run() -> int:
        async with runtime.uow() as uow:
            return await use_cases.mark_stale_goals(uow, batch)

    return JobSpec(name="goal-staleness", interval_s=interval, run=run, full_round=batch)


def leavers_job(runtime: Runtime) -> JobSpec:
    """Deactivations dated ahead take effect: their owners' open goals are archived."""
    settings = runtime.settings
    batch = settings.staleness_batch_size if isinstance(settings, Settings) else 500
    interval = settings.staleness_interval_s if isinstance(settings, Settings) else 60.0

    async def run() -> int:
        async with runtime.uow() as uow:
            return await use_cases.archive_leavers_goals(uow, batch)

    return JobSpec(name="archive-leavers-goals", interval_s=interval, run=run, full_round=batch)


def jobs(runtime: Runtime) -> Sequence[JobSpec]:
    return [staleness_job(runtime), leavers_job(runtime)]
