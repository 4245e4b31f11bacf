"""Scale-out on PostgreSQL: one replica against two replicas in one consumer group.

For each of checkins, notifications and reporting, in the same run: a fresh PostgreSQL database
and a fresh topic namespace (6 partitions a topic), the service started as one process, or as
two (the second once the first has migrated the database), the organisation seeded, then a
burst that the group absorbs, timed from the burst's last record sent until the group has no
lag. Each service gets the burst it lives on:

* checkins: people events (new employees, each planned against the cadence policies);
* notifications: ``CheckinMissed`` for known employees, mailed to an in-process SMTP sink (the
  time until every mail arrived is a figure too);
* reporting: check-in activity (due, held, missed) on the cadence and check-ins topics; the
  people and org units come before the burst, as they do in an organisation (a batch that
  changes them runs alone by design).

The two-replica figure is reported beside the one-replica figure; its ratio is the scaling a
lag-driven autoscaler (KEDA) relies on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiosmtpd.controller import Controller
from common import Figure, bootstrap, free_port, report
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from rhythm_cli.run import Supervisor
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import to_record
from rhythm_shared.contracts.topics import TOPICS
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinDue,
    CheckinKind,
    CheckinMissed,
    EmployeeUpserted,
    Initiator,
    OrgUnitUpserted,
)
from rhythm_shared.kit.kafka import client_security, ensure_topics

PARTITIONS = 6
TENANT = "replicas"
SERVICES = ("checkins", "notifications", "reporting")
#: What each service's burst arrives on (the group's lag is measured there).
BURST_TOPICS = {
    "checkins": [topics.PEOPLE],
    "notifications": [topics.CADENCE],
    "reporting": [topics.CADENCE, topics.CHECKINS],
}
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
#: Events in each burst (full, quick): long enough that a rebalance or a batch timeout is
#: noise beside it, at each service's own pace.
BURSTS = {"checkins": (40_000, 4_000), "notifications": (4_000, 500), "reporting": (20_000, 3_000)}


class Sink:
    """SMTP sink counting the mails it accepted."""

    def __init__(self) -> None:
        self.accepted = 0
        self.last_at = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted += len(envelope.rcpt_tos)
        self.last_at = time.perf_counter()
        return "250 OK"


def _admin_url() -> str:
    url = os.environ.get("RHYTHM_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit(
            "RHYTHM_TEST_POSTGRES_URL is not set: `set -a; . .run/infra.env; set +a` first"
        )
    return url


@contextlib.asynccontextmanager
async def _database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one run, dropped afterwards."""
    admin_url = _admin_url()
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def _env(service: str, port: int, database_url: str, prefix: str, smtp_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ENVIRONMENT": "development", "HTTP_PORT": str(port), "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap(), "KAFKA_TOPIC_PREFIX": prefix,
        "TOPIC_PARTITIONS": str(PARTITIONS), "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port), "LOG_LEVEL": "WARNING",
        "CONSUMER_SESSION_TIMEOUT_MS": "6000", "CONSUMER_HEARTBEAT_INTERVAL_MS": "1000",
        "SWEEP_INTERVAL_S": "3600", "STALENESS_INTERVAL_S": "3600",
    })  # fmt: skip
    return env


def working_zone(now: datetime) -> str:
    """A zone where ``now`` is within a weekday's working hours: notifications' default
    delivery window (no quiet hours 20:00-08:00, Monday to Friday), so the burst's mails go out
    at once. In the middle of a weekend no zone is: then they wait, and the bench says so."""
    for hours in sorted(range(-12, 15), key=abs):
        local = now + timedelta(hours=hours)
        if local.isoweekday() <= 5 and 9 <= local.hour < 17:
            return "Etc/UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"  # Etc/GMT-3 is UTC+3
    return "Etc/UTC"


def _employee(i: int, at: datetime, zone: str = "Etc/UTC") -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=TENANT, occurred_at=at, employee_id=f"e-{i:06d}",
        email=f"e-{i:06d}@replicas.example.com", display_name=f"Person {i}",
        manager_id=None if i == 0 else "e-000000", org_unit_id=f"ou-{i % 10}",
        time_zone=zone, locale="en", hired_on=date(2020, 1, 6),
    )  # fmt: skip


