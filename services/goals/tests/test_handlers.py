"""Every goals handler against the fake unit of work: no database, no broker.

The org: ceo heads ou-root; mia heads ou-platform (under root) and manages ann and bob; carl
works in ou-sales (under root), managed by sam who heads it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from rhythm_goals import commands
from rhythm_goals.commands import (
    AlignGoal,
    ArchiveGoal,
    BulkCreateGoals,
    ChangeStatus,
    CreateGoal,
    GoalTemplate,
    KeyResultInput,
    RecordProgress,
    UpdateGoal,
)
from rhythm_goals.domain.model import Goal
from rhythm_goals.entrypoints.jobs import jobs
from rhythm_goals.handlers import (
    COMMAND_HANDLERS,
    EVENT_HANDLERS,
    JOB_HANDLERS,
    align_goal,
    apply_org_unit,
    apply_person,
    apply_person_key,
    archive_goal,
    archive_leavers_goals,
    bulk_create_goals,
    change_status,
    create_goal,
    erase_person,
    mark_stale_goals,
    record_progress,
    stale_event_id,
    update_goal,
)
from rhythm_goals.main import Settings, build
from rhythm_goals.use_cases.common import directory
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    ArchiveReason,
    Direction,
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    GoalArchived,
    GoalCreated,
    GoalProgressRecorded,
    GoalStale,
    GoalStatus,
    GoalStatusChanged,
    GoalUpdated,
    OrgUnitUpserted,
    OwnerType,
    PersonDataErased,
    PersonKeyDestroyed,
    PersonKeyIssued,
    Visibility,
)
from rhythm_shared.kit.audit import AuditAction
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.goals.tests.goals_fakes import FakeGoalsUnitOfWork

TENANT = "acme"
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def who(subject: str, *roles: str, tenant: str = TENANT) -> Principal:
    return Principal(subject=subject, tenant=tenant, roles=frozenset(roles or ("employee",)))


def envelope(event: Event, source: str = "/rhythm/people") -> Envelope[Any]:
    return Envelope(
        id=str(uuid.uuid4()),
        source=source,
        type=event.type,
        time=event.occurred_at,
        subject=event.subject,
        tenant_id=event.tenant_id,
        event=event,
    )


def employee(
    employee_id: str, manager_id: str | None, org_unit_id: str, *, at: datetime = NOW
) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=TENANT,
        occurred_at=at,
        employee_id=employee_id,
        email=f"{employee_id}@example.com",
        display_name=employee_id.title(),
        manager_id=manager_id,
        org_unit_id=org_unit_id,
        time_zone="Europe/Amsterdam",
        locale="en-GB",
        hired_on=date(2024, 1, 1),
    )


def leaving(employee_id: str, effective_at: datetime) -> EmployeeDeactivated:
    """A deactivation HR sends after the person's last upsert."""
    return EmployeeDeactivated(
        tenant_id=TENANT,
        occurred_at=NOW + timedelta(minutes=1),
        employee_id=employee_id,
        effective_at=effective_at,
    )


def unit(org_unit_id: str, parent_id: str | None, head_id: str | None) -> OrgUnitUpserted:
    return OrgUnitUpserted(
        tenant_id=TENANT,
        occurred_at=NOW,
        org_unit_id=org_unit_id,
        name=org_unit_id.removeprefix("ou-").title(),
        parent_id=parent_id,
        head_id=head_id,
    )


@pytest.fixture
async def uow() -> FakeGoalsUnitOfWork:
    """A fake unit of work with the org applied through the people handlers."""
    fake = FakeGoalsUnitOfWork(ManualClock(NOW - timedelta(days=1)))
    for event in (
        unit("ou-root", None, "ceo"),
        unit("ou-platform", "ou-root", "mia"),
        unit("ou-sales", "ou-root", "sam"),
    ):
        await apply_org_unit(fake, envelope(event))
    for person in (
        employee("ceo", None, "ou-root"),
        employee("mia", "ceo", "ou-platform"),
        employee("sam", "ceo", "ou-sales"),
        employee("ann", "mia", "ou-platform"),
        employee("bob", "mia", "ou-platform"),
        employee("carl", "sam", "ou-sales"),
    ):
        await apply_person(fake, envelope(person))
    fake.clock.travel_to(NOW)
    fake.events.clear()
    return fake


