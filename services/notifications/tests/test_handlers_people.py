"""Unit tests of the people-slice and erasure handlers on the fake unit of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notifications_fakes import FakeNotificationsUnitOfWork, consume
from notifications_harness import employee
from test_email_delivery import missed

from rhythm_notifications.domain.delivery import Status
from rhythm_notifications.domain.preferences import CategoryPreference
from rhythm_notifications.domain.push import PushSubscription
from rhythm_notifications.domain.routing import ChannelChoice
from rhythm_notifications.domain.webhooks import WebhookEndpoint
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    OrgUnitUpserted,
    PersonDataErased,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.clock import ManualClock

T = "t-1"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def example(kind: type[Event], **changes: Any) -> Any:
    """The contract's own example of ``kind``, in this test's tenant."""
    extra: Any = kind.model_config["json_schema_extra"]
    return kind.model_validate({**extra["examples"][0], "tenant_id": T, **changes})


@pytest.fixture
def uow() -> FakeNotificationsUnitOfWork:
    return FakeNotificationsUnitOfWork(ManualClock(NOW))


async def test_a_people_event_enters_the_directory_last_writer_wins(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    await consume(uow, employee(T, "e-1", name="Eva", occurred_at=NOW))
    await consume(uow, employee(T, "e-1", name="Older", occurred_at=NOW - timedelta(days=1)))

    found = await uow.people.directory(T).person("e-1")
    assert found is not None
    assert found.display_name == "Eva"
    assert uow.committed


async def test_a_deactivation_takes_effect_from_its_date(uow: FakeNotificationsUnitOfWork) -> None:
    await consume(uow, employee(T, "e-1", occurred_at=NOW))
    leaves = NOW + timedelta(days=2)
    await consume(
        uow,
        EmployeeDeactivated(
            tenant_id=T,
            occurred_at=NOW + timedelta(hours=1),
            employee_id="e-1",
            effective_at=leaves,
        ),
    )

    found = await uow.people.directory(T).person("e-1")
    assert found is not None
    assert found.active_at(NOW + timedelta(days=1))
    assert not found.active_at(leaves)


async def test_a_sealed_upsert_enters_the_directory_too(uow: FakeNotificationsUnitOfWork) -> None:
    await consume(uow, example(EmployeeUpsertedV2, employee_id="e-7"))
    found = await uow.people.directory(T).person("e-7")
    assert found is not None
    assert found.email is not None
    assert found.email.startswith("rsk1.")  # sealed: opened only with the key when sending
    assert found.manager_id == "e-0007"


async def test_an_org_unit_and_a_data_key_enter_the_directory(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    await consume(uow, example(OrgUnitUpserted))
    await consume(uow, example(PersonKeyIssued, employee_id="e-1"))

    unit = await uow.people.directory(T).org_unit("ou-platform")
    assert unit is not None
    assert (unit.name, unit.head_id) == ("Platform Engineering", "e-0007")
    assert uow.people.keys[(T, "e-1")] == "k-7d1c2a9b4e"


async def _someone_missed_a_checkin(uow: FakeNotificationsUnitOfWork) -> None:
    """Eva missed a check-in: she and her manager Mark are told; an HR endpoint gets it."""
    await consume(uow, employee(T, "e-1", manager_id="m-1", name="Eva de Vries", occurred_at=NOW))
    await consume(uow, employee(T, "m-1", name="Mark Manager", occurred_at=NOW))
    await uow.webhooks.add_endpoint(
        WebhookEndpoint("w-1", T, "https://hr.example/hook", "whsec_1", None, None, NOW)
    )
    await uow.preferences.save_category(
        T, "e-1", "goal_stale", CategoryPreference(ChannelChoice.PUSH), NOW
    )
    await uow.preferences.add_push_subscription(
        PushSubscription("s-1", T, "e-1", "https://push.example/a", "h", "k", "a", NOW)
    )
    await consume(uow, missed(T))


async def test_an_erasure_removes_what_was_addressed_to_the_person_and_their_name_elsewhere(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    await _someone_missed_a_checkin(uow)

    await consume(uow, example(EmployeeErased, employee_id="e-1"), kek=None)

    assert uow.committed
    (left,) = uow.deliveries.rows.values()  # Mark's, with Eva's name blanked
    assert left["recipient_id"] == "m-1"
    assert left["payload"]["names"]["employee"] == ""
    assert left["payload"]["facts"]["obligation_id"] == "ob-e-1-monthly-2026-02"
    assert await uow.deliveries.count_overdue(T, ["e-1"]) == 0
    assert await uow.preferences.categories(T, "e-1") == {}
    assert uow.preferences.subscriptions == {}
    assert uow.webhooks.deliveries == {}  # its body named her
    assert await uow.people.directory(T).person("e-1") is None  # a tombstone
    assert uow.people.keys[(T, "e-1")] is None
    assert uow.forgotten == [(T, "e-1")]
    assert uow.compacted
    (erased,) = uow.published(PersonDataErased)
    assert isinstance(erased, PersonDataErased)
    assert (erased.employee_id, erased.erasure_id, erased.service) == (
        "e-1",
        "er-5f2b9c",
        "notifications",
    )


async def test_a_destroyed_key_blanks_the_persons_name_before_the_key_goes(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    await _someone_missed_a_checkin(uow)

    await consume(uow, example(PersonKeyDestroyed, employee_id="e-1"), kek=None)

    names = sorted(r["payload"]["names"]["employee"] for r in uow.deliveries.rows.values())
    assert names == ["", ""]
    assert uow.people.keys[(T, "e-1")] is None
    assert len(uow.deliveries.where(status=Status.PENDING)) == 2  # nothing else changes
    assert uow.published(PersonDataErased) == []
