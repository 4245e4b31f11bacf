"""Cadence: policies, planning obligations ahead, and the sweep that reminds, misses, escalates."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, literal, or_, select, update

from rhythm_checkins.adapters.db import (
    cadence_facts,
    cadence_policies,
    directory,
    obligations,
    planning,
)
from rhythm_checkins.domain.access import POLICY
from rhythm_checkins.domain.obligations import (
    OUTSTANDING,
    Fact,
    ObligationState,
    consecutive_misses,
    escalation_target,
    next_action_at,
    obligation_id,
    should_escalate,
    sweep_step,
)
from rhythm_checkins.domain.periods import (
    Period,
    local_date,
    previous_period,
    start_of_day,
)
from rhythm_checkins.domain.policy import (
    CadencePolicy,
    Rule,
    next_planning_day,
    plan,
    resolve_policy,
    validate_policy,
)
from rhythm_checkins.use_cases.directory import (
    employee_profile,
    get_employee,
    manager_chain,
    people,
)
from rhythm_shared.contracts.envelope import new_event_id
from rhythm_shared.contracts.v1 import (
    CadenceEscalated,
    CadencePolicyChanged,
    CadenceRule,
    CheckinDue,
    CheckinKind,
    CheckinMissed,
    EscalationTarget,
    Frequency,
    PolicyScope,
)
from rhythm_shared.kit.access import Relationship, acts_as_person, relationships, require
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.db import UtcDateTime
from rhythm_shared.kit.errors import FieldError, InvalidInput, NotFound
from rhythm_shared.kit.uow import UnitOfWork

_OUTSTANDING = [s.value for s in OUTSTANDING]

# --- policies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetPolicy:
    scope: PolicyScope
    scope_id: str
    rules: Sequence[Rule]
    escalate_after: int = 2
    escalate_to: EscalationTarget = EscalationTarget.SKIP_LEVEL
    ramp_up_days: int = 30
    hr_contact_id: str | None = None


def policy_id_for(tenant_id: str, scope: PolicyScope, scope_id: str) -> str:
    digest = hashlib.sha256(f"{tenant_id}\x1f{scope.value}\x1f{scope_id}".encode()).hexdigest()
    return f"pol-{digest[:24]}"


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


def policy_view(policy: CadencePolicy) -> dict[str, Any]:
    return {
        "policy_id": policy.policy_id,
        "scope": policy.scope.value,
        "scope_id": policy.scope_id,
        "rules": [
            {
                "kind": r.kind.value,
                "frequency": r.frequency.value,
                "grace_days": r.grace_days,
                "lead_time_days": r.lead_time_days,
            }
            for r in policy.rules
        ],
        "escalate_after": policy.escalate_after,
        "escalate_to": policy.escalate_to.value,
        "ramp_up_days": policy.ramp_up_days,
        "hr_contact_id": policy.hr_contact_id,
    }


async def tenant_policies(uow: UnitOfWork, tenant_id: str) -> list[CadencePolicy]:
    rows = await uow.session.execute(
        select(cadence_policies).where(cadence_policies.c.tenant_id == tenant_id)
    )
    return [_policy_from_row(r) for r in rows]


async def set_policy(uow: UnitOfWork, principal: Principal, command: SetPolicy) -> dict[str, Any]:
    """Set the policy of a scope (hr_admin); the employees it covers are planned again."""
    tenant = principal.tenant
    rels = await relationships(people(uow, tenant), principal, None)
    require(POLICY, "set_cadence_policy", rels, "only hr_admin may set cadence policies")
    policy = CadencePolicy(
        policy_id=policy_id_for(tenant, command.scope, command.scope_id),
        scope=command.scope,
        scope_id=command.scope_id,
        rules=tuple(command.rules),
        escalate_after=command.escalate_after,
        escalate_to=command.escalate_to,
        ramp_up_days=command.ramp_up_days,
        hr_contact_id=command.hr_contact_id,
    )
    errors = validate_policy(policy)
    if command.scope == PolicyScope.TENANT and command.scope_id != tenant:
        errors.append(FieldError(("path", "scope_id"), "a tenant policy's scope_id is the tenant"))
    if command.scope == PolicyScope.EMPLOYEE and not await get_employee(
        uow, tenant, command.scope_id
    ):
        errors.append(FieldError(("path", "scope_id"), "not an employee of this tenant"))
    if command.hr_contact_id and not await get_employee(uow, tenant, command.hr_contact_id):
        errors.append(FieldError(("body", "hr_contact_id"), "not an employee of this tenant"))
    if errors:
        raise InvalidInput(errors)
    now = uow.clock.now()
    values = {
        "rules": policy_view(policy)["rules"],
        "escalate_after": policy.escalate_after,
        "escalate_to": policy.escalate_to.value,
        "ramp_up_days": policy.ramp_up_days,
        "hr_contact_id": policy.hr_contact_id,
        "updated_at": now,
    }
    stmt = uow.insert(cadence_policies).values(
        tenant_id=tenant,
        policy_id=policy.policy_id,
        scope=policy.scope.value,
        scope_id=policy.scope_id,
        **values,
    )
    await uow.session.execute(
        stmt.on_conflict_do_update(index_elements=["tenant_id", "policy_id"], set_=values)
    )
    await _replan_scope(uow, tenant, policy.scope, policy.scope_id)
    await uow.publish(
        CadencePolicyChanged(
            tenant_id=tenant,
            occurred_at=now,
            policy_id=policy.policy_id,
            scope=policy.scope,
            scope_id=policy.scope_id,
            rules=[
                CadenceRule(
                    kind=r.kind,
                    frequency=r.frequency,
                    grace_days=r.grace_days,
                    lead_time_days=r.lead_time_days,
                )
                for r in policy.rules
            ],
            escalate_after=policy.escalate_after,
            escalate_to=policy.escalate_to,
        )
    )
    return policy_view(policy)


async def _replan_scope(uow: UnitOfWork, tenant: str, scope: PolicyScope, scope_id: str) -> None:
    """Employees under the scope are planned by the sweeper's next round (a tenant of 200,000
    is not planned inside an HTTP request); one employee is planned at once."""
    if scope == PolicyScope.EMPLOYEE:
        await plan_employee(uow, tenant, scope_id)
        return
    e = directory.employees
    where = [e.c.tenant_id == tenant, e.c.active.is_(True), e.c.profile_at.is_not(None)]
    if scope == PolicyScope.ORG_UNIT:
        where.append(e.c.org_unit_id.in_(await people(uow, tenant).subunits(scope_id)))
    covered = select(e.c.tenant_id, e.c.employee_id, literal(uow.clock.now(), UtcDateTime()))
    stmt = uow.insert(planning).from_select(
        ["tenant_id", "employee_id", "plan_at"], covered.where(and_(*where))
    )
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"], set_={"plan_at": stmt.excluded.plan_at}
        )
    )


async def list_policies(uow: UnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    """For hr_admin, executives, and people who manage someone in the directory (a ``manager``
    role alone is no reason)."""
    directory_ = people(uow, principal.tenant)
    rels = set(await relationships(directory_, principal, None))
    if acts_as_person(principal) and await directory_.direct_reports(principal.subject):
        rels.add(Relationship.MANAGER)
    require(
        POLICY,
        "list_cadence_policies",
        frozenset(rels),
        "cadence policies are for managers, executives and hr_admin",
    )
    return [policy_view(p) for p in await tenant_policies(uow, principal.tenant)]


# --- planning obligations ahead -----------------------------------------------------------------


async def plan_employee(
    uow: UnitOfWork,
    tenant: str,
    employee_id: str,
    policies: Sequence[CadencePolicy] | None = None,
) -> int:
    """Create the obligations owed now and next period; cancel future ones no longer owed;
    note when to plan again. Returns how many obligations were created."""
    now = uow.clock.now()
    profile = await employee_profile(people(uow, tenant), employee_id)
    if profile is None:
        return 0
    policy = resolve_policy(
        policies if policies is not None else await tenant_policies(uow, tenant), tenant, profile
    )
    today = local_date(now, profile.time_zone)
    planned = plan(profile, policy, today)
    created = 0
    if planned and policy is not None and profile.manager_id is not None:
        rows = [
            {
                "id": obligation_id(tenant, employee_id, p.kind, p.period.start),
                "tenant_id": tenant,
                "employee_id": employee_id,
                "manager_id": profile.manager_id,
                "kind": p.kind.value,
                "frequency": p.frequency.value,
                "policy_id": policy.policy_id,
                "period_start": p.period.start,
                "period_end": p.period.end,
                "due_at": p.due_at,
                "remind_at": p.remind_at,
                "miss_at": p.miss_at,
                "state": ObligationState.OPEN.value,
                "next_action_at": p.remind_at,
                "consecutive_misses": 0,
                "created_at": now,
                "updated_at": now,
            }
            for p in planned
        ]
        result = await uow.session.execute(
            uow.insert(obligations).values(rows).on_conflict_do_nothing()
        )
        created = max(int(result.rowcount), 0)  # type: ignore[attr-defined]
        # Obligations planned earlier keep their period but follow the employee's zone and the
        # policy's lead and grace days as they are now (a move abroad, a longer grace).
        o = obligations.c
        due = bindparam("b_due", type_=o.due_at.type)
        remind = bindparam("b_remind", type_=o.remind_at.type)
        miss = bindparam("b_miss", type_=o.miss_at.type)
        await uow.session.execute(
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
                {
                    "b_id": row["id"],
                    "b_due": row["due_at"],
                    "b_remind": row["remind_at"],
                    "b_miss": row["miss_at"],
                }
                for row in rows
            ],
        )
    # Future periods that the current policy no longer owes (kind dropped, frequency changed).
    keep = [obligation_id(tenant, employee_id, p.kind, p.period.start) for p in planned]
    await uow.session.execute(
        update(obligations)
        .where(
            obligations.c.tenant_id == tenant,
            obligations.c.employee_id == employee_id,
            obligations.c.state.in_(_OUTSTANDING),
            obligations.c.period_start > today,
            obligations.c.id.not_in(keep),
        )
        .values(state=ObligationState.CANCELLED.value, next_action_at=None, updated_at=now)
    )
    gone = profile.deactivated_at is not None and profile.deactivated_at <= now
    again = next_planning_day(policy, today) if profile.active and not gone else None
    await set_plan_at(
        uow, tenant, employee_id, start_of_day(again, profile.time_zone) if again else None
    )
    return created


async def set_plan_at(
    uow: UnitOfWork, tenant: str, employee_id: str, plan_at: datetime | None
) -> None:
    """When the planner must look at the employee next (None: nothing is owed any more)."""
    stmt = uow.insert(planning).values(tenant_id=tenant, employee_id=employee_id, plan_at=plan_at)
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"], set_={"plan_at": plan_at}
        )
    )


async def cancel_outstanding(
    uow: UnitOfWork, tenant_id: str, employee_id: str, *, due_from: datetime | None = None
) -> int:
    """Nothing more is owed: outstanding obligations (due from ``due_from``) are cancelled."""
    where = [
        obligations.c.tenant_id == tenant_id,
        obligations.c.employee_id == employee_id,
        obligations.c.state.in_(_OUTSTANDING),
    ]
    if due_from is not None:
        where.append(obligations.c.due_at >= due_from)
    result = await uow.session.execute(
        update(obligations)
        .where(and_(*where))
        .values(
            state=ObligationState.CANCELLED.value,
            next_action_at=None,
            updated_at=uow.clock.now(),
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def plan_due_employees(uow: UnitOfWork, batch_size: int) -> int:
    """Claim employees whose next planning time has come (index on plan_at; SKIP LOCKED lets
    replicas share the work) and plan them."""
    now = uow.clock.now()
    claimed = (
        await uow.session.execute(
            select(planning.c.tenant_id, planning.c.employee_id)
            .where(planning.c.plan_at.is_not(None), planning.c.plan_at <= now)
            .order_by(planning.c.plan_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    cache: dict[str, list[CadencePolicy]] = {}
    for tenant, employee_id in claimed:
        if tenant not in cache:
            cache[tenant] = await tenant_policies(uow, tenant)
        await plan_employee(uow, tenant, employee_id, cache[tenant])
    return len(claimed)


# --- the sweep ---------------------------------------------------------------------------------


@dataclass
class SweepResult:
    planned: int = 0
    claimed: int = 0
    reminded: int = 0
    missed: int = 0
    escalated: int = 0
    deferred: int = 0
    events: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.planned + self.claimed - self.deferred

    def add(self, other: SweepResult) -> None:
        for name in ("planned", "claimed", "reminded", "missed", "escalated", "deferred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Decision:
    row: Any
    state: ObligationState
    next_action_at: datetime | None
    consecutive: int
    facts: list[Fact]


async def sweep_obligations(uow: UnitOfWork, batch_size: int) -> SweepResult:
    """One batch: claim obligations whose next action is due, move each along its state
    machine and tell the world, each fact once (``cadence_facts`` is its natural key)."""
    now = uow.clock.now()
    result = SweepResult()
    rows = (
        await uow.session.execute(
            select(obligations)
            .where(obligations.c.next_action_at.is_not(None), obligations.c.next_action_at <= now)
            .order_by(obligations.c.next_action_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    result.claimed = len(rows)
    if not rows:
        return result
    predecessors = await _predecessors(uow, rows, now)
    decided: dict[str, _Decision] = {}
    policies: dict[tuple[str, str], CadencePolicy | None] = {}
    for row in rows:
        step = sweep_step(ObligationState(row.state), row.remind_at, row.miss_at, now)
        if step is None:  # nothing due after all: look again when something is
            state = ObligationState(row.state)
            later = next_action_at(state, row.remind_at, row.miss_at)
            decided[row.id] = _Decision(row, state, later, row.consecutive_misses, [])
            continue
        if step.fact != Fact.MISSED:
            decided[row.id] = _Decision(row, step.target, step.next_action_at, 0, [step.fact])
            continue
        prev_id = _predecessor_id(row)
        prev = decided.get(prev_id)
        if prev is not None:
            prev_state, prev_count = prev.state, prev.consecutive
        elif prev_id in predecessors:
            p = predecessors[prev_id]
            prev_state, prev_count = ObligationState(p.state), p.consecutive_misses
            if prev_state in OUTSTANDING and p.miss_at <= now:
                # Its predecessor's miss is not decided yet (another sweeper holds it): count
                # the run of misses only once it is, in a later round.
                result.deferred += 1
                continue
        else:
            prev_state, prev_count = None, 0
        count = consecutive_misses(prev_state, prev_count)
        facts = [Fact.MISSED]
        state = ObligationState.MISSED
        key = (row.tenant_id, row.policy_id)
        if key not in policies:
            policies[key] = await _policy(uow, row.tenant_id, row.policy_id)
        policy = policies[key]
        if policy is not None and should_escalate(count, policy.escalate_after):
            facts.append(Fact.ESCALATED)
            state = ObligationState.ESCALATED
        decided[row.id] = _Decision(row, state, None, count, facts)

    fresh = await _record_facts(uow, now, decided.values())
    if decided:
        await uow.session.execute(
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
                    "b_id": d.row.id,
                    "b_state": d.state.value,
                    "b_next": d.next_action_at,
                    "b_count": d.consecutive,
                }
                for d in decided.values()
            ],
        )
    for decision in decided.values():
        for fact in decision.facts:
            event_id = fresh.get((decision.row.id, fact))
            if event_id is None:
                continue  # already told: the natural key says so
            await _publish_fact(uow, decision, fact, event_id, policies, result)
            result.events.append(event_id)
    return result


def _predecessor_id(row: Any) -> str:
    period = Period(row.period_start, row.period_end)
    before = previous_period(Frequency(row.frequency), period)
    return obligation_id(row.tenant_id, row.employee_id, CheckinKind(row.kind), before.start)


async def _predecessors(uow: UnitOfWork, rows: Sequence[Any], now: datetime) -> dict[str, Any]:
    """The obligations before those about to be missed (to count misses in a row)."""
    ids = [_predecessor_id(r) for r in rows if r.state in _OUTSTANDING and r.miss_at <= now]
    if not ids:
        return {}
    found = await uow.session.execute(
        select(
            obligations.c.id,
            obligations.c.state,
            obligations.c.consecutive_misses,
            obligations.c.miss_at,
        ).where(obligations.c.id.in_(ids))
    )
    return {r.id: r for r in found}


async def _policy(uow: UnitOfWork, tenant: str, policy_id: str) -> CadencePolicy | None:
    row = (
        await uow.session.execute(
            select(cadence_policies).where(
                cadence_policies.c.tenant_id == tenant, cadence_policies.c.policy_id == policy_id
            )
        )
    ).first()
    return _policy_from_row(row) if row else None


async def _record_facts(
    uow: UnitOfWork, now: datetime, decisions: Any
) -> dict[tuple[str, Fact], str]:
    """Insert each fact's natural key; only those inserted now are told (exactly once)."""
    wanted = [
        {
            "obligation_id": d.row.id,
            "fact": fact.value,
            "tenant_id": d.row.tenant_id,
            "event_id": new_event_id(),
            "occurred_at": now,
        }
        for d in decisions
        for fact in d.facts
    ]
    if not wanted:
        return {}
    # One executemany (batched into multi-row INSERTs by SQLAlchemy's insertmanyvalues, with a
    # cached statement); RETURNING names only the rows this call inserted.
    inserted = await uow.session.execute(
        uow.insert(cadence_facts)
        .on_conflict_do_nothing()
        .returning(cadence_facts.c.obligation_id, cadence_facts.c.fact, cadence_facts.c.event_id),
        wanted,
    )
    return {(r.obligation_id, Fact(r.fact)): r.event_id for r in inserted}


