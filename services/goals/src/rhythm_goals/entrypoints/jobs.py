"""Timed jobs: the staleness sweep, and archiving the goals of people who have left."""

from __future__ import annotations

from collections.abc import Sequence

from rhythm_goals.adapters.unit_of_work import GoalsRuntime
from rhythm_goals.handlers import JOB_HANDLERS
from rhythm_shared.kit.jobs import JobSpec


def _round_job(runtime: GoalsRuntime, name: str) -> JobSpec:
    """One round claims at most a batch in one transaction; a full batch runs the next round
    at once, so a burst drains without waiting for the interval."""
    batch = runtime.settings.staleness_batch_size
    handler = JOB_HANDLERS[name]

    async def run() -> int:
        async with runtime.uow() as uow:
            return await handler(uow, batch)

    return JobSpec(
        name=name, interval_s=runtime.settings.staleness_interval_s, run=run, full_round=batch
    )


def staleness_job(runtime: GoalsRuntime) -> JobSpec:
    return _round_job(runtime, "goal-staleness")


def leavers_job(runtime: GoalsRuntime) -> JobSpec:
    return _round_job(runtime, "archive-leavers-goals")


def jobs(runtime: GoalsRuntime) -> Sequence[JobSpec]:
    return [staleness_job(runtime), leavers_job(runtime)]
