"""The quick form of `make chaos` (issue 8), so a regression in crash safety fails the build.

Real processes of all five services on the suite's broker (in a topic namespace of their own):
kill -9 of each service mid-stream, a rebalance (a second replica joins, then leaves),
duplicates of processed records and poison records. The broker restart runs in `make chaos`
only: the broker is shared by the whole pytest session.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from rich.console import Console

from bench.chaos.scenario import QUICK, print_summary, run

pytestmark = pytest.mark.kafka


def test_a_run_with_crashes_rebalances_duplicates_and_poison_loses_nothing_and_doubles_nothing(
    kafka_bootstrap: str,
) -> None:
    console = Console(width=150)
    outcome = run(
        replace(QUICK, bootstrap=kafka_bootstrap, broker_restart=False, free_ports=True),
        console,
    )
    print_summary(console, outcome)
    failures = [
        f"{phase.name}: {row.check} lost {row.lost} double {row.double} {row.note}"
        for phase in outcome.phases
        for row in phase.rows
        if not row.ok
    ]
    assert [p.name for p in outcome.phases if not p.converged] == []
    assert failures == []
    assert len(outcome.phases) == 4
