"""Benchmark: ``rhythm people import`` of a realistic HR export, end to end, beside its ceiling.

    .venv/bin/python bench/people_import.py              # 200,000 rows
    .venv/bin/python bench/people_import.py --quick      # 20,000 rows
    .venv/bin/python bench/people_import.py --rows 50000 --database-url postgresql+asyncpg://...

It generates a CSV (a tree of org units, each team with a manager, managers reporting up the
tree, time zones and locales per division), imports it into a fresh database (SQLite by default)
and a fresh topic namespace on the real broker, and prints rows/s for validate, write (one
transaction: state + outbox), publish (outbox relayed to Kafka until drained) and total. In the
same run, the baseline: a raw aiokafka producer (the same idempotent, acks=all configuration)
sending the same number of pre-encoded records with the same keys: what the broker and client
allow at best. Then it re-imports the unchanged file (an HR full sync with no changes), which
must publish nothing. The topics it created are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import random
import sys
import tempfile
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from common import Figure, report
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from rhythm_people.adapters.csv_file import COLUMNS
from rhythm_people.cli import ImportReport, run_import, untraced_unless_exported
from rhythm_people.main import Settings
from rhythm_shared.contracts.envelope import to_record
from rhythm_shared.contracts.topics import PEOPLE, TOPICS, TopicSpec
from rhythm_shared.contracts.v1.people import EmployeeUpserted
from rhythm_shared.kit.kafka import ensure_topics, make_producer

DIVISIONS = [
    ("Engineering", "Europe/Amsterdam", "nl"),
    ("Sales", "America/New_York", "en-US"),
    ("Operations", "Europe/Berlin", "de"),
    ("Customer Success", "Europe/London", "en-GB"),
    ("Research", "Asia/Tokyo", "ja"),
    ("Finance", "Europe/Paris", "fr"),
    ("Manufacturing", "Asia/Kolkata", "en-IN"),
    ("Marketing", "America/Sao_Paulo", "pt-BR"),
]
FIRST = ["Ana", "Bram", "Chen", "Daan", "Eva", "Femke", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena"]
LAST = ["de Vries", "Jansen", "Okafor", "Tanaka", "Müller", "Smith", "García", "Rossi", "Singh"]
FAN_OUT = 8
TEAM_SIZE = 10


@dataclass
class Unit:
    id: str
    name: str
    parent: str | None
    zone: str
    locale: str
    leaf: bool = False
    head: str | None = None


def _ascii(name: str) -> str:
    # Mailboxes are transliterated (Müller -> muller), as HR systems usually do.
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return plain.replace(" ", "").lower()


def generate(path: Path, rows: int, seed: int = 7) -> int:
    """Write ``rows`` employee rows (org units defined on their first member's row)."""
    rng = random.Random(seed)
    teams_wanted = max(1, rows // TEAM_SIZE)
    root = Unit("ou-0", "Acme", None, "Europe/Amsterdam", "en-GB")
    units = [root]
    level = [
        Unit(f"ou-{k + 1}", name, root.id, zone, locale)
        for k, (name, zone, locale) in enumerate(DIVISIONS)
    ]
    units += level
    counter = len(units)
    while len(level) * FAN_OUT <= teams_wanted:
        nxt = []
        for parent in level:
            for k in range(FAN_OUT):
                counter += 1
                nxt.append(
                    Unit(
                        f"ou-{counter}",
                        f"{parent.name} {k + 1}",
                        parent.id,
                        parent.zone,
                        parent.locale,
                    )
                )
        units += nxt
        level = nxt
    for unit in level:
        unit.leaf = True
    by_id = {u.id: u for u in units}
    start = date(2010, 1, 1)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)

        def person(unit: Unit, manager: str | None, defines: bool) -> str:
            nonlocal n
            n += 1
            eid = f"e-{n:06d}"
            first, last = rng.choice(FIRST), rng.choice(LAST)
            writer.writerow(
                [
                    eid,
                    f"{_ascii(first)}.{_ascii(last)}.{n}@acme.example.com",
                    f"{first} {last}",
                    manager or "",
                    unit.id,
                    unit.name if defines else "",
                    (unit.parent or "") if defines else "",
                    unit.zone,
                    unit.locale,
                    (start + timedelta(days=rng.randrange(16 * 365))).isoformat(),
                    "false" if rng.random() < 0.01 else "true",
                ]
            )
            return eid

        # Heads first (top-down), so every manager's row precedes their reports' (not required).
        for unit in units:
            if n >= rows:
                break
            parent_head = by_id[unit.parent].head if unit.parent else None
            unit.head = person(unit, parent_head, defines=True)
        leaves = [u for u in units if u.leaf and u.head]
        i = 0
        while n < rows and leaves:
            unit = leaves[i % len(leaves)]
            person(unit, unit.head, defines=False)
            i += 1
    return n


async def baseline(bootstrap: str, prefix: str, rows: int, partitions: int) -> float:
    """Seconds for a raw producer to send ``rows`` pre-encoded EmployeeUpserted records."""
    topic = f"{prefix}baseline"
    await ensure_topics(bootstrap, [TopicSpec("baseline", partitions, -1, "")], prefix=prefix)
    now = datetime.now(UTC)
    records = [
        to_record(
            EmployeeUpserted(
                tenant_id="bench",
                occurred_at=now,
                employee_id=f"e-{i:06d}",
                email=f"ana.devries.{i}@acme.example.com",
                display_name="Ana de Vries",
                manager_id="e-0",
                org_unit_id="ou-1",
                time_zone="Europe/Amsterdam",
                locale="nl",
                hired_on=date(2023, 9, 1),
            ),
            source="/rhythm/bench",
        )
        for i in range(rows)
    ]
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"warm-up")  # metadata, not measured
        started = time.perf_counter()
        futures = [
            await producer.send(topic, r.value, key=r.key, headers=r.headers) for r in records
        ]
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="a fresh PostgreSQL database on RHYTHM_TEST_POSTGRES_URL's server (dropped after)",
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--partitions", type=int, default=TOPICS[PEOPLE].partitions)
    parser.add_argument("--keep-topics", action="store_true")
    args = parser.parse_args()
    rows = 20_000 if args.quick else args.rows
    console = Console()
    asyncio.run(_run(args, rows, console))


