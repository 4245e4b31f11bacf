"""Composition root of the reporting service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from fastapi import FastAPI

from rhythm_reporting.adapters.db import kit, metadata
from rhythm_reporting.adapters.store import ensure_active_generation
from rhythm_reporting.adapters.unit_of_work import ReportingRuntime, SqlReportingUnitOfWork
from rhythm_reporting.entrypoints.consumers import consumers
from rhythm_reporting.entrypoints.http import dashboard_page_router, dashboards_router
from rhythm_reporting.settings import Settings
from rhythm_shared.kit.app import ServiceDefinition, create_app
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.crypto import load_kek

__all__ = ["Settings", "build"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

DESCRIPTION = """\
Reporting: is the rhythm of goals, check-ins and feedback alive in the organisation, and where
is it not? It consumes every topic into plain SQL read models (see the `v_*` views) and answers
the executive dashboard under `/v1/dashboards` (page: `/dashboard`). Groups of fewer than five
people are suppressed; every table exports as CSV."""


def build(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()

    async def on_start(runtime: ReportingRuntime) -> None:
        # The live generation exists before the first batch is applied to it.
        async with runtime.sessions() as session, session.begin():
            await ensure_active_generation(session, runtime.clock.now())

    return create_app(
        ServiceDefinition(
            name="reporting",
            settings=settings,
            metadata=metadata,
            tables=kit,
            # The names that upserts v2 carry sealed are opened with the key-encryption key.
            unit_of_work=partial(
                SqlReportingUnitOfWork,
                kek=load_kek(settings.data_key_encryption_key.get_secret_value()),
            ),
            migrations=MIGRATIONS,
            routers=[dashboards_router, dashboard_page_router],
            consumers=consumers,
            on_start=on_start,
            clock=clock,
            description=DESCRIPTION,
        )
    )
