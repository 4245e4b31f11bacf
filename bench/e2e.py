"""End to end, on real processes and real Kafka, under a steady load of events.

Starts the five services as processes (fresh SQLite files, a fresh topic namespace, their own
ports) and an SMTP sink, seeds two tenants through the people service, then measures:

* per-service ingest: a burst of people events, timed until each consumer group has no lag,
  against the raw broker ceiling (an aiokafka consumer that only reads the same records);
* end-to-end latency at a steady load (default 500 events/s of check-ins completed and missed):
  HTTP check-in → visible on the dashboard API (probes in a tenant of their own), and
  ``CheckinMissed`` on the topic → email accepted by the SMTP sink;
* peak RSS of each service process (VmHWM) once the load is over.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiosmtpd.controller import Controller
from common import Figure, bootstrap, free_port, percentile, report

from rhythm_cli.run import Supervisor
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import to_record
from rhythm_shared.contracts.v1.cadence import CheckinMissed
from rhythm_shared.contracts.v1.checkins import CheckinCompleted
from rhythm_shared.contracts.v1.people import EmployeeUpserted
from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.kafka import client_security
from rhythm_shared.kit.settings import DEV_JWT_SECRET

SERVICES = {"people": 28005, "goals": 28001, "checkins": 28002, "notifications": 28003,
            "reporting": 28004}  # fmt: skip
CONSUMERS = ("goals", "checkins", "notifications", "reporting")
LOAD, PROBE = "load", "probe"
GROUP = 5  # reporting's default MIN_GROUP_SIZE


class Sink:
    """SMTP sink remembering when each recipient's mail arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        for rcpt in envelope.rcpt_tos:
            self.arrivals.setdefault(rcpt, []).append(now)
        return "250 OK"


def _token(tenant: str, subject: str, *roles: str) -> dict[str, str]:
    jwt = issue_token(
        DEV_JWT_SECRET, tenant=tenant, subject=subject, roles=list(roles), now=datetime.now(UTC)
    )
    return {"Authorization": f"Bearer {jwt}"}


def _env(name: str, workdir: Path, prefix: str, smtp_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ENVIRONMENT": "development", "HTTP_PORT": str(SERVICES[name]),
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / (name + '.db')}",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap(), "KAFKA_TOPIC_PREFIX": prefix,
        "TOPIC_PARTITIONS": "6", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port),
        "LOG_LEVEL": "WARNING", "CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "CONSUMER_HEARTBEAT_INTERVAL_MS": "1000", "SWEEP_INTERVAL_S": "3600",
        "STALENESS_INTERVAL_S": "3600",
    })  # fmt: skip
    return env


def _people(tenant: str, n: int, team: int = 10) -> list[dict[str, Any]]:
    people = []
    for i in range(n):
        manager = None if i == 0 else f"e-{((i - 1) // team) * team:05d}" if i % team else "e-00000"
        people.append({
            "employee_id": f"e-{i:05d}", "email": f"e-{i:05d}@{tenant}.example.com",
            "display_name": f"Person {i}", "manager_id": manager, "org_unit_id": "ou-1",
            "time_zone": "Etc/UTC", "locale": "en", "hired_on": "2020-01-06",
        })  # fmt: skip
    return people


async def _lag(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group: str, topic_names: list[str]
) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    parts = [
        TopicPartition(t, p) for t in topic_names for p in (consumer.partitions_for_topic(t) or ())
    ]
    ends = await consumer.end_offsets(parts)
    return sum(end - (offsets[tp].offset if tp in offsets else 0) for tp, end in ends.items())


async def _wait_no_lag(
    admin: AIOKafkaAdminClient,
    consumer: AIOKafkaConsumer,
    groups: list[str],
    topic_names: list[str],
    timeout_s: float = 600,
) -> dict[str, float]:
    started, done = time.perf_counter(), dict[str, float]()
    while len(done) < len(groups):
        for g in groups:
            if g not in done and await _lag(admin, consumer, g, topic_names) == 0:
                done[g] = time.perf_counter() - started
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"consumer groups still lagging: {set(groups) - set(done)}")
        await asyncio.sleep(0.05)
    return done


async def _send(producer: AIOKafkaProducer, prefix: str, event: Any) -> None:
    record = to_record(event, source="/rhythm/bench")
    await producer.send(prefix + record.topic, record.value, key=record.key, headers=record.headers)


