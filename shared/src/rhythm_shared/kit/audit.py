"""The audit trail of access to private data: who read or was refused a person's private texts,
and who changed who may see them.

An entry holds who, which subject, what (an action and the thing it was about, by id), when and
whether it was allowed — never the texts themselves. Use cases note entries on the unit of work
(:meth:`UnitOfWork.audit`); allowed ones commit with the work, and refused ones are written by the
unit of work in a transaction of their own after the refused work rolled back, so a refusal is
on record too. hr_admin reads the trail at ``GET /v1/audit`` (:mod:`.audit_http`); the table
is :func:`rhythm_shared.kit.db.define_audit_table`; housekeeping keeps it ``AUDIT_KEEP_DAYS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class AuditAction(StrEnum):
    READ = "read"
    CHANGE_ACCESS = "change_access"


@dataclass(frozen=True)
class AuditEntry:
    tenant_id: str
    actor_id: str
    subject_id: str
    action: AuditAction
    #: What was read or changed, by kind and id only (e.g. ``checkin/c-1:notes``).
    target: str
    allowed: bool


def entry_row(entry: AuditEntry, at: datetime) -> dict[str, Any]:
    return {
        "tenant_id": entry.tenant_id,
        "at": at,
        "actor_id": entry.actor_id,
        "subject_id": entry.subject_id,
        "action": entry.action.value,
        "target": entry.target,
        "allowed": entry.allowed,
    }
