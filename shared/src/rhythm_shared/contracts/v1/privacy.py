"""Erasure and crypto-shredding (GDPR Art. 17): per-person data keys and erasure progress.

Personal data that rides on events (a person's name and email address) is sealed with a data
key of that person's (AES-256-GCM; see :mod:`rhythm_shared.kit.crypto`). The people service
issues each key on ``rhythm.keys.v1`` — a compacted topic keyed by person — wrapped by the
key-encryption key that Rhythm's services (and integrators who are to read names) hold. Erasing
a person destroys the key: ``PersonKeyDestroyed`` replaces ``PersonKeyIssued`` under the same
record key, compaction removes the issued key from the log, and every retained record that
carries the person's sealed data can no longer be opened by anyone.

``rhythm.privacy.v1`` carries each service's report that it erased its part
(``PersonDataErased``), so the people service can tell when an erasure is complete.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event, Identifier

Service = Literal["people", "goals", "checkins", "notifications", "reporting"]


class PersonKeyIssued(Event):
    """A person's data key, wrapped by the key-encryption key (AES-256-GCM key wrap)."""

    type: ClassVar[str] = "rhythm.person_key.issued.v1"
    topic: ClassVar[str] = topics.KEYS
    entity: ClassVar[str] = "employee"
    entity_field: ClassVar[str] = "employee_id"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-03-02T08:15:00Z",
                    "employee_id": "e-1042",
                    "key_id": "k-7d1c2a9b4e",
                    "wrapped_key": "rkw1.Zm9vYmFyYmF6cXV4",
                }
            ]
        }
    )

    employee_id: Identifier = Field(description="Whose data the key seals.")
    key_id: Identifier = Field(description="Names the key in sealed values (`rsk1.<key_id>.…`).")
    wrapped_key: str = Field(
        min_length=1,
        max_length=512,
        pattern=r"^rkw1\.[A-Za-z0-9_-]+$",
        description="The data key, sealed with the key-encryption key (rkw1.<base64url>).",
    )


class PersonKeyDestroyed(Event):
    """A person's data key is destroyed (their erasure): what it sealed is unreadable for good."""

    type: ClassVar[str] = "rhythm.person_key.destroyed.v1"
    topic: ClassVar[str] = topics.KEYS
    entity: ClassVar[str] = "employee"
    entity_field: ClassVar[str] = "employee_id"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-06-02T08:15:00Z",
                    "employee_id": "e-1042",
                    "key_id": "k-7d1c2a9b4e",
                }
            ]
        }
    )

    employee_id: Identifier = Field(description="Whose key is destroyed.")
    key_id: Identifier = Field(description="The key destroyed.")


class PersonDataErased(Event):
    """One service erased what it held of a person (part of an erasure)."""

    type: ClassVar[str] = "rhythm.person_data.erased.v1"
    topic: ClassVar[str] = topics.PRIVACY
    entity: ClassVar[str] = "employee"
    entity_field: ClassVar[str] = "employee_id"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-06-02T08:15:03Z",
                    "employee_id": "e-1042",
                    "erasure_id": "er-5f2b9c",
                    "service": "checkins",
                }
            ]
        }
    )

    employee_id: Identifier = Field(description="The person erased.")
    erasure_id: Identifier = Field(description="The erasure this completes a part of.")
    service: Service = Field(description="The service that erased its part.")
