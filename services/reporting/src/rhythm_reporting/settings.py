"""Settings of the reporting service (environment variables, unprefixed)."""

from __future__ import annotations

from pydantic import Field

from rhythm_shared.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = Field("reporting", description="Name of the service.")
    http_port: int = Field(8004, description="Port of the HTTP API.")
    consumer_batch_size: int = Field(
        2000, ge=1, description="Records applied per ingest transaction (bulk upserts)."
    )
    ingest_batch_size: int | None = Field(
        None, ge=1, description="Former name of CONSUMER_BATCH_SIZE; overrides it when set."
    )
    min_group_size: int = Field(
        5, ge=1, description="Groups of fewer people than this are suppressed on dashboards."
    )

    @property
    def batch_size(self) -> int:
        """Records per ingest batch: CONSUMER_BATCH_SIZE, as for every consumer."""
        return self.ingest_batch_size or self.consumer_batch_size
