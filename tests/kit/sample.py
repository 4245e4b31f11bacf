"""A minimal service built with the kit, to test the kit itself against real Kafka and databases.

It stores greetings (state), publishes ``FeedbackGiven`` for each (a stand-in event), and
consumes that topic, recording one effect row per event it applies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, Table, func, select

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1.checkins import FeedbackGiven
from rhythm_shared.kit.app import Runtime, ServiceDefinition, create_app
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.consumer import ConflictLost, ConsumerSpec
from rhythm_shared.kit.db import BigId, define_kit_tables, new_metadata
from rhythm_shared.kit.http import IdempotencyKey, PrincipalDep, RuntimeDep, run_idempotent
from rhythm_shared.kit.settings import ServiceSettings
from rhythm_shared.kit.uow import UnitOfWork

metadata = new_metadata()
kit = define_kit_tables(metadata)
greetings = Table(
    "greetings",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("receiver_id", String(128), nullable=False),
)
effects = Table(
    "effects",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("feedback_id", String(64), nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
)

MIGRATIONS = Path(__file__).parent / "sample_migrations"


class Settings(ServiceSettings):
    service_name: str = "sample"


class Greet(BaseModel):
    greeting_id: str
    receiver_id: str


async def greet(uow: UnitOfWork, tenant: str, giver: str, command: Greet) -> dict[str, Any]:
    await uow.session.execute(
        greetings.insert().values(
            id=command.greeting_id, tenant_id=tenant, receiver_id=command.receiver_id
        )
    )
    await uow.publish(
        FeedbackGiven(
            tenant_id=tenant,
            occurred_at=uow.clock.now(),
            feedback_id=command.greeting_id,
            giver_id=giver,
            receiver_id=command.receiver_id,
            kind="praise",
            requested=False,
        )
    )
    return {"greeting_id": command.greeting_id}


router = APIRouter()


@router.post("/v1/greetings", status_code=201)
async def post_greeting(
    body: Greet, runtime: RuntimeDep, principal: PrincipalDep, key: IdempotencyKey = None
) -> Any:
    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, await greet(uow, principal.tenant, principal.subject, body)

    return await run_idempotent(runtime, principal, key, body.model_dump(), action)


#: (tenant, feedback id) whose first attempt lost a race (see ``record_effect``).
RACES_LOST: set[tuple[str, str]] = set()


async def record_effect(uow: UnitOfWork, envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, FeedbackGiven)
    if event.giver_id == "always-fails":
        raise ValueError("this giver cannot be handled")
    race = (event.tenant_id, event.feedback_id)
    if event.giver_id == "loses-a-race-once" and race not in RACES_LOST:
        RACES_LOST.add(race)
        raise ConflictLost("another writer won the race for these rows")
    await uow.session.execute(effects.insert().values(feedback_id=event.feedback_id))


def consumers(_: Runtime[Settings]) -> list[ConsumerSpec]:
    return [ConsumerSpec("sample", [topics.CHECKINS], {FeedbackGiven: record_effect})]


def build(settings: Settings, *, clock: Clock | None = None, span_exporter: Any = None) -> Any:
    return create_app(
        ServiceDefinition(
            name="sample",
            settings=settings,
            metadata=metadata,
            tables=kit,
            migrations=MIGRATIONS,
            routers=[router],
            consumers=consumers,
            clock=clock,
            span_exporter=span_exporter,
        )
    )


async def effect_counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            select(effects.c.feedback_id, func.count()).group_by(effects.c.feedback_id)
        )
        return {r[0]: r[1] for r in rows}
