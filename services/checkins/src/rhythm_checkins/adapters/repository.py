"""Every SQL statement of the write side, as methods of the repositories the unit of work
carries (:mod:`rhythm_checkins.adapters.unit_of_work`); the protocols are in
:mod:`rhythm_checkins.domain.ports`."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from rhythm_checkins.adapters.db import (
    action_items,
    cadence_facts,
    cadence_policies,
    checkins,
    departures,
    directory,
    feedback,
    feedback_requests,
    goal_progress,
    goals,
    kit,
    obligations,
    planning,
    tenant_settings,
)
from rhythm_checkins.domain.conversations import CheckinState
from rhythm_checkins.domain.obligations import OUTSTANDING, ObligationState
from rhythm_checkins.domain.policy import CadencePolicy, Rule
from rhythm_checkins.domain.records import (
    CHECKIN_TEXTS,
    ActionItem,
    Checkin,
    Decision,
    Departure,
    Feedback,
    FeedbackRequest,
    Goal,
    NewFact,
    Obligation,
    TenantSettings,
)
from rhythm_shared.contracts.v1 import (
    CheckinKind,
    EscalationTarget,
    Frequency,
    OwnerType,
    PolicyScope,
    Visibility,
)
from rhythm_shared.kit.db import UtcDateTime, chunks

#: A dialect-aware INSERT that supports ``on_conflict_do_*`` (the unit of work's).
Insert = Callable[[Any], Any]

_OUTSTANDING = [s.value for s in OUTSTANDING]


#: (record class, a result's column names) -> the columns in the record's field order, if the
#: result has exactly the record's fields (rows built by position cost a third of by name).
_ORDER: dict[tuple[type[Any], tuple[str, ...]], Callable[[Any], tuple[Any, ...]] | None] = {}


def _record(cls: type[Any], row: Any) -> Any:
    columns = row._fields
    key = (cls, columns)
    if key not in _ORDER:
        names = [f.name for f in dataclasses.fields(cls)]
        fits = len(names) > 1 and sorted(names) == sorted(columns)
        _ORDER[key] = operator.itemgetter(*(columns.index(n) for n in names)) if fits else None
    order = _ORDER[key]
    return cls(**row._mapping) if order is None else cls(*order(row))


#: (tenant, employee): the key of what a repository reads ahead for a chunk of people events.
Person = tuple[str, str]


def _by_tenant(people: Iterable[Person], known: Iterable[Person]) -> dict[str, list[str]]:
    """The employees of ``people`` not in ``known``, by tenant, sorted (one statement per tenant
    and 500 reads them)."""
    seen = set(known)
    wanted: dict[str, set[str]] = {}
    for tenant_id, employee_id in people:
        if (tenant_id, employee_id) not in seen:
            wanted.setdefault(tenant_id, set()).add(employee_id)
    return {tenant_id: sorted(ids) for tenant_id, ids in wanted.items()}


class SqlCheckinRepository:
    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        self.session = session
        self.insert = insert
        #: Employees read ahead (:meth:`read_ahead`): their check-ins still to be held, with
        #: their manager; a write to check-ins forgets what it may have changed.
        self._scheduled: dict[Person, dict[str, str]] = {}

    async def read_ahead(self, people: Iterable[Person]) -> None:
        """The check-ins still to be held of ``people``, for :meth:`hand_over` (a chunk of
        people events reads them in one statement instead of one per manager change)."""
        c = checkins.c
        for tenant_id, ids in _by_tenant(people, self._scheduled).items():
            for chunk in chunks(ids):
                found: dict[str, dict[str, str]] = {i: {} for i in chunk}
                rows = await self.session.execute(
                    select(c.id, c.employee_id, c.manager_id)
                    .where(
                        c.tenant_id == tenant_id,
                        c.employee_id.in_(chunk),
                        c.state == CheckinState.SCHEDULED.value,
                    )
                    .order_by(c.id)
                )
                for r in rows:
                    found[r.employee_id][r.id] = r.manager_id
                for employee_id, scheduled in found.items():
                    self._scheduled[(tenant_id, employee_id)] = scheduled

    async def get(self, tenant_id: str, checkin_id: str, *, lock: bool = False) -> Checkin | None:
        stmt = select(checkins).where(
            checkins.c.tenant_id == tenant_id, checkins.c.id == checkin_id
        )
        row = (await self.session.execute(stmt.with_for_update() if lock else stmt)).first()
        return None if row is None else _record(Checkin, row)

    async def add(self, checkin: Checkin) -> None:
        self._scheduled.pop((checkin.tenant_id, checkin.employee_id), None)
        await self.session.execute(checkins.insert().values(**vars(checkin)))

    async def update(self, checkin_id: str, **values: Any) -> None:
        self._scheduled = {}
        await self.session.execute(
            update(checkins).where(checkins.c.id == checkin_id).values(**values)
        )

    async def listing(
        self,
        tenant_id: str,
        *,
        employee_id: str | None = None,
        manager_id: str | None = None,
        participant: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> list[Checkin]:
        where = [checkins.c.tenant_id == tenant_id]
        if employee_id is not None:
            where.append(checkins.c.employee_id == employee_id)
        if manager_id is not None:
            where.append(checkins.c.manager_id == manager_id)
        if participant is not None:
            where.append(
                or_(checkins.c.employee_id == participant, checkins.c.manager_id == participant)
            )
        if state is not None:
            where.append(checkins.c.state == state)
        rows = await self.session.execute(
            select(checkins)
            .where(and_(*where))
            .order_by(checkins.c.scheduled_for.desc())
            .limit(limit)
        )
        return [_record(Checkin, r) for r in rows]

    async def last_held(
        self, tenant_id: str, employee_id: str, *, other_than: str
    ) -> datetime | None:
        held: datetime | None = await self.session.scalar(
            select(func.max(checkins.c.held_at)).where(
                checkins.c.tenant_id == tenant_id,
                checkins.c.employee_id == employee_id,
                checkins.c.state == CheckinState.COMPLETED.value,
                checkins.c.id != other_than,
            )
        )
        return held

    async def hand_over(
        self, tenant_id: str, employee_id: str, manager_id: str, now: datetime
    ) -> list[str]:
        scheduled = self._scheduled.get((tenant_id, employee_id))
        if scheduled is not None:
            taken_over = [i for i, held_by in scheduled.items() if held_by != manager_id]
            if taken_over:
                await self.session.execute(
                    update(checkins)
                    .where(checkins.c.id.in_(taken_over))
                    .values(manager_id=manager_id, updated_at=now)
                )
                scheduled.update(dict.fromkeys(taken_over, manager_id))
            return taken_over
        open_checkins = list(
            (
                await self.session.scalars(
                    select(checkins.c.id).where(
                        checkins.c.tenant_id == tenant_id,
                        checkins.c.employee_id == employee_id,
                        checkins.c.state == CheckinState.SCHEDULED.value,
                        checkins.c.manager_id != manager_id,
                    )
                )
            ).all()
        )
        if open_checkins:
            await self.session.execute(
                update(checkins)
                .where(checkins.c.id.in_(open_checkins))
                .values(manager_id=manager_id, updated_at=now)
            )
        return open_checkins

    async def action_items(
        self, tenant_id: str, employee_id: str, *, of_checkin: str | None, open_ones: bool
    ) -> list[ActionItem]:
        which: list[ColumnElement[bool]] = []
        if of_checkin is not None:
            which.append(action_items.c.checkin_id == of_checkin)
        if open_ones:
            which.append(action_items.c.done_at.is_(None))
        rows = await self.session.execute(
            select(action_items)
            .where(
                action_items.c.tenant_id == tenant_id,
                action_items.c.employee_id == employee_id,
                or_(*which),
            )
            .order_by(action_items.c.created_at)
        )
        return [_record(ActionItem, r) for r in rows]

    async def add_action_item(self, item: ActionItem) -> None:
        await self.session.execute(action_items.insert().values(**vars(item)))

    async def action_item(self, tenant_id: str, item_id: str) -> ActionItem | None:
        row = (
            await self.session.execute(
                select(action_items).where(
                    action_items.c.tenant_id == tenant_id, action_items.c.id == item_id
                )
            )
        ).first()
        return None if row is None else _record(ActionItem, row)

    async def set_action_item_done(self, item_id: str, done_at: datetime | None) -> None:
        await self.session.execute(
            update(action_items).where(action_items.c.id == item_id).values(done_at=done_at)
        )

    async def settings(self, tenant_id: str) -> TenantSettings:
        row = (
            await self.session.execute(
                select(
                    tenant_settings.c.reviews_visible_to_manager_chain,
                    tenant_settings.c.share_individual_pulse,
                ).where(tenant_settings.c.tenant_id == tenant_id)
            )
        ).first()
        return TenantSettings() if row is None else TenantSettings(bool(row[0]), bool(row[1]))

    async def save_settings(self, tenant_id: str, settings: TenantSettings, now: datetime) -> None:
        values: dict[str, Any] = {**vars(settings), "updated_at": now}
        stmt = self.insert(tenant_settings).values(tenant_id=tenant_id, **values)
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=["tenant_id"], set_=values)
        )

    async def remove_texts(self, tenant_id: str, employee_id: str) -> None:
        await self.session.execute(
            update(checkins)
            .where(checkins.c.tenant_id == tenant_id, checkins.c.employee_id == employee_id)
            .values(dict.fromkeys(CHECKIN_TEXTS))
        )
        await self.session.execute(
            update(action_items)
            .where(action_items.c.tenant_id == tenant_id, action_items.c.employee_id == employee_id)
            .values(text=None)
        )

    async def forget_person(self, tenant_id: str, person: str) -> None:
        self._scheduled = {}
        session = self.session
        about = list(
            (
                await session.scalars(
                    select(checkins.c.id).where(
                        checkins.c.tenant_id == tenant_id, checkins.c.employee_id == person
                    )
                )
            ).all()
        )
        await session.execute(
            delete(action_items).where(
                action_items.c.tenant_id == tenant_id, action_items.c.employee_id == person
            )
        )
        for chunk in chunks(about):
            await session.execute(delete(action_items).where(action_items.c.checkin_id.in_(chunk)))
            await session.execute(delete(checkins).where(checkins.c.id.in_(chunk)))
            # Their outbox rows, published or not (keyed tenant/check-in).
            await session.execute(
                delete(kit.outbox).where(kit.outbox.c.key.in_([f"{tenant_id}/{c}" for c in chunk]))
            )
        await session.execute(
            update(action_items)
            .where(action_items.c.tenant_id == tenant_id, action_items.c.owner_id == person)
            .values(text=None)
        )


class SqlFeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, feedback_id: str) -> Feedback | None:
        row = (
            await self.session.execute(
                select(feedback).where(
                    feedback.c.tenant_id == tenant_id, feedback.c.id == feedback_id
                )
            )
        ).first()
        return None if row is None else _record(Feedback, row)

    async def add(self, given: Feedback) -> None:
        await self.session.execute(feedback.insert().values(**vars(given)))

    async def listing(
        self,
        tenant_id: str,
        *,
        receiver_id: str | None = None,
        giver_id: str | None = None,
        limit: int = 100,
    ) -> list[Feedback]:
        where = [feedback.c.tenant_id == tenant_id]
        if receiver_id is not None:
            where.append(feedback.c.receiver_id == receiver_id)
        if giver_id is not None:
            where.append(feedback.c.giver_id == giver_id)
        rows = await self.session.execute(
            select(feedback).where(*where).order_by(feedback.c.created_at.desc()).limit(limit)
        )
        return [_record(Feedback, r) for r in rows]

    async def request(
        self, tenant_id: str, request_id: str, *, lock: bool = False
    ) -> FeedbackRequest | None:
        stmt = select(feedback_requests).where(
            feedback_requests.c.tenant_id == tenant_id, feedback_requests.c.id == request_id
        )
        row = (await self.session.execute(stmt.with_for_update() if lock else stmt)).first()
        return None if row is None else _record(FeedbackRequest, row)

    async def add_request(self, request: FeedbackRequest) -> None:
        await self.session.execute(feedback_requests.insert().values(**vars(request)))

    async def answer_request(self, request_id: str, feedback_id: str) -> None:
        await self.session.execute(
            update(feedback_requests)
            .where(feedback_requests.c.id == request_id)
            .values(feedback_id=feedback_id)
        )

    async def open_requests(self, tenant_id: str, from_id: str) -> list[FeedbackRequest]:
        rows = await self.session.execute(
            select(feedback_requests)
            .where(
                feedback_requests.c.tenant_id == tenant_id,
                feedback_requests.c.from_id == from_id,
                feedback_requests.c.feedback_id.is_(None),
            )
            .order_by(feedback_requests.c.created_at)
        )
        return [_record(FeedbackRequest, r) for r in rows]

    async def remove_received_texts(self, tenant_id: str, employee_id: str) -> None:
        await self.session.execute(
            update(feedback)
            .where(feedback.c.tenant_id == tenant_id, feedback.c.receiver_id == employee_id)
            .values(text=None)
        )
        await self.session.execute(
            update(feedback_requests)
            .where(
                feedback_requests.c.tenant_id == tenant_id,
                feedback_requests.c.requester_id == employee_id,
            )
            .values(prompt=None)
        )

    async def forget_person(self, tenant_id: str, person: str) -> None:
        await self.session.execute(
            delete(feedback).where(
                feedback.c.tenant_id == tenant_id, feedback.c.receiver_id == person
            )
        )
        await self.session.execute(
            update(feedback)
            .where(feedback.c.tenant_id == tenant_id, feedback.c.giver_id == person)
            .values(text=None)
        )
        await self.session.execute(
            delete(feedback_requests).where(
                feedback_requests.c.tenant_id == tenant_id,
                or_(
                    feedback_requests.c.requester_id == person,
                    feedback_requests.c.from_id == person,
                ),
            )
        )


def _policy_from_row(row: Any) -> CadencePolicy:
    return CadencePolicy(
        policy_id=row.policy_id,
        scope=PolicyScope(row.scope),
        scope_id=row.scope_id,
        rules=tuple(
            Rule(
                kind=CheckinKind(r["kind"]),
                frequency=Frequency(r["frequency"]),
                grace_days=r["grace_days"],
                lead_time_days=r["lead_time_days"],
            )
            for r in row.rules
        ),
        escalate_after=row.escalate_after,
        escalate_to=EscalationTarget(row.escalate_to),
        ramp_up_days=row.ramp_up_days,
        hr_contact_id=row.hr_contact_id,
    )


def _rules_json(policy: CadencePolicy) -> list[dict[str, Any]]:
    return [
        {
            "kind": r.kind.value,
            "frequency": r.frequency.value,
            "grace_days": r.grace_days,
            "lead_time_days": r.lead_time_days,
        }
        for r in policy.rules
    ]


def _cancelled(ob: Obligation, now: datetime) -> Obligation:
    return dataclasses.replace(
        ob, state=ObligationState.CANCELLED.value, next_action_at=None, updated_at=now
    )


class SqlCadenceRepository:
    """Planning a chunk of people events works in memory: :meth:`read_ahead` reads the chunk's
    employees' obligations in one statement, the planning methods change them here, and
    :meth:`flush` writes what changed in one statement per table (the unit of work calls it
    before commit). Every other method on obligations or planning flushes first, so whatever it
    reads or writes sees the plan as it stands."""

    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        self.session = session
        self.insert = insert
        self._policies: dict[str, list[CadencePolicy]] = {}
        #: Per employee read ahead: from which period end on their obligations are all here
        #: (the outstanding ones are here whatever their period), and those obligations as this
        #: transaction has left them.
        self._owed: dict[Person, tuple[date, dict[str, Obligation]]] = {}
        self._added: dict[str, Obligation] = {}
        self._changed: dict[str, Obligation] = {}
        self._plans: dict[Person, datetime | None] = {}

    async def read_ahead(self, people: Iterable[Person], ending_from: date) -> None:
        """Read the obligations of ``people`` that planning them can touch: the outstanding
        ones, and every one of a period ending on ``ending_from`` or later (planning owes the
        period holding the employee's today and the next ones). Locked until commit, as the
        updates one at a time would lock them."""
        o = obligations.c
        for tenant_id, ids in _by_tenant(people, self._owed).items():
            for chunk in chunks(ids):
                owed: dict[str, dict[str, Obligation]] = {i: {} for i in chunk}
                rows = await self.session.execute(
                    select(obligations)
                    .where(
                        o.tenant_id == tenant_id,
                        o.employee_id.in_(chunk),
                        or_(o.state.in_(_OUTSTANDING), o.period_end >= ending_from),
                    )
                    .order_by(o.id)
                    .with_for_update()
                )
                for r in rows:
                    owed[r.employee_id][r.id] = _record(Obligation, r)
                for employee_id, held in owed.items():
                    self._owed[(tenant_id, employee_id)] = (ending_from, held)

    def _held(self, tenant_id: str, employee_id: str) -> dict[str, Obligation] | None:
        entry = self._owed.get((tenant_id, employee_id))
        return None if entry is None else entry[1]

    def _held_for(self, ob: Obligation) -> dict[str, Obligation] | None:
        """The employee's obligations read ahead, if ``ob`` is among those read."""
        entry = self._owed.get((ob.tenant_id, ob.employee_id))
        if entry is None:
            return None
        ending_from, held = entry
        return held if ob.id in held or ob.period_end >= ending_from else None

    async def _outside(self, obs: Sequence[Obligation]) -> None:
        """Before writing ``obs`` directly: write what is held, and hold their employees' no
        more (what was read of them may not be what the statement leaves)."""
        await self.flush()
        for ob in obs:
            self._owed.pop((ob.tenant_id, ob.employee_id), None)

    def _put(self, held: dict[str, Obligation], ob: Obligation) -> None:
        held[ob.id] = ob
        if ob.id in self._added:
            self._added[ob.id] = ob
        else:
            self._changed[ob.id] = ob

    async def flush(self) -> None:
        """Write the obligations and planning times changed in memory."""
        if self._added:
            rows, self._added = list(self._added.values()), {}
            await self.session.execute(
                self.insert(obligations).on_conflict_do_nothing(), [vars(o) for o in rows]
            )
        if self._changed:
            changed, self._changed = list(self._changed.values()), {}
            await self.session.execute(
                update(obligations)
                .where(obligations.c.id == bindparam("b_id"))
                .values(
                    manager_id=bindparam("b_manager"),
                    due_at=bindparam("b_due"),
                    remind_at=bindparam("b_remind"),
                    miss_at=bindparam("b_miss"),
                    state=bindparam("b_state"),
                    next_action_at=bindparam("b_next"),
                    updated_at=bindparam("b_updated"),
                ),
                [
                    {
                        "b_id": ob.id,
                        "b_manager": ob.manager_id,
                        "b_due": ob.due_at,
                        "b_remind": ob.remind_at,
                        "b_miss": ob.miss_at,
                        "b_state": ob.state,
                        "b_next": ob.next_action_at,
                        "b_updated": ob.updated_at,
                    }
                    for ob in changed
                ],
            )
        if self._plans:
            plans, self._plans = self._plans, {}
            stmt = self.insert(planning)
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant_id", "employee_id"],
                    set_={"plan_at": stmt.excluded.plan_at},
                ),
                [{"tenant_id": t, "employee_id": e, "plan_at": at} for (t, e), at in plans.items()],
            )

    async def _written_elsewhere(self) -> None:
        """Before a statement that writes obligations directly: write what is held, and hold
        nothing any more (the statement may change what was read)."""
        await self.flush()
        self._owed = {}

    async def policies(self, tenant_id: str) -> list[CadencePolicy]:
        # Kept for the transaction: a chunk of people events plans every employee with them.
        if tenant_id not in self._policies:
            rows = await self.session.execute(
                select(cadence_policies).where(cadence_policies.c.tenant_id == tenant_id)
            )
            self._policies[tenant_id] = [_policy_from_row(r) for r in rows]
        return list(self._policies[tenant_id])

    async def policy(self, tenant_id: str, policy_id: str) -> CadencePolicy | None:
        row = (
            await self.session.execute(
                select(cadence_policies).where(
                    cadence_policies.c.tenant_id == tenant_id,
                    cadence_policies.c.policy_id == policy_id,
                )
            )
        ).first()
        return _policy_from_row(row) if row else None

    async def save_policy(self, tenant_id: str, policy: CadencePolicy, now: datetime) -> None:
        values = {
            "rules": _rules_json(policy),
            "escalate_after": policy.escalate_after,
            "escalate_to": policy.escalate_to.value,
            "ramp_up_days": policy.ramp_up_days,
            "hr_contact_id": policy.hr_contact_id,
            "updated_at": now,
        }
        stmt = self.insert(cadence_policies).values(
            tenant_id=tenant_id,
            policy_id=policy.policy_id,
            scope=policy.scope.value,
            scope_id=policy.scope_id,
            **values,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=["tenant_id", "policy_id"], set_=values)
        )
        self._policies.pop(tenant_id, None)

    async def plan_covered(
        self, tenant_id: str, org_unit_ids: Sequence[str] | None, at: datetime
    ) -> None:
        await self.flush()
        e = directory.employees
        where = [e.c.tenant_id == tenant_id, e.c.active.is_(True), e.c.profile_at.is_not(None)]
        if org_unit_ids is not None:
            where.append(e.c.org_unit_id.in_(list(org_unit_ids)))
        covered = select(e.c.tenant_id, e.c.employee_id, literal(at, UtcDateTime()))
        stmt = self.insert(planning).from_select(
            ["tenant_id", "employee_id", "plan_at"], covered.where(and_(*where))
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "employee_id"], set_={"plan_at": stmt.excluded.plan_at}
            )
        )

    async def add_obligations(self, obligations_: Sequence[Obligation]) -> int:
        added = 0
        elsewhere: list[Obligation] = []
        for ob in obligations_:
            held = self._held_for(ob)
            if held is None:
                elsewhere.append(ob)
            elif ob.id not in held:  # the id names the employee, kind and period
                held[ob.id] = self._added[ob.id] = ob
                added += 1
        if not elsewhere:
            return added
        await self._outside(elsewhere)
        result = await self.session.execute(
            self.insert(obligations).values([vars(o) for o in elsewhere]).on_conflict_do_nothing()
        )
        return added + max(int(result.rowcount), 0)  # type: ignore[attr-defined]

    async def follow_plan(self, obligations_: Sequence[Obligation], now: datetime) -> None:
        elsewhere: list[Obligation] = []
        for ob in obligations_:
            held = self._held_for(ob)
            if held is None:
                elsewhere.append(ob)
                continue
            current = held.get(ob.id)
            if current is None or current.state not in _OUTSTANDING:
                continue
            if (current.due_at, current.remind_at, current.miss_at) == (
                ob.due_at,
                ob.remind_at,
                ob.miss_at,
            ):
                continue
            later = ob.remind_at if current.state == ObligationState.OPEN.value else ob.miss_at
            self._put(
                held,
                dataclasses.replace(
                    current,
                    due_at=ob.due_at,
                    remind_at=ob.remind_at,
                    miss_at=ob.miss_at,
                    next_action_at=later,
                    updated_at=now,
                ),
            )
        if not elsewhere:
            return
        await self._outside(elsewhere)
        o = obligations.c
        due = bindparam("b_due", type_=o.due_at.type)
        remind = bindparam("b_remind", type_=o.remind_at.type)
        miss = bindparam("b_miss", type_=o.miss_at.type)
        await self.session.execute(
            update(obligations)
            .where(
                o.id == bindparam("b_id"),
                or_(*(o.state == state for state in _OUTSTANDING)),  # no IN in executemany
                or_(o.due_at != due, o.remind_at != remind, o.miss_at != miss),
            )
            .values(
                due_at=due,
                remind_at=remind,
                miss_at=miss,
                next_action_at=case((o.state == ObligationState.OPEN.value, remind), else_=miss),
                updated_at=now,
            ),
            [
                {"b_id": ob.id, "b_due": ob.due_at, "b_remind": ob.remind_at, "b_miss": ob.miss_at}
                for ob in elsewhere
            ],
        )

    async def cancel_unplanned(
        self, tenant_id: str, employee_id: str, *, after: date, keep: Sequence[str], now: datetime
    ) -> None:
        held = self._held(tenant_id, employee_id)
        if held is not None:
            for ob in list(held.values()):
                if ob.state in _OUTSTANDING and ob.period_start > after and ob.id not in keep:
                    self._put(held, _cancelled(ob, now))
            return
        await self.flush()
        await self.session.execute(
            update(obligations)
            .where(
                obligations.c.tenant_id == tenant_id,
                obligations.c.employee_id == employee_id,
                obligations.c.state.in_(_OUTSTANDING),
                obligations.c.period_start > after,
                obligations.c.id.not_in(list(keep)),
            )
            .values(state=ObligationState.CANCELLED.value, next_action_at=None, updated_at=now)
        )

    async def cancel_outstanding(
        self, tenant_id: str, employee_id: str, *, due_from: datetime | None, now: datetime
    ) -> int:
        held = self._held(tenant_id, employee_id)
        if held is not None:
            cancelled = 0
            for ob in list(held.values()):
                if ob.state in _OUTSTANDING and (due_from is None or ob.due_at >= due_from):
                    self._put(held, _cancelled(ob, now))
                    cancelled += 1
            return cancelled
        await self.flush()
        where = [
            obligations.c.tenant_id == tenant_id,
            obligations.c.employee_id == employee_id,
            obligations.c.state.in_(_OUTSTANDING),
        ]
        if due_from is not None:
            where.append(obligations.c.due_at >= due_from)
        result = await self.session.execute(
            update(obligations)
            .where(and_(*where))
            .values(state=ObligationState.CANCELLED.value, next_action_at=None, updated_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def set_plan_at(self, tenant_id: str, employee_id: str, plan_at: datetime | None) -> None:
        self._plans[(tenant_id, employee_id)] = plan_at  # the last one wins, as upserts would

    async def claim_planning(self, now: datetime, batch_size: int) -> list[tuple[str, str]]:
        await self.flush()
        rows = await self.session.execute(
            select(planning.c.tenant_id, planning.c.employee_id)
            .where(planning.c.plan_at.is_not(None), planning.c.plan_at <= now)
            .order_by(planning.c.plan_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        return [(r.tenant_id, r.employee_id) for r in rows]

    async def claim_due(self, now: datetime, batch_size: int) -> list[Obligation]:
        await self.flush()
        rows = await self.session.execute(
            select(obligations)
            .where(obligations.c.next_action_at.is_not(None), obligations.c.next_action_at <= now)
            .order_by(obligations.c.next_action_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        return [_record(Obligation, r) for r in rows]

    async def by_ids(self, ids: Sequence[str]) -> dict[str, Obligation]:
        await self.flush()
        if not ids:
            return {}
        rows = await self.session.execute(
            select(obligations).where(obligations.c.id.in_(list(ids)))
        )
        return {r.id: _record(Obligation, r) for r in rows}

    async def record_facts(self, facts: Sequence[NewFact]) -> dict[tuple[str, str], str]:
        if not facts:
            return {}
        # One executemany (batched into multi-row INSERTs by SQLAlchemy's insertmanyvalues, with
        # a cached statement); RETURNING names only the rows this call inserted.
        inserted = await self.session.execute(
            self.insert(cadence_facts)
            .on_conflict_do_nothing()
            .returning(
                cadence_facts.c.obligation_id, cadence_facts.c.fact, cadence_facts.c.event_id
            ),
            [vars(f) for f in facts],
        )
        return {(r.obligation_id, r.fact): r.event_id for r in inserted}

    async def save_decisions(self, decisions: Sequence[Decision], now: datetime) -> None:
        await self._written_elsewhere()
        if not decisions:
            return
        await self.session.execute(
            update(obligations)
            .where(obligations.c.id == bindparam("b_id"))
            .values(
                state=bindparam("b_state"),
                next_action_at=bindparam("b_next"),
                consecutive_misses=bindparam("b_count"),
                updated_at=now,
            ),
            [
                {
                    "b_id": d.obligation_id,
                    "b_state": d.state,
                    "b_next": d.next_action_at,
                    "b_count": d.consecutive_misses,
                }
                for d in decisions
            ],
        )

    async def fulfillable(
        self, tenant_id: str, employee_id: str, kind: str, held_on: date
    ) -> list[Obligation]:
        await self.flush()
        rows = await self.session.execute(
            select(obligations)
            .where(
                obligations.c.tenant_id == tenant_id,
                obligations.c.employee_id == employee_id,
                obligations.c.kind == kind,
                obligations.c.period_start <= held_on,
                obligations.c.state.not_in([ObligationState.CANCELLED.value]),
            )
            .order_by(obligations.c.period_start)
            .with_for_update()
        )
        return [_record(Obligation, r) for r in rows]

    async def close(self, obligation_id: str, checkin_id: str, now: datetime) -> None:
        await self._written_elsewhere()
        await self.session.execute(
            update(obligations)
            .where(obligations.c.id == obligation_id, obligations.c.state.in_(_OUTSTANDING))
            .values(
                state=ObligationState.CLOSED.value,
                next_action_at=None,
                checkin_id=checkin_id,
                updated_at=now,
            )
        )

    async def listing(
        self, tenant_id: str, employee_id: str, state: str | None = None
    ) -> list[Obligation]:
        await self.flush()
        where = [obligations.c.tenant_id == tenant_id, obligations.c.employee_id == employee_id]
        if state:
            where.append(obligations.c.state == state)
        rows = await self.session.execute(
            select(obligations).where(and_(*where)).order_by(obligations.c.period_start)
        )
        return [_record(Obligation, r) for r in rows]

    async def hand_over(
        self, tenant_id: str, employee_id: str, manager_id: str, now: datetime
    ) -> None:
        held = self._held(tenant_id, employee_id)
        if held is not None:
            for ob in list(held.values()):
                if ob.state in _OUTSTANDING:
                    self._put(held, dataclasses.replace(ob, manager_id=manager_id, updated_at=now))
            return
        await self.flush()
        await self.session.execute(
            update(obligations)
            .where(
                obligations.c.tenant_id == tenant_id,
                obligations.c.employee_id == employee_id,
                obligations.c.state.in_(_OUTSTANDING),
            )
            .values(manager_id=manager_id, updated_at=now)
        )

    async def forget_person(self, tenant_id: str, person: str) -> None:
        await self._written_elsewhere()
        owed = select(obligations.c.id).where(
            obligations.c.tenant_id == tenant_id, obligations.c.employee_id == person
        )
        await self.session.execute(
            delete(cadence_facts).where(cadence_facts.c.obligation_id.in_(owed))
        )
        await self.session.execute(
            delete(obligations).where(
                obligations.c.tenant_id == tenant_id, obligations.c.employee_id == person
            )
        )
        await self.session.execute(
            delete(planning).where(
                planning.c.tenant_id == tenant_id, planning.c.employee_id == person
            )
        )


class SqlGoalRepository:
    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        self.session = session
        self.insert = insert

    async def upsert(self, goal: Goal) -> None:
        values = {
            "owner_type": goal.owner_type,
            "owner_id": goal.owner_id,
            "title": goal.title,
            "visibility": goal.visibility,
            "archived": goal.archived,
            "updated_at": goal.updated_at,
        }
        stmt = self.insert(goals).values(
            tenant_id=goal.tenant_id, goal_id=goal.goal_id, progress=goal.progress, **values
        )
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=["tenant_id", "goal_id"], set_=values)
        )

    async def archive(self, tenant_id: str, goal_id: str, now: datetime) -> None:
        await self.session.execute(
            update(goals)
            .where(goals.c.tenant_id == tenant_id, goals.c.goal_id == goal_id)
            .values(archived=True, updated_at=now)
        )

    async def record_progress(
        self, tenant_id: str, goal_id: str, progress: float, recorded_at: datetime, now: datetime
    ) -> None:
        await self.session.execute(
            update(goals)
            .where(goals.c.tenant_id == tenant_id, goals.c.goal_id == goal_id)
            .values(progress=progress, updated_at=now)
        )
        await self.session.execute(
            goal_progress.insert().values(
                tenant_id=tenant_id, goal_id=goal_id, progress=progress, recorded_at=recorded_at
            )
        )

    async def unknown(self, tenant_id: str, goal_ids: Sequence[str]) -> set[str]:
        if not goal_ids:
            return set()
        known = (
            await self.session.scalars(
                select(goals.c.goal_id).where(
                    goals.c.tenant_id == tenant_id,
                    goals.c.goal_id.in_(list(goal_ids)),
                    goals.c.archived.is_(False),
                )
            )
        ).all()
        return set(goal_ids) - set(known)

    async def of_owners(
        self, tenant_id: str, owner_id: str, other_id: str, *, other_private: bool
    ) -> list[Goal]:
        other = goals.c.owner_id == other_id
        if not other_private:
            other = and_(other, goals.c.visibility != Visibility.PRIVATE.value)
        rows = await self.session.execute(
            select(goals)
            .where(
                goals.c.tenant_id == tenant_id,
                or_(goals.c.owner_id == owner_id, other),
                goals.c.archived.is_(False),
            )
            .order_by(goals.c.owner_id, goals.c.goal_id)
        )
        return [_record(Goal, r) for r in rows]

    async def progress_at(self, tenant_id: str, goal_id: str, at: datetime) -> float | None:
        value = await self.session.scalar(
            select(goal_progress.c.progress)
            .where(
                goal_progress.c.tenant_id == tenant_id,
                goal_progress.c.goal_id == goal_id,
                goal_progress.c.recorded_at <= at,
            )
            .order_by(goal_progress.c.recorded_at.desc())
            .limit(1)
        )
        return None if value is None else float(value)

    async def owner_erased(self, tenant_id: str, employee_id: str) -> bool:
        e = directory.employees
        erased_at = await self.session.scalar(
            select(e.c.erased_at).where(e.c.tenant_id == tenant_id, e.c.employee_id == employee_id)
        )
        return erased_at is not None

    async def forget_owner(self, tenant_id: str, person: str) -> None:
        own = (
            goals.c.tenant_id == tenant_id,
            goals.c.owner_type == OwnerType.PERSON.value,
            goals.c.owner_id == person,
        )
        await self.session.execute(
            delete(goal_progress).where(
                goal_progress.c.tenant_id == tenant_id,
                goal_progress.c.goal_id.in_(select(goals.c.goal_id).where(*own)),
            )
        )
        await self.session.execute(delete(goals).where(*own))


class SqlDepartureRepository:
    """A chunk of people events reads its employees' departures ahead (:meth:`read_ahead`) and
    saves theirs in memory; :meth:`flush` writes them in one statement (the unit of work calls
    it before commit, every other method first)."""

    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        self.session = session
        self.insert = insert
        #: Employees read ahead: their departure as this transaction has left it (None: none).
        self._known: dict[Person, Departure | None] = {}
        self._saved: dict[Person, Departure] = {}

    async def read_ahead(self, people: Iterable[Person]) -> None:
        d = departures.c
        for tenant_id, ids in _by_tenant(people, self._known).items():
            for chunk in chunks(ids):
                rows = await self.session.execute(
                    select(departures).where(d.tenant_id == tenant_id, d.employee_id.in_(chunk))
                )
                found = {r.employee_id: _record(Departure, r) for r in rows}
                for employee_id in chunk:
                    self._known[(tenant_id, employee_id)] = found.get(employee_id)

    async def flush(self) -> None:
        if not self._saved:
            return
        saved, self._saved = list(self._saved.values()), {}
        stmt = self.insert(departures)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "employee_id"],
                set_={
                    "left_at": stmt.excluded.left_at,
                    "texts_removed_at": stmt.excluded.texts_removed_at,
                    "feedback_removed_at": stmt.excluded.feedback_removed_at,
                },
            ),
            [vars(d) for d in saved],
        )

    def _where(self, tenant_id: str, employee_id: str) -> tuple[ColumnElement[bool], ...]:
        return (departures.c.tenant_id == tenant_id, departures.c.employee_id == employee_id)

    async def get(self, tenant_id: str, employee_id: str) -> Departure | None:
        if (tenant_id, employee_id) in self._known:
            return self._known[(tenant_id, employee_id)]
        await self.flush()
        row = (
            await self.session.execute(
                select(departures).where(*self._where(tenant_id, employee_id))
            )
        ).first()
        return None if row is None else _record(Departure, row)

    async def save(self, departure: Departure) -> None:
        key = (departure.tenant_id, departure.employee_id)
        if key in self._known:
            self._known[key] = self._saved[key] = departure
            return
        await self.flush()
        values = {
            "left_at": departure.left_at,
            "texts_removed_at": departure.texts_removed_at,
            "feedback_removed_at": departure.feedback_removed_at,
        }
        stmt = self.insert(departures).values(
            tenant_id=departure.tenant_id, employee_id=departure.employee_id, **values
        )
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=["tenant_id", "employee_id"], set_=values)
        )

    async def _claim(
        self, removed_at: ColumnElement[Any], before: datetime, batch_size: int
    ) -> list[Departure]:
        await self.flush()
        rows = await self.session.execute(
            select(departures)
            .where(
                departures.c.left_at.is_not(None),
                removed_at.is_(None),
                departures.c.left_at <= before,
            )
            .order_by(departures.c.left_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        return [_record(Departure, r) for r in rows]

    async def claim_texts_due(self, before: datetime, batch_size: int) -> list[Departure]:
        return await self._claim(departures.c.texts_removed_at, before, batch_size)

    async def claim_feedback_due(self, before: datetime, batch_size: int) -> list[Departure]:
        return await self._claim(departures.c.feedback_removed_at, before, batch_size)

    async def mark_removed(
        self, tenant_id: str, employee_id: str, *, texts: bool, now: datetime
    ) -> None:
        column = "texts_removed_at" if texts else "feedback_removed_at"
        await self.flush()
        self._known.pop((tenant_id, employee_id), None)
        await self.session.execute(
            update(departures).where(*self._where(tenant_id, employee_id)).values({column: now})
        )

    async def forget(self, tenant_id: str, employee_id: str) -> None:
        await self.flush()
        self._known.pop((tenant_id, employee_id), None)
        await self.session.execute(delete(departures).where(*self._where(tenant_id, employee_id)))
