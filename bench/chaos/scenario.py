"""The chaos run: phases of load with one kind of fault each, and the checks after every phase."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rhythm_shared.contracts import topics

from . import checks
from .harness import (
    PORTS,
    SERVICES,
    Broker,
    Cluster,
    MailSink,
    dedicated_broker,
    free_port,
    port_busy,
)
from .workload import (
    CLOCK_AT,
    Api,
    Org,
    Outgoing,
    Publisher,
    make_org,
    mix,
    poison,
    upstream_events,
)


@dataclass(frozen=True)
class Config:
    employees: int = 2_000
    events: int = 50_000
    poison: int = 1_000
    http_checkins: int = 150
    http_goals: int = 100
    renames: int = 6
    duplicates: int = 3_000
    kill_rounds: int = 2
    broker_restart: bool = True
    #: None: a broker of the run's own (restartable); else an existing bootstrap address.
    bootstrap: str | None = None
    seed: int = 8
    #: False: the fixed ports 18001-18005 (+18013/18014 for replicas); True: any free ports.
    free_ports: bool = False
    phase_timeout_s: float = 900.0
    keep: bool = False


FULL = Config()
QUICK = Config(
    employees=300,
    events=5_000,
    poison=100,
    http_checkins=30,
    http_goals=20,
    renames=2,
    duplicates=500,
    kill_rounds=1,
    phase_timeout_s=300.0,
)


@dataclass
class PhaseResult:
    name: str
    seconds: float
    faults: list[str]
    rows: list[checks.Row]
    converged: bool
    published: int

    @property
    def ok(self) -> bool:
        return self.converged and all(r.ok for r in self.rows)


@dataclass
class Outcome:
    phases: list[PhaseResult] = field(default_factory=list)
    seconds: float = 0.0
    records: int = 0
    workdir: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.phases) and all(p.ok for p in self.phases)


def print_phase(console: Console, phase: PhaseResult) -> None:
    table = Table(
        title=f"{phase.name} — {phase.seconds:.0f}s, {phase.published:,} records published"
        + ("" if phase.converged else " — [red]did not converge[/]"),
        title_justify="left",
    )
    for column in ("check", "expected", "actual", "lost", "double", "", "note"):
        table.add_column(
            column,
            justify="right" if column in ("expected", "actual", "lost", "double") else "left",
        )
    for r in phase.rows:
        table.add_row(
            r.check,
            f"{r.expected:,}",
            f"{r.actual:,}",
            str(r.lost),
            str(r.double),
            "[green]ok[/]" if r.ok else "[red]FAIL[/]",
            r.note[:110],
        )
    console.print(table)
    if phase.faults:
        console.print("  faults: " + "; ".join(phase.faults))


def print_summary(console: Console, outcome: Outcome) -> None:
    table = Table(title="chaos summary", title_justify="left")
    for column in ("phase", "seconds", "published", "checks", "lost", "double", "result"):
        table.add_column(column)
    for p in outcome.phases:
        failed = sum(1 for r in p.rows if not r.ok)
        table.add_row(
            p.name,
            f"{p.seconds:.0f}",
            f"{p.published:,}",
            f"{len(p.rows) - failed}/{len(p.rows)}",
            str(sum(r.lost for r in p.rows)),
            str(sum(r.double for r in p.rows)),
            "[green]ok[/]" if p.ok else "[red]FAIL[/]",
        )
    console.print(table)
    console.print(
        f"{outcome.records:,} records on the topics in {outcome.seconds:.0f}s — "
        + ("[green]lost 0, double 0[/]" if outcome.ok else "[red]FAILED[/]")
    )


@contextlib.contextmanager
def _broker(cfg: Config, workdir: Path) -> Iterator[Broker]:
    if cfg.bootstrap:
        yield Broker(cfg.bootstrap, restartable=False)
    else:
        with dedicated_broker(workdir) as broker:
            yield broker


class Run:
    def __init__(self, cfg: Config, console: Console, workdir: Path, broker: Broker) -> None:
        self.cfg = cfg
        self.console = console
        self.workdir = workdir
        self.broker = broker
        self.rng = random.Random(cfg.seed)
        self.tenant = f"chaos{uuid.uuid4().hex[:8]}"
        self.prefix = f"{self.tenant}."
        self.sink = MailSink()
        offset = (CLOCK_AT - datetime.now(UTC)).total_seconds()
        self.cluster = Cluster(workdir, broker.bootstrap, self.prefix, self.sink.port, offset)
        self.ports = dict(PORTS, **{"notifications-2": 18013, "reporting-2": 18014})
        if cfg.free_ports:
            self.ports = {name: free_port() for name in self.ports}
        for name in SERVICES:
            self.cluster.add(name, name, self.ports[name])
        self.org: Org = make_org(self.tenant, cfg.employees, self.rng)
        self.api = Api({n: self.cluster.url(n) for n in SERVICES}, self.org)
        self.publisher = Publisher(broker.bootstrap, self.prefix)
        self.poisoned: list[tuple[str, str]] = []
        self.outcome = Outcome(workdir=str(workdir))

    def now(self) -> datetime:
        """The services' shifted clock."""
        return datetime.now(UTC) + timedelta(seconds=self.cluster.clock_offset_s)

    # ---------------------------------------------------------------- convergence and checks

    async def converge(self) -> bool:
        deadline = time.monotonic() + self.cfg.phase_timeout_s
        stable = 0
        last: Any = None
        while time.monotonic() < deadline:
            for name in SERVICES:
                if not self.cluster.alive(name):
                    self.cluster.revive(name)
            lag = await checks.group_lag(self.broker.bootstrap, self.prefix)
            work = checks.pending_work(self.workdir)
            state = (lag, work, len(self.sink.snapshot()))
            if not any(lag.values()) and not any(work.values()) and state == last:
                stable += 1
                if stable >= 2:
                    return True
            else:
                stable = 0
            last = state
            await asyncio.sleep(1.5)
        self.console.print(f"[red]not converged:[/] lag {last[0]}, pending {last[1]}")
        return False

    async def phase(self, name: str, body: Callable[[], Awaitable[list[str]]]) -> PhaseResult:
        self.console.rule(name)
        start = time.monotonic()
        sent_before = self.publisher.sent
        events_before = len(self.cluster.events)
        faults = await body()
        converged = await self.converge()
        faults += [e for e in self.cluster.events[events_before:] if "by itself" in e]
        produced = await checks.produced(self.broker.bootstrap, self.prefix, self.tenant)
        self.outcome.records = produced.records
        rows = [
            *checks.check_http(
                produced, self.api.log, self.org, checks.people_names(self.workdir, self.tenant)
            ),
            *checks.check_reporting(self.workdir, produced, self.tenant, self.org),
            *checks.check_notifications(
                self.workdir,
                produced,
                self.org,
                self.sink,
                sum(1 for e in self.cluster.events if e.startswith("kill -9 notifications")),
            ),
            *await checks.check_dlq(self.broker.bootstrap, self.prefix, self.poisoned),
        ]
        result = PhaseResult(
            name,
            time.monotonic() - start,
            faults,
            rows,
            converged,
            self.publisher.sent - sent_before,
        )
        print_phase(self.console, result)
        self.outcome.phases.append(result)
        return result

    # ---------------------------------------------------------------- load

    def slices(self) -> list[list[Outgoing]]:
        cfg = self.cfg
        units = len(self.org.units)
        upstream = max(100, cfg.events - cfg.employees - units - cfg.poison - cfg.duplicates)
        events = upstream_events(self.org, upstream, self.rng, self.now())
        bad = poison(self.tenant, cfg.poison, self.rng, self.now())
        self.bad = bad
        shares = [0.4, 0.2, 0.2, 0.2] if cfg.broker_restart else [0.5, 0.25, 0.25]
        out, i, j = [], 0, 0
        for n, share in enumerate(shares):
            last = n == len(shares) - 1
            e_end = len(events) if last else i + int(len(events) * share)
            b_end = len(bad) if last else j + int(len(bad) * share)
            out.append(mix(events[i:e_end], bad[j:b_end], self.rng))
            i, j = e_end, b_end
        return out

    async def send(self, items: list[Outgoing]) -> None:
        self.poisoned += [(o.poison_id, o.topic) for o in items if o.poison_id]
        await self.publisher.send(items)

    def http_work(self, share: float) -> list[Callable[[], Awaitable[None]]]:
        people = [e for e, m in self.org.managers.items() if m]
        work: list[Callable[[], Awaitable[None]]] = []
        for _ in range(int(self.cfg.http_checkins * share)):
            e = self.rng.choice(people)
            work.append(functools.partial(self._checkin, e))
        for _ in range(int(self.cfg.http_goals * share)):
            e = self.rng.choice(people)
            work.append(functools.partial(self._goal, e))
        for _ in range(max(1, int(self.cfg.renames * share))):
            chunk = self.rng.sample(people, min(50, len(people)))
            work.append(functools.partial(self._rename, chunk))
        self.rng.shuffle(work)
        return work

    async def _checkin(self, employee: str) -> None:
        await self.api.checkin(self._serial(), employee, self.rng, self.now())

    async def _goal(self, owner: str) -> None:
        await self.api.goal(self._serial(), owner, self.rng)

    async def _rename(self, chunk: list[str]) -> None:
        await self.api.rename(self._serial(), chunk)

    _counter = 0

    def _serial(self) -> int:
        Run._counter += 1
        return Run._counter

    async def run_http(self, work: list[Callable[[], Awaitable[None]]]) -> None:
        gate = asyncio.Semaphore(6)

        async def one(job: Callable[[], Awaitable[None]]) -> None:
            async with gate:
                await job()

        await asyncio.gather(*(one(job) for job in work))

    # ---------------------------------------------------------------- the phases

    async def start(self) -> None:
        busy = [p for p in self.ports.values() if port_busy(p)]
        if busy:
            raise RuntimeError(f"ports in use: {busy} (another chaos run?)")
        self.sink.start()
        # people first: it creates the topics, so the others do not all race to create them.
        self.cluster.start("people")
        await self.cluster.wait_ready(["people"], timeout_s=180)
        for name in SERVICES[1:]:
            self.cluster.start(name)
        await self.cluster.wait_ready(list(SERVICES), timeout_s=180)

    async def seed(self) -> list[str]:
        await self.api.seed()
        deadline = time.monotonic() + self.cfg.phase_timeout_s
        while time.monotonic() < deadline:
            known = checks.people_known(self.workdir, self.tenant)
            if all(n >= len(self.org.managers) for n in known.values()):
                break
            await asyncio.sleep(1)
        return [
            f"{len(self.org.managers):,} employees, {len(self.org.units)} org units"
            " via the people API"
        ]

    async def kill_phase(self, items: list[Outgoing]) -> list[str]:
        before = len(self.cluster.events)
        load = asyncio.gather(self.send(items), self.run_http(self.http_work(0.4)))
        for _ in range(self.cfg.kill_rounds):
            order = list(SERVICES)
            self.rng.shuffle(order)
            restarts = []
            for name in order:
                await asyncio.sleep(self.rng.uniform(0.5, 3.0))
                self.cluster.kill9(name)
                restarts.append(asyncio.ensure_future(self._restart(name)))
            await asyncio.gather(*restarts)
            await self.cluster.wait_ready(list(SERVICES))
        await load
        return [*self.cluster.events[before:], "each restarted 0.2-1.5 s later"]

    async def _restart(self, name: str) -> None:
        await asyncio.sleep(self.rng.uniform(0.2, 1.5))
        self.cluster.start(name)

    async def broker_phase(self, items: list[Outgoing]) -> list[str]:
        half = len(items) // 2
        http = asyncio.ensure_future(self.run_http(self.http_work(0.2)))
        await self.send(items[:half])
        await asyncio.sleep(2)
        started = time.monotonic()
        await asyncio.to_thread(self.broker.restart)
        down = time.monotonic() - started
        await self.send(items[half:])
        await http
        return [f"Kafka broker stopped and started mid-run ({down:.0f}s without a broker)"]

    async def rebalance_phase(self, items: list[Outgoing]) -> list[str]:
        half = len(items) // 2
        for service in ("notifications", "reporting"):
            self.cluster.add(f"{service}-2", service, self.ports[f"{service}-2"])
            self.cluster.start(f"{service}-2")
        http = asyncio.ensure_future(self.run_http(self.http_work(0.2)))
        await self.send(items[:half])
        await self.cluster.wait_ready(["notifications-2", "reporting-2"])
        await self.send(items[half:])
        await asyncio.sleep(3)
        self.cluster.terminate("notifications-2")
        self.cluster.kill9("reporting-2")
        await http
        return [
            "second replicas of notifications and reporting joined mid-batch"
            " (same group, same database)",
            "then left: notifications-2 by SIGTERM, reporting-2 by kill -9",
        ]

    async def duplicates_phase(self, items: list[Outgoing]) -> list[str]:
        http = asyncio.ensure_future(self.run_http(self.http_work(0.2)))
        await self.send(items)
        records = []
        for name in (topics.PEOPLE, topics.GOALS, topics.CHECKINS, topics.CADENCE):
            records += [
                r
                for r in await checks.read_all(self.broker.bootstrap, f"{self.prefix}{name}")
                if b"/poison/" not in (r.key or b"")
            ]
        picked = self.rng.sample(records, min(self.cfg.duplicates, len(records)))
        logical = {
            f"{self.prefix}{t}": t
            for t in (topics.PEOPLE, topics.GOALS, topics.CHECKINS, topics.CADENCE)
        }
        await self.publisher.send(
            [
                Outgoing(logical[r.topic], r.key or b"", r.value or b"", list(r.headers or ()))
                for r in picked
            ]
        )
        await http
        return [
            f"{len(picked):,} already-processed records published again (same ce_id, key, body)"
        ]

    async def play(self) -> Outcome:
        started = time.monotonic()
        await self.start()
        await self.phase("0 · seed the organisation", self.seed)
        parts = self.slices()
        await self.phase(
            "1 · kill -9 each service mid-stream, restart it", lambda: self.kill_phase(parts[0])
        )
        rest = parts[1:]
        if self.cfg.broker_restart:
            await self.phase(
                "2 · restart the Kafka broker mid-run", lambda: self.broker_phase(rest[0])
            )
            rest = rest[1:]
        await self.phase(
            "3 · rebalance: a second replica joins, then leaves",
            lambda: self.rebalance_phase(rest[0]),
        )
        await self.phase(
            "4 · duplicates of processed records", lambda: self.duplicates_phase(rest[1])
        )
        self.outcome.seconds = time.monotonic() - started
        return self.outcome

    async def close(self) -> None:
        await self.publisher.close()
        await self.api.close()


def run(cfg: Config, console: Console | None = None) -> Outcome:
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # retries while the broker restarts
    """Run the whole scenario; every process is stopped and the temp dir removed, even on failure
    (kept, with the services' logs, when the run failed or ``keep`` is set)."""
    console = console or Console()
    workdir = Path(tempfile.mkdtemp(prefix="rhythm-chaos-"))
    outcome = Outcome(workdir=str(workdir))
    failed = True
    try:
        with _broker(cfg, workdir) as broker:
            if not broker.restartable and cfg.broker_restart:
                cfg = replace(cfg, broker_restart=False)
            chaos = Run(cfg, console, workdir, broker)
            try:
                outcome = asyncio.run(_play(chaos))
            finally:
                chaos.cluster.stop_all()
                chaos.sink.stop()
        failed = not outcome.ok
    finally:
        if failed or cfg.keep:
            console.print(f"logs and databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return outcome


async def _play(chaos: Run) -> Outcome:
    try:
        # Bounded: a hung phase ends the run (as a failure) instead of waiting forever.
        return await asyncio.wait_for(chaos.play(), chaos.cfg.phase_timeout_s * 7)
    finally:
        await chaos.close()
