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
    retain_texts_after_leaving_days: int = Field(
        365,
        ge=1,
        description="Days a person's check-in notes, GROW agenda, reflections and action items "
        "are kept after they leave.",
    )
    retain_feedback_after_leaving_days: int = Field(
        365,
        ge=1,
        description="Days the texts of feedback a person received (and their requests' prompts) "
        "are kept after they leave.",
    )
    retention_interval_s: float = Field(
        3600.0, gt=0, description="Seconds between rounds of the retention job."
    )
    retention_batch_size: int = Field(
        200, ge=1, description="Departed people whose texts the retention job removes per batch."
    )
