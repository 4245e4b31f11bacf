"""Unit tests of the preferences, push-subscription and tenant-configuration handlers, on the
fake unit of work: no database, no broker."""

from __future__ import annotations

import base64

import pytest
from notifications_fakes import FakeNotificationsUnitOfWork, handle

from rhythm_notifications.commands import (
    DeleteChatChannel,
    RemovePushSubscription,
    SetChatChannel,
    SetPreferences,
    SetTenantSettings,
    SubscribePush,
    Unsubscribe,
    UnsubscribePush,
)
from rhythm_notifications.domain.preferences import (
    CategoryPreference,
    CategorySetting,
    RecipientSettings,
)
from rhythm_notifications.domain.routing import ChannelChoice
from rhythm_notifications.domain.schedule import DeliveryMode
from rhythm_shared.contracts.v1 import Channel
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Forbidden, InvalidInput, NotFound

T = "t-1"
EVA = Principal("e-1", T, frozenset({"employee"}))
HR = Principal("hr-1", T, frozenset({"hr_admin"}))
P256DH = base64.urlsafe_b64encode(b"\x04" + 64 * b"k").decode().rstrip("=")
AUTH = base64.urlsafe_b64encode(16 * b"a").decode().rstrip("=")


@pytest.fixture
def uow() -> FakeNotificationsUnitOfWork:
    fake = FakeNotificationsUnitOfWork()
    fake.people.add_person(T, "e-1", manager_id="m-1")
    fake.people.add_person(T, "m-1")
    return fake


def preferences(principal: Principal = EVA, **changes: object) -> SetPreferences:
    fields: dict[str, object] = {
        "principal": principal,
        "employee_id": "e-1",
        "quiet_hours_start": "19:00",
        "quiet_hours_end": "08:30",
        "working_days": [5, 1, 2, 2],
        "digest_hour": 7,
        "categories": {"checkin_missed": CategorySetting(ChannelChoice.PUSH, DeliveryMode.DAILY)},
    }
    return SetPreferences.model_validate({**fields, **changes})


