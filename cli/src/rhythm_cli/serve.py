"""``rhythm serve NAME`` and ``rhythm token``."""

from __future__ import annotations

import asyncio
import importlib
from enum import StrEnum
from types import ModuleType
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from rhythm_shared.kit.auth import Role, issue_token
from rhythm_shared.kit.clock import SystemClock
from rhythm_shared.kit.settings import ServiceSettings, explain


class ServiceName(StrEnum):
    goals = "goals"
    checkins = "checkins"
    notifications = "notifications"
    reporting = "reporting"
    people = "people"


def _settings(name: ServiceName, main: ModuleType) -> ServiceSettings:
    try:
        settings: ServiceSettings = main.Settings()
    except ValidationError as exc:
        # A refused setting is the operator's to fix: say which and how, not a traceback.
        typer.echo(f"rhythm {name.value} cannot start with these settings:", err=True)
        for line in explain(exc):
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(2) from None
    except SettingsError as exc:
        # A value that is not even the right shape (a JSON setting that is not JSON).
        typer.echo(f"rhythm {name.value} cannot start with these settings: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


def migrate(
    name: Annotated[ServiceName, typer.Argument(help="The service whose database to migrate.")],
    check: Annotated[
        bool, typer.Option("--check", help="Only say where the schema stands; exit 1 if behind.")
    ] = False,
) -> None:
    """Migrate one service's database (DATABASE_URL) to this image's schema, then exit: the
    Kubernetes Job of an upgrade, for services run with MIGRATE_ON_START=false. A schema that a
    newer image migrated with rollback-safe steps is left as it is."""
    from rhythm_shared.kit.db import create_engine
    from rhythm_shared.kit.migrations import SchemaIncompatible, schema_state, upgrade_to_head

    main = importlib.import_module(f"rhythm_{name.value}.main")
    settings = _settings(name, main)

    async def run() -> str:
        engine = create_engine(settings.effective_database_url)
        try:
            if check:
                state = await schema_state(engine, main.MIGRATIONS)
                if not state.ready:
                    typer.echo(f"rhythm {name.value}: {state.describe()}", err=True)
                    raise typer.Exit(1)
            else:
                state = await upgrade_to_head(engine, main.MIGRATIONS)
            return state.describe()
        finally:
            await engine.dispose()

    try:
        typer.echo(f"rhythm {name.value}: {asyncio.run(run())}")
    except SchemaIncompatible as exc:
        typer.echo(f"rhythm {name.value} cannot run on this database: {exc}", err=True)
        raise typer.Exit(3) from None


def serve(
    name: Annotated[ServiceName, typer.Argument(help="The service to run.")],
    port: Annotated[int | None, typer.Option(help="HTTP port (default from settings).")] = None,
) -> None:
    """Run one service: its HTTP API, consumers, outbox relay and timed jobs, in one process."""
    main = importlib.import_module(f"rhythm_{name.value}.main")
    settings = _settings(name, main)
    app = main.build(settings)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=port or settings.http_port,
        log_config=None,  # the service's JSON logging stays in charge
        # uvloop where it is installed (a dependency everywhere but Windows): the event path
        # runs many small tasks and thread hand-offs (aiosqlite), and its loop costs ~10 %
        # less CPU per email than asyncio's own (bench/notifications_fanout.py).
        loop="auto",
        timeout_graceful_shutdown=20,
    )


def token(
    tenant: Annotated[str, typer.Option(help="Tenant claim.")],
    subject: Annotated[str, typer.Option(help="Subject (employee id) claim.")],
    role: Annotated[list[Role], typer.Option(help="Role claim; repeat for several.")],
    hours: Annotated[int, typer.Option(help="Lifetime in hours.")] = 12,
) -> None:
    """Print a development bearer token, signed with the first key of JWT_SECRETS, else with
    JWT_SECRET, else with the development secret."""
    from datetime import timedelta

    try:
        # Development: the development secret is accepted when nothing else is set.
        settings = ServiceSettings(environment="development")
    except ValidationError as exc:
        typer.echo("rhythm token cannot sign with these settings:", err=True)
        for line in explain(exc):
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        issue_token(
            settings.jwt_keys[0],
            tenant=tenant,
            subject=subject,
            roles=[r.value for r in role],
            now=SystemClock().now(),
            ttl=timedelta(hours=hours),
        )
    )
