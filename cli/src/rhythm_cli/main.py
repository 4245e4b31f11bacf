"""The ``rhythm`` command: one entry point for infrastructure, contracts, services and operations."""

from __future__ import annotations

import typer

from rhythm_cli import contracts, infra, serve

app = typer.Typer(
    name="rhythm",
    help="Rhythm: continuous performance management, as event-driven services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(infra.app, name="infra")
app.add_typer(contracts.app, name="contracts")
app.command("serve")(serve.serve)
app.command("token")(serve.token)


if __name__ == "__main__":  # pragma: no cover
    app()