async def _publish_fact(
    uow: UnitOfWork,
    decision: _Decision,
    fact: Fact,
    event_id: str,
    policies: dict[tuple[str, str], CadencePolicy | None],
    result: SweepResult,
) -> None:
    row = decision.row
    now = uow.clock.now()
    common = {
        "tenant_id": row.tenant_id,
        "occurred_at": now,
        "obligation_id": row.id,
        "employee_id": row.employee_id,
        "manager_id": row.manager_id,
    }
    period = {
        "kind": CheckinKind(row.kind),
        "period_start": row.period_start,
        "period_end": row.period_end,
        "due_at": row.due_at,
    }
    if fact == Fact.DUE:
        await uow.publish(CheckinDue(**common, **period), event_id=event_id)
        result.reminded += 1
    elif fact == Fact.MISSED:
        await uow.publish(
            CheckinMissed(**common, **period, consecutive_misses=decision.consecutive),
            event_id=event_id,
        )
        result.missed += 1
    else:
        policy = policies[(row.tenant_id, row.policy_id)]
        assert policy is not None  # an escalation is only decided with its policy
        chain = await manager_chain(uow, row.tenant_id, row.manager_id)
        target = escalation_target(
            policy.escalate_to, row.manager_id, chain[0] if chain else None, policy.hr_contact_id
        )
        await uow.publish(
            CadenceEscalated(
                **common,
                escalated_to_id=target.to_id,
                level=target.level,
                consecutive_misses=decision.consecutive,
            ),
            event_id=event_id,
        )
        result.escalated += 1


