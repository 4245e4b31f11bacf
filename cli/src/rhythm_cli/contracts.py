"""``rhythm contracts``: publish the event contract (JSON Schemas and AsyncAPI) as files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rhythm_shared.contracts.export import export_contracts

app = typer.Typer(no_args_is_help=True, help="The public event contract.")
console = Console()


@app.callback()
def _contracts() -> None:
    """The public event contract: JSON Schemas per event type and an AsyncAPI 3.0 document."""
    # A callback keeps this a command group, so `rhythm contracts export` works with one command.


@app.command("export")
def export(
    directory: Annotated[
        Path, typer.Argument(help="Where to write the files (created if missing).")
    ] = Path("out/contracts"),
) -> None:
    """Write <ce_type>.schema.json per event type, asyncapi.json and (with PyYAML) asyncapi.yaml."""
    written = export_contracts(directory)
    table = Table(title=f"Contracts written to {directory}", show_lines=False)
    table.add_column("file")
    table.add_column("bytes", justify="right")
    for path in written:
        table.add_row(path.name, str(path.stat().st_size))
    console.print(table)
    schemas = sum(1 for path in written if path.name.endswith(".schema.json"))
    console.print(f"[green]{schemas} event schemas and the AsyncAPI document[/green]")
