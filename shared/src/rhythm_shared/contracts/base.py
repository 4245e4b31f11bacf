"""The base of every Rhythm integration event.

An event is a pydantic v2 model. Its CloudEvents type (``rhythm.<thing>.<past-tense>.v<N>``),
its topic and the aggregate that orders it are class-level facts; the body is only the fields.
A breaking change is a new ``v2`` module with a new type, never an edit of a ``v1`` model.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

#: Every registered event type, by its CloudEvents ``type``.
EVENT_TYPES: dict[str, type[Event]] = {}


Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"),
]
"""An opaque id (tenant, employee, goal, ...): no slashes, so ``<tenant>/<entity>`` keys parse."""

#: A point in time with its UTC offset: a naive time is ambiguous across employees' time zones.
Instant = AwareDatetime


class Event(BaseModel):
    """Base of every integration event: ``tenant_id`` and ``occurred_at`` ride on all of them."""

    # Tolerant reader: a consumer ignores fields a newer producer added (additive changes stay v1).
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    #: CloudEvents ``type``, e.g. ``rhythm.goal.created.v1``.
    type: ClassVar[str]
    #: Topic the event is published on (see :mod:`rhythm_shared.contracts.topics`).
    topic: ClassVar[str]
    #: The aggregate whose order matters, e.g. ``employee`` or ``goal``.
    entity: ClassVar[str]
    #: Name of the field that holds the aggregate's id.
    entity_field: ClassVar[str]

    tenant_id: Identifier = Field(description="The tenant (organisation) the event belongs to.")
    occurred_at: Instant = Field(
        description="When it happened, from the service's clock; the same instant as ce_time."
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("type")
        if isinstance(event_type, str):
            if event_type in EVENT_TYPES and EVENT_TYPES[event_type] is not cls:
                raise TypeError(f"event type {event_type!r} is registered twice")
            EVENT_TYPES[event_type] = cls

    @property
    def entity_id(self) -> str:
        return str(getattr(self, self.entity_field))

    @property
    def subject(self) -> str:
        """CloudEvents ``subject``: the entity, e.g. ``employee/e-42``."""
        return f"{self.entity}/{self.entity_id}"

    @property
    def key(self) -> str:
        """Kafka record key ``<tenant>/<entity id>``: one aggregate's events stay in order."""
        return f"{self.tenant_id}/{self.entity_id}"