def seed(people: int, zone: str = "Etc/UTC") -> list[Event]:
    """Ten org units under a root, and ``people`` employees in them (living in ``zone``)."""
    units: list[Event] = [
        OrgUnitUpserted(tenant_id=TENANT, occurred_at=T0, org_unit_id="ou-0", name="Root")
    ]
    units += [
        OrgUnitUpserted(
            tenant_id=TENANT,
            occurred_at=T0,
            org_unit_id=f"ou-{u}",
            name=f"Unit {u}",
            parent_id="ou-0",
        )
        for u in range(1, 10)
    ]
    return units + [_employee(i, T0, zone) for i in range(people)]


def burst(service: str, size: int, people: int) -> list[Event]:
    if service == "checkins":
        return [_employee(people + i, T0 + timedelta(hours=1)) for i in range(size)]
    due = T0 + timedelta(days=20)
    out: list[Event] = []
    for i in range(size):
        employee = f"e-{1 + i % (people - 1):06d}"
        month = i // (people - 1)  # an employee's next obligation is a month later
        period = (date(2026, 1 + month % 12, 1), date(2026, 1 + month % 12, 28))
        common: dict[str, Any] = {
            "tenant_id": TENANT, "obligation_id": f"ob-{i}", "employee_id": employee,
            "manager_id": "e-000000", "kind": CheckinKind.MONTHLY, "period_start": period[0],
            "period_end": period[1], "due_at": due,
        }  # fmt: skip
        if service == "notifications":
            # Missed now, not on T0's calendar: a miss older than NOTIFICATION_MAX_AGE_HOURS
            # has lost its point and is suppressed as expired, and nobody would be mailed.
            now = datetime.now(UTC)
            missed = {**common, "due_at": now - timedelta(days=1)}
            out.append(CheckinMissed(occurred_at=now, consecutive_misses=1, **missed))
        elif i % 3 == 0:
            out.append(CheckinDue(occurred_at=due - timedelta(days=3), **common))
        elif i % 3 == 1:
            out.append(CheckinMissed(occurred_at=due, consecutive_misses=1, **common))
        else:
            out.append(
                CheckinCompleted(
                    tenant_id=TENANT,
                    occurred_at=due,
                    checkin_id=f"ci-{i}",
                    kind=CheckinKind.MONTHLY,
                    employee_id=employee,
                    manager_id="e-000000",
                    held_at=due - timedelta(days=1),
                    initiated_by=Initiator.EMPLOYEE,
                    obligation_id=f"ob-{i}",
                    due_at=due,
                    goals_discussed=[],
                    open_action_items=1,
                    pulse=3,
                )
            )
    return out


def _records(prefix: str, events: Iterable[Event]) -> list[tuple[str, bytes, bytes, Any]]:
    out = []
    for event in events:
        record = to_record(event, source="/rhythm/bench")
        out.append((prefix + record.topic, record.value, record.key, record.headers))
    return out


async def _send(producer: AIOKafkaProducer, records: list[tuple[str, bytes, bytes, Any]]) -> int:
    for topic, value, key, headers in records:
        await producer.send(topic, value, key=key, headers=headers)
    await producer.flush()
    return len(records)


async def _lag(
    admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer, group: str, names: list[str]
) -> int:
    committed = await admin.list_consumer_group_offsets(group)
    parts = [TopicPartition(t, p) for t in names for p in reader.partitions_for_topic(t) or ()]
    ends = await reader.end_offsets(parts)
    return sum(end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())


async def _wait_no_lag(
    admin: AIOKafkaAdminClient,
    reader: AIOKafkaConsumer,
    group: str,
    names: list[str],
    supervisor: Supervisor,
    timeout_s: float = 900,
) -> None:
    deadline = time.perf_counter() + timeout_s
    while await _lag(admin, reader, group, names) > 0:
        supervisor.check()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"group {group} still lagging after {timeout_s:.0f}s")
        await asyncio.sleep(0.05)


async def _members(admin: AIOKafkaAdminClient, group: str) -> int:
    """Members of a stable group that hold an assignment (0 while it rebalances)."""
    for response in await admin.describe_consumer_groups([group]):
        for described in response.groups:
            _, _, state, _, _, members, *_ = described
            if state == "Stable":
                return sum(1 for m in members if m[4])
    return 0


async def _ready(client: httpx.AsyncClient, port: int, supervisor: Supervisor) -> None:
    for _ in range(600):
        supervisor.check()
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the service on port {port} never became ready")


