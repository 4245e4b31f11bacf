"""The README's configuration tables name every setting the services read."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from rhythm_shared.kit.settings import ServiceSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SERVICES = ["goals", "checkins", "notifications", "reporting", "people"]
INTERNAL = {"service_name"}  # fixed per service, not a deployment choice


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_of_the_service_is_documented(service: str) -> None:
    settings = importlib.import_module(f"rhythm_{service}.settings").Settings
    missing = [
        name.upper()
        for name in settings.model_fields
        if name not in INTERNAL and f"`{name.upper()}`" not in README
    ]
    assert missing == [], f"README.md does not document {missing}"


def test_the_readme_starts_with_the_two_commands() -> None:
    head = README.split("## ", 1)[0]
    assert "make run" in head
    assert "make test" in head


def test_the_kit_settings_are_documented() -> None:
    assert all(
        f"`{n.upper()}`" in README for n in ServiceSettings.model_fields if n not in INTERNAL
    )
