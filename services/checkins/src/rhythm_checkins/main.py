"""Composition root of the check-ins service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from rhythm_checkins.adapters.db import kit, metadata
from rhythm_checkins.adapters.unit_of_work import SqlCheckinsUnitOfWork
from rhythm_checkins.entrypoints.consumers import consumers
from rhythm_checkins.entrypoints.http import routers
from rhythm_checkins.entrypoints.jobs import jobs
from rhythm_checkins.settings import Settings
from rhythm_shared.kit.app import ServiceDefinition, create_app
from rhythm_shared.kit.clock import Clock

__all__ = ["MIGRATIONS", "Settings", "build"]

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """Check-ins, reflections, feedback and reviews, and the cadence that keeps them
happening: policies, obligations, and a sweeper that reminds, reports misses and escalates.
Note texts never leave this service."""


def build(settings: Settings | None = None, *, clock: Clock | None = None, **_: Any) -> FastAPI:
    return create_app(
        ServiceDefinition(
            name="checkins",
            settings=settings or Settings(),
            metadata=metadata,
            tables=kit,
            unit_of_work=SqlCheckinsUnitOfWork,
            migrations=MIGRATIONS,
            routers=routers,
            consumers=consumers,
            jobs=jobs,
            clock=clock,
            description=DESCRIPTION,
        )
    )
