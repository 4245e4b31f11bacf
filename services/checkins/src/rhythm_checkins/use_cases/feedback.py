"""Informal feedback: anyone to anyone in the tenant, praise or constructive, asked for or not."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update

from rhythm_checkins.adapters.db import feedback, feedback_requests
from rhythm_checkins.domain.access import POLICY
from rhythm_checkins.domain.conversations import feedback_error
from rhythm_checkins.domain.obligations import new_id
from rhythm_checkins.use_cases.directory import people
from rhythm_shared.contracts.v1 import FeedbackGiven, FeedbackKind
from rhythm_shared.kit.access import allowed, relationships, require
from rhythm_shared.kit.audit import AuditAction, AuditEntry
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rhythm_shared.kit.uow import UnitOfWork


class Direction(StrEnum):
    RECEIVED = "received"
    GIVEN = "given"


@dataclass(frozen=True)
class GiveFeedback:
    receiver_id: str
    kind: FeedbackKind
    text: str
    request_id: str | None = None


@dataclass(frozen=True)
class RequestFeedback:
    from_id: str
    prompt: str | None = None


def _view(row: Any) -> dict[str, Any]:
    return {
        "feedback_id": row.id,
        "giver_id": row.giver_id,
        "receiver_id": row.receiver_id,
        "kind": row.kind,
        "text": row.text,
        "requested": row.requested,
        "request_id": row.request_id,
        "created_at": row.created_at,
    }


def _audit_read(uow: UnitOfWork, principal: Principal, row: Any, ok: bool) -> None:
    """A feedback text is about its receiver: the read is on their record."""
    uow.audit(
        AuditEntry(
            tenant_id=principal.tenant,
            actor_id=principal.subject,
            subject_id=row.receiver_id,
            action=AuditAction.READ,
            target=f"feedback/{row.id}",
            allowed=ok,
        )
    )


def _request_view(row: Any) -> dict[str, Any]:
    return {
        "request_id": row.id,
        "requester_id": row.requester_id,
        "from_id": row.from_id,
        "prompt": row.prompt,
        "feedback_id": row.feedback_id,
        "created_at": row.created_at,
    }


async def give_feedback(
    uow: UnitOfWork, principal: Principal, command: GiveFeedback
) -> dict[str, Any]:
    tenant = principal.tenant
    people_dir = people(uow, tenant)
    errors: list[FieldError] = []
    if (error := feedback_error(principal.subject, command.receiver_id)) is not None:
        errors.append(error)
    elif await people_dir.person(command.receiver_id) is None:
        errors.append(FieldError(("body", "receiver_id"), "not an employee of this tenant"))
    request = None
    if command.request_id is not None:
        request = (
            await uow.session.execute(
                select(feedback_requests)
                .where(
                    feedback_requests.c.tenant_id == tenant,
                    feedback_requests.c.id == command.request_id,
                )
                .with_for_update()
            )
        ).first()
        if request is None or request.from_id != principal.subject:
            errors.append(FieldError(("body", "request_id"), "no such request addressed to you"))
        elif request.requester_id != command.receiver_id:
            errors.append(
                FieldError(("body", "receiver_id"), "answer a request to the one who asked")
            )
        elif request.feedback_id is not None:
            raise Conflict("this request was already answered")
    if errors:
        raise InvalidInput(errors)
    require(
        POLICY,
        "give_feedback",
        await relationships(people_dir, principal, command.receiver_id),
        "feedback is given by a person to someone else in the tenant",
    )
    now = uow.clock.now()
    feedback_id = new_id("f")
    await uow.session.execute(
        feedback.insert().values(
            id=feedback_id,
            tenant_id=tenant,
            giver_id=principal.subject,
            receiver_id=command.receiver_id,
            kind=command.kind.value,
            text=command.text,
            requested=request is not None,
            request_id=command.request_id,
            created_at=now,
        )
    )
    if request is not None:
        await uow.session.execute(
            update(feedback_requests)
            .where(feedback_requests.c.id == request.id)
            .values(feedback_id=feedback_id)
        )
    await uow.publish(
        FeedbackGiven(
            tenant_id=tenant,
            occurred_at=now,
            feedback_id=feedback_id,
            giver_id=principal.subject,
            receiver_id=command.receiver_id,
            kind=command.kind,
            requested=request is not None,
        )
    )
    row = (await uow.session.execute(select(feedback).where(feedback.c.id == feedback_id))).one()
    return _view(row)


async def request_feedback(
    uow: UnitOfWork, principal: Principal, command: RequestFeedback
) -> dict[str, Any]:
    tenant = principal.tenant
    people_dir = people(uow, tenant)
    if command.from_id == principal.subject:
        raise InvalidInput.field("from_id", msg="ask someone else for feedback")
    if await people_dir.person(command.from_id) is None:
        raise InvalidInput.field("from_id", msg="not an employee of this tenant")
    require(
        POLICY,
        "request_feedback",
        await relationships(people_dir, principal, command.from_id),
        "feedback is asked for by a person, of someone else in the tenant",
    )
    request_id = new_id("fr")
    await uow.session.execute(
        feedback_requests.insert().values(
            id=request_id,
            tenant_id=tenant,
            requester_id=principal.subject,
            from_id=command.from_id,
            prompt=command.prompt,
            created_at=uow.clock.now(),
        )
    )
    row = (
        await uow.session.execute(
            select(feedback_requests).where(feedback_requests.c.id == request_id)
        )
    ).one()
    return _request_view(row)


async def list_feedback(
    uow: UnitOfWork, principal: Principal, direction: Direction, limit: int = 100
) -> list[dict[str, Any]]:
    """Only giver and receiver ever read a feedback text."""
    require(
        POLICY,
        "list_feedback",
        await relationships(people(uow, principal.tenant), principal, principal.subject),
        "feedback is read by a person",
    )
    column = feedback.c.receiver_id if direction == Direction.RECEIVED else feedback.c.giver_id
    rows = await uow.session.execute(
        select(feedback)
        .where(feedback.c.tenant_id == principal.tenant, column == principal.subject)
        .order_by(feedback.c.created_at.desc())
        .limit(limit)
    )
    found = list(rows)
    for r in found:
        _audit_read(uow, principal, r, True)
    return [_view(r) for r in found]


async def get_feedback(uow: UnitOfWork, principal: Principal, feedback_id: str) -> dict[str, Any]:
    row = (
        await uow.session.execute(
            select(feedback).where(
                feedback.c.tenant_id == principal.tenant, feedback.c.id == feedback_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("no such feedback")
    people_dir = people(uow, principal.tenant)
    # Its two people: the caller is one of them (SELF to the giver or to the receiver).
    rels = await relationships(people_dir, principal, row.receiver_id) | await relationships(
        people_dir, principal, row.giver_id
    )
    ok = allowed(POLICY, "read_feedback", rels)
    _audit_read(uow, principal, row, ok)
    if not ok:
        raise NotFound("no such feedback")
    return _view(row)


async def list_feedback_requests(uow: UnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    """Open requests addressed to the principal."""
    require(
        POLICY,
        "list_feedback_requests",
        await relationships(people(uow, principal.tenant), principal, principal.subject),
        "requests for feedback are for a person",
    )
    rows = await uow.session.execute(
        select(feedback_requests)
        .where(
            feedback_requests.c.tenant_id == principal.tenant,
            feedback_requests.c.from_id == principal.subject,
            feedback_requests.c.feedback_id.is_(None),
        )
        .order_by(feedback_requests.c.created_at)
    )
    return [_request_view(r) for r in rows]
