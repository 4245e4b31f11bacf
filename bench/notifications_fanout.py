"""Fan-out benchmark of the notifications service: CheckinMissed events through real Kafka into
the service, out over SMTP to a local aiosmtpd sink.

    .venv/bin/python bench/notifications_fanout.py            # 20,000 events
    .venv/bin/python bench/notifications_fanout.py --quick    # 2,000 events
    .venv/bin/python bench/notifications_fanout.py --database-url postgresql+asyncpg://...

Every event is a miss of a different employee; managers have 8 reports each. Each employee gets
one email; each manager gets one (the daily cap: their other misses that day wait for a digest).
Reported: emails/s of the service (first event on the topic to last email accepted), latency
p50/p99 from the event's record timestamp on the topic to the sink's 250 reply for its email,
and, in the same run against the same sink, a raw aiosmtplib send loop (one connection, and as
many connections as the service uses) with the ratio. The SMTP sink and the producer of the
misses run in processes of their own, as the relay and the checkins service do in production,
so the service's process holds only the service. Wall time depends on what else the machine
runs; the CPU milliseconds per email (from the first miss produced to the last email accepted)
depend much less on it: the whole process's (the service and SQLite's threads) and the main
thread's (the event loop: the service's Python).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiosmtplib
import uvloop
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from common import Figure, free_port, report
from sqlalchemy import func, select

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.email import message_id
from rhythm_notifications.main import Settings, build
from rhythm_shared.contracts.envelope import to_record
from rhythm_shared.contracts.v1 import CheckinKind, CheckinMissed, EmployeeUpserted
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import SystemClock

REPORTS_PER_MANAGER = 8
_MSG_ID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.IGNORECASE | re.MULTILINE)


class _Handler:
    """aiosmtpd handler: accepts everything; remembers when each Message-ID was accepted."""

    def __init__(self, total: Any) -> None:
        self.accepted: dict[str, float] = {}
        self.total = total

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = time.time()
        content = envelope.original_content or b""
        match = _MSG_ID.search(content if isinstance(content, bytes) else content.encode())
        if match:
            self.accepted.setdefault(match.group(1).decode(), now)
        with self.total.get_lock():
            self.total.value += 1
        return "250 OK"


def _serve_sink(port: int, total: Any, ready: Any, conn: Connection) -> None:
    """The sink process: serve SMTP, and the acceptance times when asked, until told to stop."""
    handler = _Handler(total)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while conn.recv() == "accepted":
            conn.send(handler.accepted)
    finally:
        controller.stop()


class Sink:
    """A local SMTP server in a process of its own (wall-clock acceptance times, counted)."""

    def __init__(self, port: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.total = ctx.Value("q", 0)
        ready = ctx.Event()
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve_sink, args=(port, self.total, ready, child), daemon=True
        )
        self.process.start()
        if not ready.wait(60):
            raise SystemExit("the SMTP sink did not start")

    def count(self) -> int:
        return int(self.total.value)

    def accepted(self) -> dict[str, float]:
        self.conn.send("accepted")
        accepted: dict[str, float] = self.conn.recv()
        return accepted

    def stop(self) -> None:
        self.conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


def _people(tenant: str, n: int, at: datetime) -> tuple[list[EmployeeUpserted], list[str]]:
    managers = [f"m-{i}" for i in range((n + REPORTS_PER_MANAGER - 1) // REPORTS_PER_MANAGER)]
    people = [
        EmployeeUpserted(
            tenant_id=tenant,
            occurred_at=at,
            employee_id=m,
            email=f"{m}@bench.example.com",
            display_name=f"Manager {m}",
            org_unit_id="ou-1",
            time_zone="Europe/Amsterdam",
            locale="en-GB",
            hired_on=date(2020, 1, 1),
        )
        for m in managers
    ]
    people += [
        EmployeeUpserted(
            tenant_id=tenant,
            occurred_at=at,
            employee_id=f"e-{i}",
            email=f"e-{i}@bench.example.com",
            display_name=f"Employee {i}",
            manager_id=managers[i // REPORTS_PER_MANAGER],
            org_unit_id="ou-1",
            time_zone="Europe/Amsterdam",
            locale="nl" if i % 2 else "en-GB",
            hired_on=date(2020, 1, 1),
        )
        for i in range(n)
    ]
    return people, managers


def _missed(tenant: str, i: int, manager: str, at: datetime) -> CheckinMissed:
    return CheckinMissed(
        tenant_id=tenant,
        occurred_at=at,
        obligation_id=f"ob-e-{i}-monthly-2026-02",
        employee_id=f"e-{i}",
        manager_id=manager,
        kind=CheckinKind.MONTHLY,
        period_start=date(2026, 2, 1),
        period_end=date(2026, 2, 28),
        due_at=datetime(2026, 2, 27, 16, 0, tzinfo=UTC),
        consecutive_misses=1,
    )


async def _produce(bootstrap: str, topic_prefix: str, events: list[Any]) -> list[float]:
    """Publish as another service would; return each record's timestamp on the topic (s)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        futures = []
        for event in events:
            record = to_record(event, source="/rhythm/checkins", event_id=str(uuid.uuid4()))
            futures.append(
                await producer.send(
                    f"{topic_prefix}{record.topic}",
                    record.value,
                    key=record.key,
                    headers=record.headers,
                )
            )
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [m.timestamp / 1000 for m in metadata]


