"""``GET /v1/audit``: hr_admin reads the audit trail of access to private data (:mod:`.audit`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from rhythm_shared.kit.audit import AuditAction
from rhythm_shared.kit.auth import Role
from rhythm_shared.kit.errors import Forbidden
from rhythm_shared.kit.http import PrincipalDep, RuntimeDep

_ID = 128


class AuditRecord(BaseModel):
    at: datetime
    actor_id: str
    subject_id: str
    action: AuditAction
    target: str = Field(description="What was read or changed, by kind and id.")
    allowed: bool


def audit_router() -> APIRouter:
    """``GET /v1/audit``: the trail for one subject, newest first (hr_admin only)."""
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
        async with runtime.uow.read() as session:
            rows = await session.execute(
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