async def measure(
    service: str, replicas: int, size: int, people: int, sink: Sink, smtp_port: int
) -> tuple[float, float | None]:
    """Events/s absorbed by ``replicas`` replicas of ``service`` (and mails/s for
    notifications)."""
    prefix = f"rep{uuid.uuid4().hex[:6]}."
    group = prefix + service
    rhythm = str(Path(sys.executable).with_name("rhythm"))
    supervisor = Supervisor()
    security = client_security()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(), **security, linger_ms=5, acks="all", enable_idempotence=True
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(), **security)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap(), **security)
    client = httpx.AsyncClient(timeout=30)
    async with _database() as database_url:
        try:
            await ensure_topics(
                bootstrap(), TOPICS.values(), prefix=prefix, partitions=PARTITIONS,
                security=security,
            )  # fmt: skip
            await producer.start()
            await admin.start()
            await reader.start()
            for n in range(replicas):  # one after another: the first migrates the database
                port = free_port()
                supervisor.start(
                    f"replicas-{service}-{n}",
                    [rhythm, "serve", service],
                    _env(service, port, database_url, prefix, smtp_port),
                )
                await _ready(client, port, supervisor)
            await reader._client.force_metadata_update()
            # Notifications' recipients live where it is a working hour now (their mails are
            # not held back by quiet hours).
            zone = working_zone(datetime.now(UTC)) if service == "notifications" else "Etc/UTC"
            await _send(producer, _records(prefix, seed(people, zone)))
            deadline = time.perf_counter() + 120
            while await _members(admin, group) != replicas:
                supervisor.check()
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{group} never had {replicas} members with partitions")
                await asyncio.sleep(0.2)
            await _wait_no_lag(admin, reader, group, [prefix + topics.PEOPLE], supervisor)
            mailed_before = sink.accepted
            records = _records(prefix, burst(service, size, people))
            names = [prefix + t for t in BURST_TOPICS[service]]
            started = time.perf_counter()
            count = await _send(producer, records)
            sent = time.perf_counter()
            await _wait_no_lag(admin, reader, group, names, supervisor)
            rate = count / (time.perf_counter() - started)
            print(
                f"  {service} x{replicas}: {count} events sent in {sent - started:.1f}s, "
                f"absorbed at {rate:,.0f}/s",
                flush=True,
            )
            if service != "notifications":
                return rate, None
            # Mails go out behind the consumer (the dispatcher): count them until none has
            # arrived for a few seconds (a policy may fold repeated misses into fewer mails).
            # None at all within a minute (a bug: the burst is dated now and its recipients
            # are in their working hours): the ingest figure stands alone.
            drained = time.perf_counter()
            while sink.accepted == mailed_before or time.perf_counter() - sink.last_at < 5:
                supervisor.check()
                if sink.accepted == mailed_before and time.perf_counter() - drained > 60:
                    print(f"  {service} x{replicas}: no mail within 60s of the drain", flush=True)
                    return rate, None
                await asyncio.sleep(0.1)
            mailed = sink.accepted - mailed_before
            mails = mailed / (sink.last_at - started)
            print(f"  {service} x{replicas}: {mailed} mails at {mails:,.0f}/s", flush=True)
            return rate, mails
        finally:
            supervisor.stop()
            await client.aclose()
            await reader.stop()
            await admin.close()
            await producer.stop()


async def main(args: argparse.Namespace) -> None:
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    figures: list[Figure] = []
    try:
        for service in args.services:
            size = args.burst or BURSTS[service][1 if args.quick else 0]
            one, one_mails = await measure(service, 1, size, args.people, sink, smtp_port)
            two, two_mails = await measure(service, 2, size, args.people, sink, smtp_port)
            figures += [
                Figure(f"{service} ingest, 1 replica", one, "events/s"),
                Figure(f"{service} ingest, 2 replicas", two, "events/s",
                       f"{service} ingest, 1 replica", one),
            ]  # fmt: skip
            if one_mails is not None and two_mails is not None:
                figures += [
                    Figure(f"{service} mails, 1 replica", one_mails, "mails/s"),
                    Figure(f"{service} mails, 2 replicas", two_mails, "mails/s",
                           f"{service} mails, 1 replica", one_mails),
                ]  # fmt: skip
    finally:
        controller.stop()
    report("replicas (PostgreSQL)", figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under 3 minutes)")
    parser.add_argument("--people", type=int, default=1_000, help="employees seeded first")
    parser.add_argument("--burst", type=int, help="events in each burst (default: BURSTS)")
    parser.add_argument("services", nargs="*", default=list(SERVICES), help=", ".join(SERVICES))
    args = parser.parse_args()
    if unknown := set(args.services) - set(SERVICES):
        parser.error(f"unknown services: {', '.join(sorted(unknown))}")
    if args.quick:
        args.people = 200
    asyncio.run(main(args))
