"""Helpers of the goals tests: a running service and ways to talk to it and read its events."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import httpx
from aiokafka import ConsumerRecord
from sqlalchemy import func, select

from rhythm_goals.adapters.db import goals
from rhythm_goals.adapters.unit_of_work import GoalsRuntime
from rhythm_goals.handlers import apply_org_unit, apply_person
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope, from_record
from rhythm_shared.contracts.v1 import EmployeeDeactivated, EmployeeUpserted, OrgUnitUpserted
from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.settings import DEV_JWT_SECRET
from rhythm_shared.testing import read_records

E = TypeVar("E", bound=Event)


@dataclass
class GoalsService:
    """A running goals service and what a test needs to talk to it."""

    runtime: GoalsRuntime
    client: httpx.AsyncClient
    tenant: str
    clock: ManualClock
    bootstrap: str
    topic_prefix: str

    def auth(self, subject: str, *roles: str, tenant: str | None = None) -> dict[str, str]:
        tenant = tenant or self.tenant
        roles_ = roles or ("employee",)
        token = issue_token(
            DEV_JWT_SECRET,
            tenant=tenant,
            subject=subject,
            roles=list(roles_),
            now=datetime.now(UTC),  # tokens are checked against the wall clock
        )
        return {"Authorization": f"Bearer {token}"}

    async def seed_people(self, *events: Event, event_ids: list[str] | None = None) -> None:
        """Apply people events straight through their handlers (Kafka is tested elsewhere)."""
        for i, event in enumerate(events):
            event_id = event_ids[i] if event_ids else str(uuid.uuid4())
            async with self.runtime.uow() as uow:
                if isinstance(event, EmployeeUpserted | EmployeeDeactivated):
                    await apply_person(uow, _envelope(event, event_id))
                elif isinstance(event, OrgUnitUpserted):
                    await apply_org_unit(uow, _envelope(event, event_id))

    def employee(
        self,
        employee_id: str,
        *,
        manager_id: str | None = None,
        org_unit_id: str = "ou-root",
        tenant: str | None = None,
        name: str | None = None,
    ) -> EmployeeUpserted:
        return EmployeeUpserted(
            tenant_id=tenant or self.tenant,
            occurred_at=self.clock.now(),
            employee_id=employee_id,
            email=f"{employee_id}@example.com",
            display_name=name or employee_id.upper(),
            manager_id=manager_id,
            org_unit_id=org_unit_id,
            time_zone="Europe/Amsterdam",
            locale="en-GB",
            hired_on=date(2024, 1, 1),
        )

    def unit(
        self,
        org_unit_id: str,
        *,
        parent_id: str | None = None,
        head_id: str | None = None,
        tenant: str | None = None,
    ) -> OrgUnitUpserted:
        return OrgUnitUpserted(
            tenant_id=tenant or self.tenant,
            occurred_at=self.clock.now(),
            org_unit_id=org_unit_id,
            name=org_unit_id.replace("ou-", "").title(),
            parent_id=parent_id,
            head_id=head_id,
        )

    async def seed_org(self) -> None:
        """ceo heads ou-root; mia heads ou-platform (under root) and manages ann and bob;
        carl works in ou-sales (under root, headed by ceo's report sam)."""
        await self.seed_people(
            self.unit("ou-root", head_id="ceo"),
            self.unit("ou-platform", parent_id="ou-root", head_id="mia"),
            self.unit("ou-sales", parent_id="ou-root", head_id="sam"),
            self.unit("ou-infra", parent_id="ou-platform"),
            self.employee("ceo", org_unit_id="ou-root"),
            self.employee("mia", manager_id="ceo", org_unit_id="ou-platform"),
            self.employee("sam", manager_id="ceo", org_unit_id="ou-sales"),
            self.employee("ann", manager_id="mia", org_unit_id="ou-platform", name="Ann"),
            self.employee("bob", manager_id="mia", org_unit_id="ou-platform", name="Bob"),
            self.employee("ivy", manager_id="mia", org_unit_id="ou-infra", name="Ivy"),
            self.employee("carl", manager_id="sam", org_unit_id="ou-sales"),
        )

    async def create(self, subject: str, *roles: str, **body: Any) -> httpx.Response:
        payload = {
            "title": "Cut checkout latency in half",
            "period_start": "2026-03-01",
            "period_end": "2026-03-31",
            "key_results": [
                {
                    "key_result_id": "kr-1",
                    "unit": "ms",
                    "start": 840,
                    "target": 420,
                    "direction": "decrease",
                    "weight": 1,
                }
            ],
        }
        payload.update(body)
        return await self.client.post("/v1/goals", json=payload, headers=self.auth(subject, *roles))

    async def goal_count(self) -> int:
        async with self.runtime.uow() as uow:
            return int(
                await uow.session.scalar(
                    select(func.count()).select_from(goals).where(goals.c.tenant_id == self.tenant)
                )
                or 0
            )

    async def records(
        self,
        ce_type: str,
        *,
        min_count: int = 1,
        settle_s: float = 1.0,
        timeout_s: float = 20.0,
        topic: str = topics.GOALS,
    ) -> list[ConsumerRecord[bytes, bytes]]:
        def match(record: ConsumerRecord[bytes, bytes]) -> bool:
            headers = dict(record.headers or ())
            return headers.get("ce_type") == ce_type.encode()

        return await read_records(
            self.bootstrap,
            f"{self.topic_prefix}{topic}",
            min_count=min_count,
            settle_s=settle_s,
            timeout_s=timeout_s,
            predicate=match,
        )


def _envelope(event: E, event_id: str) -> Envelope[E]:
    return Envelope(
        id=event_id,
        source="/rhythm/tests",
        type=event.type,
        time=event.occurred_at,
        subject=event.subject,
        tenant_id=event.tenant_id,
        event=event,
    )


def decode(record: ConsumerRecord[bytes, bytes]) -> Envelope:
    return from_record(record.headers or (), record.value)


StartGoals = Callable[..., contextlib.AbstractAsyncContextManager[GoalsService]]
