"""Two tenants, A and B, in one fleet of the five services; A's reads recorded before B acts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fuzz.fleet import Fleet, Org, fleet_running, seed_org


@dataclass
class Tenants:
    a: Org
    b: Org


@pytest.fixture(scope="package")
def fleet(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(kafka_bootstrap, tmp_path_factory.mktemp("fleet")) as running_fleet:
        yield running_fleet


@pytest.fixture(scope="package")
def tenants(fleet: Fleet) -> Tenants:
    return Tenants(a=seed_org(fleet), b=seed_org(fleet))
