"""The audit trail of access to private data: who read or was refused a person's private texts,
and who changed who may see them.

An entry holds who, which subject, what (an action and the thing it was about, by id), when and
whether it was allowed — never the texts themselves. Use cases note entries on the unit of work
(:meth:`UnitOfWork.audit`); allowed ones commit with the work, and refused ones are written by the
unit of work in a transaction of their own after the refused work rolled back, so a refusal is
on record too. hr_admin reads the trail at ``GET /v1/audit``; housekeeping keeps it
``AUDIT_KEEP_DAYS``.
"""

# No ``from __future__ import annotations``: the route's parameters name dependencies imported
# inside audit_router (kit.http imports this module), which FastAPI could not resolve as strings.

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import Boolean, Column, Index, MetaData, String, Table, select

from rhythm_shared.kit.db import BigId, UtcDateTime

_ID = 128


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


def define_audit_table(metadata: MetaData) -> Table:
    table = Table(
        "audit_log",
        metadata,
        Column("seq", BigId, primary_key=True, autoincrement=True),
        Column("tenant_id", String(_ID), nullable=False),
        Column("at", UtcDateTime, nullable=False, index=True),  # housekeeping
        Column("actor_id", String(_ID), nullable=False),
        Column("subject_id", String(_ID), nullable=False),
        Column("action", String(32), nullable=False),
        Column("target", String(300), nullable=False),
        Column("allowed", Boolean, nullable=False),
        comment="Who read or was refused private texts, and changes to who may see them (kit).",
    )
    Index("ix_audit_log_subject", table.c.tenant_id, table.c.subject_id, table.c.at)
    return table


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


class AuditRecord(BaseModel):
    at: datetime
    actor_id: str
    subject_id: str
    action: AuditAction
    target: str = Field(description="What was read or changed, by kind and id.")
    allowed: bool


def audit_router() -> APIRouter:
    """``GET /v1/audit``: the trail for one subject, newest first (hr_admin only)."""
    from rhythm_shared.kit.auth import Role
    from rhythm_shared.kit.errors import Forbidden
    from rhythm_shared.kit.http import PrincipalDep, RuntimeDep

    router = APIRouter(prefix="/v1/audit", tags=["audit"])

    @router.get("", summary="Who read or changed access to a person's private data")
    async def list_audit(
        principal: PrincipalDep,
        runtime: RuntimeDep,
        subject_id: Annotated[str, Query(min_length=1, max_length=_ID)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[AuditRecord]:
        if not principal.has(Role.HR_ADMIN):
            raise Forbidden("only hr_admin reads the audit trail")
        table = runtime.tables.audit
        if table is None:
            return []
        async with runtime.uow() as uow:
            rows = await uow.session.execute(
                select(table)
                .where(table.c.tenant_id == principal.tenant, table.c.subject_id == subject_id)
                .order_by(table.c.at.desc(), table.c.seq.desc())
                .limit(limit)
            )
            return [
                AuditRecord(
                    at=r.at,
                    actor_id=r.actor_id,
                    subject_id=r.subject_id,
                    action=AuditAction(r.action),
                    target=r.target,
                    allowed=r.allowed,
                )
                for r in rows
            ]

    return router