def new_goal(by: Principal, **fields: Any) -> CreateGoal:
    values: dict[str, Any] = {
        "title": "Cut checkout latency in half",
        "period_start": date(2026, 3, 1),
        "period_end": date(2026, 3, 31),
        "key_results": [
            KeyResultInput(
                key_result_id="kr-1", unit="ms", start=840, target=420, direction="decrease"
            )
        ],
    }
    values.update(fields)
    return CreateGoal(by=by, **values)


async def goal_of(uow: FakeGoalsUnitOfWork, by: Principal, **fields: Any) -> Goal:
    goal_id = await create_goal(uow, new_goal(by, **fields))
    uow.events.clear()
    return uow.goals.goals[goal_id]


def published(uow: FakeGoalsUnitOfWork, kind: type[Event]) -> list[Any]:
    return [e for e in uow.events if isinstance(e, kind)]


# --- the maps ---------------------------------------------------------------------------------


def test_every_command_has_one_handler() -> None:
    defined = {
        c
        for c in vars(commands).values()
        if isinstance(c, type)
        and issubclass(c, commands.Command)
        and c.__module__ == commands.__name__
    } - {commands.Command, commands.OnGoal}
    assert set(COMMAND_HANDLERS) == defined


def test_every_event_the_people_and_keys_topics_carry_for_goals_has_a_handler() -> None:
    assert EVENT_HANDLERS[EmployeeErased] is erase_person
    assert EVENT_HANDLERS[PersonKeyIssued] is EVENT_HANDLERS[PersonKeyDestroyed] is apply_person_key
    assert EVENT_HANDLERS[EmployeeUpserted] is EVENT_HANDLERS[EmployeeDeactivated] is apply_person
    assert EVENT_HANDLERS[OrgUnitUpserted] is apply_org_unit
    assert set(JOB_HANDLERS.values()) == {mark_stale_goals, archive_leavers_goals}


def test_the_jobs_run_on_the_interval_and_batch_the_settings_give() -> None:
    settings = Settings(
        database_url="sqlite+aiosqlite://",
        environment="development",
        staleness_interval_s=7.5,
        staleness_batch_size=40,
    )
    runtime = build(settings).state.runtime

    assert [(j.name, j.interval_s, j.full_round) for j in jobs(runtime)] == [
        ("goal-staleness", 7.5, 40),
        ("archive-leavers-goals", 7.5, 40),
    ]


# --- create -----------------------------------------------------------------------------------


