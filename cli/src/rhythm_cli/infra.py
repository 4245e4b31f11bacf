"""``rhythm infra``: the local Kafka broker and PostgreSQL cluster for development and tests.

Kafka is real Apache Kafka 4.x (KRaft, one combined broker+controller node) run from Maven
Central jars with Java 17; PostgreSQL is the Debian package's server binaries running our own
cluster. Both listen on 127.0.0.1 only and keep everything under ``<root>/.run/``::

    .run/kafka/      libs/ (jars), server.properties, cluster.id, data/, kafka.log, kafka.pid
    .run/postgres/   data/, postgres.log, the unix socket
    .run/infra.env   KAFKA_BOOTSTRAP_SERVERS=... and RHYTHM_TEST_POSTGRES_URL=... for other tools

The plain functions (:func:`kafka_up`, :func:`kafka_down`, :func:`kafka_ready`,
:func:`postgres_up`, :func:`postgres_down`, :func:`postgres_url`) raise :class:`InfraError` for
expected failures; the typer commands turn that into a clear message and exit code 1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import grp
import hashlib
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

__all__ = [
    "DEFAULT_KAFKA_BOOTSTRAP",
    "DEFAULT_KAFKA_CONTROLLER_PORT",
    "DEFAULT_POSTGRES_PORT",
    "INFRA_ENV",
    "POSTGRES_DATABASES",
    "ROOT",
    "RUN_DIR",
    "InfraError",
    "app",
    "find_root",
    "kafka_bootstrap",
    "kafka_down",
    "kafka_pid",
    "kafka_ready",
    "kafka_sasl_security",
    "kafka_up",
    "postgres_available",
    "postgres_down",
    "postgres_port",
    "postgres_running",
    "postgres_up",
    "postgres_url",
    "write_infra_env",
]


class InfraError(RuntimeError):
    """An expected failure with a message meant for a person (no stack trace needed)."""


# --------------------------------------------------------------------------------------------
# Where things live
# --------------------------------------------------------------------------------------------


def _is_workspace_root(directory: Path) -> bool:
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return "workspace" in data.get("tool", {}).get("uv", {})


def find_root(start: Path | None = None) -> Path:
    """The repository root: ``$RHYTHM_HOME`` if set, else the nearest directory at or above
    ``start`` (default: the working directory) holding ``.git`` or a ``pyproject.toml`` with
    ``[tool.uv.workspace]``; failing that, the workspace this package is installed from."""
    home = os.environ.get("RHYTHM_HOME", "").strip()
    if home:
        return Path(home).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists() or _is_workspace_root(directory):
            return directory
    for directory in Path(__file__).resolve().parents:
        if _is_workspace_root(directory):
            return directory
    return here


#: The repository root (see :func:`find_root`); all run data lives under ``ROOT / ".run"``.
ROOT: Path = find_root()
RUN_DIR: Path = ROOT / ".run"
INFRA_ENV: Path = RUN_DIR / "infra.env"

KAFKA_POM_DIR: Path = ROOT / "infra" / "kafka"
KAFKA_LOG4J2_CONFIG: Path = KAFKA_POM_DIR / "log4j2.xml"
KAFKA_DIR: Path = RUN_DIR / "kafka"
KAFKA_LIBS: Path = KAFKA_DIR / "libs"
KAFKA_DATA: Path = KAFKA_DIR / "data"
KAFKA_PROPERTIES: Path = KAFKA_DIR / "server.properties"
KAFKA_CLUSTER_ID: Path = KAFKA_DIR / "cluster.id"
KAFKA_LOG: Path = KAFKA_DIR / "kafka.log"
KAFKA_PID: Path = KAFKA_DIR / "kafka.pid"
_KAFKA_LIBS_STAMP: Path = KAFKA_DIR / "libs.pom.sha256"

PG_DIR: Path = RUN_DIR / "postgres"
PG_DATA: Path = PG_DIR / "data"
PG_LOG: Path = PG_DIR / "postgres.log"

DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_KAFKA_CONTROLLER_PORT = 9093
DEFAULT_POSTGRES_PORT = 55432
KAFKA_START_TIMEOUT_S = 90.0
KAFKA_STOP_TIMEOUT_S = 30.0

#: The SCRAM-SHA-512 user of ``rhythm infra up --sasl`` (a local broker only).
KAFKA_SASL_USER = "rhythm"
KAFKA_SASL_PASSWORD = "rhythm-local-broker"  # noqa: S105 - local development broker only
KAFKA_SASL_MECHANISM = "SCRAM-SHA-512"

POSTGRES_USER = "rhythm"
POSTGRES_PASSWORD = "rhythm"  # noqa: S105 - local development cluster only
POSTGRES_DATABASES: tuple[str, ...] = (
    "rhythm_goals",
    "rhythm_checkins",
    "rhythm_notifications",
    "rhythm_reporting",
    "rhythm_test",
)

INSTALL_HINT = "install openjdk-17-jre-headless and maven with apt-get, or use docker-compose.yml"

console = Console(highlight=False, soft_wrap=True)

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

_T = TypeVar("_T")


def _run_coro(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from sync code, even when an event loop is running in
    this thread (pytest-asyncio, FastAPI start-up): then it runs on a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="rhythm-infra", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InfraError(f"{name}={raw!r} is not a port number") from None


def _pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        # Reap it if it is our own exited child (otherwise it lingers as a zombie).
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Silence a library's connection-refused noise while we poll."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(previous)


# --------------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------------


def kafka_bootstrap() -> str:
    """``$KAFKA_BOOTSTRAP_SERVERS`` or ``127.0.0.1:9092``."""
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or DEFAULT_KAFKA_BOOTSTRAP


def _parse_host_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    first = re.sub(r"^[A-Za-z_]+://", "", first)
    host, sep, port = first.rpartition(":")
    if not sep or not port.isdigit():
        raise InfraError(f"bootstrap servers {bootstrap!r} is not host:port")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _controller_port() -> int:
    return _int_env("RHYTHM_KAFKA_CONTROLLER_PORT", DEFAULT_KAFKA_CONTROLLER_PORT)


def kafka_sasl_security(
    username: str = KAFKA_SASL_USER, password: str = KAFKA_SASL_PASSWORD
) -> dict[str, Any]:
    """aiokafka client arguments for the SASL listener of ``rhythm infra up --sasl``."""
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": KAFKA_SASL_MECHANISM,
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }


def _sasl_env() -> dict[str, str]:
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": KAFKA_SASL_MECHANISM,
        "KAFKA_SASL_USERNAME": KAFKA_SASL_USER,
        "KAFKA_SASL_PASSWORD": KAFKA_SASL_PASSWORD,
    }


async def _kafka_probe(bootstrap: str, limit_s: float, security: dict[str, Any] | None) -> bool:
    """One attempt to talk to the broker: a metadata request that must list a broker."""
    from aiokafka.admin import AIOKafkaAdminClient

    from rhythm_shared.kit.kafka import client_security

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(1000, int(limit_s * 1000)),
        client_id="rhythm-infra-probe",
        **(client_security() if security is None else security),
    )
    try:
        async with asyncio.timeout(limit_s):
            await admin.start()
            cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def kafka_ready(
    bootstrap: str | None = None, timeout: float = 5.0, security: dict[str, Any] | None = None
) -> bool:
    """Whether a Kafka broker answers a metadata request at ``bootstrap`` within ``timeout``
    seconds (polling until then). ``bootstrap`` defaults to :func:`kafka_bootstrap`, ``security``
    (aiokafka client arguments) to the ``KAFKA_SECURITY_PROTOCOL``… settings of the environment."""
    bootstrap = bootstrap or kafka_bootstrap()
    deadline = time.monotonic() + timeout
    with _quiet_logger("aiokafka"):
        while True:
            remaining = deadline - time.monotonic()
            attempt = min(max(remaining, 0.5), 5.0)
            if _run_coro(_kafka_probe(bootstrap, attempt, security)):
                return True
            if time.monotonic() + 0.5 >= deadline:
                return False
            time.sleep(0.5)


def _is_our_kafka(pid: int) -> bool:
    args = _cmdline(pid)
    return "kafka.Kafka" in args and str(KAFKA_PROPERTIES) in args


def kafka_pid() -> int | None:
    """The pid of the broker started by ``rhythm infra up`` if it is running, else ``None``.

    Trusts ``.run/kafka/kafka.pid`` only if that process really is our broker; if the pid file
    is lost, finds the broker by its command line (our ``server.properties``)."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(KAFKA_PID.read_text().strip())
        if _pid_alive(pid) and _is_our_kafka(pid):
            return pid
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                pid = int(entry.name)
                if pid != os.getpid() and _is_our_kafka(pid) and _pid_alive(pid):
                    return pid
    return None


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME", "").strip()
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise InfraError(f"`java` was not found: {INSTALL_HINT}.")
    result = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):
            major = int(match.group(2))
        if major < 17:
            raise InfraError(f"Kafka 4 needs Java 17 or newer, found Java {major}: {INSTALL_HINT}.")
    return java


