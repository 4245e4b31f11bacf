"""``rhythm reporting ...``: operations of the reporting service."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from rhythm_reporting.entrypoints.rebuild import rebuild_read_model
from rhythm_reporting.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Reporting: read models and dashboards.")


@app.callback()
def _reporting() -> None:
    """Operations of the reporting service (settings from the environment, like the service)."""


@app.command("rebuild")
def rebuild(
    keep_old: Annotated[
        bool, typer.Option(help="Keep the replaced generation's rows (for comparison).")
    ] = False,
    grace: Annotated[
        float, typer.Option(help="Seconds to wait after the swap before deleting the old rows.")
    ] = 5.0,
) -> None:
    """Replay every topic from the start of retention into a fresh read model and swap it in.

    The running service keeps answering from the current read model until the swap, then
    continues live on the new one; nothing is lost or counted twice across the swap.
    """
    result = asyncio.run(rebuild_read_model(Settings(), keep_old=keep_old, grace_s=grace))
    typer.echo(
        f"read model generation {result.generation} is live (replaced {result.replaced}): "
        f"{result.records} records replayed in {result.seconds:.1f} s"
    )
