"""Informal feedback: anyone to anyone in the tenant, praise or constructive, asked for or not."""

from __future__ import annotations

from typing import Any

from rhythm_checkins.commands import GiveFeedback, RequestFeedback
from rhythm_checkins.domain.access import POLICY, relationships
from rhythm_checkins.domain.conversations import feedback_error
from rhythm_checkins.domain.obligations import new_id
from rhythm_checkins.domain.ports import CheckinsUnitOfWork
from rhythm_checkins.domain.records import Feedback, FeedbackRequest
from rhythm_checkins.queries import feedback_view, request_view
from rhythm_shared.contracts.v1 import FeedbackGiven
from rhythm_shared.kit.access import require
from rhythm_shared.kit.errors import Conflict, FieldError, InvalidInput


async def give_feedback(uow: CheckinsUnitOfWork, cmd: GiveFeedback) -> dict[str, Any]:
    principal = cmd.principal
    tenant = principal.tenant
    people_dir = uow.people.directory(tenant)
    errors: list[FieldError] = []
    if (error := feedback_error(principal.subject, cmd.receiver_id)) is not None:
        errors.append(error)
    elif await people_dir.person(cmd.receiver_id) is None:
        errors.append(FieldError(("body", "receiver_id"), "not an employee of this tenant"))
    request = None
    if cmd.request_id is not None:
        request = await uow.feedback.request(tenant, cmd.request_id, lock=True)
        if request is None or request.from_id != principal.subject:
            errors.append(FieldError(("body", "request_id"), "no such request addressed to you"))
        elif request.requester_id != cmd.receiver_id:
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
        await relationships(people_dir, principal, cmd.receiver_id),
        "feedback is given by a person to someone else in the tenant",
    )
    given = Feedback(
        id=new_id("f"),
        tenant_id=tenant,
        giver_id=principal.subject,
        receiver_id=cmd.receiver_id,
        kind=cmd.kind.value,
        text=cmd.text,
        requested=request is not None,
        request_id=cmd.request_id,
        created_at=uow.clock.now(),
    )
    await uow.feedback.add(given)
    if request is not None:
        await uow.feedback.answer_request(request.id, given.id)
    await uow.publish(
        FeedbackGiven(
            tenant_id=tenant,
            occurred_at=given.created_at,
            feedback_id=given.id,
            giver_id=principal.subject,
            receiver_id=cmd.receiver_id,
            kind=cmd.kind,
            requested=request is not None,
        )
    )
    return feedback_view(given)


async def request_feedback(uow: CheckinsUnitOfWork, cmd: RequestFeedback) -> dict[str, Any]:
    principal = cmd.principal
    people_dir = uow.people.directory(principal.tenant)
    if cmd.from_id == principal.subject:
        raise InvalidInput.field("from_id", msg="ask someone else for feedback")
    if await people_dir.person(cmd.from_id) is None:
        raise InvalidInput.field("from_id", msg="not an employee of this tenant")
    require(
        POLICY,
        "request_feedback",
        await relationships(people_dir, principal, cmd.from_id),
        "feedback is asked for by a person, of someone else in the tenant",
    )
    request = FeedbackRequest(
        id=new_id("fr"),
        tenant_id=principal.tenant,
        requester_id=principal.subject,
        from_id=cmd.from_id,
        prompt=cmd.prompt,
        created_at=uow.clock.now(),
    )
    await uow.feedback.add_request(request)
    return request_view(request)