async def sweep(uow: UnitOfWork, batch_size: int = 500) -> SweepResult:
    """One round of the cadence job: plan employees due for planning, then sweep obligations."""
    result = SweepResult(planned=await plan_due_employees(uow, batch_size))
    result.add(await sweep_obligations(uow, batch_size))
    return result


# --- obligations and check-ins ------------------------------------------------------------------


async def close_obligation_for(
    uow: UnitOfWork,
    tenant: str,
    employee_id: str,
    kind: CheckinKind,
    held_on: date,
    checkin_id: str,
) -> tuple[str, datetime] | None:
    """The obligation a completed check-in fulfils: an earlier one still within its grace
    (late), else the outstanding one whose period holds the day it was held, else the oldest
    outstanding one before it; a missed one of that period is still linked (so reporting counts
    it late). Returns (id, due_at)."""
    rows = (
        await uow.session.execute(
            select(obligations)
            .where(
                obligations.c.tenant_id == tenant,
                obligations.c.employee_id == employee_id,
                obligations.c.kind == kind.value,
                obligations.c.period_start <= held_on,
                obligations.c.state.not_in([ObligationState.CANCELLED.value]),
            )
            .order_by(obligations.c.period_start)
            .with_for_update()
        )
    ).all()
    outstanding = [r for r in rows if r.state in _OUTSTANDING]
    # A conversation just after a period ended, within that period's grace, is the late
    # check-in of the period it was owed for (what the people involved mean by it), not an early
    # one for the new period; otherwise it fulfils the period that holds the day it was held.
    late = next(
        (r for r in outstanding if r.period_end < held_on and r.miss_at.date() >= held_on), None
    )
    target = late or next((r for r in outstanding if r.period_end >= held_on), None)
    if target is None and outstanding:
        target = outstanding[0]
    if target is not None:
        await uow.session.execute(
            update(obligations)
            .where(obligations.c.id == target.id, obligations.c.state.in_(_OUTSTANDING))
            .values(
                state=ObligationState.CLOSED.value,
                next_action_at=None,
                checkin_id=checkin_id,
                updated_at=uow.clock.now(),
            )
        )
        return target.id, target.due_at
    same_period = next((r for r in rows if r.period_end >= held_on), None)
    return (same_period.id, same_period.due_at) if same_period else None


