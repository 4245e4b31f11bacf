"""Crashes and transient failures never produce a second email for the same notification."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from notifications_harness import SmtpSink, StartService, employee
from test_email_delivery import missed

from rhythm_notifications.adapters.email import SmtpConfig, SmtpMailer
from rhythm_notifications.domain.delivery import Outcome
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.v1 import NotificationFailed
from rhythm_shared.testing import read_records, wait_for

pytestmark = pytest.mark.kafka


class ProcessDied(BaseException):
    """Stands in for a kill -9: nothing after it runs, nothing catches it."""


class CrashingMailer:
    """A real SMTP mailer that dies once, for one address, before or after the hand-over."""

    def __init__(self, port: int, victim: str, *, after_send: bool) -> None:
        self.real = SmtpMailer(
            SmtpConfig("127.0.0.1", port, "none", None, None, 10, "rhythm@acme.example.com")
        )
        self.victim = victim
        self.after_send = after_send
        self.crashed = False

    async def send(
        self, message: bytes, to_address: str, before_data: Callable[[], Awaitable[None]]
    ) -> Outcome:
        if to_address == self.victim and not self.crashed:
            self.crashed = True
            if not self.after_send:
                raise ProcessDied()
            await self.real.send(message, to_address, before_data)
            raise ProcessDied()  # the email left; the mark never happens
        return await self.real.send(message, to_address, before_data)

    async def close(self) -> None:
        await self.real.close()


async def _crash_once(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str, *, after_send: bool
) -> None:
    mailer = CrashingMailer(smtp_sink.port, "e-1@acme.example.com", after_send=after_send)
    async with start_service(mailer=mailer) as svc:
        await svc.add_people(employee(tenant, "m-1"), employee(tenant, "e-1", manager_id="m-1"))
        await svc.publish([missed(tenant)])
        await svc.wait_deliveries(2)
        with pytest.raises(ProcessDied):
            await svc.runtime.resources.dispatcher.run_once()

        # The other recipient's send was not affected by the crash.
        async def manager_done() -> bool:
            return bool(smtp_sink.handler.to("m-1@acme.example.com"))

        await wait_for(manager_done)


async def test_a_crash_between_send_and_mark_gives_one_email_per_recipient(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    await _crash_once(start_service, smtp_sink, tenant, after_send=True)
    assert len(smtp_sink.handler.to("e-1@acme.example.com")) == 1

    # Restart on the same database; once the lease runs out the dispatcher recovers the row.
    async with start_service() as svc:
        await svc.dispatch()
        [row] = await svc.deliveries(svc_recipient("e-1"))
        assert row.status == "sending"  # the lease has not run out yet: nobody touches it
        svc.later(seconds=121)
        await svc.dispatch()
        [row] = await svc.deliveries(svc_recipient("e-1"))
        assert row.status == "failed"
        assert row.reason == "timeout"
        assert row.detail.startswith("ambiguous")
        svc.later(hours=2)
        await svc.dispatch()

        assert len(smtp_sink.handler.to("e-1@acme.example.com")) == 1
        assert len(smtp_sink.handler.to("m-1@acme.example.com")) == 1
        records = await read_records(
            svc.bootstrap,
            f"{svc.prefix}rhythm.notifications.v1",
            min_count=2,
            settle_s=0.3,
        )
        failed = [
            e
            for e in (from_record(r.headers, r.value).event for r in records)
            if isinstance(e, NotificationFailed)
        ]
        # e-1 for sure; m-1 too if the crash came before its outcome was recorded (its email
        # left; the record says "ambiguous"): never a second email, at worst a cautious record.
        assert ("e-1", "timeout") in [(e.recipient_id, e.reason.value) for e in failed]
        rows = await svc.deliveries()
        assert {r.status for r in rows} <= {"sent", "failed"}


async def test_a_crash_before_the_hand_over_is_retried_and_sends_exactly_once(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    await _crash_once(start_service, smtp_sink, tenant, after_send=False)
    assert smtp_sink.handler.to("e-1@acme.example.com") == []

    async with start_service() as svc:
        svc.later(seconds=121)
        await svc.dispatch()
        [row] = await svc.deliveries(svc_recipient("e-1"))
        assert (row.status, row.attempts) == ("sent", 2)
        svc.later(hours=1)
        await svc.dispatch()
    assert len(smtp_sink.handler.to("e-1@acme.example.com")) == 1
    assert len(smtp_sink.handler.to("m-1@acme.example.com")) == 1


async def test_a_temporary_smtp_failure_is_retried_with_backoff(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    smtp_sink.handler.data_replies = ["451 4.3.0 try again later"]
    async with start_service() as svc:
        await svc.add_people(employee(tenant, "e-1", manager_id="m-9"))
        await svc.publish([missed(tenant, manager_id="m-9")])
        await svc.wait_deliveries(2)  # m-9 is unknown: suppressed
        await svc.dispatch()
        [row] = await svc.deliveries(svc_recipient("e-1"))
        assert (row.status, row.attempts, row.reason) == ("pending", 1, "provider_error")
        wait = (row.next_attempt_at - svc.clock.now()).total_seconds()
        assert 30 <= wait <= 60  # base 60 s with equal jitter
        await svc.dispatch()
        assert smtp_sink.handler.count() == 0  # not due yet
        svc.later(seconds=61)
        await svc.dispatch()
        [row] = await svc.deliveries(svc_recipient("e-1"))
        assert (row.status, row.attempts) == ("sent", 2)
    assert smtp_sink.handler.count() == 1


def svc_recipient(recipient: str) -> object:
    from rhythm_notifications.adapters import db

    return db.deliveries.c.recipient_id == recipient


class DiesAfterTheMark:
    """A real SMTP mailer; for one address the process dies once its 'sending' mark is
    committed and before DATA (the window at-most-once accepts)."""

    def __init__(self, port: int, victim: str) -> None:
        self.real = SmtpMailer(
            SmtpConfig("127.0.0.1", port, "none", None, None, 10, "rhythm@acme.example.com")
        )
        self.victim = victim

    async def send(
        self, message: bytes, to_address: str, before_data: Callable[[], Awaitable[None]]
    ) -> Outcome:
        async def die_after_mark() -> None:
            await before_data()
            raise ProcessDied()

        hook = die_after_mark if to_address == self.victim else before_data
        return await self.real.send(message, to_address, hook)

    async def close(self) -> None:
        await self.real.close()


async def test_a_crash_between_the_mark_and_data_is_recorded_ambiguous_and_never_sent(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    mailer = DiesAfterTheMark(smtp_sink.port, "e-1@acme.example.com")
    async with start_service(mailer=mailer) as svc:
        await svc.add_people(employee(tenant, "m-1"), employee(tenant, "e-1", manager_id="m-1"))
        await svc.publish([missed(tenant)])
        await svc.wait_deliveries(2)
        with pytest.raises(ProcessDied):
            await svc.dispatch()
    assert smtp_sink.handler.to("e-1@acme.example.com") == []

    async with start_service() as svc:
        svc.later(seconds=121)  # the lease runs out
        await svc.dispatch()
        svc.later(hours=2)
        await svc.dispatch()
        [row] = await svc.deliveries(svc_recipient("e-1"))
        assert (row.status, row.reason) == ("failed", "timeout")
        assert row.detail.startswith("ambiguous")
    assert smtp_sink.handler.to("e-1@acme.example.com") == []  # at most once: not resent


class CountsTheWindow:
    """A real SMTP mailer that tracks how many emails are marked 'sending' (committed) and
    not yet answered by DATA: the most that a crash at the worst moment can leave unsent."""

    def __init__(self, port: int) -> None:
        self.real = SmtpMailer(
            SmtpConfig("127.0.0.1", port, "none", None, None, 10, "rhythm@acme.example.com", 2)
        )
        self.window = 0
        self.widest = 0

    async def send(
        self, message: bytes, to_address: str, before_data: Callable[[], Awaitable[None]]
    ) -> Outcome:
        marked = False

        async def counted() -> None:
            nonlocal marked
            await before_data()
            marked = True
            self.window += 1
            self.widest = max(self.widest, self.window)

        try:
            return await self.real.send(message, to_address, counted)
        finally:
            if marked:
                self.window -= 1

    async def close(self) -> None:
        await self.real.close()


async def test_no_more_emails_than_smtp_sessions_are_ever_marked_and_unsent(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    mailer = CountsTheWindow(smtp_sink.port)
    async with start_service(mailer=mailer, settings={"smtp_connections": 2}) as svc:
        reports = [employee(tenant, f"e-{i}", manager_id="m-1") for i in range(10)]
        await svc.add_people(employee(tenant, "m-1"), *reports)
        await svc.publish([missed(tenant, f"e-{i}") for i in range(10)])
        await svc.wait_deliveries(20)  # ten emails, the manager's first and nine digested
        await svc.dispatch()
    assert smtp_sink.handler.count() == 11
    assert 1 <= mailer.widest <= 2
