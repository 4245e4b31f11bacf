"""Timed jobs (cadence sweep, goal staleness, digests) running inside the service process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("rhythm.jobs")


@dataclass(frozen=True)
class JobSpec:
    """``run`` does one round and returns how many items it handled; a full round runs again."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[int]]
    full_round: int = 0


async def run_periodically(job: JobSpec, stop: asyncio.Event) -> None:
    backoff = job.interval_s
    while not stop.is_set():
        try:
            handled = await job.run()
            backoff = job.interval_s
            if handled:
                log.info("job_round", extra={"job": job.name, "handled": handled})
            if job.full_round and handled >= job.full_round:
                continue  # more is due right now: don't wait
            delay = job.interval_s
        except Exception:
            log.exception("job_failed", extra={"job": job.name})
            backoff = min(backoff * 2, 300.0)
            delay = backoff
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
