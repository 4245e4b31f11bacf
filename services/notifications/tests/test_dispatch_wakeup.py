"""The dispatcher wakes when deliveries are committed, not at its next poll, and a wake-up that
comes while it is sending is kept for the next round."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from notifications_harness import Service, SmtpSink, StartService, employee

from rhythm_notifications.adapters.email import SmtpConfig, SmtpMailer
from rhythm_notifications.domain.delivery import Outcome, Status
from rhythm_notifications.domain.routing import Category
from rhythm_notifications.use_cases.deciding import add_delivery
from rhythm_shared.contracts.v1 import CheckinKind, CheckinMissed

pytestmark = pytest.mark.kafka

#: Far longer than any test waits: a round that starts sooner was woken, not polled.
POLL_S = 600.0


def missed(tenant: str, employee_id: str) -> CheckinMissed:
    return CheckinMissed(
        tenant_id=tenant,
        occurred_at=datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
        obligation_id=f"ob-{employee_id}-monthly-2026-02",
        employee_id=employee_id,
        manager_id="m-1",
        kind=CheckinKind.MONTHLY,
        period_start=date(2026, 2, 1),
        period_end=date(2026, 2, 28),
        due_at=datetime(2026, 2, 27, 16, 0, tzinfo=UTC),
        consecutive_misses=1,
    )


def payload(svc: Service) -> dict[str, Any]:
    """What deciding stores for a miss (the templates' facts and names)."""
    return {
        "facts": {
            "kind": "monthly",
            "consecutive_misses": 1,
            "due_at": "2026-02-27T16:00:00+00:00",
        },
        "names": {"employee": "Eva", "manager": "Mark"},
        "role": "employee",
        "caused_at": svc.clock.now().isoformat(),
    }


def mailer_for(smtp_sink: SmtpSink) -> SmtpMailer:
    return SmtpMailer(
        SmtpConfig(
            host="127.0.0.1",
            port=smtp_sink.port,
            security="none",
            username=None,
            password=None,
            timeout_s=10,
            sender="Rhythm <rhythm@acme.example.com>",
        )
    )


async def test_committed_deliveries_wake_the_dispatcher_before_its_poll(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service(settings={"dispatch_interval_s": POLL_S}) as svc:
        await svc.add_people(employee(tenant, "m-1"), employee(tenant, "e-1", manager_id="m-1"))
        dispatcher = svc.runtime.resources.dispatcher
        dispatcher.due.clear()  # whatever the people events did: only the miss counts here
        await svc.publish([missed(tenant, "e-1")])
        await svc.wait_deliveries(2)
        assert dispatcher.due.is_set()

        assert await asyncio.wait_for(dispatcher.run_when_due(), 30) == 2
        assert smtp_sink.handler.count() == 2
        assert not dispatcher.due.is_set()


async def test_deliveries_committed_during_a_send_start_the_next_round_at_once(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    holder: list[Service] = []

    class DecidingMeanwhile:
        """The real mailer; while it sends the first email, a delivery is committed."""

        def __init__(self) -> None:
            self.smtp = mailer_for(smtp_sink)
            self.sends = 0

        async def send(
            self, message: bytes, to_address: str, before_data: Callable[[], Awaitable[None]]
        ) -> Outcome:
            self.sends += 1
            if self.sends == 1:
                svc = holder[0]
                async with svc.runtime.uow() as uow:
                    await add_delivery(
                        uow,
                        tenant=tenant,
                        key="test:late:e-2:email",
                        recipient="e-2",
                        category=Category.CHECKIN_MISSED,
                        channel="email",
                        source_event_id="late",
                        source_type="test",
                        status=Status.PENDING,
                        payload=payload(svc),
                        next_attempt_at=svc.clock.now(),
                    )
            return await self.smtp.send(message, to_address, before_data)

        async def close(self) -> None:
            await self.smtp.close()

    async with start_service(
        consumers=False, settings={"dispatch_interval_s": POLL_S}, mailer=DecidingMeanwhile()
    ) as svc:
        holder.append(svc)
        async with svc.runtime.uow() as uow:
            await uow.people.apply_employee(employee(tenant, "e-1"), "p-1")
            await uow.people.apply_employee(employee(tenant, "e-2"), "p-2")
        dispatcher = svc.runtime.resources.dispatcher
        async with svc.runtime.uow() as uow:
            await add_delivery(
                uow,
                tenant=tenant,
                key="test:first:e-1:email",
                recipient="e-1",
                category=Category.CHECKIN_MISSED,
                channel="email",
                source_event_id="first",
                source_type="test",
                status=Status.PENDING,
                payload=payload(svc),
                next_attempt_at=svc.clock.now(),
            )
        assert dispatcher.due.is_set()

        assert await asyncio.wait_for(dispatcher.run_when_due(), 30) == 1
        assert dispatcher.due.is_set(), "the commit during the send was forgotten"
        assert await asyncio.wait_for(dispatcher.run_when_due(), 30) == 1
        assert sorted(r for m in smtp_sink.handler.messages for r in m.rcpt_tos) == [
            "e-1@acme.example.com",
            "e-2@acme.example.com",
        ]
