"""Settings of the people service (environment variables, unprefixed; see ServiceSettings)."""

from __future__ import annotations

from pydantic import Field

from rhythm_shared.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = Field("people", description="Name of the service (fixed).")
    http_port: int = Field(8005, description="Port of the HTTP API.")
    import_chunk_size: int = Field(
        5_000, ge=100, description="Outbox rows the CSV import relays to Kafka per round."
    )
