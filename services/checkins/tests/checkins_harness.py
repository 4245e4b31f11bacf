"""Helpers of the check-ins tests: a running service, people in it, and its events on Kafka."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy import select

from rhythm_checkins.adapters.db import obligations, planning
from rhythm_checkins.adapters.unit_of_work import CheckinsRuntime
from rhythm_checkins.entrypoints.consumers import GROUP, consumers
from rhythm_checkins.entrypoints.jobs import sweep_until_done
from rhythm_checkins.use_cases.cadence import SweepResult
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope, from_record
from rhythm_shared.contracts.v1 import EmployeeUpserted
from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.settings import DEV_JWT_SECRET
from rhythm_shared.testing import read_records

MONTHLY_POLICY = {
    "rules": [{"kind": "monthly", "frequency": "monthly", "grace_days": 5, "lead_time_days": 3}],
    "escalate_after": 2,
    "escalate_to": "skip_level",
    "ramp_up_days": 30,
}


def employee(
    tenant: str,
    employee_id: str,
    manager_id: str | None,
    *,
    time_zone: str = "Europe/Amsterdam",
    hired_on: date = date(2020, 1, 6),
    active: bool = True,
    org_unit_id: str = "ou-eng",
    at: datetime | None = None,
) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=tenant,
        occurred_at=at or datetime(2026, 3, 1, tzinfo=UTC),
        employee_id=employee_id,
        email=f"{employee_id}@example.com",
        display_name=employee_id.upper(),
        manager_id=manager_id,
        org_unit_id=org_unit_id,
        time_zone=time_zone,
        locale="en-GB",
        hired_on=hired_on,
        active=active,
    )


@dataclass
class CheckinsService:
    runtime: CheckinsRuntime
    client: httpx.AsyncClient
    tenant: str
    clock: ManualClock
    bootstrap: str
    topic_prefix: str

    def auth(self, subject: str, *roles: str, tenant: str | None = None) -> dict[str, str]:
        token = issue_token(
            DEV_JWT_SECRET,
            tenant=tenant or self.tenant,
            subject=subject,
            roles=list(roles or ("employee",)),
            now=datetime.now(UTC),  # tokens are checked against the wall clock
        )
        return {"Authorization": f"Bearer {token}"}

    async def apply(self, *events: Event, event_id: str | None = None) -> list[bool]:
        """Apply consumed events through the consumer's handlers and inbox, as Kafka would
        (Kafka itself is exercised by the tests that run the consumers)."""
        spec = consumers(self.runtime)[0]
        applied = []
        for event in events:
            envelope = Envelope(
                id=event_id or str(uuid.uuid4()),
                source="/rhythm/tests",
                type=event.type,
                time=event.occurred_at,
                subject=event.subject,
                tenant_id=event.tenant_id,
                event=event,
            )
            async with self.runtime.uow() as uow:
                first = await uow.first_time(GROUP, envelope.id)
                if first:
                    await spec.handlers[type(event)](uow, envelope)
            applied.append(first)
        return applied

    async def team(self) -> None:
        """boss <- mia (manager) <- ana, ben; the tenant owes monthly check-ins."""
        t = self.tenant
        await self.apply(
            employee(t, "boss", None),
            employee(t, "mia", "boss"),
            employee(t, "ana", "mia"),
            employee(t, "ben", "mia", time_zone="America/New_York"),
        )

    async def set_policy(
        self, body: dict[str, Any] | None = None, scope: str = "tenant", scope_id: str | None = None
    ) -> httpx.Response:
        return await self.client.put(
            f"/v1/cadence/policies/{scope}/{scope_id or self.tenant}",
            json=body or MONTHLY_POLICY,
            headers=self.auth("hr-1", "hr_admin"),
        )

    async def sweep(self, at: datetime | None = None, batch_size: int = 500) -> SweepResult:
        if at is not None:
            self.clock.travel_to(at)
        return await sweep_until_done(self.runtime.uow, batch_size)

    async def obligations(self, employee_id: str) -> list[Any]:
        async with self.runtime.uow() as uow:
            rows = await uow.session.execute(
                select(obligations)
                .where(
                    obligations.c.tenant_id == self.tenant,
                    obligations.c.employee_id == employee_id,
                )
                .order_by(obligations.c.period_start, obligations.c.kind)
            )
            return list(rows)

    async def planning_row(self, employee_id: str) -> Any:
        async with self.runtime.uow() as uow:
            return (
                await uow.session.execute(
                    select(planning).where(
                        planning.c.tenant_id == self.tenant,
                        planning.c.employee_id == employee_id,
                    )
                )
            ).first()

    async def events(
        self,
        topic: str,
        *,
        min_count: int = 1,
        settle_s: float = 1.0,
        types: tuple[str, ...] = (),
        timeout_s: float = 20.0,
    ) -> list[Envelope]:
        """What really reached the broker on ``topic`` (this test's namespace)."""

        def wanted(record: Any) -> bool:
            headers = dict(record.headers or ())
            return not types or headers.get("ce_type", b"").decode() in types

        records = await read_records(
            self.bootstrap,
            f"{self.topic_prefix}{topic}",
            min_count=min_count,
            settle_s=settle_s,
            timeout_s=timeout_s,
            predicate=wanted,
        )
        return [from_record(r.headers or (), r.value) for r in records]

    async def cadence_events(self, *types: str, min_count: int = 1) -> list[Envelope]:
        return await self.events(topics.CADENCE, types=types, min_count=min_count)


StartCheckins = Callable[..., contextlib.AbstractAsyncContextManager[CheckinsService]]
