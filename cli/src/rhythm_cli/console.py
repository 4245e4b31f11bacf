"""The ``rhythm`` console script.

A service process (``rhythm serve goals``, ``rhythm migrate goals``: one per pod) gets a command
line of only those two commands, so it does not import the other services' operations, nor
infra, contracts, mailbox, dlq and run: their code would otherwise stay in every pod's memory
(16-19 MiB per process). Every other command line gets the whole ``rhythm`` (rhythm_cli.main).
"""

from __future__ import annotations

import sys

import typer

#: The commands a service process is started with.
PROCESS_COMMANDS = ("serve", "migrate")


def process_app() -> typer.Typer:
    from rhythm_cli import serve

    app = typer.Typer(name="rhythm", no_args_is_help=True, pretty_exceptions_enable=False)
    app.command("serve")(serve.serve)
    app.command("migrate")(serve.migrate)
    return app


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in PROCESS_COMMANDS:
        process_app()()
    else:
        from rhythm_cli.main import app

        app()
