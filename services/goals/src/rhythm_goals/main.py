"""Composition root of the goals service: ``rhythm serve goals`` runs ``build(Settings())``.

It wires the real adapters: the SQL unit of work with its repositories, the HTTP routes, the
consumers of the people and keys topics and the timed jobs."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from rhythm_goals.adapters.db import kit, metadata
from rhythm_goals.adapters.unit_of_work import SqlGoalsUnitOfWork
from rhythm_goals.entrypoints.consumers import consumers
from rhythm_goals.entrypoints.http import router
from rhythm_goals.entrypoints.jobs import jobs
from rhythm_goals.settings import Settings
from rhythm_shared.kit.app import ServiceDefinition, create_app
from rhythm_shared.kit.clock import Clock

__all__ = ["Settings", "build"]

MIGRATIONS = Path(__file__).parent / "migrations"


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    return create_app(
        ServiceDefinition(
            name="goals",
            settings=settings or Settings(),
            metadata=metadata,
            tables=kit,
            unit_of_work=SqlGoalsUnitOfWork,
            migrations=MIGRATIONS,
            routers=[router],
            consumers=consumers,
            jobs=jobs,
            clock=clock,
            span_exporter=span_exporter,
            description=(
                "Goals (OKRs and KPIs) that stay in view: key results and progress, status, "
                "alignment from company to person, history, and staleness."
            ),
        )
    )