def _next_working_noon(now: datetime) -> datetime:
    """The first Monday-to-Friday 12:00 UTC at or after ``now``: at most three days ahead (from
    a Friday afternoon), well inside the age at which notifications drop an event."""
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    while noon < now or noon.isoweekday() > 5:
        noon += timedelta(days=1)
    return noon


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="rhythm-e2e-"))
    prefix = f"e2e{uuid.uuid4().hex[:6]}."
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    supervisor = Supervisor()
    rhythm = str(Path(sys.executable).with_name("rhythm"))
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(),
        **client_security(),
        linger_ms=5,
        acks="all",
        enable_idempotence=True,
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(), **client_security())
    lag_consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(), **client_security())
    client = httpx.AsyncClient(timeout=60)
    try:
        for name in SERVICES:
            supervisor.start(
                f"e2e-{name}", [rhythm, "serve", name], _env(name, workdir, prefix, smtp_port)
            )
        for port in SERVICES.values():
            for _ in range(600):
                supervisor.check()
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        await producer.start()
        await admin.start()
        await lag_consumer.start()
        people_topic = prefix + topics.PEOPLE
        await lag_consumer._client.force_metadata_update()
        groups = [prefix + g for g in CONSUMERS]

        # Seed both tenants through the people service (the HR gateway).
        hr = "hr-sync", "integration", "hr_admin"
        for tenant, n in ((LOAD, args.employees), (PROBE, 20)):
            everyone = _people(tenant, n)
            for i in range(0, n, 999):
                batch = {
                    "org_units": [{"org_unit_id": "ou-1", "name": "Everyone"}] if i == 0 else [],
                    "employees": everyone[i : i + 999],
                }
                r = await client.post(
                    f"http://127.0.0.1:{SERVICES['people']}/v1/people/employees:batch",
                    json=batch,
                    headers=_token(tenant, *hr),
                )
                if r.status_code != 200:
                    raise RuntimeError(f"seeding {tenant} failed: {r.status_code} {r.text[:500]}")
        await _wait_no_lag(admin, lag_consumer, groups, [people_topic])

        # 1. Ingest: a burst of people events; each group's time until it has no lag.
        burst = args.burst
        base = datetime.now(UTC)
        for i in range(burst):
            await _send(producer, prefix, EmployeeUpserted(
                tenant_id=LOAD, occurred_at=base, employee_id=f"x-{i:06d}",
                email=f"x-{i:06d}@load.example.com", display_name=f"Burst {i}",
                org_unit_id="ou-1", time_zone="Etc/UTC", locale="en",
                hired_on=date(2020, 1, 6)))  # fmt: skip
        await producer.flush()
        sent = time.perf_counter()
        took = await _wait_no_lag(admin, lag_consumer, groups, [people_topic])
        drained = time.perf_counter() - sent
        ceiling = await _raw_read(people_topic)
        figures = [
            Figure(
                f"{g.removeprefix(prefix)} ingest",
                burst / s,
                "events/s",
                "raw aiokafka read+decode",
                ceiling,
            )
            for g, s in took.items()
        ]
        del drained

        # 2. Steady load; probes measure HTTP check-in -> dashboard, missed -> email.
        # The notifications service writes on working days outside quiet hours, and only about
        # events under four days old (older ones have lost their point): the next working noon.
        noon = _next_working_noon(datetime.now(UTC))
        await client.put(
            f"http://127.0.0.1:{SERVICES['notifications']}/v1/admin/clock",
            json={"now": noon.isoformat()},
            headers=_token(LOAD, "ops", "hr_admin"),
        )
        missed_sent: dict[str, float] = {}
        stop = asyncio.Event()

        async def load() -> None:
            rate, i = args.rate, 0
            started = time.perf_counter()
            while not stop.is_set():
                due = started + i / rate
                if (delay := due - time.perf_counter()) > 0:
                    await asyncio.sleep(delay)
                n = i % args.employees
                now = datetime.now(UTC)
                if i % 5 == 0 and len(missed_sent) < args.employees - 1 and n > 0:
                    employee = f"e-{len(missed_sent) + 1:05d}"
                    manager = f"e-{(len(missed_sent) // 10) * 10:05d}"
                    missed_sent[f"{employee}@load.example.com"] = time.time()
                    await _send(producer, prefix, CheckinMissed(
                        tenant_id=LOAD, occurred_at=now, obligation_id=f"o-{i}",
                        employee_id=employee, manager_id=manager, kind="monthly",
                        period_start=date(2026, 10, 1), period_end=date(2026, 10, 31),
                        due_at=now - timedelta(days=6), consecutive_misses=1))  # fmt: skip
                else:
                    employee = f"e-{max(n, 1):05d}"
                    await _send(producer, prefix, CheckinCompleted(
                        tenant_id=LOAD, occurred_at=now, checkin_id=f"c-{i}", kind="monthly",
                        employee_id=employee, manager_id="e-00000", held_at=now,
                        initiated_by="employee", pulse=3))  # fmt: skip
                i += 1

        async def probes() -> list[float]:
            checkins = f"http://127.0.0.1:{SERVICES['checkins']}/v1/checkins"
            dash = f"http://127.0.0.1:{SERVICES['reporting']}/v1/dashboards/ownership"
            executive = _token(PROBE, "e-00000", "executive", "manager", "employee")
            manager = _token(PROBE, "e-00000", "manager", "employee")

            async def hold(employee: str) -> float:
                r = await client.post(checkins, json={
                    "employee_id": employee, "kind": "monthly",
                    "scheduled_for": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()},
                    headers=manager)  # fmt: skip
                r.raise_for_status()
                r = await client.post(
                    f"{checkins}/{r.json()['checkin_id']}/complete",
                    json={"pulse": 3},
                    headers=manager,
                )
                r.raise_for_status()
                return time.perf_counter()

            async def visible(count: int, since: float) -> float:
                while True:
                    body = (await client.get(dash, headers=executive)).json()
                    if _held(body) >= count:
                        return time.perf_counter() - since
                    if time.perf_counter() - since > 120:
                        raise RuntimeError(f"{count} check-ins never became visible: {body}")
                    await asyncio.sleep(0.02)

            # The dashboard hides a month with fewer than MIN_GROUP_SIZE (5) people in it: five
            # people hold a check-in first (untimed), so each probe's shows as it lands.
            started = time.perf_counter()
            for n in range(1, GROUP + 1):
                await hold(f"e-{n:05d}")
            await visible(GROUP, started)
            latencies = []
            for k in range(args.probes):
                done = await hold(f"e-{1 + k % 9:05d}")
                latencies.append(await visible(GROUP + k + 1, done))
            return latencies

        loader = asyncio.create_task(load())
        try:
            probe_latencies = await probes()
        finally:
            stop.set()
            await loader
            await producer.flush()
        deadline = time.time() + 180
        # The sink runs in its own thread: poll what it has recorded.
        while time.time() < deadline and any(r not in sink.arrivals for r in missed_sent):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        email_latencies = [
            sink.arrivals[r][0] - t for r, t in missed_sent.items() if r in sink.arrivals
        ]
        lost = len(missed_sent) - len(email_latencies)
        figures += [
            Figure("HTTP check-in -> dashboard p50", 1000 * percentile(probe_latencies, 50), "ms"),
            Figure("HTTP check-in -> dashboard p99", 1000 * percentile(probe_latencies, 99), "ms"),
            Figure("CheckinMissed -> email p50", 1000 * percentile(email_latencies, 50), "ms"),
            Figure("CheckinMissed -> email p99", 1000 * percentile(email_latencies, 99), "ms"),
            Figure("CheckinMissed without an email", lost, "events"),
        ]
        for name in SERVICES:
            figures.append(
                Figure(f"{name} peak RSS", _peak_rss_mb(supervisor, f"e2e-{name}"), "MiB")
            )
        report(f"e2e (load {args.rate}/s, {args.employees} employees, burst {burst})", figures)
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
            await lag_consumer.stop()
            await admin.close()
            await producer.stop()
        supervisor.stop()
        controller.stop()


