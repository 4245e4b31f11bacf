"""Erasure over HTTP.

``POST /v1/people/employees/{id}:erase`` starts an erasure (202, ``{"erasure_id": …}``; a second
request for the same person answers with the first erasure); ``GET /v1/people/erasures/{id}``
shows each service's part and ``"state": "completed"`` once every one reported
``PersonDataErased`` on ``rhythm.privacy.v1`` (:mod:`rhythm_people.entrypoints.consumers`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from rhythm_people import commands, handlers, queries
from rhythm_people.domain import access
from rhythm_people.domain.erasure import SERVICES, ErasureState
from rhythm_shared.kit.access import require, role_relationships
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.http import PrincipalDep, RuntimeDep

router = APIRouter(prefix="/v1/people", tags=["erasure"])

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
EmployeeId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
ErasureId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]


class ErasureStarted(BaseModel):
    erasure_id: str


class ServicePart(BaseModel):
    state: Literal["pending", "erased"]
    erased_at: datetime | None = None


class ErasureOut(BaseModel):
    erasure_id: str
    employee_id: str
    state: Literal["in_progress", "completed"]
    requested_at: datetime
    completed_at: datetime | None
    services: dict[str, ServicePart]


def _out(state: ErasureState) -> ErasureOut:
    return ErasureOut(
        erasure_id=state.erasure_id,
        employee_id=state.employee_id,
        state=state.state,
        requested_at=state.requested_at,
        completed_at=state.completed_at,
        services={
            s: ServicePart(state="erased", erased_at=state.parts[s])
            if s in state.parts
            else ServicePart(state="pending")
            for s in SERVICES
        },
    )


def _require(principal: Principal, operation: str) -> None:
    require(
        access.POLICY,
        operation,
        frozenset(role_relationships(principal)),
        "erasure is for the integration or hr_admin role",
    )


@router.post(
    "/employees/{employee_id}:erase",
    status_code=202,
    response_model=ErasureStarted,
    summary="Erase a person everywhere (GDPR Art. 17); answers with the erasure to follow",
)
async def erase_employee(
    employee_id: EmployeeId, runtime: RuntimeDep, principal: PrincipalDep
) -> JSONResponse:
    _require(principal, "erase_employee")
    command = commands.EraseEmployee(tenant=principal.tenant, employee_id=employee_id)
    async with runtime.uow() as uow:
        state, _ = await handlers.erase_employee(uow, command)
    return JSONResponse(
        {"erasure_id": state.erasure_id},
        status_code=202,
        headers={"Location": f"/v1/people/erasures/{state.erasure_id}"},
    )


@router.get(
    "/erasures/{erasure_id}",
    response_model=ErasureOut,
    summary="An erasure's state, per service; completed once every service did its part",
)
async def get_erasure(
    erasure_id: ErasureId, runtime: RuntimeDep, principal: PrincipalDep
) -> ErasureOut:
    _require(principal, "read_erasure")
    async with runtime.uow.read() as session:
        return _out(await queries.erasure(session, principal.tenant, erasure_id))