async def test_setting_preferences_stores_the_schedule_and_the_categories_named(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    view = await handle(uow, preferences())

    assert uow.committed
    assert uow.preferences.schedules[(T, "e-1")] == RecipientSettings(
        "19:00", "08:30", [1, 2, 5], 7
    )
    assert uow.preferences.chosen[(T, "e-1", "checkin_missed")] == CategoryPreference(
        ChannelChoice.PUSH, DeliveryMode.DAILY
    )
    assert view.working_days == [1, 2, 5]
    assert view.categories["checkin_missed"] == CategorySetting(
        ChannelChoice.PUSH, DeliveryMode.DAILY
    )
    assert view.categories["checkin_due"].mode is DeliveryMode.IMMEDIATE  # the default stays


async def test_choosing_a_category_again_lifts_its_unsubscribe(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    await handle(uow, Unsubscribe(tenant_id=T, employee_id="e-1", category="checkin_missed"))
    assert (await handle(uow, preferences(categories={}))).unsubscribed == ["checkin_missed"]

    view = await handle(uow, preferences())

    assert view.unsubscribed == []
    assert not uow.preferences.chosen[(T, "e-1", "checkin_missed")].unsubscribed


async def test_a_manager_may_not_set_a_reports_preferences(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    manager = Principal("m-1", T, frozenset({"manager"}))
    with pytest.raises(Forbidden):
        await handle(uow, preferences(manager))
    assert uow.rolled_back
    assert uow.preferences.schedules == {}


async def test_hr_may_set_someone_elses_preferences(uow: FakeNotificationsUnitOfWork) -> None:
    await handle(uow, preferences(HR))
    assert (T, "e-1") in uow.preferences.schedules


async def test_quiet_hours_need_both_ends(uow: FakeNotificationsUnitOfWork) -> None:
    with pytest.raises(InvalidInput) as refused:
        await handle(uow, preferences(quiet_hours_end=None))
    assert "both ends" in str(refused.value)
    assert uow.preferences.schedules == {}


async def test_the_one_click_unsubscribe_stops_email_and_keeps_push(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    both = CategorySetting(ChannelChoice.BOTH, DeliveryMode.WEEKLY)
    await handle(uow, preferences(categories={"goal_stale": both}))

    await handle(uow, Unsubscribe(tenant_id=T, employee_id="e-1", category="goal_stale"))
    await handle(uow, Unsubscribe(tenant_id=T, employee_id="e-1", category="checkin_due"))

    chosen = uow.preferences.chosen
    assert chosen[(T, "e-1", "goal_stale")] == CategoryPreference(
        ChannelChoice.PUSH, DeliveryMode.WEEKLY, unsubscribed=True
    )
    # Never chosen: its default (email) stops.
    assert chosen[(T, "e-1", "checkin_due")] == CategoryPreference(
        ChannelChoice.NONE, DeliveryMode.IMMEDIATE, unsubscribed=True
    )


async def test_unsubscribing_from_an_unknown_category_is_not_found(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    with pytest.raises(NotFound):
        await handle(uow, Unsubscribe(tenant_id=T, employee_id="e-1", category="lottery"))


def subscribe(
    principal: Principal = EVA, endpoint: str = "https://push.example/a"
) -> SubscribePush:
    return SubscribePush(
        principal=principal, endpoint=endpoint, p256dh=P256DH, auth=AUTH, allow_http=False
    )


async def test_a_browser_subscribes_once_and_its_latest_holder_owns_it(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    first = await handle(uow, subscribe())
    uow.people.add_person(T, "e-2")
    again = await handle(uow, subscribe(Principal("e-2", T, frozenset({"employee"}))))

    assert again["id"] == first["id"]
    (subscription,) = uow.preferences.subscriptions.values()
    assert subscription.employee_id == "e-2"
    assert subscription.endpoint == "https://push.example/a"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"endpoint": "http://push.example/a"}, "https URL"),
        ({"p256dh": "c2hvcnQ"}, "P-256 public key"),
        ({"auth": "c2hvcnQ"}, "16-byte secret"),
    ],
)
async def test_a_push_subscription_with_a_bad_address_or_key_is_refused(
    uow: FakeNotificationsUnitOfWork, change: dict[str, str], why: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await handle(uow, subscribe().model_copy(update=change))
    assert why in str(refused.value)
    assert uow.preferences.subscriptions == {}


async def test_only_its_holder_removes_a_push_subscription(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    created = await handle(uow, subscribe())
    uow.people.add_person(T, "e-2")
    other = Principal("e-2", T, frozenset({"employee"}))

    with pytest.raises(NotFound):
        await handle(uow, UnsubscribePush(principal=other, subscription_id=created["id"]))
    assert created["id"] in uow.preferences.subscriptions

    await handle(uow, UnsubscribePush(principal=EVA, subscription_id=created["id"]))
    assert uow.preferences.subscriptions == {}


async def test_a_subscription_the_push_service_calls_gone_is_removed(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    created = await handle(uow, subscribe())
    await handle(uow, RemovePushSubscription(subscription_id=created["id"]))
    assert uow.preferences.subscriptions == {}


async def test_hr_sets_and_drops_the_tenants_app_base_url(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    url = "https://rhythm.acme.example"
    found = await handle(uow, SetTenantSettings(principal=HR, app_base_url=url, allow_http=False))
    assert found == {"app_base_url": url, "updated_at": uow.clock.now()}
    assert await uow.tenants.app_base_urls([T]) == {T: url}

    await handle(uow, SetTenantSettings(principal=HR, app_base_url=None, allow_http=False))
    assert await uow.tenants.app_base_urls([T]) == {}


async def test_a_base_url_with_a_query_is_refused_and_only_hr_sets_one(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    with pytest.raises(InvalidInput):
        await handle(
            uow,
            SetTenantSettings(
                principal=HR, app_base_url="https://a.example/?x=1", allow_http=False
            ),
        )
    with pytest.raises(Forbidden):
        await handle(
            uow,
            SetTenantSettings(principal=EVA, app_base_url="https://a.example", allow_http=False),
        )
    assert uow.tenants.base_urls == {}


def chat(url: str = "https://hooks.slack.com/services/T0/B0/secret-part") -> SetChatChannel:
    return SetChatChannel(
        principal=HR,
        kind=Channel.SLACK,
        url=url,
        categories=["goal_stale", "checkin_due", "goal_stale"],
        allow_http=False,
        allow_private=True,
    )


async def test_hr_connects_a_chat_channel_shown_masked(uow: FakeNotificationsUnitOfWork) -> None:
    shown = await handle(uow, chat())

    assert shown["url"] == "https://hooks.slack.com/…part"
    assert shown["categories"] == ["checkin_due", "goal_stale"]
    stored = uow.tenants.chat[(T, Channel.SLACK)]
    assert stored.url.endswith("secret-part")


async def test_a_chat_channel_on_a_private_address_is_refused_unless_allowed(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    refused_private = chat("https://127.0.0.1/hook").model_copy(update={"allow_private": False})
    with pytest.raises(InvalidInput) as refused:
        await handle(uow, refused_private)
    assert "loopback" in str(refused.value)
    assert uow.tenants.chat == {}


async def test_disconnecting_a_chat_channel_is_idempotent(uow: FakeNotificationsUnitOfWork) -> None:
    await handle(uow, chat())
    for _ in range(2):
        await handle(uow, DeleteChatChannel(principal=HR, kind=Channel.SLACK))
        assert uow.committed
    assert uow.tenants.chat == {}