def obligation_view(row: Any) -> dict[str, Any]:
    return {
        "obligation_id": row.id,
        "employee_id": row.employee_id,
        "manager_id": row.manager_id,
        "kind": row.kind,
        "frequency": row.frequency,
        "period_start": row.period_start,
        "period_end": row.period_end,
        "due_at": row.due_at,
        "remind_at": row.remind_at,
        "miss_at": row.miss_at,
        "state": row.state,
        "consecutive_misses": row.consecutive_misses,
        "checkin_id": row.checkin_id,
    }


async def list_obligations(
    uow: UnitOfWork, principal: Principal, employee_id: str, state: str | None = None
) -> list[dict[str, Any]]:
    """An employee's obligations: for themselves, their manager chain and hr_admin."""
    tenant = principal.tenant
    directory_ = people(uow, tenant)
    if await directory_.person(employee_id) is None:
        raise NotFound("no such employee")
    require(
        POLICY,
        "list_obligations",
        await relationships(directory_, principal, employee_id),
        "only the employee, their manager chain or hr_admin may see this",
    )
    where = [obligations.c.tenant_id == tenant, obligations.c.employee_id == employee_id]
    if state:
        where.append(obligations.c.state == state)
    rows = await uow.session.execute(
        select(obligations).where(and_(*where)).order_by(obligations.c.period_start)
    )
    return [obligation_view(r) for r in rows]
