"""A synthetic organisation and its event stream, for reporting's benchmarks.

The org: one root, 10 divisions, 8 departments each, 10 groups each, then teams of 25 people
(a head, three team leads with seven reports each). 200,000 employees make 8,000 teams and
8,891 units. Each month every employee owes a monthly check-in (held on time, late, or missed);
people give feedback, own a goal per quarter with progress, status changes and staleness, and
get notified. Events are built with ``model_construct`` (valid by construction) for speed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    Channel,
    CheckinCompleted,
    CheckinDue,
    CheckinKind,
    CheckinMissed,
    EmployeeUpserted,
    FeedbackGiven,
    FeedbackKind,
    GoalCreated,
    GoalKind,
    GoalProgressRecorded,
    GoalStale,
    GoalStatus,
    GoalStatusChanged,
    Initiator,
    NotificationCategory,
    NotificationSent,
    OrgUnitUpserted,
    OwnerType,
    ReflectionSubmitted,
    Visibility,
)

TEAM = 25
START = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)


def _month_start(index: int) -> datetime:
    year, month = divmod(START.month - 1 + index, 12)
    return START.replace(year=START.year + year, month=month + 1, day=1)


def org(tenant: str, employees: int) -> tuple[list[Event], list[tuple[str, str, str]]]:
    """Units and employees; returns (events, [(employee, manager, unit)])."""
    at = START - timedelta(days=30)
    events: list[Event] = []
    people: list[tuple[str, str, str]] = []

    def unit(uid: str, name: str, parent: str | None, head: str) -> None:
        events.append(
            OrgUnitUpserted.model_construct(
                tenant_id=tenant,
                occurred_at=at,
                org_unit_id=uid,
                name=name,
                parent_id=parent,
                head_id=head,
            )
        )

    def person(eid: str, manager: str | None, uid: str) -> None:
        events.append(
            EmployeeUpserted.model_construct(
                tenant_id=tenant,
                occurred_at=at,
                employee_id=eid,
                email=f"{eid}@example.com",
                display_name=f"Employee {eid}",
                manager_id=manager,
                org_unit_id=uid,
                time_zone="Europe/Amsterdam",
                locale="en",
                hired_on=date(2020, 1, 1),
                active=True,
            )
        )
        if manager is not None:
            people.append((eid, manager, uid))

    teams = max(1, employees // TEAM)
    unit("root", "Company", None, "ceo")
    person("ceo", None, "root")
    made = 0
    for t in range(teams):
        d, g = t // 100, t // 10
        division, department, group = f"div{d // 8}", f"dep{d}", f"grp{g}"
        if t % 800 == 0:
            unit(division, f"Division {d // 8}", "root", f"h-{division}")
            person(f"h-{division}", "ceo", division)
        if t % 100 == 0:
            unit(department, f"Department {d}", division, f"h-{department}")
            person(f"h-{department}", f"h-{division}", department)
        if t % 10 == 0:
            unit(group, f"Group {g}", department, f"h-{group}")
            person(f"h-{group}", f"h-{department}", group)
        team = f"team{t}"
        head = f"h-{team}"
        unit(team, f"Team {t}", group, head)
        person(head, f"h-{group}", team)
        for lead_no in range(3):
            lead = f"l{t}-{lead_no}"
            person(lead, head, team)
            for i in range(7):
                person(f"e{t}-{lead_no}-{i}", lead, team)
        made += TEAM
        if made >= employees:
            break
    return events, people


def stream(tenant: str, employees: int, months: int, seed: int = 1) -> Iterator[Event]:
    """The whole stream in (roughly) time order: the org first, then month by month."""
    rnd = random.Random(seed)
    org_events, people = org(tenant, employees)
    yield from org_events
    everyone = [p[0] for p in people]
    for m in range(months):
        start = _month_start(m)
        due = (_month_start(m + 1) - timedelta(days=1)).replace(hour=17)  # last day, 17:00
        quarter_start = m % 3 == 0
        for eid, manager, _ in people:
            oid = f"ob-{eid}-{m}"
            fate = rnd.random()
            if fate < 0.12:
                yield CheckinDue.model_construct(
                    tenant_id=tenant,
                    occurred_at=due - timedelta(days=3),
                    obligation_id=oid,
                    employee_id=eid,
                    manager_id=manager,
                    kind=CheckinKind.MONTHLY,
                    period_start=start.date(),
                    period_end=due.date(),
                    due_at=due,
                )
            if fate < 0.2:
                yield CheckinMissed.model_construct(
                    tenant_id=tenant,
                    occurred_at=due + timedelta(days=5),
                    obligation_id=oid,
                    employee_id=eid,
                    manager_id=manager,
                    kind=CheckinKind.MONTHLY,
                    period_start=start.date(),
                    period_end=due.date(),
                    due_at=due,
                    consecutive_misses=1,
                )
            else:
                held = due - timedelta(days=rnd.randint(-5, 20))
                yield CheckinCompleted.model_construct(
                    tenant_id=tenant,
                    occurred_at=held,
                    checkin_id=f"ci-{oid}",
                    kind=CheckinKind.MONTHLY,
                    employee_id=eid,
                    manager_id=manager,
                    held_at=held,
                    initiated_by=Initiator.EMPLOYEE if rnd.random() < 0.4 else Initiator.MANAGER,
                    obligation_id=oid,
                    due_at=due,
                    goals_discussed=[],
                    open_action_items=1,
                    pulse=rnd.choice((None, 2, 3, 3, 4, 5)),
                )
            if quarter_start:
                gid = f"g-{eid}-{m}"
                yield GoalCreated.model_construct(
                    tenant_id=tenant,
                    occurred_at=start + timedelta(days=1),
                    goal_id=gid,
                    owner_type=OwnerType.PERSON,
                    owner_id=eid,
                    parent_goal_id=None,
                    kind=GoalKind.OKR,
                    title=f"Goal {gid}",
                    visibility=Visibility.TENANT,
                    period_start=start.date(),
                    period_end=(_month_start(m + 3) - timedelta(days=1)).date(),
                    update_interval_days=14,
                    key_results=[],
                )
            elif rnd.random() < 0.7:
                gid = f"g-{eid}-{m - m % 3}"
                yield GoalProgressRecorded.model_construct(
                    tenant_id=tenant,
                    occurred_at=start + timedelta(days=rnd.randint(2, 25)),
                    goal_id=gid,
                    key_result_id="kr",
                    value=1.0,
                    goal_progress=round(rnd.random(), 3),
                    confidence=round(rnd.random(), 2),
                    recorded_by=eid,
                )
                roll = rnd.random()
                if roll < 0.05:
                    yield GoalStatusChanged.model_construct(
                        tenant_id=tenant,
                        occurred_at=start + timedelta(days=26),
                        goal_id=gid,
                        owner_id=eid,
                        from_status=GoalStatus.ON_TRACK,
                        to_status=GoalStatus.AT_RISK,
                        suggested=True,
                        changed_by=None,
                    )
                elif roll < 0.08:
                    yield GoalStale.model_construct(
                        tenant_id=tenant,
                        occurred_at=start + timedelta(days=27),
                        goal_id=gid,
                        owner_id=eid,
                        last_progress_at=start + timedelta(days=26),
                        update_interval_days=14,
                    )
            receiver = rnd.choice(everyone)
            if rnd.random() < 0.3 and receiver != eid:
                yield FeedbackGiven.model_construct(
                    tenant_id=tenant,
                    occurred_at=start + timedelta(days=rnd.randint(0, 27)),
                    feedback_id=f"fb-{eid}-{m}",
                    giver_id=eid,
                    receiver_id=receiver,
                    kind=FeedbackKind.PRAISE if rnd.random() < 0.6 else FeedbackKind.CONSTRUCTIVE,
                    requested=rnd.random() < 0.2,
                )
            if rnd.random() < 0.1:
                yield ReflectionSubmitted.model_construct(
                    tenant_id=tenant,
                    occurred_at=start
                    + timedelta(days=rnd.randint(0, 27), seconds=rnd.randint(0, 86_000)),
                    employee_id=eid,
                    checkin_id=None,
                    pulse=rnd.choice((1, 2, 3, 4, 5)),
                )
            if rnd.random() < 0.1:
                yield NotificationSent.model_construct(
                    tenant_id=tenant,
                    occurred_at=due - timedelta(days=3),
                    notification_id=f"n-{oid}",
                    recipient_id=eid,
                    channel=Channel.EMAIL,
                    category=NotificationCategory.CHECKIN_DUE,
                    source_event_id=f"src-{oid}",
                )
