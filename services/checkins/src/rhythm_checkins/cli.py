"""``rhythm checkins ...``: operations of the check-ins service."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from rhythm_checkins.entrypoints.jobs import sweep_until_done, sweep_workers
from rhythm_checkins.use_cases.cadence import SweepResult
from rhythm_shared.kit.app import Runtime, running
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.outbox import OutboxRelay

app = typer.Typer(help="Check-ins and cadence operations.", no_args_is_help=True)


def _parse_instant(value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time") from exc
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


async def relay_all(runtime: Runtime) -> int:
    """Publish every pending outbox row before the process exits."""
    assert runtime.producer is not None
    relay = OutboxRelay(
        runtime.engine,
        runtime.tables,
        runtime.producer,
        topic_prefix=runtime.settings.kafka_topic_prefix,
        batch_size=runtime.settings.relay_batch_size,
    )
    total = 0
    while published := await relay.publish_pending():
        total += published
    return total


async def run_sweep(as_of: datetime, batch_size: int | None = None) -> tuple[SweepResult, int]:
    """Migrate, sweep everything due at ``as_of``, relay the outbox; consumers and timers off."""
    from rhythm_checkins.main import Settings, build

    settings = Settings(run_consumers=False, run_jobs=False, run_relay=False)
    application = build(settings, clock=ManualClock(as_of))
    async with running(application) as runtime:
        result = await sweep_until_done(
            runtime.uow, batch_size or settings.sweep_batch_size, sweep_workers(runtime)
        )
        relayed = await relay_all(runtime)
    return result, relayed


@app.command()
def sweep(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="ISO 8601 instant to sweep at (default: now)."),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Rows claimed per batch.")] = None,
) -> None:
    """Run the cadence sweep once: plan obligations, send due reminders, report misses and
    escalations that are due at AS_OF; then publish the events and exit."""
    instant = _parse_instant(as_of) if as_of else datetime.now(UTC)
    result, relayed = asyncio.run(run_sweep(instant, batch_size))
    typer.echo(
        json.dumps(
            {
                "as_of": instant.isoformat(),
                "planned_employees": result.planned,
                "reminded": result.reminded,
                "missed": result.missed,
                "escalated": result.escalated,
                "deferred": result.deferred,
                "events_published": relayed,
            }
        )
    )
