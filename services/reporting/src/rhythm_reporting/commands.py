"""What reporting is asked to do. It takes no HTTP commands: its ingest (live, and the replay
of ``rhythm reporting rebuild``) asks it to project each batch of events."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, SkipValidation

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope


class Command(BaseModel):
    model_config = ConfigDict(frozen=True)


class ProjectEvents(Command):
    """Fold a batch of events, in order, into the read model (one transaction, the caller's)."""

    # Decoded (and validated) by the contract already: not validated a second time.
    events: SkipValidation[tuple[Envelope, ...]]

    @classmethod
    def of(cls, events: Iterable[tuple[str, Event]]) -> ProjectEvents:
        """From ``(event id, event)`` pairs, for tools that hold bare events (loads, benches)."""
        return cls(
            events=tuple(
                Envelope(
                    id=event_id,
                    source="",
                    type=event.type,
                    time=event.occurred_at,
                    subject="",
                    tenant_id=event.tenant_id,
                    event=event,
                )
                for event_id, event in events
            )
        )
