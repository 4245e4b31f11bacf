"""Sending: the dispatcher (sends due deliveries), the webhook sender, the digest composer.

Each round claims due rows (``FOR UPDATE SKIP LOCKED`` through the repository), so its cost
follows what is due and replicas share the work. Every step is a short transaction of
command handlers; what is sent in between goes through the channels (adapters). The
dispatcher's 'sending' marks and outcomes go in group commits: whatever the sends are waiting
for when one commit starts is committed together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import Counter

from rhythm_notifications.adapters.calendar import Party, build_ics, invitation_from
from rhythm_notifications.adapters.chat import CHAT_CHANNELS, ChatMessage, ChatSender
from rhythm_notifications.adapters.email import build_message, check_address, check_display_name
from rhythm_notifications.adapters.push import Gone, PushTarget, WebPushSender, push_topic
from rhythm_notifications.adapters.templates import Rendered, Templates, language_of
from rhythm_notifications.adapters.tokens import UnsubscribeGrant, sign_unsubscribe
from rhythm_notifications.adapters.webhooks import WebhookResult, WebhookSender
from rhythm_notifications.commands import (
    ClaimDueDeliveries,
    ClaimWebhooks,
    ComposeDigests,
    MarkSending,
    RecordOutcomes,
    RecordWebhookResult,
    RecoverExpiredDeliveries,
    RemovePushSubscription,
    SuppressClaimed,
)
from rhythm_notifications.domain.delivery import (
    Claimed,
    Failed,
    LostClaim,
    Outcome,
    RetryPolicy,
    Sent,
    Status,
    combine_push,
    undeliverable,
)
from rhythm_notifications.domain.links import link
from rhythm_notifications.domain.ports import NotificationsReader, NotificationsUnitOfWork
from rhythm_notifications.domain.routing import Category
from rhythm_notifications.domain.webhooks import ClaimedWebhook
from rhythm_notifications.settings import Settings
from rhythm_notifications.use_cases.digests import compose_digests
from rhythm_notifications.use_cases.dispatching import (
    claim_due_deliveries,
    mark_sending,
    record_outcomes,
    recover_expired_deliveries,
    suppress_claimed,
)
from rhythm_notifications.use_cases.preferences import remove_push_subscription
from rhythm_notifications.use_cases.webhooks import (
    claim_webhooks,
    record_webhook_result,
    webhooks_due,
)
from rhythm_shared.contracts.v1 import Channel, DeliveryFailure, SuppressionReason
from rhythm_shared.kit import crypto
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.writers import urgent_writes

if TYPE_CHECKING:
    from rhythm_shared.kit.ports import Person

#: Opens one unit of work (``async with uows() as uow``): the runtime's, or a fake's.
UnitsOfWork = Callable[[], AbstractAsyncContextManager[NotificationsUnitOfWork]]
#: Opens the repositories on a read-only session (``async with readers() as reader``).
Readers = Callable[[], AbstractAsyncContextManager[NotificationsReader]]

log = logging.getLogger("rhythm.notifications.dispatch")

DELIVERED = Counter(
    "rhythm_notifications_deliveries_total", "Delivery outcomes", ["channel", "status"]
)


class Mailer(Protocol):
    async def send(
        self,
        message: bytes,
        to_address: str,
        before_data: Callable[[], Awaitable[None]],
    ) -> Outcome: ...

    async def close(self) -> None: ...


@dataclass
class Channels:
    """The outside world, wired by main.build (tests pass their own)."""

    mailer: Mailer
    pusher: WebPushSender
    webhooks: WebhookSender
    templates: Templates
    chat: ChatSender


def unsubscribe_url(
    settings: Settings, tenant: str, employee: str, category: str, now: datetime
) -> str:
    token = sign_unsubscribe(
        settings.unsubscribe_secret.get_secret_value(),
        UnsubscribeGrant(tenant, employee, category),
        expires_at=now + timedelta(days=settings.unsubscribe_token_ttl_days),
    )
    return f"{settings.public_base_url.rstrip('/')}/v1/unsubscribe?token={token}"


@dataclass
class _Entry:
    """What one send waits for in the dispatcher's next group commit: its 'sending' mark
    (``result`` None) or its outcome."""

    delivery: Claimed
    token: str
    result: Outcome | SuppressionReason | None
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Dispatcher:
    """Sends due deliveries, a round at a time (``run_once``); ``run_when_due`` is the job's
    round, which starts as soon as ``due`` is set (a unit of work committed new pending
    deliveries) instead of waiting for the next poll."""

    def __init__(
        self,
        uows: UnitsOfWork,
        clock: Clock,
        settings: Settings,
        channels: Channels,
        due: asyncio.Event | None = None,
    ) -> None:
        self.uows = uows
        self.clock = clock
        self.settings = settings
        self.channels = channels
        self.policy = RetryPolicy(
            settings.delivery_max_attempts,
            settings.delivery_retry_base_s,
            settings.delivery_retry_max_s,
        )
        self.max_age = timedelta(hours=settings.notification_max_age_hours)
        # Opens the sealed addresses (EmployeeUpserted v2) with each person's data key.
        self.kek = crypto.load_kek(settings.data_key_encryption_key.get_secret_value())
        # One email per SMTP session: it is prepared, waits for its mark or is being sent, so
        # at most SMTP_CONNECTIONS emails are ever between a committed mark and DATA's reply.
        self._in_flight = asyncio.Semaphore(max(settings.smtp_connections, 1))
        self._ledger: list[_Entry] = []
        self._writer: asyncio.Task[None] | None = None
        self.due = due or asyncio.Event()
        self._more_due = False

    async def run_when_due(self) -> int:
        """Wait until deliveries were committed (or ``dispatch_interval_s``: retries and
        deferred deliveries fall due without anyone committing), then run one round.

        The signal is cleared before the round claims, so deliveries committed while it sends
        set it again and the next round starts at once: no wake-up is lost."""
        if not self._more_due:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.due.wait(), self.settings.dispatch_interval_s)
        self.due.clear()
        handled = await self.run_once()
        self._more_due = handled >= self.settings.dispatch_batch_size
        return handled

    async def run_once(self) -> int:
        """One round: take back expired leases, claim what is due, send it, record it."""
        token = str(uuid.uuid4())
        # Taking back and claiming share a transaction: on SQLite every transaction waits for
        # the one writer slot, which the consumers hold for a chunk of events at a time.
        async with self.uows() as uow:
            await recover_expired_deliveries(
                uow,
                RecoverExpiredDeliveries(
                    limit=self.settings.dispatch_batch_size,
                    max_recoveries=self.settings.delivery_max_recoveries,
                ),
            )
            claimed = await claim_due_deliveries(
                uow,
                ClaimDueDeliveries(
                    limit=self.settings.dispatch_batch_size,
                    lease_s=self.settings.delivery_lease_s,
                    token=token,
                    max_age=self.max_age,
                    kek=self.kek,
                ),
            )
        if not claimed:
            return 0

        async def deliver(d: Claimed) -> None:
            result: Outcome | SuppressionReason | None
            if d.expired:
                result = SuppressionReason.EXPIRED
            else:
                try:
                    result = await self._deliver(d, token)
                except Exception as exc:
                    # Whatever one message does while it is built or sent, it fails alone: the
                    # round and every other delivery in it go on (and it is not retried: the
                    # same content would fail the same way).
                    log.exception("delivery_crashed", extra={"delivery_id": d.id})
                    result = Failed(
                        DeliveryFailure.PROVIDER_ERROR,
                        f"could not be built or sent ({type(exc).__name__})",
                    )
            if result is not None:
                await self._record(d, token, result)

        # Each outcome is recorded as its send completes, in a group commit with whatever else
        # completed meanwhile (_write_ledger). Each email was marked 'sending' (committed)
        # before its DATA, so a crash before its outcome is recorded never causes a resend
        # (see recover_expired_deliveries).
        errors = [
            e
            for e in await asyncio.gather(*(deliver(d) for d in claimed), return_exceptions=True)
            if e is not None
        ]
        if errors:
            raise errors[0]  # recording failed (the database): the leases bring them back
        return len(claimed)

    async def _record(
        self, delivery: Claimed, token: str, result: Outcome | SuppressionReason
    ) -> None:
        status = await self._commit(_Entry(delivery, token, result))
        DELIVERED.labels(delivery.channel, status).inc()
        if not isinstance(result, Sent):
            log.info(
                "delivery_not_sent",
                extra={
                    "delivery_id": delivery.id,
                    "channel": delivery.channel,
                    "status": status,
                    "detail": getattr(result, "detail", str(result)),
                },
            )

    async def _mark_sending(self, delivery: Claimed, token: str) -> None:
        """Wait until this delivery's 'sending' mark is committed."""
        if not await self._commit(_Entry(delivery, token, None)):
            raise LostClaim(delivery.id)

    async def _commit(self, entry: _Entry) -> Any:
        """Queue ``entry`` for the next group commit and wait for its result."""
        self._ledger.append(entry)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_ledger())
        return await entry.done

    async def _write_ledger(self) -> None:
        """Commit what the sends wait for, together: 'sending' marks (each send waits for its
        own before DATA) and outcomes. Whatever arrives while one commit runs goes in the next,
        so a busy database makes bigger groups rather than more transactions.

        On SQLite these commits go before a consumer's chunk waiting for the writer (every other
        turn at most): an email's session waits on its mark, the chunk only on itself."""
        while self._ledger:
            # Marks first, alone: a sending mark is a single UPDATE that a session is waiting
            # on; outcomes (and the events they publish) follow in the next transaction.
            marks = [e for e in self._ledger if e.result is None]
            batch = marks or self._ledger
            self._ledger = [e for e in self._ledger if e.result is not None] if marks else []
            try:
                with urgent_writes():
                    async with self.uows() as uow:
                        results = await self._write(uow, batch)
            except Exception as exc:
                for entry in batch:
                    if not entry.done.done():
                        entry.done.set_exception(exc)
                continue
            for entry, result in zip(batch, results, strict=True):
                if not entry.done.done():
                    entry.done.set_result(result)

    async def _write(self, uow: NotificationsUnitOfWork, batch: list[_Entry]) -> list[Any]:
        """One result per entry: for a mark, whether the claim still owns the delivery; for an
        outcome, the status recorded."""
        marks: dict[str, list[str]] = {}
        outcomes: dict[str, list[_Entry]] = {}
        for entry in batch:
            if entry.result is None:
                marks.setdefault(entry.token, []).append(entry.delivery.id)
            elif not isinstance(entry.result, SuppressionReason):
                outcomes.setdefault(entry.token, []).append(entry)
        owned: set[str] = set()
        for token, ids in marks.items():
            owned |= await mark_sending(uow, MarkSending(delivery_ids=ids, token=token))
        statuses: dict[int, str] = {}
        for token, entries in outcomes.items():
            recorded = await record_outcomes(
                uow,
                RecordOutcomes(
                    outcomes=[(e.delivery, e.result) for e in entries],
                    token=token,
                    policy=self.policy,
                ),
            )
            statuses.update((id(e), s.value) for e, s in zip(entries, recorded, strict=True))
        results: list[Any] = []
        for entry in batch:
            if entry.result is None:
                results.append(entry.delivery.id in owned)
            elif isinstance(entry.result, SuppressionReason):
                await suppress_claimed(
                    uow,
                    SuppressClaimed(
                        delivery=entry.delivery, token=entry.token, reason=entry.result
                    ),
                )
                results.append(Status.SUPPRESSED.value)
            else:
                results.append(statuses[id(entry)])
        return results

    async def _deliver(self, delivery: Claimed, token: str) -> Outcome | SuppressionReason | None:
        """Hand one delivery to its channel; None if another dispatcher took it over."""
        person = delivery.person
        why_not = undeliverable(person, self.clock.now())
        if why_not is not None or person is None:
            return why_not
        try:
            if delivery.channel == Channel.EMAIL.value:
                async with self._in_flight:  # SMTP sessions; pushes wait on their endpoint only
                    return await self._email(
                        delivery, person, lambda: self._mark_sending(delivery, token)
                    )
            if delivery.channel in CHAT_CHANNELS:
                return await self._chat(delivery, token, person)
            return await self._push(delivery, token, person)
        except LostClaim:
            log.warning("delivery_claim_lost", extra={"delivery_id": delivery.id})
            return None

    def _link(self, delivery: Claimed) -> str | None:
        """The message's link into the tenant's app (domain/links.py), or None."""
        base = delivery.app_base_url or self.settings.app_base_url
        facts = delivery.payload.get("facts")
        return link(base, delivery.category, facts if isinstance(facts, dict) else None)

    def _render(
        self, delivery: Claimed, person: Person, unsubscribe: str | None = None
    ) -> Rendered:
        base = delivery.app_base_url or self.settings.app_base_url
        items = [
            {**item, "link": link(base, str(item.get("category")), item.get("facts"))}
            for item in delivery.payload.get("items") or []
            if isinstance(item, dict)
        ]
        context: dict[str, Any] = {
            "facts": {},
            "names": {},
            "role": "",
            "summary": None,
            **delivery.payload,
            "items": items,
            "link": self._link(delivery),
            "name": person.display_name,
            "unsubscribe_url": unsubscribe or self._unsubscribe_url(delivery),
        }
        return self.channels.templates.render(
            delivery.category, person.locale, person.time_zone, context
        )

    def _unsubscribe_url(self, delivery: Claimed) -> str:
        return unsubscribe_url(
            self.settings,
            delivery.tenant_id,
            delivery.recipient_id,
            delivery.category,
            self.clock.now(),
        )

    async def _email(
        self, delivery: Claimed, person: Person, mark: Callable[[], Awaitable[None]]
    ) -> Outcome:
        if person.email is None or crypto.is_sealed(person.email):
            # A sealed address whose key is not here (or destroyed: an erasure) is never sent to.
            return Failed(
                DeliveryFailure.INVALID_ADDRESS,
                "no readable address: the person's data key is unknown or destroyed",
            )
        # A person an upsert described has a name; a sealed one that does not open is left out.
        address = person.email
        name = "" if crypto.is_sealed(person.display_name) else person.display_name or ""
        problem = check_address(address) or check_display_name(name)
        if problem:
            return Failed(DeliveryFailure.INVALID_ADDRESS, problem[:500])
        unsubscribe = self._unsubscribe_url(delivery)
        try:
            rendered = self._render(delivery, person, unsubscribe)
        except Exception as exc:  # a template bug must not stop the other deliveries
            log.exception("render_failed", extra={"delivery_id": delivery.id})
            return Failed(DeliveryFailure.PROVIDER_ERROR, f"render failed: {exc!r}"[:500])
        calendar = await self._invitation(delivery, person)
        try:  # before any SMTP command: a message that cannot be written fails only itself
            message = build_message(
                rendered,
                sender=self.settings.email_from,
                to_name=name,
                to_address=address,
                unsubscribe_url=unsubscribe,
                idempotency_key=delivery.idempotency_key,
                category=delivery.category,
                now=self.clock.now(),
                calendar=calendar,
            )
        except (ValueError, TypeError, LookupError) as exc:
            return Failed(
                DeliveryFailure.PROVIDER_ERROR, f"the message cannot be written ({exc!r})"[:500]
            )
        return await self.channels.mailer.send(message, address, mark)

    async def _invitation(self, delivery: Claimed, person: Person) -> tuple[str, bytes] | None:
        """The iCalendar part of a check-in invitation (adapters/calendar.py), in the
        recipient's zone, with both people's addresses read from the directory now."""
        facts = delivery.payload.get("facts")
        if delivery.category != Category.CHECKIN_INVITATION.value or not isinstance(facts, dict):
            return None
        ids = [i for i in (facts.get("employee_id"), facts.get("manager_id")) if isinstance(i, str)]
        async with self.uows() as uow:
            found = await uow.people_opened_with(self.kek).directory(delivery.tenant_id).people(ids)
        parties = {
            pid: Party(p.email, "" if crypto.is_sealed(p.display_name) else p.display_name or "")
            for pid, p in found.items()
            if p.email and not crypto.is_sealed(p.email) and check_address(p.email) is None
        }
        invitation = invitation_from(
            delivery.tenant_id,
            facts,
            parties,
            time_zone=person.time_zone,
            language=language_of(person.locale),
            stamp=datetime.fromisoformat(delivery.payload["caused_at"]),
        )
        return (invitation.method, build_ics(invitation)) if invitation else None

    async def _push(self, delivery: Claimed, token: str, person: Person) -> Outcome:
        async with self.uows() as uow:
            targets = await uow.preferences.push_subscriptions(
                delivery.tenant_id, delivery.recipient_id
            )
        if not targets:
            return Failed(DeliveryFailure.UNREACHABLE, "no push subscription left")
        try:
            rendered = self._render(delivery, person)
        except Exception as exc:
            log.exception("render_failed", extra={"delivery_id": delivery.id})
            return Failed(DeliveryFailure.PROVIDER_ERROR, f"render failed: {exc!r}"[:500])
        lines = [line.strip() for line in rendered.text.splitlines() if line.strip()]
        message = {
            "title": rendered.subject,
            "body": lines[1] if len(lines) > 1 else "",
            "category": delivery.category,
            "notification_id": delivery.id,
        }
        url = self._link(delivery)
        if url is not None:
            message["url"] = url  # what the service worker opens on a click
        await self._mark_sending(delivery, token)
        outcomes: list[Outcome] = []
        gone = 0
        results = await asyncio.gather(  # each endpoint at once, each within its own deadline
            *(
                self.channels.pusher.send(
                    PushTarget(target.endpoint, target.p256dh, target.auth),
                    message,
                    push_topic(delivery.idempotency_key),
                )
                for target in targets
            )
        )
        for target, result in zip(targets, results, strict=True):
            if isinstance(result, Gone):
                gone += 1
                async with self.uows() as uow:
                    await remove_push_subscription(
                        uow, RemovePushSubscription(subscription_id=target.id)
                    )
                continue
            outcomes.append(result)
        return combine_push(outcomes, gone)

    async def _chat(self, delivery: Claimed, token: str, person: Person) -> Outcome:
        """One post into the tenant's Slack or Teams channel, addressed to the person."""
        async with self.uows() as uow:
            url = await uow.tenants.chat_channel_url(delivery.tenant_id, delivery.channel)
        if url is None:
            return Failed(
                DeliveryFailure.UNREACHABLE, f"the {delivery.channel} channel was disconnected"
            )
        try:
            rendered = self._render(delivery, person)
        except Exception as exc:
            log.exception("render_failed", extra={"delivery_id": delivery.id})
            return Failed(DeliveryFailure.PROVIDER_ERROR, f"render failed: {exc!r}"[:500])
        lines = [line.strip() for line in rendered.text.splitlines() if line.strip()]
        name = "" if crypto.is_sealed(person.display_name) else person.display_name or ""
        dutch = language_of(person.locale) == "nl"
        message = ChatMessage(
            title=rendered.subject,
            body=lines[1] if len(lines) > 1 else "",
            recipient=(f"Voor {name}" if dutch else f"For {name}") if name else "",
            link=self._link(delivery),
            button="Openen in Rhythm" if dutch else "Open in Rhythm",
        )
        await self._mark_sending(delivery, token)
        return await self.channels.chat.send(Channel(delivery.channel), url, message)


