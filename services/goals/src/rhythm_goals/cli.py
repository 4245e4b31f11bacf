"""``rhythm goals ...``: operations of the goals service."""

from __future__ import annotations

import asyncio

import typer

from rhythm_goals.adapters.db import kit
from rhythm_goals.adapters.unit_of_work import SqlGoalsUnitOfWork
from rhythm_goals.handlers import mark_stale_goals
from rhythm_goals.main import MIGRATIONS
from rhythm_goals.settings import Settings
from rhythm_shared.kit.clock import SystemClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head
from rhythm_shared.kit.uow import UnitOfWorkFactory

app = typer.Typer(help="Operations of the goals service.", no_args_is_help=True)


@app.command("stale-sweep")
def stale_sweep() -> None:
    """Run the staleness job until nothing is due (GoalStale events go to the outbox; the
    running service's relay publishes them)."""

    async def sweep() -> int:
        settings = Settings()
        engine = create_engine(settings.effective_database_url)
        await upgrade_to_head(engine, MIGRATIONS)
        uow = UnitOfWorkFactory(
            session_factory(engine), kit, SystemClock(), "/rhythm/goals", SqlGoalsUnitOfWork
        )
        total = 0
        try:
            while True:
                async with uow() as unit:
                    handled = await mark_stale_goals(unit, settings.staleness_batch_size)
                if not handled:
                    return total
                total += handled
        finally:
            await engine.dispose()

    typer.echo(f"{asyncio.run(sweep())} due goals handled")
