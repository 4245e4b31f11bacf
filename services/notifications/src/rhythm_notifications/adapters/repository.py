"""Every SQL statement of the write side, as methods of the repository classes.

Each repository works on the unit of work's session (adapters/unit_of_work.py creates them when
it opens); use cases see them through the Protocols of domain/ports.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Text, bindparam, cast, delete, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_notifications.adapters import db
from rhythm_notifications.domain.delivery import (
    DigestItem,
    NewDelivery,
    Status,
    StoredDelivery,
)
from rhythm_notifications.domain.preferences import (
    CategoryPreference,
    RecipientChoices,
    RecipientSettings,
)
from rhythm_notifications.domain.push import PushSubscription
from rhythm_notifications.domain.routing import Category, ChannelChoice
from rhythm_notifications.domain.schedule import DeliveryMode
from rhythm_notifications.domain.tenants import ChatChannel
from rhythm_notifications.domain.webhooks import DueWebhook, WebhookDelivery, WebhookEndpoint
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import Channel, CheckinMissed
from rhythm_shared.kit.db import chunks, escape_like

#: A dialect-aware INSERT supporting ``on_conflict_do_*`` (the unit of work's ``insert``).
Insert = Callable[[Any], Any]
#: The unit of work's ``publish``: an event into its outbox.
Publish = Callable[[Event], Awaitable[str]]


def read_only(table: Any) -> Any:
    """The ``insert`` of repositories on a read-only session (queries.py): there is none."""
    raise RuntimeError("a read-only session writes nothing")


def _delivery_row(delivery: NewDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "tenant_id": delivery.tenant_id,
        "idempotency_key": delivery.idempotency_key,
        "recipient_id": delivery.recipient_id,
        "category": delivery.category,
        "channel": delivery.channel,
        "source_event_id": delivery.source_event_id,
        "source_type": delivery.source_type,
        "status": delivery.status.value,
        "reason": delivery.reason,
        "attempts": 0,
        "next_attempt_at": delivery.next_attempt_at,
        "payload": delivery.payload,
        "created_at": delivery.created_at,
        "updated_at": delivery.created_at,
    }


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


class _Repository:
    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        self.session = session
        self.insert = insert


_d = db.deliveries
#: The dispatcher's two statements per group commit, built once: constructing an UPDATE and
#: its cache key was ~110 us a statement, paid on every group. (Bound names are none of the
#: table's columns, which an UPDATE's parameters would otherwise set.)
_MARK_SENDING = (
    update(_d)
    .where(
        _d.c.id.in_(bindparam("ids", expanding=True)),
        _d.c.claim_token == bindparam("claim"),
        _d.c.status == Status.CLAIMED.value,
    )
    .values(status=Status.SENDING.value, updated_at=bindparam("stamp", type_=_d.c.updated_at.type))
)
_FINISH_CLAIMED = (
    update(_d)
    .where(_d.c.id.in_(bindparam("ids", expanding=True)), _d.c.claim_token == bindparam("claim"))
    .values(
        status=bindparam("final", type_=_d.c.status.type),
        reason=None,
        detail=bindparam("why", type_=_d.c.detail.type),
        claim_token=None,
        next_attempt_at=None,
        updated_at=bindparam("stamp", type_=_d.c.updated_at.type),
        sent_at=bindparam("sent", type_=_d.c.sent_at.type),
    )
    .returning(_d.c.id)
)


class SqlDeliveryRepository(_Repository):
    """Deliveries, digest items, daily permits, overdue and closed obligations.

    Deciding a chunk of events works in memory: what it asks (used idempotency keys, closed
    obligations, daily permits) is answered from what :meth:`read_ahead_closed`,
    :meth:`read_ahead_permits` and earlier answers read, a statement only for what was not
    read; what it writes (deliveries, digest items, overdue and closed obligations) is held and
    :meth:`flush` writes it in one statement per table (the unit of work calls it before
    commit). A key added earlier in the chunk counts as used. Every other method flushes
    first, so whatever it reads or writes sees the chunk's decisions.

    Daily permits read ahead (:meth:`read_ahead_permits`) answer "taken" without a statement.
    Where the read-ahead is the truth until commit (``permits_in_memory``: SQLite, whose one
    writer holds its lock from the transaction's first statement), a free one is taken in
    memory too and written at flush. On PostgreSQL two replicas can decide for the same manager
    at the same time (their reports' events are on different partitions) and both read the
    permit as free; the row is the permit, so there a free one is taken at once with its own
    statement, which waits for the other replica's row and then finds it taken. (Held in
    memory, a lost race could only be found at flush, after its delivery was decided.)"""

    def __init__(
        self, session: AsyncSession, insert: Insert, publish: Publish, *, permits_in_memory: bool
    ) -> None:
        super().__init__(session, insert)
        self._publish = publish
        self._permits_in_memory = permits_in_memory
        self._permits_taken: set[tuple[str, str, str, str]] = set()
        #: Permits read ahead, by (tenant, recipient): from which day on all of theirs are
        #: known; and those taken in memory, written at flush.
        self._permits_read: dict[tuple[str, str], str] = {}
        self._permits_held: dict[tuple[str, str, str, str], datetime] = {}
        #: Idempotency keys as this transaction has them: taken (stored or held), or free.
        self._used: set[str] = set()
        self._free: set[str] = set()
        #: Obligations known closed (stored or held), and known open, by (tenant, obligation).
        self._closed: set[tuple[str, str]] = set()
        self._open: set[tuple[str, str]] = set()
        #: Writes held until :meth:`flush`, in the order they were decided.
        self._deliveries: list[tuple[NewDelivery, Event | None]] = []
        self._items: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._closings: dict[tuple[str, str], datetime] = {}
        #: Overdue rows to write (the first recorded since the last closing, as the INSERT ...
        #: ON CONFLICT DO NOTHING one at a time would leave), and those to delete first.
        self._overdue: dict[tuple[str, str], dict[str, Any]] = {}
        self._overdue_gone: set[tuple[str, str]] = set()
        #: A pending delivery was added: once this commits, the dispatcher has work.
        self.added_pending = False

    async def used_keys(self, keys: Sequence[str]) -> set[str]:
        """The idempotency keys among ``keys`` already taken by a delivery (stored, or added
        in this transaction); one statement per 500 keys not asked before."""
        unknown = sorted({k for k in keys if k not in self._used and k not in self._free})
        d = db.deliveries
        for chunk in chunks(unknown):
            rows = await self.session.execute(
                select(d.c.idempotency_key).where(d.c.idempotency_key.in_(chunk))
            )
            found = {row.idempotency_key for row in rows}
            self._used |= found
            self._free |= set(chunk) - found
        return {k for k in keys if k in self._used}

    async def add(self, delivery: NewDelivery, *, announce: Event | None = None) -> bool:
        """Add one delivery under its idempotency key (written at :meth:`flush`); False if the
        key was already used.

        ``announce`` goes to the outbox only once the row is really written. The read-ahead's
        "unused" can be wrong on PostgreSQL: another replica may hold the same key uncommitted
        (a fact redelivered under another event id while its partition moved between replicas,
        or a key produced from two partitions). The INSERT ... ON CONFLICT DO NOTHING RETURNING
        of :meth:`flush` then waits for it and returns no row for the key, and the event for a
        row that is not ours is never published: at most one NotificationSuppressed per key."""
        key = delivery.idempotency_key
        if key in await self.used_keys([key]):
            return False
        self._free.discard(key)
        self._used.add(key)
        self._deliveries.append((delivery, announce))
        return True

    async def collect(self, item: DigestItem, now: datetime) -> None:
        """Keep ``item`` for the recipient's next digest (once per source event)."""
        key = (item.tenant_id, item.recipient_id, item.category, item.source_event_id)
        self._items.setdefault(
            key,
            {
                "tenant_id": item.tenant_id,
                "recipient_id": item.recipient_id,
                "category": item.category,
                "source_event_id": item.source_event_id,
                "due_at": item.due_at,
                "channels": item.channels,
                "payload": item.payload,
                "created_at": now,
            },
        )

    async def read_ahead_permits(
        self, tenant: str, recipients: Sequence[str], from_day: str
    ) -> None:
        """Read the permits of ``recipients`` for ``from_day`` and later, in one statement per
        500: asking for one of them then needs no statement."""
        dc = db.daily_caps
        unknown = [
            r
            for r in sorted(set(recipients))
            if self._permits_read.get((tenant, r), "9999-12-31") > from_day
        ]
        for chunk in chunks(unknown):
            rows = await self.session.execute(
                select(dc.c.recipient_id, dc.c.category, dc.c.day).where(
                    dc.c.tenant_id == tenant, dc.c.recipient_id.in_(chunk), dc.c.day >= from_day
                )
            )
            self._permits_taken |= {(tenant, r.recipient_id, r.category, r.day) for r in rows}
            for recipient in chunk:
                known = self._permits_read.get((tenant, recipient))
                self._permits_read[(tenant, recipient)] = min(from_day, known or from_day)

    async def take_daily_permit(
        self, tenant: str, recipient: str, category: Category, day: str, now: datetime
    ) -> bool:
        permit = (tenant, recipient, category.value, day)
        if permit in self._permits_taken:
            return False
        self._permits_taken.add(permit)
        read_from = self._permits_read.get((tenant, recipient))
        if self._permits_in_memory and read_from is not None and read_from <= day:
            self._permits_held[permit] = now
            return True
        result = await self.session.execute(
            self.insert(db.daily_caps)
            .values(
                tenant_id=tenant,
                recipient_id=recipient,
                category=category.value,
                day=day,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        return _rowcount(result) == 1

    async def record_overdue(self, event: CheckinMissed) -> None:
        self._overdue.setdefault(
            (event.tenant_id, event.obligation_id),
            {
                "tenant_id": event.tenant_id,
                "obligation_id": event.obligation_id,
                "employee_id": event.employee_id,
                "manager_id": event.manager_id,
                "due_at": event.due_at,
                "missed_at": event.occurred_at,
            },
        )

    async def close_obligation(self, tenant: str, obligation_id: str, closed_at: datetime) -> None:
        """The obligation is closed and no longer overdue."""
        key = (tenant, obligation_id)
        if key not in self._closed:
            self._closings.setdefault(key, closed_at)
        self._closed.add(key)
        self._open.discard(key)
        self._overdue.pop(key, None)
        self._overdue_gone.add(key)

    async def read_ahead_closed(self, tenant: str, obligation_ids: Sequence[str]) -> None:
        """Which of ``obligation_ids`` are closed, in one statement per 500 not known yet."""
        c = db.closed_obligations
        unknown = sorted(
            {o for o in obligation_ids if (tenant, o) not in self._closed}
            - {o for t, o in self._open if t == tenant}
        )
        for chunk in chunks(unknown):
            rows = await self.session.execute(
                select(c.c.obligation_id).where(
                    c.c.tenant_id == tenant, c.c.obligation_id.in_(chunk)
                )
            )
            found = {row.obligation_id for row in rows}
            self._closed |= {(tenant, o) for o in found}
            self._open |= {(tenant, o) for o in chunk if o not in found}

    async def closed_obligations(self, tenant: str, obligation_ids: Sequence[str]) -> set[str]:
        await self.read_ahead_closed(tenant, obligation_ids)
        return {o for o in obligation_ids if (tenant, o) in self._closed}

    async def flush(self) -> None:
        """Write what is held, one statement per table; then queue the events of the
        deliveries really written (see :meth:`add`).

        Each INSERT is compiled once (and cached) with the rows as its parameter list: an
        executemany, which SQLAlchemy sends as multi-row VALUES where it returns rows
        (insertmanyvalues). A VALUES construct of the rows themselves is built and compiled
        anew each time: for deliveries, ~8 times the CPU (~550 against ~70 us a row)."""
        if self._permits_held:
            held_permits, self._permits_held = self._permits_held, {}
            await self._insert_new(
                db.daily_caps,
                [
                    {"tenant_id": t, "recipient_id": r, "category": c, "day": day, "created_at": at}
                    for (t, r, c, day), at in held_permits.items()
                ],
            )
        if self._closings:
            closings, self._closings = self._closings, {}
            await self._insert_new(
                db.closed_obligations,
                [
                    {"tenant_id": t, "obligation_id": o, "closed_at": at}
                    for (t, o), at in closings.items()
                ],
            )
        if self._overdue_gone:
            gone, self._overdue_gone = sorted(self._overdue_gone), set()
            o = db.overdue_checkins
            for keys in chunks(gone):
                await self.session.execute(
                    delete(o).where(tuple_(o.c.tenant_id, o.c.obligation_id).in_(keys))
                )
        if self._overdue:
            overdue, self._overdue = list(self._overdue.values()), {}
            await self._insert_new(db.overdue_checkins, overdue)
        if self._items:
            items, self._items = list(self._items.values()), {}
            await self._insert_new(db.digest_items, items)
        if self._deliveries:
            held, self._deliveries = self._deliveries, []
            d = db.deliveries
            # In key order, as every replica writes them: two cannot deadlock on them.
            ordered = sorted((delivery for delivery, _ in held), key=lambda d: d.idempotency_key)
            returned = await self.session.execute(
                self.insert(d)
                .on_conflict_do_nothing(index_elements=[d.c.idempotency_key])
                .returning(d.c.id),
                [_delivery_row(delivery) for delivery in ordered],
            )
            written = set(returned.scalars())
            for delivery, announce in held:
                if delivery.id not in written:
                    continue
                self.added_pending |= delivery.status is Status.PENDING
                if announce is not None:
                    await self._publish(announce)

    async def _insert_new(self, table: Any, rows: list[dict[str, Any]]) -> None:
        """``rows`` into ``table``, leaving out those whose key is there already."""
        await self.session.execute(self.insert(table).on_conflict_do_nothing(), rows)

    async def count_overdue(self, tenant: str, employee_ids: Sequence[str]) -> int:
        """How many of these people have an overdue check-in."""
        await self.flush()
        o = db.overdue_checkins
        overdue = await self.session.scalar(
            select(func.count(func.distinct(o.c.employee_id))).where(
                o.c.tenant_id == tenant, o.c.employee_id.in_(list(employee_ids))
            )
        )
        return int(overdue or 0)

    async def due_digest_items(self, now: datetime, limit: int) -> list[DigestItem]:
        await self.flush()
        i = db.digest_items
        rows = await self.session.execute(
            select(i)
            .where(i.c.digest_id.is_(None), i.c.due_at <= now)
            .order_by(i.c.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [
            DigestItem(
                id=row.id,
                tenant_id=row.tenant_id,
                recipient_id=row.recipient_id,
                category=row.category,
                source_event_id=row.source_event_id,
                due_at=row.due_at,
                channels=list(row.channels),
                payload=row.payload,
            )
            for row in rows
        ]

    async def mark_digested(self, item_ids: Sequence[int], digest_id: str) -> None:
        await self.flush()
        i = db.digest_items
        await self.session.execute(
            update(i).where(i.c.id.in_(list(item_ids))).values(digest_id=digest_id)
        )

    async def claim_pending(
        self, now: datetime, limit: int, *, token: str, lease_until: datetime
    ) -> list[StoredDelivery]:
        """Claim up to ``limit`` due pending deliveries (SKIP LOCKED: replicas share the work);
        each counts one more attempt."""
        await self.flush()
        d = db.deliveries
        rows = (
            await self.session.execute(
                select(d)
                .where(d.c.status == Status.PENDING.value, d.c.next_attempt_at <= now)
                .order_by(d.c.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        await self.session.execute(
            update(d)
            .where(d.c.id.in_([row.id for row in rows]))
            .values(
                status=Status.CLAIMED.value,
                claim_token=token,
                attempts=d.c.attempts + 1,
                next_attempt_at=lease_until,
                updated_at=now,
            )
        )
        return [_stored(row, claimed=True) for row in rows]

    async def expired_leases(self, now: datetime, limit: int) -> list[StoredDelivery]:
        """Claimed or sending deliveries whose lease ran out (their dispatcher died)."""
        await self.flush()
        d = db.deliveries
        rows = await self.session.execute(
            select(d)
            .where(
                d.c.status.in_([Status.CLAIMED.value, Status.SENDING.value]),
                d.c.next_attempt_at <= now,
            )
            .order_by(d.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_stored(row, claimed=False) for row in rows]

    async def release(self, delivery_id: str, now: datetime, detail: str) -> None:
        """Back to pending, due now, one more recovery counted."""
        await self.flush()
        d = db.deliveries
        await self.session.execute(
            update(d)
            .where(d.c.id == delivery_id)
            .values(
                status=Status.PENDING.value,
                claim_token=None,
                next_attempt_at=now,
                updated_at=now,
                recoveries=d.c.recoveries + 1,
                detail=detail,
            )
        )

    async def mark_sending(
        self, delivery_ids: Sequence[str], token: str, now: datetime
    ) -> set[str]:
        """Mark claimed deliveries as being handed over; the ids this claim still owns."""
        await self.flush()
        d = db.deliveries
        ids = list(delivery_ids)
        result = await self.session.execute(
            _MARK_SENDING, {"ids": ids, "claim": token, "stamp": now}
        )
        if _rowcount(result) == len(ids):
            return set(ids)
        rows = await self.session.execute(
            select(d.c.id).where(
                d.c.id.in_(ids), d.c.claim_token == token, d.c.status == Status.SENDING.value
            )
        )
        return {row.id for row in rows}

    async def finish(
        self,
        delivery_id: str,
        status: Status,
        now: datetime,
        *,
        reason: str | None = None,
        detail: str | None = None,
        token: str | None = None,
    ) -> bool:
        """A final status; with ``token``, only while that claim still owns the delivery."""
        await self.flush()
        d = db.deliveries
        where = [d.c.id == delivery_id]
        if token is not None:
            where.append(d.c.claim_token == token)
        result = await self.session.execute(
            update(d)
            .where(*where)
            .values(
                status=status.value,
                reason=reason,
                detail=detail,
                claim_token=None,
                next_attempt_at=None,
                updated_at=now,
                sent_at=now if status is Status.SENT else None,
            )
        )
        return _rowcount(result) == 1

    async def finish_claimed(
        self,
        delivery_ids: Sequence[str],
        status: Status,
        now: datetime,
        *,
        token: str,
        detail: str | None = None,
    ) -> set[str]:
        """One final status for many deliveries in one statement; the ids that claim still
        owned (the others were taken back meanwhile and are left as they are)."""
        await self.flush()
        if not delivery_ids:
            return set()
        rows = await self.session.execute(
            _FINISH_CLAIMED,
            {
                "ids": list(delivery_ids),
                "claim": token,
                "final": status.value,
                "why": detail,
                "stamp": now,
                "sent": now if status is Status.SENT else None,
            },
        )
        return {row.id for row in rows}

    async def retry_later(
        self,
        delivery_id: str,
        token: str,
        now: datetime,
        *,
        reason: str,
        detail: str,
        next_attempt_at: datetime,
    ) -> None:
        await self.flush()
        d = db.deliveries
        await self.session.execute(
            update(d)
            .where(d.c.id == delivery_id, d.c.claim_token == token)
            .values(
                status=Status.PENDING.value,
                claim_token=None,
                reason=reason,
                detail=detail,
                next_attempt_at=next_attempt_at,
                updated_at=now,
            )
        )

    async def payloads_for(self, tenant: str, recipient: str) -> list[Any]:
        await self.flush()
        d = db.deliveries
        rows = await self.session.execute(
            select(d.c.payload).where(d.c.tenant_id == tenant, d.c.recipient_id == recipient)
        )
        return [payload for (payload,) in rows]

    async def overdue_obligations_of(self, tenant: str, employee: str) -> set[str]:
        await self.flush()
        o = db.overdue_checkins
        return set(
            (
                await self.session.scalars(
                    select(o.c.obligation_id).where(
                        o.c.tenant_id == tenant, o.c.employee_id == employee
                    )
                )
            ).all()
        )

    async def rewrite_payloads(
        self, tenant: str, forms: set[str], rewrite: Callable[[Any], Any]
    ) -> None:
        """Rewrite the stored payloads (deliveries, digest items) that write out one of
        ``forms``."""
        await self.flush()
        patterns = {f"%{escape_like(form)}%" for form in forms}
        for table in (db.deliveries, db.digest_items):
            text = cast(table.c.payload, Text)
            rows = await self.session.execute(
                select(table.c.id, table.c.payload).where(
                    table.c.tenant_id == tenant,
                    or_(*(text.like(p, escape="\\") for p in patterns)),
                )
            )
            for row_id, payload in rows.all():
                changed = rewrite(payload)
                if changed != payload:
                    await self.session.execute(
                        update(table).where(table.c.id == row_id).values(payload=changed)
                    )

    async def forget(self, tenant: str, person: str, obligations: set[str]) -> None:
        """Everything addressed to the person, and their closed obligations."""
        await self.flush()
        self._permits_taken.clear()
        self._permits_read.clear()
        self._used, self._free, self._closed, self._open = set(), set(), set(), set()
        d, di, o, c = db.deliveries, db.digest_items, db.overdue_checkins, db.closed_obligations
        await self.session.execute(
            delete(d).where(d.c.tenant_id == tenant, d.c.recipient_id == person)
        )
        await self.session.execute(
            delete(di).where(di.c.tenant_id == tenant, di.c.recipient_id == person)
        )
        dc = db.daily_caps
        await self.session.execute(
            delete(dc).where(dc.c.tenant_id == tenant, dc.c.recipient_id == person)
        )
        await self.session.execute(
            delete(o).where(o.c.tenant_id == tenant, o.c.employee_id == person)
        )
        for chunk in chunks(sorted(obligations)):
            await self.session.execute(
                delete(c).where(c.c.tenant_id == tenant, c.c.obligation_id.in_(chunk))
            )


def _stored(row: Row[Any], *, claimed: bool) -> StoredDelivery:
    return StoredDelivery(
        id=row.id,
        tenant_id=row.tenant_id,
        idempotency_key=row.idempotency_key,
        recipient_id=row.recipient_id,
        category=row.category,
        channel=row.channel,
        source_event_id=row.source_event_id,
        status=Status.CLAIMED if claimed else Status(row.status),
        attempts=row.attempts + 1 if claimed else row.attempts,
        recoveries=row.recoveries,
        payload=row.payload,
        created_at=row.created_at,
    )


def _preference(row: Any) -> CategoryPreference:
    return CategoryPreference(
        channel=ChannelChoice(row.channel),
        mode=DeliveryMode(row.mode),
        unsubscribed=row.unsubscribed_at is not None,
    )


def _settings(row: Any) -> RecipientSettings:
    return RecipientSettings(
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        working_days=[int(d) for d in row.working_days.split(",") if d],
        digest_hour=row.digest_hour,
    )


class SqlPreferenceRepository(_Repository):
    """Quiet hours and digest hour, channel and mode per category, push subscriptions. What
    deciding reads of them (:meth:`choices_of`) is kept for the unit of work, and forgotten
    whenever this repository writes."""

    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        super().__init__(session, insert)
        #: (tenant, employee) -> their settings, preferences by category, and a push
        #: subscription held or not.
        self._known: dict[
            tuple[str, str],
            tuple[RecipientSettings | None, dict[str, CategoryPreference], bool],
        ] = {}

    async def settings(self, tenant: str, employee: str) -> RecipientSettings | None:
        s = db.recipient_settings
        row = (
            await self.session.execute(
                select(s).where(s.c.tenant_id == tenant, s.c.employee_id == employee)
            )
        ).first()
        return _settings(row) if row is not None else None

    async def save_settings(
        self, tenant: str, employee: str, settings: RecipientSettings, now: datetime
    ) -> None:
        self._known.clear()
        s = db.recipient_settings
        values = {
            "quiet_start": settings.quiet_start,
            "quiet_end": settings.quiet_end,
            "working_days": ",".join(str(d) for d in settings.working_days),
            "digest_hour": settings.digest_hour,
            "updated_at": now,
        }
        await self.session.execute(
            self.insert(s)
            .values(tenant_id=tenant, employee_id=employee, **values)
            .on_conflict_do_update(index_elements=[s.c.tenant_id, s.c.employee_id], set_=values)
        )

    async def categories(self, tenant: str, employee: str) -> dict[str, CategoryPreference]:
        """The categories the person chose something for."""
        c = db.category_preferences
        rows = await self.session.execute(
            select(c).where(c.c.tenant_id == tenant, c.c.employee_id == employee)
        )
        return {row.category: _preference(row) for row in rows}

    async def for_category(
        self, tenant: str, employee_ids: Sequence[str], category: Category
    ) -> dict[str, CategoryPreference]:
        if not employee_ids:
            return {}
        c = db.category_preferences
        rows = await self.session.execute(
            select(c).where(
                c.c.tenant_id == tenant,
                c.c.employee_id.in_(list(employee_ids)),
                c.c.category == category,
            )
        )
        return {row.employee_id: _preference(row) for row in rows}

    async def save_category(
        self,
        tenant: str,
        employee: str,
        category: str,
        preference: CategoryPreference,
        now: datetime,
    ) -> None:
        """Set one category; an unsubscribe is stamped now, any other choice lifts it."""
        self._known.clear()
        c = db.category_preferences
        row = {
            "channel": preference.channel.value,
            "mode": preference.mode.value,
            "unsubscribed_at": now if preference.unsubscribed else None,
            "updated_at": now,
        }
        await self.session.execute(
            self.insert(c)
            .values(tenant_id=tenant, employee_id=employee, category=category, **row)
            .on_conflict_do_update(
                index_elements=[c.c.tenant_id, c.c.employee_id, c.c.category], set_=row
            )
        )

    async def push_subscription_id(self, tenant: str, endpoint_hash: str) -> str | None:
        s = db.push_subscriptions
        found = await self.session.scalar(
            select(s.c.id).where(s.c.tenant_id == tenant, s.c.endpoint_hash == endpoint_hash)
        )
        return str(found) if found is not None else None

    async def add_push_subscription(self, subscription: PushSubscription) -> None:
        self._known.clear()
        await self.session.execute(
            db.push_subscriptions.insert().values(
                id=subscription.id,
                tenant_id=subscription.tenant_id,
                employee_id=subscription.employee_id,
                endpoint=subscription.endpoint,
                endpoint_hash=subscription.endpoint_hash,
                p256dh=subscription.p256dh,
                auth=subscription.auth,
                created_at=subscription.created_at,
            )
        )

    async def hand_push_subscription(
        self, subscription_id: str, employee: str, p256dh: str, auth: str, now: datetime
    ) -> None:
        """The browser re-subscribed (or the device changed hands): the latest holder owns it."""
        self._known.clear()
        s = db.push_subscriptions
        await self.session.execute(
            update(s)
            .where(s.c.id == subscription_id)
            .values(employee_id=employee, p256dh=p256dh, auth=auth, created_at=now)
        )

    async def push_subscriptions(self, tenant: str, employee: str) -> list[PushSubscription]:
        s = db.push_subscriptions
        rows = await self.session.execute(
            select(s).where(s.c.tenant_id == tenant, s.c.employee_id == employee)
        )
        return [
            PushSubscription(
                id=row.id,
                tenant_id=row.tenant_id,
                employee_id=row.employee_id,
                endpoint=row.endpoint,
                endpoint_hash=row.endpoint_hash,
                p256dh=row.p256dh,
                auth=row.auth,
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def remove_push_subscription(
        self, subscription_id: str, *, tenant: str | None = None, employee: str | None = None
    ) -> bool:
        """Remove a subscription (with ``tenant`` and ``employee``: only if it is theirs)."""
        self._known.clear()
        s = db.push_subscriptions
        where = [s.c.id == subscription_id]
        if tenant is not None:
            where.append(s.c.tenant_id == tenant)
        if employee is not None:
            where.append(s.c.employee_id == employee)
        result = await self.session.execute(delete(s).where(*where))
        return _rowcount(result) > 0

    async def read_ahead(self, tenant: str, employee_ids: Sequence[str]) -> None:
        """Read the schedule, every category's setting and whether they hold a push
        subscription, of those of ``employee_ids`` not read yet: one statement per table and
        500 people, so that deciding a chunk of events asks no more."""
        unknown = sorted({pid for pid in employee_ids if (tenant, pid) not in self._known})
        s, c, p = db.recipient_settings, db.category_preferences, db.push_subscriptions
        for chunk in chunks(unknown):
            settings = {
                row.employee_id: _settings(row)
                for row in await self.session.execute(
                    select(s).where(s.c.tenant_id == tenant, s.c.employee_id.in_(chunk))
                )
            }
            chosen: dict[str, dict[str, CategoryPreference]] = {pid: {} for pid in chunk}
            for row in await self.session.execute(
                select(c).where(c.c.tenant_id == tenant, c.c.employee_id.in_(chunk))
            ):
                chosen[row.employee_id][row.category] = _preference(row)
            pushable = set(
                (
                    await self.session.scalars(
                        select(p.c.employee_id)
                        .where(p.c.tenant_id == tenant, p.c.employee_id.in_(chunk))
                        .distinct()
                    )
                ).all()
            )
            for pid in chunk:
                self._known[(tenant, pid)] = (settings.get(pid), chosen[pid], pid in pushable)

    async def choices_of(
        self, tenant: str, employee_ids: Sequence[str], category: Category
    ) -> dict[str, RecipientChoices]:
        """Each person's schedule, setting for ``category`` and whether they hold a push
        subscription (this runs for every consumed event: from what :meth:`read_ahead` read,
        statements only for people it did not read)."""
        await self.read_ahead(tenant, employee_ids)
        choices = {}
        for pid in employee_ids:
            settings, chosen, has_push = self._known[(tenant, pid)]
            choices[pid] = RecipientChoices(
                settings=settings, preference=chosen.get(category.value), has_push=has_push
            )
        return choices

    async def forget(self, tenant: str, person: str) -> None:
        """The person's schedule, choices and push subscriptions."""
        self._known.clear()
        for table in (db.recipient_settings, db.category_preferences, db.push_subscriptions):
            await self.session.execute(
                delete(table).where(table.c.tenant_id == tenant, table.c.employee_id == person)
            )


def _endpoint(row: Row[Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        tenant_id=row.tenant_id,
        url=row.url,
        secret=row.secret,
        event_types=row.event_types,
        description=row.description,
        created_at=row.created_at,
        active=row.active,
        previous_secret=row.previous_secret,
        previous_secret_until=row.previous_secret_until,
    )


def _due_webhooks(query: Any, now: datetime, skip: Sequence[str]) -> Any:
    """``query`` over the due webhook deliveries with their endpoints, but those of ``skip``."""
    wd, w = db.webhook_deliveries, db.webhook_endpoints
    query = query.select_from(wd.join(w, w.c.id == wd.c.endpoint_id)).where(
        wd.c.status.in_([Status.PENDING.value, Status.CLAIMED.value]),
        wd.c.next_attempt_at <= now,
    )
    if skip:
        query = query.where(wd.c.endpoint_id.not_in(sorted(skip)))
    return query


class SqlWebhookRepository(_Repository):
    """Webhook endpoints and the deliveries owed to them. A tenant's active endpoints are read
    once per unit of work (every consumed event asks) and forgotten when endpoints change."""

    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        super().__init__(session, insert)
        self._active: dict[str, list[WebhookEndpoint]] = {}

    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        self._active.clear()
        await self.session.execute(
            db.webhook_endpoints.insert().values(
                id=endpoint.id,
                tenant_id=endpoint.tenant_id,
                url=endpoint.url,
                secret=endpoint.secret,
                event_types=endpoint.event_types,
                description=endpoint.description,
                active=endpoint.active,
                created_at=endpoint.created_at,
            )
        )

    async def active_endpoints(self, tenant: str) -> list[WebhookEndpoint]:
        if tenant not in self._active:
            w = db.webhook_endpoints
            rows = await self.session.execute(
                select(w)
                .where(w.c.tenant_id == tenant, w.c.active.is_(True))
                .order_by(w.c.created_at)
            )
            self._active[tenant] = [_endpoint(row) for row in rows]
        return list(self._active[tenant])

    async def active_endpoint(self, tenant: str, endpoint_id: str) -> WebhookEndpoint | None:
        w = db.webhook_endpoints
        row = (
            await self.session.execute(
                select(w).where(
                    w.c.id == endpoint_id, w.c.tenant_id == tenant, w.c.active.is_(True)
                )
            )
        ).first()
        return _endpoint(row) if row is not None else None

    async def set_secrets(
        self,
        endpoint_id: str,
        secret: str,
        previous_secret: str | None,
        previous_secret_until: datetime | None,
    ) -> None:
        self._active.clear()
        w = db.webhook_endpoints
        await self.session.execute(
            update(w)
            .where(w.c.id == endpoint_id)
            .values(
                secret=secret,
                previous_secret=previous_secret,
                previous_secret_until=previous_secret_until,
            )
        )

    async def deactivate(self, tenant: str, endpoint_id: str) -> bool:
        self._active.clear()
        w = db.webhook_endpoints
        result = await self.session.execute(
            update(w)
            .where(w.c.id == endpoint_id, w.c.tenant_id == tenant, w.c.active.is_(True))
            .values(active=False)
        )
        return _rowcount(result) > 0

    async def queue(self, delivery: WebhookDelivery) -> bool:
        """Owe the event to the endpoint, once (False if it was already owed)."""
        result = await self.session.execute(
            self.insert(db.webhook_deliveries)
            .values(
                id=delivery.id,
                tenant_id=delivery.tenant_id,
                endpoint_id=delivery.endpoint_id,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                body=delivery.body,
                status=Status.PENDING.value,
                attempts=0,
                next_attempt_at=delivery.created_at,
                created_at=delivery.created_at,
                updated_at=delivery.created_at,
            )
            .on_conflict_do_nothing()
        )
        return _rowcount(result) == 1

    async def due(self, now: datetime, limit: int, *, skip: Sequence[str]) -> list[DueWebhook]:
        """Due deliveries (pending, or claimed by a dispatcher that died), locked for this
        transaction, leaving out the endpoints in ``skip``."""
        wd, w = db.webhook_deliveries, db.webhook_endpoints
        query = (
            _due_webhooks(
                select(wd.c.id.label("delivery_id"), wd.c.body, wd.c.attempts, *w.c), now, skip
            )
            .order_by(wd.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True, of=wd)
        )
        rows = await self.session.execute(query)
        return [DueWebhook(row.delivery_id, _endpoint(row), row.body, row.attempts) for row in rows]

    async def any_due(self, now: datetime, *, skip: Sequence[str]) -> bool:
        wd = db.webhook_deliveries
        query = _due_webhooks(select(wd.c.id), now, skip).limit(1)
        return (await self.session.scalar(query)) is not None

    async def suppress(self, delivery_ids: Sequence[str], detail: str) -> None:
        if not delivery_ids:
            return
        wd = db.webhook_deliveries
        await self.session.execute(
            update(wd)
            .where(wd.c.id.in_(list(delivery_ids)))
            .values(status=Status.SUPPRESSED.value, detail=detail, next_attempt_at=None)
        )

    async def claim(
        self, delivery_ids: Sequence[str], token: str, now: datetime, lease_until: datetime
    ) -> None:
        if not delivery_ids:
            return
        wd = db.webhook_deliveries
        await self.session.execute(
            update(wd)
            .where(wd.c.id.in_(list(delivery_ids)))
            .values(
                status=Status.CLAIMED.value,
                claim_token=token,
                attempts=wd.c.attempts + 1,
                next_attempt_at=lease_until,
                updated_at=now,
            )
        )

    async def record(
        self,
        delivery_id: str,
        token: str,
        now: datetime,
        *,
        status: Status,
        status_code: int | None,
        detail: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        wd = db.webhook_deliveries
        await self.session.execute(
            update(wd)
            .where(wd.c.id == delivery_id, wd.c.claim_token == token)
            .values(
                status=status.value,
                claim_token=None,
                last_status_code=status_code,
                detail=detail,
                next_attempt_at=next_attempt_at,
                updated_at=now,
                sent_at=now if status is Status.SENT else None,
            )
        )

    async def forget_mentions(self, tenant: str, person: str) -> None:
        """Deliveries whose body names the person (sent or owed)."""
        w = db.webhook_deliveries
        like = f"%{escape_like(person)}%"
        await self.session.execute(
            delete(w).where(w.c.tenant_id == tenant, w.c.body.like(like, escape="\\"))
        )


class SqlTenantRepository(_Repository):
    """The tenant's app base URL and chat channels. Its chat channels are read once per unit
    of work (every decided event asks) and forgotten when they change."""

    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        super().__init__(session, insert)
        self._chat: dict[str, list[ChatChannel]] = {}

    async def app_base_url(self, tenant: str) -> tuple[str | None, datetime] | None:
        t = db.tenant_settings
        row = (await self.session.execute(select(t).where(t.c.tenant_id == tenant))).first()
        return (row.app_base_url, row.updated_at) if row is not None else None

    async def set_app_base_url(self, tenant: str, url: str | None, now: datetime) -> None:
        t = db.tenant_settings
        values = {"app_base_url": url, "updated_at": now}
        await self.session.execute(
            self.insert(t)
            .values(tenant_id=tenant, **values)
            .on_conflict_do_update(index_elements=[t.c.tenant_id], set_=values)
        )

    async def app_base_urls(self, tenants: Sequence[str]) -> dict[str, str]:
        """The tenants among ``tenants`` that override APP_BASE_URL, with their base URL."""
        if not tenants:
            return {}
        t = db.tenant_settings
        rows = await self.session.execute(
            select(t.c.tenant_id, t.c.app_base_url).where(
                t.c.tenant_id.in_(sorted(set(tenants))), t.c.app_base_url.is_not(None)
            )
        )
        return {row.tenant_id: row.app_base_url for row in rows}

    async def save_chat_channel(self, tenant: str, channel: ChatChannel) -> None:
        self._chat.clear()
        c = db.chat_channels
        values = {
            "url": channel.url,
            "categories": channel.categories,
            "updated_at": channel.updated_at,
        }
        await self.session.execute(
            self.insert(c)
            .values(tenant_id=tenant, kind=channel.kind.value, **values)
            .on_conflict_do_update(index_elements=[c.c.tenant_id, c.c.kind], set_=values)
        )

    async def chat_channels(self, tenant: str) -> list[ChatChannel]:
        if tenant not in self._chat:
            c = db.chat_channels
            rows = await self.session.execute(
                select(c).where(c.c.tenant_id == tenant).order_by(c.c.kind)
            )
            self._chat[tenant] = [
                ChatChannel(Channel(row.kind), row.url, list(row.categories), row.updated_at)
                for row in rows
            ]
        return list(self._chat[tenant])

    async def chat_channel_url(self, tenant: str, kind: str) -> str | None:
        c = db.chat_channels
        url = await self.session.scalar(
            select(c.c.url).where(c.c.tenant_id == tenant, c.c.kind == kind)
        )
        return str(url) if url is not None else None

    async def delete_chat_channel(self, tenant: str, kind: Channel) -> None:
        self._chat.clear()
        c = db.chat_channels
        await self.session.execute(delete(c).where(c.c.tenant_id == tenant, c.c.kind == kind.value))
