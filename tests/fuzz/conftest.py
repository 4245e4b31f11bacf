"""One fleet of the five services per package run (starting it takes ~25 s), with an org in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.fleet import Fleet, Org, fleet_running, seed_org


@pytest.fixture(scope="package")
def fleet(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(kafka_bootstrap, tmp_path_factory.mktemp("fleet")) as running_fleet:
        yield running_fleet


@pytest.fixture(scope="package")
def org(fleet: Fleet) -> Org:
    return seed_org(fleet)