def _produce_misses(
    bootstrap: str, topic_prefix: str, tenant: str, n: int, managers: list[str], at: datetime
) -> list[float]:
    """In a process of its own: publish the misses; their timestamps on the topic."""
    events = [_missed(tenant, i, managers[i // REPORTS_PER_MANAGER], at) for i in range(n)]
    return asyncio.run(_produce(bootstrap, topic_prefix, events))


async def _wait_for(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def _sample_message(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Rhythm <rhythm@bench.example.com>"
    msg["To"] = f"Employee {i} <raw-{i}@bench.example.com>"
    msg["Subject"] = "Missed: your monthly check-in with Manager m-0"
    msg["Message-ID"] = f"<raw-{i}-{uuid.uuid4().hex}@bench.example.com>"
    msg["List-Unsubscribe"] = "<http://127.0.0.1:8003/v1/unsubscribe?token=x>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("Hi Employee,\n\nThe monthly check-in did not happen.\n" * 3)
    msg.add_alternative(
        "<p>Hi Employee,</p><p>The monthly check-in did not happen.</p>" * 3, "html"
    )
    return msg


async def _raw_loop(port: int, count: int, connections: int) -> float:
    """aiosmtplib straight to the sink: ``count`` messages over ``connections`` sessions."""
    messages = [_sample_message(i).as_bytes(policy=SMTP_POLICY) for i in range(count)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        try:
            while not queue.empty():
                i = queue.get_nowait()
                await smtp.sendmail(
                    "rhythm@bench.example.com", [f"raw-{i}@bench.example.com"], messages[i]
                )
        finally:
            await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return count / (time.perf_counter() - started)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 events instead of 20,000")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--smtp-connections", type=int, default=8)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--progress", action="store_true", help="print progress to stderr")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    n = args.events or (2_000 if args.quick else 20_000)
    logging.basicConfig(level=logging.WARNING)

    workdir = Path(tempfile.mkdtemp(prefix="rhythm-bench-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'notifications.db'}"
    tenant = f"bench-{uuid.uuid4().hex[:6]}"
    prefix = f"bench{uuid.uuid4().hex[:8]}."

    port = free_port()
    sink = Sink(port)
    producer = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))

    # Monday 10:00 UTC, flowing: everyone is inside working hours for the whole run.
    clock = SystemClock()
    clock.travel_to(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=args.bootstrap,
        kafka_topic_prefix=prefix,
        topic_partitions=args.partitions,
        environment="development",
        log_json=False,
        log_level="WARNING",
        consumer_session_timeout_ms=6000,
        consumer_heartbeat_interval_ms=500,
        relay_poll_interval_s=0.2,
        smtp_port=port,
        smtp_connections=args.smtp_connections,
        email_from="Rhythm <rhythm@bench.example.com>",
        dispatch_interval_s=0.05,
        dispatch_batch_size=200,
        digest_interval_s=3600,
    )
    app = build(settings, clock=clock)
    people, managers = _people(tenant, n, clock.now())
    expected = n + len(managers)
    try:
        async with running(app) as runtime:

            async def count_people() -> bool:
                async with runtime.uow() as uow:
                    got = await uow.session.scalar(
                        select(func.count()).select_from(db.directory.employees)
                    )
                return int(got or 0) >= len(people)

            await _produce(args.bootstrap, prefix, people)
            await _wait_for(count_people, args.timeout, "the people slice")

            await asyncio.get_running_loop().run_in_executor(producer, os.getpid)  # started
            # Which event each email answers: employee email <- its miss; the manager's single
            # email <- the first of their reports' misses that was decided (found below).
            produce = asyncio.get_running_loop().run_in_executor(
                producer, _produce_misses, args.bootstrap, prefix, tenant, n, managers, clock.now()
            )
            cpu_started, loop_cpu_started = time.process_time(), time.thread_time()
            produced_at = await produce
            first_record = min(produced_at)

            started = time.monotonic()

            async def all_sent() -> bool:
                if args.progress and int(time.monotonic() - started) % 5 == 0:
                    async with runtime.uow() as uow:
                        decided = await uow.session.scalar(
                            select(func.count()).select_from(db.deliveries)
                        )
                    print(
                        f"{time.monotonic() - started:6.1f}s decided={decided} sent={sink.count()}",
                        file=sys.stderr,
                    )
                return sink.count() >= expected

            await _wait_for(all_sent, args.timeout, f"{expected} emails")
            cpu_s = time.process_time() - cpu_started
            loop_cpu_s = time.thread_time() - loop_cpu_started
            accepted_at = sink.accepted()
            last_accept = max(accepted_at.values())
            service_rate = expected / (last_accept - first_record)

            # The service's clock was moved: its stamps less this offset are wall-clock times.
            offset = clock.now().timestamp() - time.time()
            async with runtime.uow() as uow:
                rows = (
                    await uow.session.execute(
                        select(db.deliveries.c.idempotency_key, db.deliveries.c.created_at).where(
                            db.deliveries.c.status == "sent"
                        )
                    )
                ).all()
            latencies = []
            # The stages of each email: on the topic -> decided (its row written in the
            # consumer's transaction) -> accepted by the sink (claimed, marked, sent).
            to_decided, decided_to_accepted = [], []
            by_obligation = {f"ob-e-{i}-monthly-2026-02": i for i in range(n)}
            for key, created_at in rows:
                accepted = accepted_at.get(message_id(key, settings.email_from))
                if accepted is None:
                    continue
                obligation = key.split(":")[2]
                on_topic = produced_at[by_obligation[obligation]]
                decided = created_at.timestamp() - offset
                latencies.append(accepted - on_topic)
                to_decided.append(decided - on_topic)
                decided_to_accepted.append(accepted - decided)
            async with runtime.uow() as uow:
                statuses: dict[str, int] = dict(
                    (
                        await uow.session.execute(
                            select(db.deliveries.c.status, func.count()).group_by(
                                db.deliveries.c.status
                            )
                        )
                    ).all()
                )
        raw_one = await _raw_loop(port, expected, 1)
        raw_many = await _raw_loop(port, expected, args.smtp_connections)
    finally:
        sink.stop()
        producer.shutdown()

    figures = {
        "events": n,
        "emails": expected,
        "database": database_url.split(":", 1)[0],
        "service_emails_per_s": round(service_rate, 1),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(_pct(latencies, 0.99), 3),
        "latency_max_s": round(max(latencies), 3),
        "topic_to_decided_p50_s": round(statistics.median(to_decided), 3),
        "topic_to_decided_p99_s": round(_pct(to_decided, 0.99), 3),
        "decided_to_accepted_p50_s": round(statistics.median(decided_to_accepted), 3),
        "decided_to_accepted_p99_s": round(_pct(decided_to_accepted, 0.99), 3),
        "raw_aiosmtplib_1_connection_emails_per_s": round(raw_one, 1),
        f"raw_aiosmtplib_{args.smtp_connections}_connections_emails_per_s": round(raw_many, 1),
        "process_cpu_ms_per_email": round(1000 * cpu_s / expected, 2),
        "main_thread_cpu_ms_per_email": round(1000 * loop_cpu_s / expected, 2),
        "ratio_service_to_raw_1": round(service_rate / raw_one, 3),
        f"ratio_service_to_raw_{args.smtp_connections}": round(service_rate / raw_many, 3),
        "delivery_statuses": statuses,
        "latencies_measured": len(latencies),
        # Other processes share this machine: the load says how much CPU the run really had.
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures, indent=2))
    report(
        "notifications_fanout",
        [
            Figure(
                f"fan-out of {n:,} CheckinMissed to SMTP",
                service_rate,
                "emails/s",
                "raw aiosmtplib loop, 1 connection",
                raw_one,
            ),
            Figure(
                f"fan-out of {n:,} CheckinMissed to SMTP",
                service_rate,
                "emails/s",
                f"raw aiosmtplib loop, {args.smtp_connections} connections",
                raw_many,
            ),
            Figure("event on topic -> email accepted, p50", statistics.median(latencies), "s"),
            Figure("event on topic -> email accepted, p99", _pct(latencies, 0.99), "s"),
            Figure("process CPU per email", 1000 * cpu_s / expected, "ms"),
            Figure("main thread CPU per email", 1000 * loop_cpu_s / expected, "ms"),
        ],
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    # The event loop `rhythm serve` runs the service on (uvicorn picks uvloop when installed);
    # the raw aiosmtplib loop runs on it too.
    sys.exit(uvloop.run(main()))