def _held(body: dict[str, Any]) -> int:
    summary = body.get("summary") or {}
    for key in ("checkins", "held", "total"):
        if isinstance(summary.get(key), int):
            return int(summary[key])
    return 0


def _peak_rss_mb(supervisor: Supervisor, name: str) -> float:
    pid = supervisor.children[name].pid
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _raw_read(topic: str) -> float:
    """The ceiling: read and decode the whole topic (seed and burst) with a bare consumer."""
    import json

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap(), **client_security(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        begins = await consumer.beginning_offsets(parts)
        await consumer.seek_to_beginning(*parts)
        started, seen = time.perf_counter(), 0
        total = sum(ends[p] - begins[p] for p in parts)
        progressed = started
        while seen < total:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                for r in records:
                    json.loads(r.value)
                    seen += 1
            if batch:
                progressed = time.perf_counter()
            elif time.perf_counter() - progressed > 60:
                raise RuntimeError(f"the raw read of {topic} stalled at {seen} of {total} records")
        return float(total / (time.perf_counter() - started))
    finally:
        await consumer.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under a minute)")
    parser.add_argument("--employees", type=int, default=5_000)
    parser.add_argument("--burst", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=500, help="events/s of steady load")
    parser.add_argument("--probes", type=int, default=60)
    args = parser.parse_args()
    if args.quick:
        args.employees, args.burst, args.probes = 1_000, 5_000, 15
    asyncio.run(main(args))
