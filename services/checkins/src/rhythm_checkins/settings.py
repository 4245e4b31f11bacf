from __future__ import annotations

from pydantic import Field

from rhythm_shared.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = Field("checkins", description="Name of the service.")
    http_port: int = Field(8002, description="Port of the HTTP API.")
    sweep_interval_s: float = Field(30.0, gt=0, description="Seconds between cadence sweeps.")
    sweep_batch_size: int = Field(
        500, ge=1, description="Obligations (and employees to plan) claimed per sweep batch."
    )
    sweep_workers: int = Field(
        4, ge=1, le=32, description="Concurrent sweep workers per process (PostgreSQL only)."
    )
