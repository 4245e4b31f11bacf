"""Settings of the goals service (unprefixed environment variables, see ServiceSettings)."""

from __future__ import annotations

from pydantic import Field

from rhythm_shared.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = Field("goals", description="Name of the service (fixed).")
    http_port: int = Field(8001, description="Port of the HTTP API.")
    staleness_interval_s: float = Field(
        15.0, gt=0, description="How often the staleness job looks for due goals (s)."
    )
    staleness_batch_size: int = Field(
        500, ge=1, le=10_000, description="Goals the staleness job claims per transaction."
    )