def _ensure_kafka_libs() -> None:
    """Copy the broker's runtime classpath from Maven (cached in ~/.m2) into .run/kafka/libs,
    again whenever infra/kafka/pom.xml changes."""
    pom = KAFKA_POM_DIR / "pom.xml"
    if not pom.is_file():
        raise InfraError(f"{pom} is missing; is {ROOT} the Rhythm repository (RHYTHM_HOME)?")
    wanted = hashlib.sha256(pom.read_bytes()).hexdigest()
    have_jars = KAFKA_LIBS.is_dir() and any(KAFKA_LIBS.glob("*.jar"))
    stamp = _KAFKA_LIBS_STAMP.read_text().strip() if _KAFKA_LIBS_STAMP.exists() else ""
    if have_jars and stamp == wanted:
        return
    mvn = shutil.which("mvn")
    if not mvn:
        if have_jars:
            console.print(
                "[yellow]![/] mvn not found; using the existing jars in "
                f"{_relative(KAFKA_LIBS)} (they may not match {_relative(pom)})"
            )
            return
        raise InfraError(f"`mvn` was not found (needed once for the Kafka jars): {INSTALL_HINT}.")
    KAFKA_DIR.mkdir(parents=True, exist_ok=True)
    staging = KAFKA_DIR / "libs.new"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn, "-q", "-B", "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]  # fmt: skip
    with console.status("Fetching the Kafka jars with Maven (cached in ~/.m2 after first use)"):
        result = subprocess.run(
            command, cwd=KAFKA_POM_DIR, capture_output=True, text=True, check=False
        )
    if result.returncode != 0 or not any(staging.glob("*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise InfraError(
            f"Maven could not resolve the Kafka runtime (exit {result.returncode}) "
            f"from {_relative(pom)}:\n{output}"
        )
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    staging.rename(KAFKA_LIBS)
    _KAFKA_LIBS_STAMP.write_text(wanted + "\n")
    jars = len(list(KAFKA_LIBS.glob("*.jar")))
    console.print(f"[green]✓[/] Kafka jars ready ({jars} jars in {_relative(KAFKA_LIBS)})")


def _new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID, base64url without padding, not starting with '-'
    (the same rule as Kafka's ``Uuid.randomUuid``)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _cluster_id() -> str:
    meta = KAFKA_DATA / "meta.properties"
    if meta.exists():  # formatted before: the storage's id is the truth
        match = re.search(r"^cluster\.id=(\S+)", meta.read_text(), re.MULTILINE)
        if match:
            KAFKA_CLUSTER_ID.write_text(match.group(1) + "\n")
            return match.group(1)
    if KAFKA_CLUSTER_ID.exists() and KAFKA_CLUSTER_ID.read_text().strip():
        return KAFKA_CLUSTER_ID.read_text().strip()
    cluster_id = _new_cluster_id()
    KAFKA_CLUSTER_ID.write_text(cluster_id + "\n")
    return cluster_id


def _properties_value(value: str) -> str:
    return value.replace("\\", "\\\\")


def _write_server_properties(port: int, controller_port: int, *, sasl: bool = False) -> None:
    client = "SASL_PLAINTEXT" if sasl else "PLAINTEXT"
    settings: dict[str, str | int] = {
        # One node that is both broker and KRaft controller, with a static quorum.
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        # Loopback only: this broker is for local development and tests.
        "listeners": f"{client}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"{client}://127.0.0.1:{port}",
        "listener.security.protocol.map": f"{client}:{client},CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": client,
        "controller.listener.names": "CONTROLLER",
        "log.dirs": _properties_value(str(KAFKA_DATA)),
        # Topics are declared (shared topic map), never created by accident.
        "auto.create.topics.enable": "false",
        "num.partitions": 12,
        # A single node: internal topics can only have one replica.
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        # Consumer groups form at once (tests, demo) instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms": 0,
    }
    if sasl:
        # KIP-900: SCRAM users come with the storage (see _format_storage); the controller
        # listener stays PLAINTEXT. The broker talks to itself as the same user.
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{KAFKA_SASL_USER}" password="{KAFKA_SASL_PASSWORD}";'
        )
        settings |= {
            "sasl.enabled.mechanisms": KAFKA_SASL_MECHANISM,
            "sasl.mechanism.inter.broker.protocol": KAFKA_SASL_MECHANISM,
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": jaas,
        }
    lines = ["# Written by `rhythm infra up` on every start; edit cli/src/rhythm_cli/infra.py."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    KAFKA_PROPERTIES.write_text("\n".join(lines) + "\n")


def _java_command(java: str, main: str, *args: str, heap: bool = False) -> list[str]:
    # 1 GiB by default: a test suite creates (and deletes) thousands of partitions, and a broker
    # holds every partition's metadata on the heap. RHYTHM_KAFKA_HEAP overrides it.
    size = os.environ.get("RHYTHM_KAFKA_HEAP", "1g")
    memory = [f"-Xmx{size}", "-Xms256m"] if heap else []
    return [
        java,
        *memory,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J2_CONFIG}",
        "-cp",
        str(KAFKA_LIBS / "*"),
        main,
        *args,
    ]


def _format_storage(java: str, *, sasl: bool = False) -> None:
    if (KAFKA_DATA / "meta.properties").exists():
        if sasl and KAFKA_SASL_USER not in _scram_users():
            raise InfraError(
                f"the Kafka storage in {_relative(KAFKA_DATA)} was formatted without SCRAM users, "
                "so a SASL listener would refuse every client. Stop the broker "
                f"(`rhythm infra down --no-postgres`), remove {_relative(KAFKA_DATA)} and run "
                "`rhythm infra up --sasl` again."
            )
        return
    cluster_id = _cluster_id()
    # Always add the SCRAM user: the same storage then serves `up` and `up --sasl`.
    scram = f"{KAFKA_SASL_MECHANISM}=[name={KAFKA_SASL_USER},password={KAFKA_SASL_PASSWORD}]"
    command = _java_command(
        java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(KAFKA_PROPERTIES),
        "--add-scram", scram,
    )  # fmt: skip
    result = subprocess.run(command, cwd=KAFKA_DIR, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise InfraError(f"formatting Kafka storage failed (exit {result.returncode}):\n{output}")
    _scram_users_file().write_text(KAFKA_SASL_USER + "\n")
    console.print(f"[green]✓[/] Kafka storage formatted (cluster id {cluster_id})")


def _scram_users_file() -> Path:
    # Beside the storage it describes (looked up per call: a test may point KAFKA_DIR elsewhere).
    return KAFKA_DIR / "scram-users"


def _scram_users() -> set[str]:
    try:
        return set(_scram_users_file().read_text().split())
    except OSError:
        return set()


# Keeps the Popen objects of brokers started by this process alive, so that Python neither
# warns about nor reaps a broker that is meant to outlive us.
_STARTED: list[subprocess.Popen[bytes]] = []


def _start_broker(java: str) -> subprocess.Popen[bytes]:
    if KAFKA_LOG.exists():
        KAFKA_LOG.replace(KAFKA_LOG.with_name(KAFKA_LOG.name + ".1"))
    command = _java_command(java, "kafka.Kafka", str(KAFKA_PROPERTIES), heap=True)
    with KAFKA_LOG.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=KAFKA_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _STARTED.append(process)
    KAFKA_PID.write_text(f"{process.pid}\n")
    return process


def _wait_for_kafka(
    bootstrap: str, pid: int, timeout: float, security: dict[str, Any] | None = None
) -> None:
    started = time.monotonic()
    deadline = started + timeout
    with console.status(f"Waiting for Kafka at {bootstrap} (pid {pid})…"):
        while True:
            if kafka_ready(bootstrap, timeout=2.0, security=security):
                break
            if not _pid_alive(pid):
                KAFKA_PID.unlink(missing_ok=True)
                raise InfraError(
                    f"Kafka (pid {pid}) exited during start-up. "
                    f"Last lines of {_relative(KAFKA_LOG)}:\n{_tail(KAFKA_LOG)}"
                )
            if time.monotonic() >= deadline:
                raise InfraError(
                    f"Kafka (pid {pid}) did not answer at {bootstrap} within {timeout:.0f}s; "
                    f"it is still running (`rhythm infra down` stops it). "
                    f"Last lines of {_relative(KAFKA_LOG)}:\n{_tail(KAFKA_LOG)}"
                )
            time.sleep(0.5)
    console.print(
        f"[green]✓[/] Kafka ready at {bootstrap} (pid {pid}, {time.monotonic() - started:.1f}s)"
    )


def kafka_up(
    bootstrap: str | None = None, timeout: float = KAFKA_START_TIMEOUT_S, *, sasl: bool = False
) -> None:
    """Start the local Kafka broker (KRaft, single node) and wait until it answers.

    With ``sasl``, its client listener speaks SASL_PLAINTEXT with SCRAM-SHA-512 (user
    ``rhythm``, see :func:`kafka_sasl_security`) instead of PLAINTEXT.

    A no-op when a broker already answers at ``bootstrap`` (default :func:`kafka_bootstrap`).
    Raises :class:`InfraError` if Java/Maven are missing, the port is taken by something that
    is not Kafka, or the broker does not answer within ``timeout`` seconds."""
    bootstrap = bootstrap or kafka_bootstrap()
    security = kafka_sasl_security() if sasl else {"security_protocol": "PLAINTEXT"}
    host, port = _parse_host_port(bootstrap)
    if _port_open(host, port) and kafka_ready(bootstrap, timeout=2.0, security=security):
        pid = kafka_pid()
        where = f"pid {pid}" if pid else "not started by rhythm infra"
        console.print(f"[green]✓[/] Kafka already running at {bootstrap} ({where}); nothing to do")
        return
    if not _is_loopback(host):
        raise InfraError(
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} points at another host, which does not answer; "
            "`rhythm infra` only starts a broker on 127.0.0.1."
        )
    KAFKA_DIR.mkdir(parents=True, exist_ok=True)
    pid = kafka_pid()
    if pid is not None:  # started earlier and still coming up (or stuck): wait for it
        console.print(f"Kafka (pid {pid}) is running but not answering yet; waiting for it")
        _wait_for_kafka(bootstrap, pid, timeout, security)
        return
    KAFKA_PID.unlink(missing_ok=True)
    controller_port = _controller_port()
    for name, taken in (("broker", port), ("controller", controller_port)):
        if _port_open("127.0.0.1", taken):
            raise InfraError(
                f"the Kafka {name} port 127.0.0.1:{taken} is taken by a process that does not "
                "answer as our Kafka broker; stop it, or choose other ports with "
                "KAFKA_BOOTSTRAP_SERVERS / RHYTHM_KAFKA_CONTROLLER_PORT."
            )
    java = _java()
    _ensure_kafka_libs()
    _write_server_properties(port, controller_port, sasl=sasl)
    _format_storage(java, sasl=sasl)
    process = _start_broker(java)
    _wait_for_kafka(bootstrap, process.pid, timeout, security)


def kafka_down(timeout: float = KAFKA_STOP_TIMEOUT_S) -> bool:
    """Stop the broker started by :func:`kafka_up`: SIGTERM, then SIGKILL after ``timeout``
    seconds. Returns whether a broker was running."""
    pid = kafka_pid()
    if pid is None:
        KAFKA_PID.unlink(missing_ok=True)
        console.print("Kafka is not running (no broker started by rhythm infra)")
        return False
    with console.status(f"Stopping Kafka (pid {pid})…"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        killed = _pid_alive(pid)
        if killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            for _ in range(50):
                if not _pid_alive(pid):
                    break
                time.sleep(0.1)
    KAFKA_PID.unlink(missing_ok=True)
    if killed:
        console.print(f"[yellow]![/] Kafka (pid {pid}) ignored SIGTERM for {timeout:.0f}s; killed")
    else:
        console.print(f"[green]✓[/] Kafka stopped (pid {pid})")
    return True


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def postgres_port() -> int:
    """``$RHYTHM_POSTGRES_PORT`` or 55432."""
    return _int_env("RHYTHM_POSTGRES_PORT", DEFAULT_POSTGRES_PORT)


def postgres_url(database: str = "rhythm_test") -> str:
    """The SQLAlchemy URL of a database in the local cluster (asyncpg driver)."""
    return (
        f"postgresql+asyncpg://{POSTGRES_USER}:{POSTGRES_PASSWORD}"
        f"@127.0.0.1:{postgres_port()}/{database}"
    )


def _pg_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb and pg_ctl."""

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    candidates = [
        initdb.parent
        for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if (initdb.parent / "pg_ctl").exists()
    ]
    return max(candidates, key=version) if candidates else None


def postgres_available() -> bool:
    """Whether PostgreSQL's server binaries are installed."""
    return _pg_bindir() is not None


def _socket_dir() -> Path:
    """Where the server puts its unix socket: under .run/postgres, unless that path is too long
    for a unix socket (108 bytes), then a fixed directory under /tmp."""
    preferred = PG_DIR / "run"
    if len(str(preferred / f".s.PGSQL.{postgres_port()}.lock")) < 100:
        return preferred
    digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"rhythm-pg-{digest}"


def _as_root() -> bool:
    return os.geteuid() == 0


def _pg_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise InfraError(
            "running as root, but there is no `postgres` OS user to run PostgreSQL as "
            "(PostgreSQL refuses to run as root); install the postgresql package."
        ) from None


def _pg_command(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the postgres user."""
    if not _as_root():
        return args
    runuser = shutil.which("runuser")
    if not runuser:
        raise InfraError("as root, `runuser` (util-linux) is needed to run PostgreSQL as postgres")
    return [runuser, "-u", "postgres", "--", *args]


def _pg_run(
    args: list[str], *, input_text: str | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    PG_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        _pg_command(args),
        cwd=PG_DIR,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise InfraError(f"`{' '.join(args[:2])} …` failed (exit {result.returncode}):\n{output}")
    return result


def _can_traverse(directory: Path, user: pwd.struct_passwd) -> bool:
    info = directory.stat()
    if info.st_uid == user.pw_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for directory, dirnames, filenames in os.walk(path):
        for name in [directory, *(os.path.join(directory, n) for n in dirnames + filenames)]:
            if os.lstat(name).st_uid != uid:
                os.lchown(name, uid, gid)


def _prepare_pg_dirs() -> None:
    """Create .run/postgres (and the socket dir); as root, hand them to the postgres user and
    make sure it can reach them."""
    socket_dir = _socket_dir()
    PG_DIR.mkdir(parents=True, exist_ok=True)
    socket_dir.mkdir(parents=True, exist_ok=True)
    socket_dir.chmod(0o700)
    if not _as_root():
        return
    user = _pg_user()
    # Our own .run directory only needs to be enterable, whatever the umask was.
    RUN_DIR.chmod(RUN_DIR.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    for target in (PG_DIR, socket_dir):
        for parent in reversed(target.parents):
            if not _can_traverse(parent, user):
                raise InfraError(
                    f"PostgreSQL runs as the `postgres` user, which cannot enter {parent} "
                    f"(mode {stat.filemode(parent.stat().st_mode)}). Give it access "
                    f"(`chmod o+x {parent}`) or put the repository (or RHYTHM_HOME) elsewhere."
                )
    _chown_tree(PG_DIR, user.pw_uid, user.pw_gid)
    _chown_tree(socket_dir, user.pw_uid, user.pw_gid)


def _pg_pid_info() -> tuple[int, int] | None:
    """(pid, port) from postmaster.pid if the server is running, else None."""
    try:
        lines = (PG_DATA / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    return (pid, port) if _pid_alive(pid) else None


def postgres_running() -> bool:
    """Whether our PostgreSQL cluster is running."""
    bindir = _pg_bindir()
    if bindir is None or not (PG_DATA / "PG_VERSION").exists():
        return False
    result = _pg_run([str(bindir / "pg_ctl"), "-D", str(PG_DATA), "status"], check=False)
    return result.returncode == 0


def _write_pg_config() -> None:
    conf = PG_DATA / "rhythm.conf"
    socket_dir = str(_socket_dir()).replace("'", "''")
    conf.write_text(
        "# Written by `rhythm infra up` on every start; edit cli/src/rhythm_cli/infra.py.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {postgres_port()}\n"
        f"unix_socket_directories = '{socket_dir}'\n"
        "max_connections = 200\n"
        "# A throwaway local development/test cluster: durability is traded for speed.\n"
        "# Never use these three settings on a server whose data matters.\n"
        "fsync = off\n"
        "synchronous_commit = off\n"
        "full_page_writes = off\n"
    )
    main_conf = PG_DATA / "postgresql.conf"
    include = "include_if_exists = 'rhythm.conf'"
    if include not in main_conf.read_text():
        with main_conf.open("a") as handle:
            handle.write(f"\n# Rhythm's local settings\n{include}\n")
    if _as_root():
        user = _pg_user()
        os.chown(conf, user.pw_uid, user.pw_gid)


_BOOTSTRAP_SQL = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN
    CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{password}';
  ELSE
    ALTER ROLE {user} LOGIN SUPERUSER PASSWORD '{password}';
  END IF;
END
$$;
SELECT format('CREATE DATABASE %I OWNER {user}', name)
FROM unnest(ARRAY[{databases}]) AS name
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = name)
\\gexec
"""


def _pg_bootstrap(bindir: Path) -> None:
    """Create the rhythm role and databases (idempotent)."""
    sql = _BOOTSTRAP_SQL.format(
        user=POSTGRES_USER,
        password=POSTGRES_PASSWORD,
        databases=", ".join(f"'{name}'" for name in POSTGRES_DATABASES),
    )
    command = [
        str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
        "-h", str(_socket_dir()), "-p", str(postgres_port()),
        "-U", "postgres", "-d", "postgres", "-f", "-",
    ]  # fmt: skip
    _pg_run(command, input_text=sql)


def postgres_up() -> bool:
    """Start (initialising on first use) the local PostgreSQL cluster and create the rhythm role
    and databases. Returns False, after saying so, when PostgreSQL is not installed."""
    bindir = _pg_bindir()
    if bindir is None:
        console.print(
            "[yellow]![/] PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
            "skipping it. SQLite is the embedded default; `apt-get install postgresql` adds it."
        )
        return False
    port = postgres_port()
    _prepare_pg_dirs()
    if not (PG_DATA / "PG_VERSION").exists():
        initdb = [
            str(bindir / "initdb"), "-D", str(PG_DATA), "-U", "postgres",
            "-E", "UTF8", "--no-locale",
            # Local socket: trust (the socket dir is private); TCP: the rhythm password.
            "--auth-local=trust", "--auth-host=scram-sha-256",
        ]  # fmt: skip
        with console.status("Initialising the PostgreSQL cluster…"):
            _pg_run(initdb)
        console.print(f"[green]✓[/] PostgreSQL cluster initialised in {_relative(PG_DATA)}")
    info = _pg_pid_info()
    if info is not None and postgres_running():
        console.print(
            f"[green]✓[/] PostgreSQL already running on 127.0.0.1:{info[1]} (pid {info[0]}); "
            "nothing to start"
        )
    else:
        if _port_open("127.0.0.1", port):
            raise InfraError(
                f"port 127.0.0.1:{port} is taken by another process; stop it or choose another "
                "port with RHYTHM_POSTGRES_PORT."
            )
        _write_pg_config()
        if _as_root() and PG_LOG.exists():
            user = _pg_user()
            os.chown(PG_LOG, user.pw_uid, user.pw_gid)
        started = time.monotonic()
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(PG_DATA), "-l", str(PG_LOG)]
        with console.status(f"Starting PostgreSQL on 127.0.0.1:{port}…"):
            result = _pg_run([*pg_ctl, "-w", "-t", "60", "start"], check=False)
        if result.returncode != 0:
            raise InfraError(
                f"PostgreSQL did not start (pg_ctl exit {result.returncode}). "
                f"Last lines of {_relative(PG_LOG)}:\n{_tail(PG_LOG)}"
            )
        info = _pg_pid_info()
        pid = info[0] if info else "?"
        console.print(
            f"[green]✓[/] PostgreSQL ready on 127.0.0.1:{port} "
            f"(pid {pid}, {time.monotonic() - started:.1f}s)"
        )
    _pg_bootstrap(bindir)
    console.print(
        f"[green]✓[/] role {POSTGRES_USER} and databases {', '.join(POSTGRES_DATABASES)} in place"
    )
    return True


def postgres_down() -> bool:
    """Stop the local PostgreSQL cluster (fast shutdown). Returns whether it was running."""
    bindir = _pg_bindir()
    if bindir is None or not postgres_running():
        console.print("PostgreSQL is not running")
        return False
    with console.status("Stopping PostgreSQL…"):
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(PG_DATA)]
        _pg_run([*pg_ctl, "-m", "fast", "-w", "-t", "60", "stop"])
    console.print("[green]✓[/] PostgreSQL stopped")
    return True


# --------------------------------------------------------------------------------------------
# infra.env and the commands
# --------------------------------------------------------------------------------------------


def write_infra_env(
    bootstrap: str | None = None, postgres: bool | None = None, *, sasl: bool = False
) -> Path:
    """Write ``.run/infra.env`` (``KEY=value`` lines) describing what is up, for other tools
    (``make test`` exports it). ``postgres`` defaults to whether our cluster is running; ``sasl``
    adds the client settings of the SASL listener."""
    if postgres is None:
        postgres = postgres_running()
    lines = [f"KAFKA_BOOTSTRAP_SERVERS={bootstrap or kafka_bootstrap()}"]
    if sasl:
        lines += [f"{key}={value}" for key, value in _sasl_env().items()]
    if postgres:
        lines.append(f"RHYTHM_TEST_POSTGRES_URL={postgres_url('rhythm_test')}")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    INFRA_ENV.write_text("\n".join(lines) + "\n")
    return INFRA_ENV


app = typer.Typer(
    help="Local infrastructure: Apache Kafka (KRaft) and PostgreSQL on 127.0.0.1, "
    "data under .run/.",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]✗[/] {message}")
    return typer.Exit(code)


@app.command()
def up(
    kafka: bool = typer.Option(True, "--kafka/--no-kafka", help="Start the Kafka broker."),
    postgres: bool = typer.Option(
        True, "--postgres/--no-postgres", help="Start PostgreSQL (when it is installed)."
    ),
    timeout: float = typer.Option(
        KAFKA_START_TIMEOUT_S, help="Seconds to wait for Kafka to answer."
    ),
    sasl: bool = typer.Option(
        False,
        "--sasl",
        help=f"Kafka's client listener speaks SASL_PLAINTEXT with {KAFKA_SASL_MECHANISM} "
        f"(user {KAFKA_SASL_USER}); .run/infra.env carries the client settings.",
    ),
) -> None:
    """Start Kafka and PostgreSQL (no-op for what is already running); write .run/infra.env."""
    try:
        if kafka:
            kafka_up(kafka_bootstrap(), timeout=timeout, sasl=sasl)
        pg_up = postgres_up() if postgres else postgres_running()
        env_file = write_infra_env(postgres=pg_up, sasl=sasl)
    except InfraError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; `rhythm infra down` stops whatever was started", 130) from None
    console.print(f"[green]✓[/] wrote {_relative(env_file)}")


@app.command()
def down(
    kafka: bool = typer.Option(True, "--kafka/--no-kafka", help="Stop the Kafka broker."),
    postgres: bool = typer.Option(True, "--postgres/--no-postgres", help="Stop PostgreSQL."),
) -> None:
    """Stop Kafka (SIGTERM, SIGKILL after 30 s) and PostgreSQL; keep their data."""
    try:
        if kafka:
            kafka_down()
        if postgres:
            postgres_down()
    except InfraError as exc:
        raise _fail(str(exc)) from None
    if kafka and postgres:
        INFRA_ENV.unlink(missing_ok=True)
    elif INFRA_ENV.exists():
        write_infra_env()


@app.command()
def status() -> None:
    """Show whether Kafka answers and PostgreSQL runs, with pids, addresses and logs."""
    try:
        bootstrap = kafka_bootstrap()
        reachable = kafka_ready(bootstrap, timeout=2.0)
        pid = kafka_pid()
        table = Table(show_header=True, header_style="bold")
        for column in ("service", "state", "pid", "address", "logs"):
            table.add_column(column)
        if pid:
            kafka_logs = _relative(KAFKA_LOG)
        else:
            kafka_logs = "(not started by rhythm infra)" if reachable else ""
        table.add_row(
            "kafka",
            "[green]reachable[/]" if reachable else "[red]not reachable[/]",
            str(pid) if pid else "-",
            bootstrap,
            kafka_logs,
        )
        url = ""
        if not postgres_available():
            table.add_row("postgres", "[yellow]not installed[/]", "-", "-", "")
        else:
            info = _pg_pid_info() if postgres_running() else None
            table.add_row(
                "postgres",
                "[green]running[/]" if info else "[red]stopped[/]",
                str(info[0]) if info else "-",
                f"127.0.0.1:{info[1] if info else postgres_port()}",
                _relative(PG_LOG),
            )
            url = postgres_url("<database>") if info else ""
    except InfraError as exc:
        raise _fail(str(exc)) from None
    console.print(table)
    if url:
        console.print(f"postgres url: {url}", soft_wrap=True)
    if INFRA_ENV.exists():
        console.print(f"env file: {_relative(INFRA_ENV)}")
