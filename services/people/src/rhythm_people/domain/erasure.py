"""Erasure of a person (GDPR Art. 17): its state, and who must take part. Pure.

An erasure destroys the person's data key (``PersonKeyDestroyed``), deletes what the people
service holds of them and publishes ``EmployeeErased``, all in one transaction; every service of
:data:`SERVICES` then erases its part and reports ``PersonDataErased`` on ``rhythm.privacy.v1``,
and the erasure is ``completed`` once each has.

The erasure is the person's tombstone: it keeps their employee id (and nothing else of them),
so the id is never used again — a later upsert of it is refused (409, :class:`Erased`). People
who had the erased person as their manager keep the id as their ``manager_id`` (the id of a
tombstone) until HR states another.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import get_args

from rhythm_shared.contracts.v1.privacy import Service
from rhythm_shared.kit.errors import Conflict

#: Every service that holds people's data: an erasure is complete when each reported its part.
SERVICES: tuple[Service, ...] = get_args(Service)
SERVICE: Service = "people"


class Erased(Conflict):
    """A write about a person who was erased: their id is a tombstone and stays one."""


@dataclass(frozen=True)
class ErasureState:
    erasure_id: str
    employee_id: str
    requested_at: datetime
    completed_at: datetime | None
    #: Service -> when it reported its part done (absent: not yet).
    parts: dict[str, datetime] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return "completed" if self.completed_at is not None else "in_progress"

    def pending(self) -> list[str]:
        return [s for s in SERVICES if s not in self.parts]


def new_erasure_id() -> str:
    return f"er-{uuid.uuid4().hex[:16]}"


def refuse_erased(erased: Collection[str]) -> None:
    """Refuse a write about erased people (a delayed HR retry or an export that still has them
    must not bring anyone back)."""
    if erased:
        shown = ", ".join(repr(i) for i in sorted(erased)[:10])
        raise Erased(
            f"employee {shown} was erased: an erased id is never used again "
            "(remove the person from the sync, or give a new person a new id)"
        )
