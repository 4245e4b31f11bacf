"""One fleet of the five services for the access matrix, with an org whose root has a head."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.fleet import Fleet, Org, add_unit_head, fleet_running, seed_org


@pytest.fixture(scope="package")
def fleet(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(kafka_bootstrap, tmp_path_factory.mktemp("fleet")) as running_fleet:
        yield running_fleet


@pytest.fixture(scope="package")
def org(fleet: Fleet) -> Org:
    seeded = seed_org(fleet)
    add_unit_head(fleet, seeded)
    return seeded
