"""``rhythm serve NAME`` and ``rhythm token``."""

from __future__ import annotations

import importlib
from enum import StrEnum
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from rhythm_shared.kit.auth import Role, issue_token
from rhythm_shared.kit.clock import SystemClock
from rhythm_shared.kit.settings import ServiceSettings, explain


class ServiceName(StrEnum):
    goals = "goals"
    checkins = "checkins"
    notifications = "notifications"
    reporting = "reporting"
    people = "people"


def serve(
    name: Annotated[ServiceName, typer.Argument(help="The service to run.")],
    port: Annotated[int | None, typer.Option(help="HTTP port (default from settings).")] = None,
) -> None:
    """Run one service: its HTTP API, consumers, outbox relay and timed jobs, in one process."""
    main = importlib.import_module(f"rhythm_{name.value}.main")
    try:
        settings: ServiceSettings = main.Settings()
    except ValidationError as exc:
        # A refused setting is the operator's to fix: say which and how, not a traceback.
        typer.echo(f"rhythm {name.value} cannot start with these settings:", err=True)
        for line in explain(exc):
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(2) from None
    app = main.build(settings)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=port or settings.http_port,
        log_config=None,  # the service's JSON logging stays in charge
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
