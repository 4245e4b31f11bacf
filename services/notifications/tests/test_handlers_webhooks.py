"""Unit tests of the webhook handlers on the fake unit of work: endpoints, what they are owed,
claiming and recording deliveries."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from notifications_fakes import FakeNotificationsUnitOfWork, consume, handle
from test_email_delivery import missed

from rhythm_notifications.commands import (
    ClaimWebhooks,
    DeleteWebhook,
    RecordWebhookResult,
    RegisterWebhook,
    RotateWebhookSecret,
)
from rhythm_notifications.domain.delivery import RetryPolicy, Status
from rhythm_notifications.domain.routing import webhook_event_types
from rhythm_notifications.domain.webhooks import ClaimedWebhook
from rhythm_notifications.use_cases.webhooks import webhooks_due
from rhythm_shared.contracts.v1 import CheckinMissed
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Forbidden, InvalidInput, NotFound

T = "t-1"
HR = Principal("hr-1", T, frozenset({"hr_admin"}))
POLICY = RetryPolicy(max_attempts=3, base_s=10, max_s=100)


@pytest.fixture
def uow() -> FakeNotificationsUnitOfWork:
    return FakeNotificationsUnitOfWork()


def register(
    url: str = "https://hr.example/hook", event_types: list[str] | None = None, n: int = 1
) -> RegisterWebhook:
    return RegisterWebhook(
        principal=HR,
        url=url,
        event_types=event_types,
        description="HR platform",
        secret=f"whsec_{n}",
        allow_http=False,
        known_types=webhook_event_types(),
    )


async def test_registering_an_endpoint_shows_its_secret_once(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    created = await handle(uow, register())

    assert created["secret"] == "whsec_1"
    (endpoint,) = await uow.webhooks.active_endpoints(T)
    assert (endpoint.id, endpoint.url, endpoint.secret) == (
        created["id"],
        "https://hr.example/hook",
        "whsec_1",
    )
    assert "secret" not in endpoint.view(uow.clock.now())


async def test_an_endpoint_for_unknown_event_types_or_by_an_employee_is_refused(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await handle(uow, register(event_types=["rhythm.lottery.won.v1"]))
    assert "rhythm.lottery.won.v1" in str(refused.value)
    employee = register().model_copy(update={"principal": Principal("e-1", T, frozenset())})
    with pytest.raises(Forbidden):
        await handle(uow, employee)
    assert uow.webhooks.endpoints == {}


async def test_a_rotation_signs_with_both_secrets_during_the_overlap(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    created = await handle(uow, register())

    rotated = await handle(
        uow,
        RotateWebhookSecret(
            principal=HR, endpoint_id=created["id"], secret="whsec_2", overlap=timedelta(hours=24)
        ),
    )

    now = uow.clock.now()
    assert rotated["secret"] == "whsec_2"
    assert rotated["previous_secret_expires_at"] == now + timedelta(hours=24)
    endpoint = uow.webhooks.endpoints[created["id"]]
    assert endpoint.signing_secrets(now) == ("whsec_2", "whsec_1")
    assert endpoint.signing_secrets(now + timedelta(hours=25)) == ("whsec_2",)


async def test_a_rotation_without_overlap_drops_the_old_secret_at_once(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    created = await handle(uow, register())
    await handle(
        uow,
        RotateWebhookSecret(
            principal=HR, endpoint_id=created["id"], secret="whsec_2", overlap=timedelta(0)
        ),
    )
    assert uow.webhooks.endpoints[created["id"]].signing_secrets(uow.clock.now()) == ("whsec_2",)


async def test_rotating_or_deleting_an_unknown_endpoint_is_not_found(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    with pytest.raises(NotFound):
        await handle(
            uow,
            RotateWebhookSecret(
                principal=HR, endpoint_id="nope", secret="whsec_2", overlap=timedelta(0)
            ),
        )
    with pytest.raises(NotFound):
        await handle(uow, DeleteWebhook(principal=HR, endpoint_id="nope"))


async def test_a_deleted_endpoint_is_owed_nothing_more(uow: FakeNotificationsUnitOfWork) -> None:
    created = await handle(uow, register())
    await handle(uow, DeleteWebhook(principal=HR, endpoint_id=created["id"]))

    await consume(uow, missed(T))

    assert await uow.webhooks.active_endpoints(T) == []
    assert uow.webhooks.deliveries == {}


async def test_an_event_is_owed_once_to_each_endpoint_that_wants_its_type(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    every = await handle(uow, register(n=1))
    missed_only = await handle(uow, register(event_types=[CheckinMissed.type], n=2))
    await handle(uow, register(event_types=["rhythm.goal.stale.v1"], n=3))

    envelope = await consume(uow, missed(T), event_id="ev-1")
    await consume(uow, missed(T), event_id="ev-1")  # a replay

    owed = uow.webhooks.deliveries.values()
    assert sorted(d["endpoint_id"] for d in owed) == sorted([every["id"], missed_only["id"]])
    body = json.loads(next(iter(owed))["body"])
    assert body["type"] == CheckinMissed.type
    assert body["data"]["id"] == envelope.id
    assert body["data"]["obligation_id"] == "ob-e-1-monthly-2026-02"


async def test_claiming_respects_the_per_endpoint_limit_and_drops_removed_endpoints(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    busy = await handle(uow, register(n=1))
    gone = await handle(uow, register(url="https://gone.example/hook", n=2))
    for n in range(3):
        await consume(uow, missed(T, f"e-{n}"))
    await handle(uow, DeleteWebhook(principal=HR, endpoint_id=gone["id"]))

    claimed = await handle(
        uow,
        ClaimWebhooks(limit=10, lease_s=60, token="tok", in_flight={busy["id"]: 1}, per_endpoint=2),
    )

    assert [c.endpoint_id for c in claimed] == [busy["id"]]  # one more: 2 in flight
    assert claimed[0].attempts == 1
    assert claimed[0].signing_secrets == ("whsec_1",)
    statuses = sorted(
        (d["endpoint_id"] == gone["id"], d["status"]) for d in uow.webhooks.deliveries.values()
    )
    assert statuses == [
        (False, Status.CLAIMED),
        (False, Status.PENDING),
        (False, Status.PENDING),
        (True, Status.SUPPRESSED),
        (True, Status.SUPPRESSED),
        (True, Status.SUPPRESSED),
    ]


async def test_nothing_is_due_while_the_only_owed_endpoint_is_at_its_limit(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    now = uow.clock.now()
    claim = ClaimWebhooks(limit=10, lease_s=60, token="tok")
    assert not await webhooks_due(uow, now, claim)  # no endpoint
    busy = await handle(uow, register())
    await consume(uow, missed(T))

    def in_flight(n: int) -> ClaimWebhooks:
        return ClaimWebhooks(
            limit=10, lease_s=60, token="tok", in_flight={busy["id"]: n}, per_endpoint=2
        )

    assert not await webhooks_due(uow, now, in_flight(2))
    assert await webhooks_due(uow, now, in_flight(1))
    assert await webhooks_due(uow, now, claim)


async def _one_claimed(uow: FakeNotificationsUnitOfWork) -> ClaimedWebhook:
    await handle(uow, register())
    await consume(uow, missed(T))
    claimed: list[ClaimedWebhook] = await handle(
        uow, ClaimWebhooks(limit=10, lease_s=60, token="tok")
    )
    return claimed[0]


async def test_a_2xx_answer_records_the_webhook_sent(uow: FakeNotificationsUnitOfWork) -> None:
    claimed = await _one_claimed(uow)
    status = await handle(
        uow,
        RecordWebhookResult(
            delivery=claimed, token="tok", status_code=204, detail="ok", policy=POLICY
        ),
    )
    assert status is Status.SENT
    row = uow.webhooks.deliveries[claimed.id]
    assert (row["status"], row["last_status_code"], row["detail"]) == (Status.SENT, 204, None)


async def test_a_failed_answer_is_retried_with_backoff_until_the_attempts_run_out(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    claimed = await _one_claimed(uow)
    status = await handle(
        uow,
        RecordWebhookResult(
            delivery=claimed, token="tok", status_code=503, detail="busy", policy=POLICY
        ),
    )
    row = uow.webhooks.deliveries[claimed.id]
    assert status is Status.PENDING
    assert row["detail"] == "busy"
    assert uow.clock.now() + timedelta(seconds=5) <= row["next_attempt_at"]

    last = dataclasses.replace(claimed, attempts=3)
    row["claim_token"] = "tok2"
    status = await handle(
        uow,
        RecordWebhookResult(
            delivery=last, token="tok2", status_code=None, detail="timed out", policy=POLICY
        ),
    )
    assert status is Status.FAILED
    assert (row["status"], row["next_attempt_at"]) == (Status.FAILED, None)
