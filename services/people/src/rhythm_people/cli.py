"""``rhythm people ...``: operations of the people service (the bulk CSV import, erasure).

The import validates every row before it touches the database, writes state and outbox rows in
ONE transaction (so nothing is half-imported), then relays the outbox to Kafka and waits until
it is drained. Org units are written, relayed and acknowledged before employees, so a consumer
reading in order finds an employee's unit already known.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from sqlalchemy import event

from rhythm_people import commands, handlers, queries
from rhythm_people.adapters import csv_file
from rhythm_people.adapters.csv_file import RowError
from rhythm_people.adapters.relay import relay_outbox
from rhythm_people.adapters.unit_of_work import PeopleRuntime
from rhythm_people.domain.erasure import SERVICES, ErasureState
from rhythm_people.handlers import PeopleRejected, SyncProgress, SyncResult
from rhythm_people.main import Settings, build
from rhythm_shared.contracts.base import Identifier
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.errors import NotFound

app = typer.Typer(no_args_is_help=True, help="The people service: HR data in.")
console = Console()
err_console = Console(stderr=True)

IMPORT_HELP = """\
Import employees and org units from an HR export (CSV) and publish what changed.

The file is UTF-8, comma-separated, with a header row naming these columns (any order):

\b
  employee_id         required  the employee's stable id
  email               required  work email address
  display_name        required  name to address them by
  manager_id          optional  the direct manager's employee_id (empty: top of the tree)
  org_unit_id         required  the employee's org unit
  org_unit_name       optional  when set, the row also defines the unit: its name ...
  parent_org_unit_id  optional  ... and its parent (empty: a root unit)
  time_zone           required  IANA zone, e.g. Europe/Amsterdam
  locale              required  BCP 47 tag, e.g. nl, en-GB
  hired_on            required  first working day, YYYY-MM-DD
  active              optional  true/false (1/0, yes/no); default true