@contextlib.asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    admin_url = os.environ.get(
        "RHYTHM_TEST_POSTGRES_URL", "postgresql+asyncpg://rhythm:rhythm@127.0.0.1:55432/rhythm_test"
    )
    name = f"bench_people_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _run(args: argparse.Namespace, rows: int, console: Console) -> None:
    if args.postgres:
        async with fresh_postgres() as url:
            args.database_url = url
            await _run_on(args, rows, console)
    else:
        await _run_on(args, rows, console)


async def _run_on(args: argparse.Namespace, rows: int, console: Console) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "people.csv"
        started = time.perf_counter()
        written = generate(csv_path, rows)
        size_mb = csv_path.stat().st_size / 1e6
        console.print(
            f"generated {written:,} rows ({size_mb:.1f} MB) in {time.perf_counter() - started:.1f}s"
        )
        settings = Settings(
            database_url=args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'people.db'}",
            kafka_bootstrap_servers=args.bootstrap,
            kafka_topic_prefix=prefix,
            topic_partitions=args.partitions,
            environment="development",
            log_level="WARNING",
            log_json=False,
        )
        untraced_unless_exported(settings)  # as the `rhythm people import` command does
        try:
            base_s = await baseline(args.bootstrap, prefix, written, args.partitions)
            first = await run_import(csv_path, "bench", settings=settings, console=console)
            if first.errors:
                console.print(first.errors[:10])
                sys.exit(1)
            again = await run_import(csv_path, "bench", settings=settings, console=None)
        finally:
            if not args.keep_topics:
                await delete_topics(args.bootstrap, prefix)
    _report(console, written, first, again, base_s, settings)


def _report(
    console: Console,
    rows: int,
    first: ImportReport,
    again: ImportReport,
    base_s: float,
    settings: Settings,
) -> None:
    db = settings.effective_database_url.split(":", 1)[0]
    table = Table(
        title=f"rhythm people import: {rows:,} rows ({db}, {settings.topic_partitions} partitions)"
    )
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    table.add_column("rows/s", justify="right")
    for phase in ("validate", "write", "publish", "total"):
        s = first.timings[phase]
        table.add_row(phase, f"{s:.2f}", f"{rows / s:,.0f}")
    table.add_row("baseline: raw producer", f"{base_s:.2f}", f"{rows / base_s:,.0f}")
    table.add_row(
        "unchanged re-import (events: " + str(again.published) + ")",
        f"{again.timings['total']:.2f}",
        f"{rows / again.timings['total']:,.0f}",
    )
    console.print(table)
    load = os.getloadavg()
    console.print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (1/5/15 min): other work on the machine slows both rows alike"
    )
    total = first.timings["total"]
    console.print(
        f"events published: {first.published:,}; publish phase runs at "
        f"{base_s / first.timings['publish']:.0%} of the raw producer's rate; "
        f"end to end at {base_s / total:.0%} (total {total:.1f}s, "
        f"{'under' if total < 60 else 'OVER'} the 60s target)"
    )
    report(
        "people_import",
        [
            Figure(
                f"import {rows:,} rows, end to end",
                rows / total,
                "rows/s",
                "raw aiokafka producer, same records",
                rows / base_s,
            ),
            Figure(
                f"import {rows:,} rows, publish phase",
                rows / first.timings["publish"],
                "rows/s",
                "raw aiokafka producer, same records",
                rows / base_s,
            ),
            Figure(f"import {rows:,} rows, total time", total, "s"),
        ],
    )


if __name__ == "__main__":
    main()
