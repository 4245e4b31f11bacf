"""HTTP API: translate requests into commands, run them in one transaction, answer; GETs ask
:mod:`rhythm_checkins.queries`.

Every write runs through ``run_idempotent``: a retried request with the same Idempotency-Key
gets the first answer and has no second effect.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rhythm_checkins import queries
from rhythm_checkins.adapters.unit_of_work import CheckinsRuntime, SqlCheckinsReader
from rhythm_checkins.commands import (
    AddActionItem,
    CancelCheckin,
    Command,
    CompleteCheckin,
    GiveFeedback,
    RecordNotes,
    RequestFeedback,
    RescheduleCheckin,
    ScheduleCheckin,
    SetActionItemDone,
    SetPolicy,
    SetTenantSettings,
    SubmitReflection,
)
from rhythm_checkins.domain.conversations import CheckinState
from rhythm_checkins.domain.policy import Rule
from rhythm_checkins.handlers import handle
from rhythm_checkins.queries import Direction
from rhythm_shared.contracts.v1 import (
    CheckinKind,
    EscalationTarget,
    FeedbackKind,
    Frequency,
    PolicyScope,
)
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.http import IdempotencyKey, PrincipalDep, get_runtime, run_idempotent
from rhythm_shared.kit.uow import UnitOfWork

Text = Annotated[str, Field(max_length=4000)]
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")]
PathId = Annotated[str, Path(min_length=1, max_length=128)]
# A scope id is stored and published (CadencePolicyChanged.scope_id): it must be an Identifier.
ScopeId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")
]


#: The runtime as this service built it (its settings, its unit of work).
RuntimeDep = Annotated[CheckinsRuntime, Depends(get_runtime)]


def _example(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


# --- request models ----------------------------------------------------------------------------


class ScheduleCheckinRequest(BaseModel):
    model_config = _example(
        {
            "employee_id": "e-1042",
            "kind": "monthly",
            "scheduled_for": "2026-03-26T14:00:00+01:00",
        }
    )

    employee_id: Id = Field(description="The employee the check-in is about.")
    scheduled_for: datetime = Field(
        description="When it starts; without an offset it is read in `time_zone`."
    )
    kind: CheckinKind = Field(CheckinKind.MONTHLY, description="Monthly check-in or review.")
    manager_id: Id | None = Field(None, description="Default: the employee's manager.")
    time_zone: str | None = Field(
        None,
        max_length=64,
        description="IANA zone for a time without offset (default: employee's).",
    )


class RescheduleRequest(BaseModel):
    model_config = _example({"scheduled_for": "2026-03-27T10:00:00+01:00"})

    scheduled_for: datetime = Field(
        description="The new start; without an offset it is read in `time_zone`."
    )
    time_zone: str | None = Field(
        None,
        max_length=64,
        description="IANA zone for a time without offset (default: the check-in's).",
    )


class ReflectionRequest(BaseModel):
    model_config = _example(
        {
            "wins": "Shipped the checkout rewrite.",
            "challenges": "On-call load.",
            "help_needed": "Prioritising the backlog.",
            "pulse": 4,
        }
    )

    wins: Text | None = None
    challenges: Text | None = None
    help_needed: Text | None = None
    pulse: int | None = Field(None, ge=1, le=5, description="Workload pulse 1 (too little)-5.")


class NotesRequest(BaseModel):
    model_config = _example(
        {
            "goal": "Get checkout p95 under 420 ms.",
            "reality": "At 610 ms; the cache is cold after deploys.",
            "options": "Warm-up job; smaller images.",
            "will": "Ana drafts the warm-up job by Friday.",
            "goals_discussed": ["g-7f3a"],
        }
    )

    goal: Text | None = Field(None, description="GROW: what we want.")
    reality: Text | None = Field(None, description="GROW: where we are.")
    options: Text | None = Field(None, description="GROW: what we could do.")
    will: Text | None = Field(None, description="GROW: what we will do.")
    notes: Text | None = Field(None, description="Free notes.")
    goals_discussed: list[Id] | None = Field(None, max_length=100)


class ActionItemRequest(BaseModel):
    model_config = _example(
        {"owner_id": "e-1042", "text": "Draft warm-up job", "due_on": "2026-03-31"}
    )

    owner_id: Id
    text: Annotated[str, Field(min_length=1, max_length=1000)]
    due_on: date | None = None


class ActionItemDoneRequest(BaseModel):
    model_config = _example({"done": True})

    done: bool = True


class CompleteRequest(BaseModel):
    model_config = _example(
        {"held_at": "2026-03-26T14:00:00+01:00", "pulse": 3, "goals_discussed": ["g-7f3a"]}
    )

    held_at: datetime | None = Field(None, description="When it was held (default: now).")
    pulse: int | None = Field(None, ge=1, le=5)
    goals_discussed: list[Id] | None = Field(None, max_length=100)


class SettingsRequest(BaseModel):
    model_config = _example({"reviews_visible_to_manager_chain": True})

    reviews_visible_to_manager_chain: bool | None = Field(
        None, description="The manager chain reads quarterly reviews' texts (default off)."
    )
    share_individual_pulse: bool | None = Field(
        None,
        description="The public CheckinCompleted and ReflectionSubmitted events (integrators, "
        "webhooks) carry each person's workload pulse; off (the default): they carry null "
        "and the dashboards show pulse aggregated only.",
    )


class FeedbackRequest(BaseModel):
    model_config = _example(
        {"receiver_id": "e-1042", "kind": "praise", "text": "Great incident write-up."}
    )

    receiver_id: Id
    kind: FeedbackKind
    text: Annotated[str, Field(min_length=1, max_length=4000)]
    request_id: Id | None = Field(None, description="The request this answers, if any.")


class FeedbackAskRequest(BaseModel):
    model_config = _example({"from_id": "e-0311", "prompt": "How did my demo land?"})

    from_id: Id
    prompt: Text | None = None


class RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: CheckinKind
    frequency: Frequency = Field(description="weekly, biweekly, monthly or quarterly.")
    grace_days: int = Field(5, description="Days after due before it counts as missed (0-90).")
    lead_time_days: int = Field(3, description="Days before due that the reminder goes out.")


class PolicyRequest(BaseModel):
    model_config = _example(
        {
            "rules": [
                {"kind": "monthly", "frequency": "monthly", "grace_days": 5, "lead_time_days": 3},
                {
                    "kind": "quarterly_review",
                    "frequency": "quarterly",
                    "grace_days": 10,
                    "lead_time_days": 7,
                },
            ],
            "escalate_after": 2,
            "escalate_to": "skip_level",
            "ramp_up_days": 30,
        }
    )

    rules: list[RuleModel] = Field(max_length=10)
    escalate_after: int = Field(2, description="Consecutive misses before escalating (1-12).")
    escalate_to: EscalationTarget = EscalationTarget.SKIP_LEVEL
    ramp_up_days: int = Field(30, description="A new hire owes nothing for this many days.")
    hr_contact_id: Id | None = Field(None, description="Employee id of HR for escalations.")


# --- routers -----------------------------------------------------------------------------------

checkins_router = APIRouter(prefix="/v1/checkins", tags=["checkins"])
feedback_router = APIRouter(prefix="/v1/feedback", tags=["feedback"])
cadence_router = APIRouter(prefix="/v1/cadence", tags=["cadence"])


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


async def _run(
    runtime: RuntimeDep,
    principal: Principal,
    key: str | None,
    fingerprint: list[Any],
    command: Command,
    status: int = 200,
) -> JSONResponse:
    """``command`` in one transaction, idempotent under ``key``; answers what it returns."""

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return status, await handle(uow, command)

    return await run_idempotent(runtime, principal, key, fingerprint, action)


def _goals(ids: list[str] | None) -> tuple[str, ...] | None:
    return tuple(ids) if ids is not None else None


@checkins_router.post("", status_code=201, summary="Schedule a check-in (either side)")
async def schedule_checkin(
    body: ScheduleCheckinRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = ScheduleCheckin(principal=principal, **body.model_dump())
    return await _run(runtime, principal, key, ["schedule", _dump(body)], command, 201)


@checkins_router.get("", summary="Check-ins I take part in, or an employee's")
async def list_checkins(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    employee_id: str | None = None,
    state: CheckinState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    # Reads of texts are on the audit trail: a unit of work writes it.
    async with runtime.uow() as uow:
        return await queries.list_checkins(uow, principal, employee_id, state, limit)


@checkins_router.put("/settings", summary="Tenant settings for check-ins (hr_admin)")
async def put_settings(
    body: SettingsRequest, principal: PrincipalDep, runtime: RuntimeDep, key: IdempotencyKey = None
) -> JSONResponse:
    command = SetTenantSettings(principal=principal, changes=body.model_dump(exclude_none=True))
    return await _run(runtime, principal, key, ["settings", _dump(body)], command)


@checkins_router.get("/{checkin_id}", summary="A check-in (texts for participants only)")
async def get_checkin(
    checkin_id: PathId, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.uow() as uow:
        return await queries.get_checkin(uow, principal, checkin_id)


@checkins_router.patch(
    "/{checkin_id}",
    summary="Move a check-in still to be held (either participant): an updated invitation",
    responses={409: {"description": "The check-in was completed or cancelled."}},
)
async def reschedule_checkin(
    checkin_id: PathId,
    body: RescheduleRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = RescheduleCheckin(principal=principal, checkin_id=checkin_id, **body.model_dump())
    return await _run(runtime, principal, key, ["reschedule", checkin_id, _dump(body)], command)


@checkins_router.post(
    "/{checkin_id}/cancel",
    summary="Call off a check-in still to be held (either participant); again: no change",
    responses={409: {"description": "The check-in was completed."}},
)
async def cancel_checkin(
    checkin_id: PathId, principal: PrincipalDep, runtime: RuntimeDep, key: IdempotencyKey = None
) -> JSONResponse:
    command = CancelCheckin(principal=principal, checkin_id=checkin_id)
    return await _run(runtime, principal, key, ["cancel", checkin_id], command)


@checkins_router.get(
    "/{checkin_id}/preparation",
    summary="Both people's goals, progress since the last check-in, open action items",
)
async def get_preparation(
    checkin_id: PathId, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.uow() as uow:
        return await queries.prepare_view(uow, principal, checkin_id)


@checkins_router.put("/{checkin_id}/reflection", summary="The employee's self-reflection")
async def put_reflection(
    checkin_id: PathId,
    body: ReflectionRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = SubmitReflection(principal=principal, checkin_id=checkin_id, **body.model_dump())
    return await _run(runtime, principal, key, ["reflection", checkin_id, _dump(body)], command)


@checkins_router.put("/{checkin_id}/notes", summary="GROW agenda, notes and goals discussed")
async def put_notes(
    checkin_id: PathId,
    body: NotesRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    data = body.model_dump()
    goals = _goals(data.pop("goals_discussed"))
    command = RecordNotes(principal=principal, checkin_id=checkin_id, goals_discussed=goals, **data)
    return await _run(runtime, principal, key, ["notes", checkin_id, _dump(body)], command)


@checkins_router.post(
    "/{checkin_id}/action-items", status_code=201, summary="Add an action item (carries over)"
)
async def post_action_item(
    checkin_id: PathId,
    body: ActionItemRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = AddActionItem(principal=principal, checkin_id=checkin_id, **body.model_dump())
    return await _run(runtime, principal, key, ["item", checkin_id, _dump(body)], command, 201)


@checkins_router.put("/action-items/{item_id}", summary="Mark an action item done or open")
async def put_action_item(
    item_id: PathId,
    body: ActionItemDoneRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = SetActionItemDone(principal=principal, item_id=item_id, done=body.done)
    return await _run(runtime, principal, key, ["done", item_id, _dump(body)], command)


@checkins_router.post("/{checkin_id}/complete", summary="Complete: closes its obligation")
async def complete_checkin(
    checkin_id: PathId,
    body: CompleteRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = CompleteCheckin(
        principal=principal,
        checkin_id=checkin_id,
        held_at=body.held_at,
        pulse=body.pulse,
        goals_discussed=_goals(body.goals_discussed),
    )
    return await _run(runtime, principal, key, ["complete", checkin_id, _dump(body)], command)


@feedback_router.post("", status_code=201, summary="Give feedback (praise or constructive)")
async def give_feedback(
    body: FeedbackRequest, principal: PrincipalDep, runtime: RuntimeDep, key: IdempotencyKey = None
) -> JSONResponse:
    command = GiveFeedback(principal=principal, **body.model_dump())
    return await _run(runtime, principal, key, ["feedback", _dump(body)], command, 201)


@feedback_router.get("", summary="Feedback I received or gave")
async def list_feedback(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    direction: Direction = Direction.RECEIVED,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    async with runtime.uow() as uow:
        return await queries.list_feedback(uow, principal, direction, limit)


@feedback_router.post("/requests", status_code=201, summary="Ask someone for feedback")
async def request_feedback(
    body: FeedbackAskRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = RequestFeedback(principal=principal, **body.model_dump())
    return await _run(runtime, principal, key, ["ask", _dump(body)], command, 201)


@feedback_router.get("/requests", summary="Open requests for feedback addressed to me")
async def list_feedback_requests(
    principal: PrincipalDep, runtime: RuntimeDep
) -> list[dict[str, Any]]:
    async with runtime.uow.read() as session:
        return await queries.list_feedback_requests(SqlCheckinsReader(session), principal)


@feedback_router.get("/{feedback_id}", summary="One feedback (giver and receiver only)")
async def get_feedback(
    feedback_id: PathId, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.uow() as uow:
        return await queries.get_feedback(uow, principal, feedback_id)


@cadence_router.put(
    "/policies/{scope}/{scope_id}", summary="Set the cadence policy of a scope (hr_admin)"
)
async def put_policy(
    scope: PolicyScope,
    scope_id: ScopeId,
    body: PolicyRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = SetPolicy(
        principal=principal,
        scope=scope,
        scope_id=scope_id,
        rules=tuple(Rule(**r.model_dump()) for r in body.rules),
        escalate_after=body.escalate_after,
        escalate_to=body.escalate_to,
        ramp_up_days=body.ramp_up_days,
        hr_contact_id=body.hr_contact_id,
    )
    return await _run(
        runtime, principal, key, ["policy", scope.value, scope_id, _dump(body)], command
    )


@cadence_router.get("/policies", summary="The tenant's cadence policies")
async def list_policies(principal: PrincipalDep, runtime: RuntimeDep) -> list[dict[str, Any]]:
    async with runtime.uow.read() as session:
        return await queries.list_policies(SqlCheckinsReader(session), principal)


@cadence_router.get("/obligations", summary="An employee's obligations (owed check-ins)")
async def list_obligations(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    employee_id: str,
    state: str | None = None,
) -> list[dict[str, Any]]:
    async with runtime.uow.read() as session:
        return await queries.list_obligations(
            SqlCheckinsReader(session), principal, employee_id, state
        )


routers = [checkins_router, feedback_router, cadence_router]