async def test_a_person_sets_a_goal_for_themselves_and_goal_created_goes_out(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal_id = await create_goal(uow, new_goal(who("ann")))

    assert not uow.committed  # the entrypoint that opened the unit of work commits it
    goal = uow.goals.goals[goal_id]
    assert (goal.owner_type, goal.owner_id, goal.status) == (
        OwnerType.PERSON,
        "ann",
        GoalStatus.ON_TRACK,
    )
    assert goal.next_stale_check_at == NOW + timedelta(days=14)
    [kr] = uow.goals.krs[goal_id]
    assert (kr.key_result_id, kr.current, kr.direction) == ("kr-1", 840, Direction.DECREASE)
    [revision] = uow.goals.revisions
    assert (revision.revision, revision.action, revision.changed_by) == (1, "created", "ann")
    [created] = published(uow, GoalCreated)
    assert (created.goal_id, created.title, created.owner_id) == (
        goal_id,
        "Cut checkout latency in half",
        "ann",
    )


async def test_a_private_goal_is_announced_without_its_title(uow: FakeGoalsUnitOfWork) -> None:
    await create_goal(uow, new_goal(who("ann"), visibility=Visibility.PRIVATE))

    [created] = published(uow, GoalCreated)
    assert created.title is None


async def test_a_manager_sets_a_goal_for_a_report_but_a_peer_may_not(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal_id = await create_goal(uow, new_goal(who("mia"), owner_id="ann"))
    assert uow.goals.goals[goal_id].owner_id == "ann"

    with pytest.raises(Forbidden):
        await create_goal(uow, new_goal(who("bob"), owner_id="ann"))
    assert len(uow.goals.goals) == 1
    assert len(published(uow, GoalCreated)) == 1


async def test_a_goal_for_someone_unknown_or_ending_before_it_starts_is_refused_by_field(
    uow: FakeGoalsUnitOfWork,
) -> None:
    with pytest.raises(InvalidInput) as unknown:
        await create_goal(uow, new_goal(who("mia"), owner_id="nobody"))
    assert unknown.value.errors[0].loc == ("body", "owner_id")

    with pytest.raises(InvalidInput) as backwards:
        await create_goal(uow, new_goal(who("ann"), period_end=date(2026, 2, 1)))
    assert backwards.value.errors[0].loc == ("body", "period_end")
    assert uow.goals.goals == {}
    assert uow.events == []


async def test_a_goal_under_an_archived_parent_is_refused(uow: FakeGoalsUnitOfWork) -> None:
    parent = await goal_of(uow, who("ann"))
    await archive_goal(uow, ArchiveGoal(by=who("ann"), goal_id=parent.goal_id))

    with pytest.raises(InvalidInput) as refused:
        await create_goal(uow, new_goal(who("ann"), parent_goal_id=parent.goal_id))
    assert refused.value.errors[0].msg == "the parent goal is archived"


# --- bulk -------------------------------------------------------------------------------------


async def test_a_unit_head_rolls_a_template_out_to_every_active_member_by_name(
    uow: FakeGoalsUnitOfWork,
) -> None:
    await apply_person(
        uow,
        envelope(leaving("bob", NOW)),
    )
    template = GoalTemplate(
        title="{name}: on-call handbook",
        period_start=date(2026, 4, 1),
        period_end=date(2026, 6, 30),
    )
    created = await bulk_create_goals(
        uow, BulkCreateGoals(by=who("mia"), org_unit_id="ou-platform", template=template)
    )

    titles = sorted(uow.goals.goals[g].title for g in created)
    assert titles == ["Ann: on-call handbook", "Mia: on-call handbook"]
    assert len(published(uow, GoalCreated)) == 2


async def test_only_the_unit_heads_or_hr_may_roll_a_template_out(uow: FakeGoalsUnitOfWork) -> None:
    template = GoalTemplate(
        title="{name}", period_start=date(2026, 4, 1), period_end=date(2026, 6, 30)
    )
    with pytest.raises(Forbidden):
        await bulk_create_goals(
            uow, BulkCreateGoals(by=who("ann"), org_unit_id="ou-platform", template=template)
        )
    created = await bulk_create_goals(
        uow,
        BulkCreateGoals(
            by=who("hr", "hr_admin"), org_unit_id="ou-root", target="teams", template=template
        ),
    )
    owners = sorted(uow.goals.goals[g].owner_id for g in created)
    assert owners == ["ou-platform", "ou-sales"]


# --- update -----------------------------------------------------------------------------------


async def test_revising_a_goal_changes_the_fields_given_and_goal_updated_names_them(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"))

    await update_goal(
        uow,
        UpdateGoal(
            by=who("mia"), goal_id=goal.goal_id, title="Cut it by 60 %", update_interval_days=7
        ),
    )

    revised = uow.goals.goals[goal.goal_id]
    assert (revised.title, revised.update_interval_days, revised.revision) == (
        "Cut it by 60 %",
        7,
        2,
    )
    assert revised.description == goal.description
    assert revised.next_stale_check_at == goal.created_at + timedelta(days=7)
    [updated] = published(uow, GoalUpdated)
    assert updated.changed_fields == ["title", "update_interval_days"]
    assert uow.goals.revisions[-1].changes["title"] == {
        "from": "Cut checkout latency in half",
        "to": "Cut it by 60 %",
    }


async def test_revising_a_goal_to_what_it_already_is_changes_nothing(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"))

    await update_goal(uow, UpdateGoal(by=who("ann"), goal_id=goal.goal_id, title=goal.title))

    assert uow.goals.goals[goal.goal_id] == goal
    assert uow.events == []


async def test_a_title_cannot_be_revised_to_null(uow: FakeGoalsUnitOfWork) -> None:
    goal = await goal_of(uow, who("ann"))

    with pytest.raises(InvalidInput) as refused:
        await update_goal(uow, UpdateGoal(by=who("ann"), goal_id=goal.goal_id, title=None))
    assert refused.value.errors[0].loc == ("body", "title")


async def test_revised_key_results_keep_their_measured_values_and_progress_is_recomputed(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"))
    await record_progress(
        uow,
        RecordProgress(
            by=who("ann"), goal_id=goal.goal_id, key_result_id="kr-1", value=630, confidence=0.8
        ),
    )

    await update_goal(
        uow,
        UpdateGoal(
            by=who("ann"),
            goal_id=goal.goal_id,
            key_results=[
                KeyResultInput(
                    key_result_id="kr-1", unit="ms", start=840, target=420, direction="decrease"
                ),
                KeyResultInput(unit="%", start=0, target=100),
            ],
        ),
    )

    kept, added = uow.goals.krs[goal.goal_id]
    assert (kept.current, added.key_result_id, added.current) == (630, "kr-2", 0)
    assert uow.goals.goals[goal.goal_id].progress == pytest.approx(0.25)


# --- progress ---------------------------------------------------------------------------------


async def test_recording_progress_moves_the_key_result_and_applies_the_suggested_status(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"))

    await record_progress(
        uow,
        RecordProgress(
            by=who("ann"),
            goal_id=goal.goal_id,
            key_result_id="kr-1",
            value=420,
            confidence=0.9,
            comment="Done early.",
        ),
    )

    done = uow.goals.goals[goal.goal_id]
    assert (done.progress, done.status, done.last_progress_at) == (1.0, GoalStatus.ACHIEVED, NOW)
    assert done.next_stale_check_at is None  # an achieved goal cannot go stale
    assert done.revision == 3  # progress, then the suggested status
    [record] = uow.goals.progress
    assert (record.value, record.comment, record.recorded_by) == (420, "Done early.", "ann")
    [recorded] = published(uow, GoalProgressRecorded)
    assert recorded.goal_progress == 1.0
    [changed] = published(uow, GoalStatusChanged)
    assert (changed.to_status, changed.suggested, changed.changed_by) == (
        GoalStatus.ACHIEVED,
        True,
        None,
    )


async def test_an_implausible_value_or_an_unknown_key_result_is_refused(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"))

    with pytest.raises(InvalidInput) as implausible:
        await record_progress(
            uow,
            RecordProgress(
                by=who("ann"), goal_id=goal.goal_id, key_result_id="kr-1", value=1e9, confidence=0.5
            ),
        )
    assert implausible.value.errors[0].loc == ("body", "value")
    with pytest.raises(NotFound):
        await record_progress(
            uow,
            RecordProgress(
                by=who("ann"), goal_id=goal.goal_id, key_result_id="kr-9", value=1, confidence=0.5
            ),
        )
    assert uow.goals.progress == []
    assert uow.events == []


async def test_someone_who_may_not_see_a_private_goal_finds_nothing_and_is_on_the_audit_trail(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"), visibility=Visibility.PRIVATE)

    with pytest.raises(NotFound):
        await record_progress(
            uow,
            RecordProgress(
                by=who("carl"),
                goal_id=goal.goal_id,
                key_result_id="kr-1",
                value=600,
                confidence=0.5,
            ),
        )

    [entry] = uow.audited
    assert (entry.actor_id, entry.subject_id, entry.allowed) == ("carl", "ann", False)
    assert entry.target == f"goal/{goal.goal_id}"


async def test_a_peer_may_see_a_tenant_goal_but_not_change_it(uow: FakeGoalsUnitOfWork) -> None:
    goal = await goal_of(uow, who("ann"))

    with pytest.raises(Forbidden):
        await change_status(
            uow, ChangeStatus(by=who("bob"), goal_id=goal.goal_id, status=GoalStatus.AT_RISK)
        )
    assert uow.goals.goals[goal.goal_id] == goal


# --- status, archive, alignment ---------------------------------------------------------------


async def test_a_status_set_by_hand_stands_until_it_is_handed_back(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"))

    await change_status(
        uow, ChangeStatus(by=who("mia"), goal_id=goal.goal_id, status=GoalStatus.AT_RISK)
    )
    held = uow.goals.goals[goal.goal_id]
    assert (held.status, held.status_overridden) == (GoalStatus.AT_RISK, True)
    [by_hand] = published(uow, GoalStatusChanged)
    assert (by_hand.suggested, by_hand.changed_by) == (False, "mia")

    await change_status(uow, ChangeStatus(by=who("mia"), goal_id=goal.goal_id, status=None))
    handed_back = uow.goals.goals[goal.goal_id]
    # A third of March gone with nothing done: more than 25 points behind.
    assert (handed_back.status, handed_back.status_overridden) == (GoalStatus.OFF_TRACK, False)
    assert published(uow, GoalStatusChanged)[-1].suggested is True


async def test_an_archived_goal_is_archived_once_and_then_refuses_changes(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"))

    await archive_goal(
        uow, ArchiveGoal(by=who("ann"), goal_id=goal.goal_id, reason=ArchiveReason.SUPERSEDED)
    )

    archived = uow.goals.goals[goal.goal_id]
    assert (archived.archived_at, archived.archive_reason) == (NOW, ArchiveReason.SUPERSEDED)
    assert archived.next_stale_check_at is None
    [event] = published(uow, GoalArchived)
    assert event.reason == ArchiveReason.SUPERSEDED
    with pytest.raises(Conflict):
        await archive_goal(uow, ArchiveGoal(by=who("ann"), goal_id=goal.goal_id))


async def test_aligning_a_goal_under_another_names_the_parent_and_a_cycle_is_refused(
    uow: FakeGoalsUnitOfWork,
) -> None:
    team = await goal_of(uow, who("mia"))
    mine = await goal_of(uow, who("ann"))

    await align_goal(
        uow, AlignGoal(by=who("ann"), goal_id=mine.goal_id, parent_goal_id=team.goal_id)
    )

    assert uow.goals.goals[mine.goal_id].parent_goal_id == team.goal_id
    [updated] = published(uow, GoalUpdated)
    assert updated.changed_fields == ["parent_goal_id"]
    with pytest.raises(InvalidInput) as cycle:
        await align_goal(
            uow, AlignGoal(by=who("mia"), goal_id=team.goal_id, parent_goal_id=mine.goal_id)
        )
    assert cycle.value.errors[0].msg == "aligning under this goal would create a cycle"
    assert uow.goals.goals[team.goal_id].parent_goal_id is None


# --- people -----------------------------------------------------------------------------------


async def test_an_upserted_person_and_unit_are_in_the_directory(uow: FakeGoalsUnitOfWork) -> None:
    await apply_org_unit(uow, envelope(unit("ou-infra", "ou-platform", "ivy")))
    await apply_person(uow, envelope(employee("ivy", "mia", "ou-infra")))

    people = directory(uow, TENANT)
    ivy = await people.person("ivy")
    assert ivy is not None
    assert (ivy.manager_id, ivy.org_unit_id) == ("mia", "ou-infra")
    infra = await people.org_unit("ou-infra")
    assert infra is not None
    assert infra.head_id == "ivy"


async def test_a_deactivation_in_force_archives_the_leavers_open_goals(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"))

    await apply_person(
        uow,
        envelope(leaving("ann", NOW)),
    )

    assert uow.goals.goals[goal.goal_id].archive_reason == ArchiveReason.OWNER_DEACTIVATED
    [archived] = published(uow, GoalArchived)
    assert archived.goal_id == goal.goal_id


async def test_a_deactivation_dated_ahead_archives_the_goals_when_its_day_comes(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"))
    leaves = NOW + timedelta(days=3)

    await apply_person(
        uow,
        envelope(leaving("ann", leaves)),
    )
    assert uow.goals.goals[goal.goal_id].archived_at is None
    assert await archive_leavers_goals(uow, 10) == 0

    uow.clock.travel_to(leaves)
    assert await archive_leavers_goals(uow, 10) == 1
    assert uow.goals.goals[goal.goal_id].archived_at == leaves
    assert uow.leavers.leavers == {}
    assert await archive_leavers_goals(uow, 10) == 0


async def test_a_rehire_before_the_leaving_day_keeps_the_goals(uow: FakeGoalsUnitOfWork) -> None:
    goal = await goal_of(uow, who("ann"))
    leaves = NOW + timedelta(days=3)
    await apply_person(
        uow,
        envelope(leaving("ann", leaves)),
    )

    await apply_person(
        uow, envelope(employee("ann", "mia", "ou-platform", at=NOW + timedelta(hours=1)))
    )

    uow.clock.travel_to(leaves)
    assert await archive_leavers_goals(uow, 10) == 0
    assert uow.goals.goals[goal.goal_id].archived_at is None


async def test_a_new_manager_puts_each_private_goal_of_the_person_on_the_audit_trail(
    uow: FakeGoalsUnitOfWork,
) -> None:
    private = await goal_of(uow, who("ann"), visibility=Visibility.PRIVATE)
    await goal_of(uow, who("ann"))  # tenant-visible: who may read it does not change

    await apply_person(
        uow, envelope(employee("ann", "sam", "ou-platform", at=NOW + timedelta(hours=1)), "/hr")
    )

    [entry] = uow.audited
    assert (entry.action, entry.actor_id, entry.target) == (
        AuditAction.CHANGE_ACCESS,
        "/hr",
        f"goal/{private.goal_id}:viewers",
    )


async def test_a_persons_data_key_is_kept_and_destroyed_as_the_keys_topic_says(
    uow: FakeGoalsUnitOfWork,
) -> None:
    issued = PersonKeyIssued(
        tenant_id=TENANT, occurred_at=NOW, employee_id="ann", key_id="k-1", wrapped_key="rkw1.abc"
    )
    await apply_person_key(uow, envelope(issued))
    assert uow.people.keys[(TENANT, "ann")] == "k-1"

    destroyed = PersonKeyDestroyed(
        tenant_id=TENANT, occurred_at=NOW, employee_id="ann", key_id="k-1"
    )
    await apply_person_key(uow, envelope(destroyed))
    assert uow.people.keys[(TENANT, "ann")] is None


# --- erasure ----------------------------------------------------------------------------------


async def test_an_erased_persons_goals_and_comments_go_and_the_erasure_is_reported(
    uow: FakeGoalsUnitOfWork,
) -> None:
    own = await goal_of(uow, who("mia"))
    reports = await goal_of(uow, who("ann"))
    await align_goal(
        uow, AlignGoal(by=who("ann"), goal_id=reports.goal_id, parent_goal_id=own.goal_id)
    )
    await record_progress(
        uow,
        RecordProgress(
            by=who("mia"),
            goal_id=reports.goal_id,
            key_result_id="kr-1",
            value=700,
            confidence=0.6,
            comment="Mia's note on Ann's goal",
        ),
    )
    await apply_person(uow, envelope(leaving("mia", NOW + timedelta(days=9))))
    uow.events.clear()

    erased = EmployeeErased(tenant_id=TENANT, occurred_at=NOW, employee_id="mia", erasure_id="er-1")
    await erase_person(uow, envelope(erased))

    assert own.goal_id not in uow.goals.goals
    assert all(r.goal_id != own.goal_id for r in uow.goals.revisions)
    assert uow.goals.goals[reports.goal_id].parent_goal_id is None
    [note] = uow.goals.progress
    assert (note.value, note.comment, note.recorded_by) == (700, None, "mia")
    assert all(r.changes.get("comment") is None for r in uow.goals.revisions)
    assert uow.leavers.leavers == {}
    assert await directory(uow, TENANT).person("mia") is None
    assert uow.people.keys[(TENANT, "mia")] is None
    assert uow.forgotten == [(TENANT, "mia")]
    [done] = published(uow, PersonDataErased)
    assert (done.employee_id, done.erasure_id, done.service) == ("mia", "er-1", "goals")
    assert uow.compacted


# --- staleness --------------------------------------------------------------------------------


async def test_a_goal_nobody_updated_is_reported_stale_once_per_spell(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"), update_interval_days=3, period_end=date(2026, 6, 30))
    assert await mark_stale_goals(uow, 10) == 0

    uow.clock.advance(timedelta(days=3))
    assert await mark_stale_goals(uow, 10) == 1
    assert await mark_stale_goals(uow, 10) == 0

    [stale] = published(uow, GoalStale)
    assert (stale.goal_id, stale.last_progress_at, stale.update_interval_days) == (
        goal.goal_id,
        goal.created_at,
        3,
    )
    assert uow.event_ids[-1] == stale_event_id(TENANT, goal.goal_id, goal.created_at)
    assert uow.goals.goals[goal.goal_id].stale_since == NOW + timedelta(days=3)


async def test_a_goal_whose_period_is_over_is_never_reported_stale(
    uow: FakeGoalsUnitOfWork,
) -> None:
    goal = await goal_of(uow, who("ann"), update_interval_days=30)

    uow.clock.advance(timedelta(days=30))  # past 31 March
    assert await mark_stale_goals(uow, 10) == 1

    assert published(uow, GoalStale) == []
    over = uow.goals.goals[goal.goal_id]
    assert (over.next_stale_check_at, over.stale_since) == (None, None)


async def test_a_round_claims_at_most_its_batch_the_longest_due_first(
    uow: FakeGoalsUnitOfWork,
) -> None:
    first = await goal_of(uow, who("ann"), update_interval_days=2, period_end=date(2026, 6, 30))
    await goal_of(uow, who("bob"), update_interval_days=3, period_end=date(2026, 6, 30))
    uow.clock.advance(timedelta(days=5))

    assert await mark_stale_goals(uow, 1) == 1
    assert [e.goal_id for e in published(uow, GoalStale)] == [first.goal_id]
    assert await mark_stale_goals(uow, 1) == 1
    assert await mark_stale_goals(uow, 1) == 0
    assert len(published(uow, GoalStale)) == 2
