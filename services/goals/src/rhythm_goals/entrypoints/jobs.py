"""Timed jobs: the staleness sweep, and archiving the goals of people who have left."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from rhythm_goals import use_cases
from rhythm_goals.settings import Settings
from rhythm_shared.kit.app import Runtime
from rhythm_shared.kit.jobs import JobSpec
from rhythm_shared.kit.uow import UnitOfWork


def _round_job(
    runtime: Runtime, name: str, use_case: Callable[[UnitOfWork, int], Awaitable[int]]
) -> JobSpec:
    """One round claims at most a batch in one transaction; a full batch runs the next round
    at once, so a burst drains without waiting for the interval."""
    # A runtime built with the kit's settings alone runs the jobs on the documented defaults.
    settings = runtime.settings
    if not isinstance(settings, Settings):
        settings = Settings.model_construct()
    batch, interval = settings.staleness_batch_size, settings.staleness_interval_s

    async def run() -> int:
        async with runtime.uow() as uow:
            return await use_case(uow, batch)

    return JobSpec(name=name, interval_s=interval, run=run, full_round=batch)


def staleness_job(runtime: Runtime) -> JobSpec:
    return _round_job(runtime, "goal-staleness", use_cases.mark_stale_goals)


def leavers_job(runtime: Runtime) -> JobSpec:
    """Deactivations dated ahead take effect: their owners' open goals are archived."""
    return _round_job(runtime, "archive-leavers-goals", use_cases.archive_leavers_goals)


def jobs(runtime: Runtime) -> Sequence[JobSpec]:
    return [staleness_job(runtime), leavers_job(runtime)]
