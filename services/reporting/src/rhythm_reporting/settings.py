"""Settings of the reporting service (environment variables, unprefixed)."""

from __future__ import annotations

from pydantic import Field

from rhythm_shared.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = Field("reporting", description="Name of the service.")
    http_port: int = Field(8004, description="Port of the HTTP API.")
    ingest_batch_size: int = Field(
        2000, ge=1, description="Records applied per ingest transaction (bulk upserts)."
    )
    min_group_size: int = Field(
        5, ge=1, description="Groups of fewer people than this are suppressed on dashboards."
    )
