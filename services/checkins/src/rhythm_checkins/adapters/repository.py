"""Every SQL statement of the write side, as methods of the repositories the unit of work
carries (:mod:`rhythm_checkins.adapters.unit_of_work`); the protocols are in
:mod:`rhythm_checkins.domain.ports`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from rhythm_shared.kit.db import UtcDateTime

#: A dialect-aware INSERT that supports ``on_conflict_do_*`` (the unit of work's).
Insert = Callable[[Any], Any]

_OUTSTANDING = [s.value for s in OUTSTANDING]


def _record(cls: type[Any], row: Any) -> Any:
    return cls(**dict(row._mapping))


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SqlCheckinRepository:
    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        self.session = session
        self.insert = insert

    async def get(self, tenant_id: str, checkin_id: str, *, lock: bool = False) -> Checkin | None:
        stmt = select(checkins).where(
            checkins.c.tenant_id == tenant_id, checkins.c.id == checkin_id
        )
        row = (await self.session.execute(stmt.with_for_update() if lock else stmt)).first()
        return None if row is None else _record(Checkin, row)

    async def add(self, checkin: Checkin) -> None:
        await self.session.execute(checkins.insert().values(**vars(checkin)))

    async def update(self, checkin_id: str, **values: Any) -> None:
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
        for chunk in _chunks(about, 500):
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


class SqlCadenceRepository:
    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        self.session = session
        self.insert = insert

    async def policies(self, tenant_id: str) -> list[CadencePolicy]:
        rows = await self.session.execute(
            select(cadence_policies).where(cadence_policies.c.tenant_id == tenant_id)
        )
        return [_policy_from_row(r) for r in rows]

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

    async def plan_covered(
        self, tenant_id: str, org_unit_ids: Sequence[str] | None, at: datetime
    ) -> None:
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
        if not obligations_:
            return 0
        result = await self.session.execute(
            self.insert(obligations)
            .values([vars(o) for o in obligations_])
            .on_conflict_do_nothing()
        )
        return max(int(result.rowcount), 0)  # type: ignore[attr-defined]

    async def follow_plan(self, obligations_: Sequence[Obligation], now: datetime) -> None:
        if not obligations_:
            return
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
                for ob in obligations_
            ],
        )

    async def cancel_unplanned(
        self, tenant_id: str, employee_id: str, *, after: date, keep: Sequence[str], now: datetime
    ) -> None:
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
        stmt = self.insert(planning).values(
            tenant_id=tenant_id, employee_id=employee_id, plan_at=plan_at
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "employee_id"], set_={"plan_at": plan_at}
            )
        )

    async def claim_planning(self, now: datetime, batch_size: int) -> list[tuple[str, str]]:
        rows = await self.session.execute(
            select(planning.c.tenant_id, planning.c.employee_id)
            .where(planning.c.plan_at.is_not(None), planning.c.plan_at <= now)
            .order_by(planning.c.plan_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        return [(r.tenant_id, r.employee_id) for r in rows]

    async def claim_due(self, now: datetime, batch_size: int) -> list[Obligation]:
        rows = await self.session.execute(
            select(obligations)
            .where(obligations.c.next_action_at.is_not(None), obligations.c.next_action_at <= now)
            .order_by(obligations.c.next_action_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        return [_record(Obligation, r) for r in rows]

    async def by_ids(self, ids: Sequence[str]) -> dict[str, Obligation]:
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
    def __init__(self, session: AsyncSession, insert: Insert) -> None:
        self.session = session
        self.insert = insert

    def _where(self, tenant_id: str, employee_id: str) -> tuple[ColumnElement[bool], ...]:
        return (departures.c.tenant_id == tenant_id, departures.c.employee_id == employee_id)

    async def get(self, tenant_id: str, employee_id: str) -> Departure | None:
        row = (
            await self.session.execute(
                select(departures).where(*self._where(tenant_id, employee_id))
            )
        ).first()
        return None if row is None else _record(Departure, row)

    async def save(self, departure: Departure) -> None:
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
        await self.session.execute(
            update(departures).where(*self._where(tenant_id, employee_id)).values({column: now})
        )

    async def forget(self, tenant_id: str, employee_id: str) -> None:
        await self.session.execute(delete(departures).where(*self._where(tenant_id, employee_id)))
