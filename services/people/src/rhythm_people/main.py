"""Composition root of the people service: the HR gateway that owns ``rhythm.people.v1``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from rhythm_people.adapters import keyring
from rhythm_people.adapters.db import kit, metadata
from rhythm_people.adapters.unit_of_work import PeopleRuntime, SqlPeopleUnitOfWork
from rhythm_people.entrypoints import consumers, erasure, scim
from rhythm_people.entrypoints.http import router
from rhythm_people.settings import Settings
from rhythm_shared.kit.app import ServiceDefinition, create_app
from rhythm_shared.kit.clock import Clock

__all__ = ["MIGRATIONS", "Settings", "build"]

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """\
The HR gateway. HR systems push employees and org units here (integration or hr_admin role);
what changed is published on `rhythm.people.v1` as `EmployeeUpserted` (v2: the name and address
sealed with the person's data key, issued on `rhythm.keys.v1`), `EmployeeDeactivated`,
`OrgUnitUpserted`, and `EmployeeErased` when HR erases a person (`…:erase`). Bulk loads:
`rhythm people import FILE.csv --tenant T`. Identity providers provision over SCIM 2.0 at
`/scim/v2` (integration role; described at `/scim/v2/Schemas`).
"""


async def _start(runtime: PeopleRuntime) -> None:
    keyring.use_settings(runtime.settings)


def build(settings: Settings | None = None, *, clock: Clock | None = None, **_: Any) -> FastAPI:
    settings = settings or Settings()
    return create_app(
        ServiceDefinition(
            name="people",
            settings=settings,
            metadata=metadata,
            tables=kit,
            migrations=MIGRATIONS,
            routers=[router, scim.router, erasure.router],
            unit_of_work=SqlPeopleUnitOfWork,
            consumers=consumers.consumers,
            on_start=_start,
            clock=clock,
            description=DESCRIPTION,
        )
    )
