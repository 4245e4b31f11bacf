"""Settings of the reporting service (environment variables, unprefixed)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from rhythm_reporting.domain.metrics import MIN_GROUP_FLOOR
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
        5,
        description="Groups of fewer people than this (distinct contributors in the period) are "
        f"suppressed on dashboards; at least {MIN_GROUP_FLOOR}.",
    )

    @field_validator("min_group_size")
    @classmethod
    def _groups_protect_someone(cls, value: int) -> int:
        # Below 3, a shown group of two lets each member read the other's figure off it.
        if value < MIN_GROUP_FLOOR:
            raise ValueError(
                f"MIN_GROUP_SIZE={value} is too small: groups of fewer than {MIN_GROUP_FLOOR} "
                "people identify their members; set it to 3 or more (default 5)"
            )
        return value

    @model_validator(mode="after")
    def _former_batch_name(self) -> Settings:
        if self.ingest_batch_size is not None:
            self.consumer_batch_size = self.ingest_batch_size
        return self
