"""The ``rhythm`` command: infrastructure, contracts, services and operations."""

from __future__ import annotations

import importlib
import importlib.util

import typer

from rhythm_cli import contracts, infra, mailbox, run, serve

SERVICES = ("goals", "checkins", "notifications", "reporting", "people")

app = typer.Typer(
    name="rhythm",
    help="Rhythm: continuous performance management, as event-driven services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(infra.app, name="infra")
app.add_typer(contracts.app, name="contracts")
app.add_typer(mailbox.app, name="mailbox")
app.add_typer(importlib.import_module("rhythm_cli.dlq").app, name="dlq")
app.command("serve")(serve.serve)
app.command("migrate")(serve.migrate)
app.command("token")(serve.token)
app.command("run")(run.run)

# A service that offers operations (`rhythm checkins sweep`, `rhythm reporting rebuild`, ...)
# exposes a Typer app as `rhythm_<service>.cli:app`; the services stay independent packages.
for _name in SERVICES:
    if importlib.util.find_spec(f"rhythm_{_name}") and importlib.util.find_spec(
        f"rhythm_{_name}.cli"
    ):
        app.add_typer(importlib.import_module(f"rhythm_{_name}.cli").app, name=_name)


if __name__ == "__main__":  # pragma: no cover
    app()
