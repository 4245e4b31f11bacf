"""The real processes of a chaos run: the five services, an SMTP sink, and (optionally) a broker
of its own that can be restarted without disturbing anyone else's tests."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.chaos.workload import MAX_RECORD_BYTES

ROOT = Path(__file__).resolve().parents[2]

#: name -> HTTP port; never the ports of `make run` (8001-8005).
PORTS = {
    "people": 18005,
    "goals": 18001,
    "checkins": 18002,
    "notifications": 18003,
    "reporting": 18004,
}
SERVICES = tuple(PORTS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --------------------------------------------------------------------------------------------
# The SMTP sink: records every message with its Message-ID and recipients
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    message_id: str
    rcpt: tuple[str, ...]
    subject: str
    category: str


class MailSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Mail] = []
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        parsed = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        mail = Mail(
            message_id=str(parsed.get("Message-ID", "")),
            rcpt=tuple(sorted(str(r).lower() for r in envelope.rcpt_tos)),
            subject=str(parsed.get("Subject", "")),
            category=str(parsed.get("X-Rhythm-Category", "")),
        )
        with self._lock:
            self.messages.append(mail)
        return "250 Message accepted for delivery"

    def snapshot(self) -> list[Mail]:
        with self._lock:
            return list(self.messages)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.controller.stop()


# --------------------------------------------------------------------------------------------
# Service processes
# --------------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str  # e.g. "notifications" or "notifications-2" (a replica)
    service: str
    port: int
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0


@dataclass
class Cluster:
    """Starts, kills (-9, the whole process group) and restarts service processes."""

    workdir: Path
    bootstrap: str
    prefix: str
    smtp_port: int
    clock_offset_s: float
    procs: dict[str, Proc] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)

    def db_url(self, service: str) -> str:
        return f"sqlite+aiosqlite:///{self.db_path(service)}"

    def db_path(self, service: str) -> Path:
        return self.workdir / f"{service}.db"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.procs[name].port}"

    def env(self, proc: Proc) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.pop("KAFKA_TOPIC_PREFIX", None)
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "ENVIRONMENT": "development",
                "HTTP_HOST": "127.0.0.1",
                "HTTP_PORT": str(proc.port),
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "KAFKA_TOPIC_PREFIX": self.prefix,
                "DATABASE_URL": self.db_url(proc.service),
                "TOPIC_PARTITIONS": "6",
                "CONSUMER_SESSION_TIMEOUT_MS": "6000",
                "CONSUMER_HEARTBEAT_INTERVAL_MS": "1000",
                "RELAY_POLL_INTERVAL_S": "0.2",
                "CONSUMER_MAX_RECORD_BYTES": str(MAX_RECORD_BYTES),
                "LOG_LEVEL": "WARNING",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.smtp_port),
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{proc.port}",
                # A killed dispatcher's claims come back after this long (default 120 s).
                "DELIVERY_LEASE_S": "8",
                "DELIVERY_RETRY_BASE_S": "1",
                "DISPATCH_INTERVAL_S": "0.2",
                "SWEEP_INTERVAL_S": "5",
                "STALENESS_INTERVAL_S": "5",
                "CHAOS_CLOCK_OFFSET_S": str(self.clock_offset_s),
            }
        )
        return env

    def add(self, name: str, service: str, port: int) -> Proc:
        proc = self.procs[name] = Proc(name, service, port)
        return proc

    def start(self, name: str) -> None:
        proc = self.procs[name]
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        log = (logs / f"{name}.log").open("ab")
        proc.popen = subprocess.Popen(
            [sys.executable, "-m", "bench.chaos.serve", proc.service],
            env=self.env(proc),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: kill -9 takes all of it
        )
        log.close()
        proc.starts += 1

    def alive(self, name: str) -> bool:
        popen = self.procs[name].popen
        return popen is not None and popen.poll() is None

    def kill9(self, name: str) -> None:
        popen = self.procs[name].popen
        if popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=10)
        self.events.append(f"kill -9 {name}")

    def terminate(self, name: str, timeout: float = 30) -> None:
        popen = self.procs[name].popen
        if popen is None or popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(timeout=10)

    def stop_all(self) -> None:
        """SIGTERM to every process group, then SIGKILL what is left: runs even on failure."""
        for proc in self.procs.values():
            if proc.popen is not None and proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 25
        for proc in self.procs.values():
            if proc.popen is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=10)

    def revive(self, name: str, limit: int = 3) -> None:
        """What a process supervisor does: start a process that exited by itself again (a
        service refuses to start while the broker does not answer in time, for example)."""
        popen = self.procs[name].popen
        code = popen.poll() if popen else None
        if self.procs[name].starts > limit + self.events.count(f"kill -9 {name}"):
            raise RuntimeError(
                f"{name} keeps exiting (code {code}); see {self.workdir / 'logs' / (name + '.log')}"
            )
        self.events.append(f"{name} exited by itself (code {code}), restarted")
        self.start(name)

    async def wait_ready(self, names: list[str], timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        pending = set(names)
        async with httpx.AsyncClient(timeout=3) as client:
            while pending:
                for name in list(pending):
                    if not self.alive(name):
                        self.revive(name)
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        response = await client.get(f"{self.url(name)}/readyz")
                        if response.status_code == 200:
                            pending.discard(name)
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"not ready after {timeout_s:.0f}s: {', '.join(sorted(pending))}"
                    )
                await asyncio.sleep(0.3)


# --------------------------------------------------------------------------------------------
# A broker of the run's own (restartable without disturbing other users of :9092)
# --------------------------------------------------------------------------------------------

_BROKER_PATHS = (
    "KAFKA_DIR",
    "KAFKA_DATA",
    "KAFKA_PROPERTIES",
    "KAFKA_CLUSTER_ID",
    "KAFKA_LOG",
    "KAFKA_PID",
)


@dataclass
class Broker:
    bootstrap: str
    restartable: bool

    def restart(self) -> None:
        from rhythm_cli import infra

        infra.kafka_down()
        infra.kafka_up(self.bootstrap)


@contextlib.contextmanager
def dedicated_broker(workdir: Path) -> Iterator[Broker]:
    """``rhythm infra``'s own launcher (kafka_up/kafka_down), pointed at a data directory and
    ports of this run; the jars are the ones `make infra-up` already fetched."""
    from rhythm_cli import infra

    saved: dict[str, Any] = {name: getattr(infra, name) for name in _BROKER_PATHS}
    saved_env = os.environ.get("RHYTHM_KAFKA_CONTROLLER_PORT")
    kafka_dir = workdir / "kafka"
    kafka_dir.mkdir(parents=True, exist_ok=True)
    port, controller = free_port(), free_port()
    infra.KAFKA_DIR = kafka_dir
    infra.KAFKA_DATA = kafka_dir / "data"
    infra.KAFKA_PROPERTIES = kafka_dir / "server.properties"
    infra.KAFKA_CLUSTER_ID = kafka_dir / "cluster.id"
    infra.KAFKA_LOG = kafka_dir / "kafka.log"
    infra.KAFKA_PID = kafka_dir / "kafka.pid"
    os.environ["RHYTHM_KAFKA_CONTROLLER_PORT"] = str(controller)
    broker = Broker(f"127.0.0.1:{port}", restartable=True)
    try:
        infra.kafka_up(broker.bootstrap)
        yield broker
    finally:
        with contextlib.suppress(Exception):
            infra.kafka_down()
        for name, value in saved.items():
            setattr(infra, name, value)
        if saved_env is None:
            os.environ.pop("RHYTHM_KAFKA_CONTROLLER_PORT", None)
        else:
            os.environ["RHYTHM_KAFKA_CONTROLLER_PORT"] = saved_env
