"""``rhythm.internal.pulse.v1``: each person's workload pulse, keyed by employee. Internal.

Individual pulse scores stay inside Rhythm unless a tenant opts in (docs/privacy.md): the public
``CheckinCompleted`` and ``ReflectionSubmitted`` carry ``pulse: null`` by default, and reporting
reads the scores for its aggregates from this topic, which only checkins (writer) and reporting
(reader) may access. Integrators and tenant webhooks never receive it.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field, model_validator

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event, Identifier
from rhythm_shared.contracts.v1.checkins import Pulse
from rhythm_shared.contracts.v1.values import PulseSource


class PulseRecorded(Event):
    """A person gave a workload pulse, in a completed check-in or a self-reflection.

    ``occurred_at`` is the instant of the public event it accompanies (``CheckinCompleted`` or
    ``ReflectionSubmitted``, published in the same transaction), so a consumer joins the two by
    ``checkin_id`` or by employee and instant.
    """

    type: ClassVar[str] = "rhythm.pulse.recorded.v1"
    topic: ClassVar[str] = topics.INTERNAL_PULSE
    entity: ClassVar[str] = "employee"
    entity_field: ClassVar[str] = "employee_id"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-26T14:40:00+01:00",
                    "employee_id": "e-1042",
                    "checkin_id": "c-5521",
                    "pulse": 4,
                    "source": "checkin",
                }
            ]
        }
    )

    employee_id: Identifier = Field(description="The employee whose workload it is.")
    checkin_id: Identifier | None = Field(
        default=None,
        description="The check-in it was given in or for (always set for source checkin).",
    )
    pulse: Pulse = Field(
        description="Workload pulse 1-5 (1 far too little, 3 about right, 5 far too much)."
    )
    source: PulseSource = Field(
        description="checkin: given when the check-in was completed; reflection: in a "
        "self-reflection (ReflectionSubmitted at the same occurred_at)."
    )

    @model_validator(mode="after")
    def _checkin_names_it(self) -> PulseRecorded:
        if self.source == PulseSource.CHECKIN and self.checkin_id is None:
            raise ValueError("a pulse given in a check-in names it: give checkin_id")
        return self