\b
A row with an empty employee_id defines only an org unit (needs org_unit_id and org_unit_name).
Managers, units and parents may be defined anywhere in the file or already be known to the
service. Every row is validated first; if any is bad, the errors are listed with their line
numbers, nothing is written, and the exit code is 1. Unchanged people publish nothing.
Settings come from the environment (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC_PREFIX).
"""


@app.callback()
def _people() -> None:
    """The people service: HR data in (employees and org units), rhythm.people.v1 out."""


@dataclass
class ImportReport:
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    result: SyncResult | None = None
    published: int = 0
    dry_run: bool = False
    #: Seconds per phase: validate, write, publish, total.
    timings: dict[str, float] = field(default_factory=dict)


class _DryRun(Exception):
    """Roll the transaction back after a complete check."""


def _progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
        transient=False,
    )


async def run_import(
    path: Path,
    tenant: str,
    *,
    settings: Settings | None = None,
    console: Console | None = None,
    dry_run: bool = False,
    clock: Clock | None = None,
) -> ImportReport:
    """Validate, write (one transaction), relay. Returns what happened and how long each took."""
    collecting = gc.isenabled()
    try:
        return await _import(path, tenant, settings, console, dry_run, clock)
    finally:
        gc.unfreeze()
        if collecting:
            gc.enable()


async def _import(
    path: Path,
    tenant: str,
    settings: Settings | None,
    console: Console | None,
    dry_run: bool,
    clock: Clock | None,
) -> ImportReport:
    report = ImportReport(dry_run=dry_run)
    started = time.perf_counter()
    try:
        TypeAdapter(Identifier).validate_python(tenant)
    except ValidationError:
        report.errors.append(RowError(0, "--tenant", f"{tenant!r} is not a valid tenant id"))
        return report
    settings = (settings or Settings()).model_copy(
        update={"run_consumers": False, "run_jobs": False, "run_relay": False}
    )
    with _progress(console) as progress:
        validate = progress.add_task("validate", total=None)
        parsed = csv_file.parse(
            path,
            progress=lambda n: progress.advance(validate, n),
            total=lambda n: progress.update(validate, total=n),
        )
        report.rows = parsed.rows
        if parsed.errors:
            report.errors = parsed.errors
            return report
        # The parsed rows live until the end, and the import allocates millions of objects that
        # reference counting frees: the cycle collector would only re-scan them, over and over.
        gc.freeze()
        gc.disable()
        write = progress.add_task("write", total=None)
        marks: dict[str, float] = {}

        def planned(total: int) -> None:
            marks["planned"] = time.perf_counter()
            progress.update(validate, completed=parsed.rows, total=parsed.rows)
            progress.update(write, total=total)

        app = build(settings, clock=clock)
        _tune_for_bulk(app.state.runtime)
        async with running(app) as runtime:
            try:
                command = commands.SyncPeople(
                    tenant=tenant,
                    org_units=tuple(parsed.units),
                    employees=tuple(parsed.employees),
                    versions=parsed.versions,
                    keep_unit_heads=True,
                )
                async with runtime.uow() as uow:
                    report.result = await handlers.sync_people(
                        uow,
                        command,
                        progress=SyncProgress(
                            planned=planned, written=lambda n: progress.advance(write, n)
                        ),
                    )
                    if dry_run:
                        raise _DryRun
            except PeopleRejected as exc:
                report.errors = parsed.locate(exc.problems)
                return report
            except _DryRun:
                pass
            written = time.perf_counter()
            report.timings["validate"] = marks.get("planned", written) - started
            report.timings["write"] = written - marks.get("planned", written)
            if not dry_run:
                publish = progress.add_task("publish", total=None)
                report.published = await relay_outbox(
                    runtime,
                    settings.import_chunk_size,
                    on_total=lambda n: progress.update(publish, total=n),
                    on_done=lambda n: progress.update(publish, completed=n),
                )
            report.timings["publish"] = time.perf_counter() - written
    report.timings["total"] = time.perf_counter() - started
    return report


def _tune_for_bulk(runtime: PeopleRuntime) -> None:
    """A bigger SQLite page cache for this process's connections.

    The outbox's unique index on random event ids outgrows SQLite's default 2 MB cache within
    a few tens of thousands of rows; past that every insert reads pages back from the file.
    """
    if runtime.engine.dialect.name != "sqlite":
        return

    @event.listens_for(runtime.engine.sync_engine, "connect")
    def _cache(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA cache_size=-262144")  # KiB: 256 MB at most, only if used
        cursor.close()


def untraced_unless_exported(settings: Settings) -> None:
    """Sample no spans in this one-shot process unless traces are exported somewhere.

    The relay opens a PRODUCER span per event; for an import of 200,000 events nobody reads
    those locally, and recording them costs about as much as sending the events.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    if settings.otel_exporter_otlp_endpoint:
        return
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider(sampler=ALWAYS_OFF))


@app.command("import", help=IMPORT_HELP)
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file.")
    ],
    tenant: Annotated[str, typer.Option(help="The tenant the people belong to.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate against the service's state; write nothing.")
    ] = False,
    max_errors: Annotated[
        int, typer.Option(help="Errors to list (all are counted); 0 lists every one.")
    ] = 100,
) -> None:
    settings = Settings(log_level="WARNING")
    untraced_unless_exported(settings)
    try:
        report = asyncio.run(
            run_import(file, tenant, settings=settings, console=console, dry_run=dry_run)
        )
    except Exception as exc:  # infrastructure: say what, not a stack trace
        err_console.print(f"[red]import failed:[/red] {type(exc).__name__}: {exc}")
        err_console.print(
            "Nothing was written unless the summary said so; committed events wait in the "
            "outbox and the people service (rhythm serve people) relays them."
        )
        raise typer.Exit(2) from None
    if report.errors:
        print_errors(report.errors, report.rows, max_errors)
        raise typer.Exit(1)
    print_summary(report)


def print_errors(errors: list[RowError], rows: int, limit: int) -> None:
    table = Table(title=f"{len(errors)} problem(s) in {rows} row(s); nothing was imported")
    table.add_column("line", justify="right")
    table.add_column("column")
    table.add_column("problem")
    shown = errors if limit <= 0 else errors[:limit]
    for e in shown:
        table.add_row(str(e.line) if e.line else "", Text(e.column), Text(e.message))
    err_console.print(table)
    if len(shown) < len(errors):
        err_console.print(f"… and {len(errors) - len(shown)} more (--max-errors 0 lists all)")


