"""``rhythm run``: the whole platform on one machine, with a demo organisation.

Starts Kafka (SQLite for every service), a local mailbox, the five services as processes, seeds
a demo organisation and plays a quarter of activity by moving the services' clocks. State lives
under .run/, so a second run resumes where the first stopped; ``--fresh`` starts over.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from rhythm_cli import infra

console = Console()


@dataclass(frozen=True)
class Service:
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


SERVICES = (
    Service("people", 8005),
    Service("goals", 8001),
    Service("checkins", 8002),
    Service("notifications", 8003),
    Service("reporting", 8004),
)
SMTP_PORT = 1025
MAILBOX_PORT = 8025
STATE_FILE = infra.RUN_DIR / "demo.json"
LOG_DIR = infra.RUN_DIR / "logs"


class Supervisor:
    """Owns the child processes; stops them all, gracefully, whatever happens."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = (LOG_DIR / f"{name}.log").open("ab")
        self.children[name] = subprocess.Popen(
            args,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=infra.ROOT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
        )

    def check(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {child.returncode}; see .run/logs/{name}.log"
                )

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 25
        for child in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            if child.poll() is None:
                child.kill()


def _port_busy(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _service_env(service: Service) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ENVIRONMENT": "development",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(service.port),
            "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap(),
            "DATABASE_URL": f"sqlite+aiosqlite:///{infra.RUN_DIR / (service.name + '.db')}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(SMTP_PORT),
            "PUBLIC_BASE_URL": "http://127.0.0.1:8003",
            "LOG_LEVEL": "INFO",
            # A quarter passes in minutes: the timed jobs look every second.
            "SWEEP_INTERVAL_S": "1",
            "STALENESS_INTERVAL_S": "1",
            "DIGEST_INTERVAL_S": "2",
        }
    )
    env.pop("KAFKA_TOPIC_PREFIX", None)
    return env


def _fresh() -> None:
    console.print("[bold]Starting over[/]: deleting the demo's databases, mail and events")
    infra.kafka_down()
    shutil.rmtree(infra.KAFKA_DATA, ignore_errors=True)
    for service in SERVICES:
        for suffix in ("", "-wal", "-shm", "-journal"):
            (infra.RUN_DIR / f"{service.name}.db{suffix}").unlink(missing_ok=True)
    for path in (STATE_FILE, infra.RUN_DIR / "mailbox.db"):
        path.unlink(missing_ok=True)


def load_state() -> dict[str, Any]:
    if STATE_FILE.exists():
        return json.loads(STATE_FILE.read_text())  # type: ignore[no-any-return]
    return {}


def save_state(state: dict[str, Any]) -> None:
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(STATE_FILE)


def _wait_ready(supervisor: Supervisor, timeout_s: float = 180) -> None:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("Waiting for the services to be ready", total=len(SERVICES))
        pending = {s.name: s for s in SERVICES}
        deadline = time.monotonic() + timeout_s
        while pending:
            supervisor.check()
            for name, service in list(pending.items()):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                        del pending[name]
                        progress.advance(task)
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout_s:.0f}s: {', '.join(pending)}")
            time.sleep(0.3)


def _mailbox_command() -> tuple[list[str], str]:
    mailpit = shutil.which("mailpit")
    if mailpit:
        return (
            [mailpit, "--smtp", f"127.0.0.1:{SMTP_PORT}", "--listen", f"127.0.0.1:{MAILBOX_PORT}"],
            "Mailpit",
        )
    rhythm = str(Path(sys.executable).with_name("rhythm"))
    return (
        [
            rhythm,
            "mailbox",
            "serve",
            "--smtp-port",
            str(SMTP_PORT),
            "--http-port",
            str(MAILBOX_PORT),
        ],
        "the Rhythm mailbox",
    )


def dashboard_link(base: str, token: str, period: str | None = None) -> str:
    """The dashboard, signed in: the token rides in the fragment, which the browser keeps to
    itself (no access log, no Referer), and the page removes it from the address bar at once."""
    query = f"?period={period}" if period else ""
    return f"{base}/dashboard{query}#token={token}"


def _print_urls(state: dict[str, Any]) -> None:
    link = dashboard_link(
        "http://127.0.0.1:8004", state.get("executive_token", ""), state.get("period")
    )
    console.print()
    console.print("[bold green]Rhythm is running.[/] Open:")
    console.print(f"  Dashboard        {link}", soft_wrap=True)
    for service in SERVICES:
        console.print(f"  {service.name:<16} {service.url}/docs")
    console.print("  AsyncAPI         http://127.0.0.1:8001/asyncapi.json")
    console.print(f"  Mailbox          http://127.0.0.1:{MAILBOX_PORT}/")
    console.print(f"  Logs             {LOG_DIR}")
    console.print("Press Ctrl-C to stop everything.")


def run(
    fresh: Annotated[bool, typer.Option("--fresh", help="Delete the demo's state first.")] = False,
    play: Annotated[bool, typer.Option(help="Seed the demo and play a quarter.")] = True,
    exit_when_done: Annotated[
        bool, typer.Option(help="Stop once the quarter is played (for tests).")
    ] = False,
) -> None:
    """Run the whole platform locally with a demo organisation."""
    from rhythm_cli import demo

    busy = [p for p in (*(s.port for s in SERVICES), SMTP_PORT, MAILBOX_PORT) if _port_busy(p)]
    if busy:
        console.print(
            f"[red]Ports already in use: {', '.join(map(str, busy))}.[/] "
            "Is another `make run` still up? Stop it (Ctrl-C) and try again."
        )
        raise typer.Exit(1)
    if fresh:
        _fresh()
    try:
        infra.kafka_up()
    except infra.InfraError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    supervisor = Supervisor()
    interrupted = False

    def _on_signal(signum: int, _: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM both stop every child cleanly (even where SIGINT started out ignored).
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        command, label = _mailbox_command()
        supervisor.start("mailbox", command, dict(os.environ))
        rhythm = str(Path(sys.executable).with_name("rhythm"))
        for service in SERVICES:
            supervisor.start(service.name, [rhythm, "serve", service.name], _service_env(service))
        console.print(f"Started the five services and {label}; logs in {LOG_DIR}")
        _wait_ready(supervisor)
        state = load_state()
        if play:
            state = demo.seed_and_play(
                state, {s.name: s.url for s in SERVICES}, save_state, supervisor.check, console
            )
        _print_urls(state)
        if exit_when_done:
            return
        while True:
            supervisor.check()
            time.sleep(1)
    except KeyboardInterrupt:
        interrupted = True
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    finally:
        console.print("Stopping the services…")
        supervisor.stop()
        if interrupted:
            console.print("Stopped. `make run` resumes; `make run FRESH=1` starts over.")