class WebhookDispatcher:
    def __init__(
        self,
        uows: UnitsOfWork,
        readers: Readers,
        clock: Clock,
        settings: Settings,
        sender: WebhookSender,
    ) -> None:
        self.uows = uows
        self.readers = readers
        self.clock = clock
        self.settings = settings
        self.sender = sender
        self.policy = RetryPolicy(
            settings.webhook_max_attempts, settings.webhook_retry_base_s, 10 * 3600.0
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: Tally[str] = Tally()  # per endpoint id

    async def run_once(self) -> int:
        """Claim what is due and start sending it; return without waiting for the answers.

        A round does not wait for its slowest endpoint: each request runs as its own task
        (at most OUTBOUND_CONCURRENCY, and OUTBOUND_PER_ENDPOINT per endpoint), so the next
        round claims other tenants' deliveries while a slow endpoint is still thinking.
        A round with nothing due only reads (:func:`webhooks_due`): no write transaction.
        """
        free = self.settings.outbound_concurrency - len(self._tasks)
        if free <= 0:
            return 0
        token = str(uuid.uuid4())
        cmd = ClaimWebhooks(
            limit=min(self.settings.dispatch_batch_size, free),
            lease_s=max(self.settings.webhook_timeout_s * 3, 60.0),
            token=token,
            in_flight=dict(self._in_flight),
            per_endpoint=self.settings.outbound_per_endpoint,
        )
        async with self.readers() as reader:
            if not await webhooks_due(reader, self.clock.now(), cmd):
                return 0
        async with self.uows() as uow:
            claimed = await claim_webhooks(uow, cmd)
        for delivery in claimed:
            self._in_flight[delivery.endpoint_id] += 1
            task = asyncio.create_task(self._post(delivery, token))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def drain(self) -> None:
        """Wait until every request started so far has its result recorded."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _post(self, delivery: ClaimedWebhook, token: str) -> None:
        try:
            try:
                result = await self.sender.post(
                    delivery.url,
                    msg_id=delivery.id,
                    timestamp=int(self.clock.now().timestamp()),
                    body=delivery.body,
                    signing_secrets=delivery.signing_secrets,
                )
            except Exception as exc:
                # One delivery's fault stays its own: recorded as a failed attempt (so the
                # retry policy bounds it), never raised into the other deliveries.
                log.exception("webhook_delivery_crashed", extra={"delivery_id": delivery.id})
                result = WebhookResult(None, f"could not be sent ({type(exc).__name__})")
            await self._record(delivery, token, result)
        except Exception:
            # Recording failed (the database): the lease brings the delivery back later.
            log.exception("webhook_record_failed", extra={"delivery_id": delivery.id})
        finally:
            self._in_flight[delivery.endpoint_id] -= 1
            if self._in_flight[delivery.endpoint_id] <= 0:
                del self._in_flight[delivery.endpoint_id]

    async def _record(self, delivery: ClaimedWebhook, token: str, result: WebhookResult) -> None:
        async with self.uows() as uow:
            status = await record_webhook_result(
                uow,
                RecordWebhookResult(
                    delivery=delivery,
                    token=token,
                    status_code=result.status_code,
                    detail=result.detail,
                    policy=self.policy,
                ),
            )
        DELIVERED.labels("webhook", status.value).inc()


class DigestComposer:
    def __init__(self, uows: UnitsOfWork, batch: int = 500) -> None:
        self.uows = uows
        self.batch = batch

    async def run_once(self) -> int:
        async with self.uows() as uow:
            return await compose_digests(uow, ComposeDigests(limit=self.batch))
