"""The backup-and-restore drill of docs/operations-backup.md, on PostgreSQL and real Kafka: a
service consumes, its database is dumped mid-stream (pg_dump), more is consumed, the database is
lost and restored from the dump (pg_restore) into a fresh database, the consumer group is rewound
to the backup time, and the service resumes: every event has exactly one effect."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from rhythm_shared.contracts import topics
from rhythm_shared.kit.app import running
from rhythm_shared.kit.offsets import rewind_group
from rhythm_shared.testing import publish_events, wait_for
from tests.kit import sample
from tests.kit.test_kit import feedback, settings

pytestmark = pytest.mark.kafka


def _pg_tool(name: str) -> str:
    """The newest Debian PostgreSQL binaries (as `rhythm infra` finds them), else the PATH's."""
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return str(found[-1]) if found else shutil.which(name) or ""


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def restore_target(database_url: str) -> AsyncIterator[str]:
    """A second, empty PostgreSQL database on the same server: where the dump is restored."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the drill is pg_dump/pg_restore: PostgreSQL only")
    if not _pg_tool("pg_dump") or not _pg_tool("pg_restore"):
        pytest.skip("pg_dump/pg_restore are not installed")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _consume(
    url: str, prefix: str, bootstrap: str, tenant: str, ids: list[str], expected: set[str]
) -> dict[str, int]:
    """Run the service on ``url``, publish ``ids``, wait until ``expected`` all have effects."""
    app = sample.build(settings(url, prefix, bootstrap))
    async with running(app) as runtime:
        await publish_events(bootstrap, [feedback(tenant, i) for i in ids], topic_prefix=prefix)

        async def done() -> dict[str, int] | None:
            counts = await sample.effect_counts(runtime)
            return counts if expected <= set(counts) else None

        await wait_for(done, timeout_s=90)
        await asyncio.sleep(1.0)  # anything applied twice would show up by now
        return await sample.effect_counts(runtime)


async def test_a_restored_dump_plus_a_rewind_loses_nothing_and_doubles_nothing(
    database_url: str,
    restore_target: str,
    topic_prefix: str,
    kafka_bootstrap: str,
    tenant: str,
    tmp_path: Path,
) -> None:
    before = [f"before-{i}" for i in range(20)]
    after = [f"after-{i}" for i in range(20)]
    later = [f"later-{i}" for i in range(10)]
    assert set(
        await _consume(database_url, topic_prefix, kafka_bootstrap, tenant, before, set(before))
    ) == set(before)

    # The backup: note the time first, then dump the service's database (it could be running).
    backup_time = datetime.now(UTC)
    dump = tmp_path / "sample.dump"
    await asyncio.to_thread(
        subprocess.run,
        [_pg_tool("pg_dump"), "--format=custom", f"--file={dump}", _libpq(database_url)],
        check=True,
    )

    # After the backup: more events consumed, then the database is lost.
    counts = await _consume(
        database_url, topic_prefix, kafka_bootstrap, tenant, after, set(before) | set(after)
    )
    assert set(counts) == set(before) | set(after)

    # The restore into a fresh database, then the group rewound to the backup time.
    await asyncio.to_thread(
        subprocess.run,
        [_pg_tool("pg_restore"), "--no-owner", f"--dbname={_libpq(restore_target)}", str(dump)],
        check=True,
    )
    # The procedure's margin (5 minutes before the backup began) reaches back past every event
    # of this test: the restored inbox must skip the twenty the dump holds, and apply the rest.
    offsets = await rewind_group(
        kafka_bootstrap,
        f"{topic_prefix}sample",
        [f"{topic_prefix}{topics.CHECKINS}"],
        backup_time - timedelta(minutes=5),
    )
    assert sum(offsets.values()) == 0

    everything = set(before) | set(after) | set(later)
    restored = await _consume(
        restore_target, topic_prefix, kafka_bootstrap, tenant, later, everything
    )
    assert restored == dict.fromkeys(everything, 1)
