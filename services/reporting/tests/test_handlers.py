"""Reporting's handlers against the in-memory unit of work (tests/reporting_fakes.py): no
database, no broker. Facts written, rollups and contributors counted, the directory projected,
erasures pseudonymised and reported once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar, get_args

import pytest
from reporting_fakes import FakeReportingUnitOfWork

from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.domain.projection import TENANT
from rhythm_reporting.handlers import (
    COMMAND_HANDLERS,
    EVENT_HANDLERS,
    Projected,
    apply_employee,
    apply_org_unit,
    apply_person_key,
    project_events,
    record_erasure,
)
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    CheckinDue,
    CheckinKind,
    CheckinMissed,
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    FeedbackGiven,
    FeedbackKind,
    OrgUnitUpserted,
    PersonDataErased,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2, SealedPersonalData
from rhythm_shared.kit import crypto
from rhythm_shared.kit.directory import DIRECTORY_EVENTS, EMPLOYEE_EVENTS, EmployeeEvent

E = TypeVar("E", bound=Event)
T = "acme"
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
DUE = datetime(2026, 3, 10, 17, tzinfo=UTC)
MARCH = "2026-03"


def _unit(unit: str, parent: str | None = None, at: datetime = EARLY) -> OrgUnitUpserted:
    return OrgUnitUpserted(
        tenant_id=T, occurred_at=at, org_unit_id=unit, name=unit, parent_id=parent, head_id=None
    )


def _person(employee: str, unit: str, at: datetime = EARLY) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=T,
        occurred_at=at,
        employee_id=employee,
        email=f"{employee}@example.com",
        display_name=f"Person {employee}",
        manager_id="boss",
        org_unit_id=unit,
        time_zone="UTC",
        locale="en",
        hired_on=date(2020, 1, 1),
        active=True,
    )


def _due(obligation: str, employee: str, due: datetime = DUE) -> CheckinDue:
    return CheckinDue(
        tenant_id=T,
        occurred_at=due - timedelta(days=3),
        obligation_id=obligation,
        employee_id=employee,
        manager_id="boss",
        kind=CheckinKind.MONTHLY,
        period_start=date(2026, 3, 1),
        period_end=date(2026, 3, 31),
        due_at=due,
    )


def _missed(obligation: str, employee: str) -> CheckinMissed:
    return CheckinMissed(
        tenant_id=T,
        occurred_at=DUE + timedelta(days=2),
        obligation_id=obligation,
        employee_id=employee,
        manager_id="boss",
        kind=CheckinKind.MONTHLY,
        period_start=date(2026, 3, 1),
        period_end=date(2026, 3, 31),
        due_at=DUE,
        consecutive_misses=1,
    )


def _erased(employee: str, erasure: str = "er-1") -> EmployeeErased:
    return EmployeeErased(
        tenant_id=T,
        occurred_at=DUE + timedelta(days=30),
        employee_id=employee,
        erasure_id=erasure,
    )


def _envelope(event: E, event_id: str = "ev-1") -> Envelope[E]:
    return Envelope(
        id=event_id,
        source="/rhythm/test",
        type=event.type,
        time=event.occurred_at,
        subject="",
        tenant_id=event.tenant_id,
        event=event,
    )


async def _project(uow: FakeReportingUnitOfWork, events: Sequence[Event]) -> Projected:
    start = sum(len(f) for f in uow.read_model.facts.values()) + len(uow.events)
    async with uow:
        return await project_events(
            uow, ProjectEvents.of((f"ev-{start}-{i}", e) for i, e in enumerate(events))
        )


ORG = [_unit("top"), _unit("team", "top"), _person("p", "team")]


async def test_a_missed_obligation_is_a_fact_counted_in_every_unit_above_its_person() -> None:
    uow = FakeReportingUnitOfWork()
    projected = await _project(uow, [*ORG, _due("o1", "p"), _missed("o1", "p")])

    assert uow.committed
    assert projected.facts == 1
    fact = uow.read_model.facts["obligation"][(T, "o1")]
    assert (fact["outcome"], fact["org_unit_id"], fact["employee_id"]) == ("missed", "team", "p")
    for unit in ("team", "top", TENANT):
        counts = uow.read_model.rollup("unit_month_stats", T, unit, MARCH)
        assert counts is not None
        assert (counts["obligations"], counts["missed"], counts["open"]) == (1, 1, 0)
    assert uow.read_model.rollup("manager_period_stats", T, "boss", "2026-Q1") == {
        "obligations": 1,
        "on_time": 0,
        "late": 0,
        "missed": 1,
        "open": 0,
    }


async def test_a_person_counts_once_as_contributor_however_many_facts_they_have() -> None:
    uow = FakeReportingUnitOfWork()
    await _project(uow, [*ORG, _due("o1", "p"), _due("o2", "p", DUE + timedelta(days=5))])

    contributors = uow.read_model.rollups["unit_contributors"]
    in_team = [k for (t, k) in contributors if t == T and k[0] == "team"]
    assert in_team == [("team", "obligations", MARCH, "p")]
    assert contributors[(T, ("team", "obligations", MARCH, "p"))] == {"facts": 2}


async def test_a_replayed_batch_changes_no_count() -> None:
    uow = FakeReportingUnitOfWork()
    batch = [*ORG, _due("o1", "p"), _missed("o1", "p")]
    await _project(uow, batch)
    before = {t: dict(rows) for t, rows in uow.read_model.rollups.items()}

    projected = await _project(uow, batch)

    assert projected.facts == 0
    assert uow.read_model.rollups == before


async def test_a_unit_that_moves_takes_its_totals_to_its_new_parent() -> None:
    uow = FakeReportingUnitOfWork()
    await _project(uow, [*ORG, _unit("other"), _due("o1", "p")])

    await _project(uow, [_unit("team", "other", EARLY + timedelta(days=1))])

    top = uow.read_model.rollup("unit_month_stats", T, "top", MARCH)
    other = uow.read_model.rollup("unit_month_stats", T, "other", MARCH)
    assert top is not None
    assert top["obligations"] == 0
    assert other is not None
    assert other["obligations"] == 1
    assert uow.read_model.rollup("unit_contributors", T, "top", "obligations", MARCH, "p") is None
    assert uow.read_model.rollup("unit_contributors", T, "other", "obligations", MARCH, "p") == {
        "facts": 1
    }


async def test_feedback_counts_for_the_giver_and_the_receiver() -> None:
    uow = FakeReportingUnitOfWork()
    feedback = FeedbackGiven(
        tenant_id=T,
        occurred_at=DUE,
        feedback_id="f-1",
        giver_id="p",
        receiver_id="q",
        kind=FeedbackKind.PRAISE,
        requested=False,
    )
    await _project(uow, [*ORG, _person("q", "top"), feedback])

    team = uow.read_model.rollup("unit_month_stats", T, "team", MARCH)
    top = uow.read_model.rollup("unit_month_stats", T, "top", MARCH)
    assert team is not None
    assert (team["feedback_given"], team["feedback_received"]) == (1, 0)
    assert top is not None
    assert (top["feedback_given"], top["feedback_received"]) == (1, 1)


async def test_an_erasure_moves_the_persons_facts_and_contributions_to_a_pseudonym() -> None:
    uow = FakeReportingUnitOfWork()
    await _project(uow, [*ORG, _due("o1", "p"), _missed("o1", "p")])
    counts = uow.read_model.rollup("unit_month_stats", T, "team", MARCH)

    projected = await _project(uow, [_erased("p")])

    assert projected.erased == 1
    alias = uow.read_model.facts["obligation"][(T, "o1")]["employee_id"]
    assert alias.startswith("erased-")
    assert uow.read_model.rollup("unit_month_stats", T, "team", MARCH) == counts
    assert uow.read_model.rollup("unit_contributors", T, "team", "obligations", MARCH, alias)
    assert uow.read_model.rollup("unit_contributors", T, "team", "obligations", MARCH, "p") is None
    assert (T, "p") not in uow.read_model.versions
    assert [v.display_name for v in uow.read_model.versions[(T, alias)]] == [""]
    assert uow.read_model.employees[(T, alias)]["display_name"] is None
    person = await uow.people.directory(T).person("p")
    assert person is None
    assert uow.people.employees[(T, "p")].erased


async def test_an_erasure_is_reported_once_and_forgets_the_kit_rows() -> None:
    uow = FakeReportingUnitOfWork()
    await _project(uow, [*ORG, _due("o1", "p")])

    await _project(uow, [_erased("p")])
    await _project(uow, [_erased("p")])  # the same erasure again

    reports = uow.published(PersonDataErased)
    assert [(r.employee_id, r.erasure_id, r.service) for r in reports] == [
        ("p", "er-1", "reporting")
    ]
    assert uow.forgotten == [(T, "p")]
    assert uow.compacted


async def test_facts_about_an_erased_person_arriving_later_go_under_a_pseudonym() -> None:
    uow = FakeReportingUnitOfWork()
    await _project(uow, [*ORG, _erased("p")])

    await _project(uow, [_due("o-late", "p")])

    assert uow.read_model.facts["obligation"][(T, "o-late")]["employee_id"].startswith("erased-")
    assert not any(k[3] == "p" for _, k in uow.read_model.rollups["unit_contributors"])


async def test_an_erased_persons_later_upsert_brings_no_history_back() -> None:
    uow = FakeReportingUnitOfWork()
    await _project(uow, [*ORG, _erased("p")])

    await _project(uow, [_person("p", "top", DUE + timedelta(days=40))])

    assert (T, "p") not in uow.read_model.versions
    assert (T, "p") not in uow.read_model.employees


def _sealed_upsert(kek: bytes) -> tuple[PersonKeyIssued, EmployeeUpsertedV2]:
    key, key_id = crypto.new_data_key(), crypto.new_key_id()
    ids = {"tenant_id": T, "employee_id": "p"}
    issued = PersonKeyIssued(
        tenant_id=T,
        occurred_at=EARLY,
        employee_id="p",
        key_id=key_id,
        wrapped_key=crypto.wrap(kek, key, key_id=key_id, **ids),
    )
    upsert = EmployeeUpsertedV2(
        tenant_id=T,
        occurred_at=EARLY,
        employee_id="p",
        sealed=SealedPersonalData(
            key_id=key_id,
            email=crypto.seal(key, "p@example.com", key_id=key_id, field="email", **ids),
            display_name=crypto.seal(key, "Pat", key_id=key_id, field="display_name", **ids),
        ),
        manager_id="boss",
        org_unit_id="team",
        time_zone="UTC",
        locale="en",
        hired_on=date(2020, 1, 1),
        active=True,
    )
    return issued, upsert


async def test_a_sealed_name_is_opened_with_the_key_even_when_the_key_comes_after_it() -> None:
    kek = crypto.new_data_key()
    uow = FakeReportingUnitOfWork(kek=kek)
    issued, upsert = _sealed_upsert(kek)

    await _project(uow, [_unit("team"), upsert, issued])

    assert [v.display_name for v in uow.read_model.versions[(T, "p")]] == ["Pat"]


@pytest.mark.parametrize("kek", [None, b"k" * 32], ids=["no kek", "wrong kek"])
async def test_a_sealed_name_projects_blank_without_the_right_key(kek: bytes | None) -> None:
    uow = FakeReportingUnitOfWork(kek=kek)
    issued, upsert = _sealed_upsert(crypto.new_data_key())

    await _project(uow, [_unit("team"), issued, upsert])

    assert [v.display_name for v in uow.read_model.versions[(T, "p")]] == [""]


# -- the event handlers one by one -----------------------------------------------------------


async def test_a_key_issued_is_kept_and_a_key_destroyed_is_gone_for_good() -> None:
    kek = crypto.new_data_key()
    uow = FakeReportingUnitOfWork(kek=kek)
    issued, _ = _sealed_upsert(kek)

    await apply_person_key(uow, _envelope(issued))
    assert await uow.read_model.data_key(T, "p") == (issued.key_id, issued.wrapped_key)

    destroyed = PersonKeyDestroyed(
        tenant_id=T, occurred_at=DUE, employee_id="p", key_id=issued.key_id
    )
    await apply_person_key(uow, _envelope(destroyed))
    await apply_person_key(uow, _envelope(issued))  # a replayed issue brings nothing back
    assert await uow.read_model.data_key(T, "p") is None


async def test_an_employee_upsert_and_deactivation_reach_the_directory() -> None:
    uow = FakeReportingUnitOfWork()

    await apply_employee(uow, _envelope(_person("p", "team"), "ev-1"))
    deactivated = EmployeeDeactivated(
        tenant_id=T, occurred_at=DUE, employee_id="p", effective_at=DUE
    )
    await apply_employee(uow, _envelope(deactivated, "ev-2"))

    person = await uow.people.directory(T).person("p")
    assert person is not None
    assert (person.org_unit_id, person.manager_id, person.deactivated_at) == ("team", "boss", DUE)


async def test_an_org_unit_reaches_the_directory() -> None:
    uow = FakeReportingUnitOfWork()

    await apply_org_unit(uow, _envelope(_unit("team", "top")))

    unit = await uow.people.directory(T).org_unit("team")
    assert unit is not None
    assert unit.parent_id == "top"


async def test_an_erasure_leaves_a_tombstone_and_destroys_the_key() -> None:
    uow = FakeReportingUnitOfWork()
    await apply_employee(uow, _envelope(_person("p", "team"), "ev-1"))

    await record_erasure(uow, _envelope(_erased("p"), "ev-2"))

    assert await uow.read_model.erased(T, ["p", "q"]) == {"p"}
    assert uow.people.keys[(T, "p")] is None


def test_every_directory_and_key_event_and_the_batch_have_a_handler() -> None:
    assert set(EVENT_HANDLERS) == {
        PersonKeyIssued,
        PersonKeyDestroyed,
        EmployeeUpserted,
        EmployeeUpsertedV2,
        EmployeeDeactivated,
        EmployeeErased,
        OrgUnitUpserted,
    }
    assert {ProjectEvents: project_events} == COMMAND_HANDLERS


def test_the_events_that_take_the_org_dimension_alone_are_the_directory_events() -> None:
    """The unit of work takes the org-dimension lock alone for a batch with a directory event
    (kit DIRECTORY_EVENTS); those are exactly the events the handlers apply to the directory."""
    assert set(EVENT_HANDLERS) == set(DIRECTORY_EVENTS)
    assert get_args(EmployeeEvent) == EMPLOYEE_EVENTS
