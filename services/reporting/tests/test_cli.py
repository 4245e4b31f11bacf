"""``rhythm reporting rebuild`` as an operator runs it (settings from the environment)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rhythm_reporting.cli import app
from rhythm_reporting.main import Settings

pytestmark = pytest.mark.kafka


def test_the_rebuild_command_swaps_in_a_new_read_model(
    reporting_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", reporting_settings.database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", reporting_settings.kafka_bootstrap_servers)
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", reporting_settings.kafka_topic_prefix)
    first = CliRunner().invoke(app, ["rebuild", "--grace", "0"])
    assert first.exit_code == 0, first.output
    assert "generation 2 is live (replaced 1)" in first.output
    second = CliRunner().invoke(app, ["rebuild", "--grace", "0"])
    assert "generation 3 is live (replaced 2)" in second.output