def print_summary(report: ImportReport) -> None:
    result = report.result or SyncResult()
    table = Table(title="dry run: nothing written" if report.dry_run else "Imported")
    for name in ("rows", "created", "updated", "unchanged", "stale", "events published"):
        table.add_column(name, justify="right")
    table.add_row(
        str(report.rows),
        str(result.created),
        str(result.updated),
        str(result.unchanged),
        str(result.stale),
        "-" if report.dry_run else str(report.published),
    )
    console.print(table)
    seconds = report.timings.get("total", 0.0)
    if seconds:
        console.print(f"{report.rows} rows in {seconds:.1f}s ({report.rows / seconds:,.0f} rows/s)")


# -- erasure ------------------------------------------------------------------------------------

ERASE_HELP = """\
Erase a person everywhere (GDPR Art. 17) and wait until every service has done its part.

Destroys the person's data key, deletes what the people service holds of them and publishes
EmployeeErased; then prints each service's progress until all five (people, goals, checkins,
notifications, reporting) reported their part, or --timeout passes (exit 1; the erasure goes on,
see GET /v1/people/erasures/ID). Erasing a person twice follows the first erasure. The reports
are recorded by the running people service (rhythm serve people).
Settings come from the environment (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC_PREFIX).
"""


def progress_line(state: ErasureState) -> str:
    done = [s for s in SERVICES if s in state.parts]
    line = f"erasure {state.erasure_id}: {len(done)}/{len(SERVICES)} services done"
    if done:
        line += f" ({', '.join(done)})"
    if state.pending():
        line += f"; waiting for {', '.join(state.pending())}"
    return line


async def run_erase(
    employee_id: str,
    tenant: str,
    *,
    settings: Settings | None = None,
    say: Callable[[str], None] = lambda _line: None,
    timeout_s: float = 300.0,
    poll_s: float = 0.5,
    clock: Clock | None = None,
) -> ErasureState:
    """Start the erasure (or find the one under way), publish its events, and follow it until
    it completes or ``timeout_s`` passes; ``say`` gets a progress line whenever it moves."""
    settings = (settings or Settings()).model_copy(
        update={"run_consumers": False, "run_jobs": False, "run_relay": False}
    )
    app = build(settings, clock=clock)
    async with running(app) as runtime:
        command = commands.EraseEmployee(tenant=tenant, employee_id=employee_id)
        async with runtime.uow() as uow:
            state, new = await handlers.erase_employee(uow, command)
        say(
            f"erasure {state.erasure_id} of {employee_id} "
            + ("started" if new else f"already under way since {state.requested_at:%Y-%m-%d %H:%M}")
        )
        await relay_outbox(runtime, settings.relay_batch_size)
        deadline = time.monotonic() + timeout_s
        last = ""
        while True:
            async with runtime.uow.read() as session:
                state = await queries.erasure(session, tenant, state.erasure_id)
            line = progress_line(state)
            if line != last:
                say(line)
                last = line
            if state.state == "completed" or time.monotonic() >= deadline:
                return state
            await asyncio.sleep(poll_s)


@app.command("erase", help=ERASE_HELP)
def erase(
    employee_id: Annotated[str, typer.Argument(help="The employee id to erase.")],
    tenant: Annotated[str, typer.Option(help="The tenant the person belongs to.")],
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every service (the erasure goes on).")
    ] = 300.0,
) -> None:
    for value, what in ((tenant, "--tenant"), (employee_id, "EMPLOYEE_ID")):
        try:
            TypeAdapter(Identifier).validate_python(value)
        except ValidationError:
            err_console.print(f"[red]{what}:[/red] {value!r} is not a valid id")
            raise typer.Exit(2) from None
    settings = Settings(log_level="WARNING")
    try:
        state = asyncio.run(
            run_erase(employee_id, tenant, settings=settings, say=console.print, timeout_s=timeout)
        )
    except NotFound as exc:
        err_console.print(f"[red]not erased:[/red] {exc.message} in tenant {tenant!r}")
        raise typer.Exit(1) from None
    except Exception as exc:  # infrastructure: say what, not a stack trace
        err_console.print(f"[red]erase failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(2) from None
    if state.state != "completed":
        err_console.print(
            f"not completed within {timeout:.0f}s: still waiting for "
            f"{', '.join(state.pending())}; the erasure goes on "
            f"(GET /v1/people/erasures/{state.erasure_id})"
        )
        raise typer.Exit(1)
    console.print(f"erasure {state.erasure_id} completed: every service erased its part")
