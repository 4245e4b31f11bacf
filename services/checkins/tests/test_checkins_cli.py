"""``rhythm checkins sweep --as-of``: migrate, sweep once, publish, exit."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from checkins_harness import StartCheckins
from typer.testing import CliRunner

from rhythm_checkins.cli import run_sweep
from rhythm_cli.main import app as rhythm
from rhythm_shared.contracts.v1 import CheckinDue, CheckinMissed

pytestmark = pytest.mark.kafka


async def test_a_sweep_on_demand_reports_what_is_due_at_the_given_time_and_publishes_it(
    start_checkins: StartCheckins,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    async with start_checkins() as svc:
        await svc.set_policy()
        await svc.team()
    for name, value in {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "TOPIC_PARTITIONS": "3",
        "LOG_JSON": "false",
    }.items():
        monkeypatch.setenv(name, value)
    result, relayed = await run_sweep(datetime(2026, 4, 7, 12, tzinfo=UTC))
    # ana, ben and mia (boss has no manager, so owes nothing); the policy event went out before.
    assert (result.missed, result.planned, relayed) == (3, 4, 3)
    again, relayed_again = await run_sweep(datetime(2026, 4, 7, 12, tzinfo=UTC))
    assert (again.missed, relayed_again) == (0, 0)
    missed = await svc.cadence_events(CheckinDue.type, CheckinMissed.type, min_count=3)
    assert sorted(e.event.employee_id for e in missed) == ["ana", "ben", "mia"]
    assert {e.type for e in missed} == {CheckinMissed.type}


def test_the_rhythm_command_runs_the_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'checkins.db'}")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", f"t{uuid.uuid4().hex[:10]}.")
    monkeypatch.setenv("TOPIC_PARTITIONS", "1")
    outcome = CliRunner().invoke(rhythm, ["checkins", "sweep", "--as-of", "2026-04-07T12:00:00Z"])
    assert outcome.exit_code == 0, outcome.output
    summary = json.loads(outcome.output.strip().splitlines()[-1])
    assert summary["as_of"] == "2026-04-07T12:00:00+00:00"
    assert summary["missed"] == 0
    bad = CliRunner().invoke(rhythm, ["checkins", "sweep", "--as-of", "yesterday"])
    assert bad.exit_code != 0
