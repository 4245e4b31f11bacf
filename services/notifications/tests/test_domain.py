"""The pure rules: routing, preferences, schedules, retries, signatures, templates."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rhythm_notifications.adapters.email import build_message, message_id
from rhythm_notifications.adapters.templates import Rendered, Templates, language_of
from rhythm_notifications.adapters.tokens import (
    BadToken,
    UnsubscribeGrant,
    sign_unsubscribe,
    verify_unsubscribe,
)
from rhythm_notifications.adapters.webhooks import sign
from rhythm_notifications.domain import links, routing
from rhythm_notifications.domain.delivery import RetryPolicy
from rhythm_notifications.domain.preferences import (
    CategoryPreference,
    Plan,
    after_unsubscribe,
    decide,
    is_capped,
)
from rhythm_notifications.domain.routing import Audience, ChannelChoice
from rhythm_notifications.domain.schedule import DeliveryMode, Schedule
from rhythm_shared.contracts.v1 import (
    Channel,
    CheckinCancelled,
    CheckinKind,
    CheckinMissed,
    CheckinRescheduled,
    CheckinScheduled,
    GoalStatus,
    GoalStatusChanged,
    Initiator,
    NotificationCategory,
    SuppressionReason,
)

AMS = ZoneInfo("Europe/Amsterdam")
MONDAY_10_AMS = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_every_category_has_exactly_one_rule_in_the_routing_table() -> None:
    assert set(routing.RULES) == set(NotificationCategory)
    assert [c for c, r in routing.RULES.items() if r.critical] == [
        NotificationCategory.CADENCE_ESCALATED
    ]


def test_a_miss_goes_to_employee_and_manager_and_a_risky_goal_to_the_owners_manager() -> None:
    miss = CheckinMissed(
        tenant_id="t",
        occurred_at=MONDAY_10_AMS,
        obligation_id="ob-1",
        employee_id="e-1",
        manager_id="m-1",
        kind=CheckinKind.MONTHLY,
        period_start=date(2026, 2, 1),
        period_end=date(2026, 2, 28),
        due_at=MONDAY_10_AMS,
        consecutive_misses=1,
    )
    trigger = routing.trigger_for(miss)
    assert trigger is not None
    assert routing.recipients(trigger, lambda _: None) == [
        ("e-1", Audience.EMPLOYEE),
        ("m-1", Audience.MANAGER),
    ]
    assert routing.idempotency_key(trigger.natural_key, "m-1", "email") == (
        "missed:e-1:ob-1:m-1:email"
    )

    def status(to: GoalStatus) -> GoalStatusChanged:
        return GoalStatusChanged(
            tenant_id="t",
            occurred_at=MONDAY_10_AMS,
            goal_id="g-1",
            owner_id="e-1",
            from_status=GoalStatus.ON_TRACK,
            to_status=to,
            suggested=True,
        )

    risky = routing.trigger_for(status(GoalStatus.OFF_TRACK))
    assert risky is not None
    assert routing.recipients(risky, {"e-1": "m-1"}.get) == [("m-1", Audience.OWNERS_MANAGER)]
    assert routing.trigger_for(status(GoalStatus.ACHIEVED)) is None


def test_very_long_idempotency_keys_still_fit_and_stay_distinct() -> None:
    a = routing.idempotency_key("x" * 500, "r-1", "email")
    b = routing.idempotency_key("x" * 500, "r-2", "email")
    assert len(a) <= 400
    assert a != b


@pytest.mark.parametrize(
    ("pref", "has_push", "plan", "channels", "reason"),
    [
        (None, False, Plan.SEND, (Channel.EMAIL,), None),
        (
            CategoryPreference(ChannelChoice.BOTH),
            True,
            Plan.SEND,
            (Channel.EMAIL, Channel.PUSH),
            None,
        ),
        (CategoryPreference(ChannelChoice.PUSH), False, Plan.SEND, (Channel.EMAIL,), None),
        (
            CategoryPreference(ChannelChoice.NONE),
            False,
            Plan.SUPPRESS,
            (),
            SuppressionReason.OPTED_OUT,
        ),
        (
            CategoryPreference(ChannelChoice.NONE, unsubscribed=True),
            False,
            Plan.SUPPRESS,
            (),
            SuppressionReason.UNSUBSCRIBED,
        ),
        (
            CategoryPreference(ChannelChoice.EMAIL, DeliveryMode.DAILY),
            False,
            Plan.DIGEST,
            (Channel.EMAIL,),
            None,
        ),
    ],
)
def test_a_preference_decides_send_digest_or_suppress(
    pref: CategoryPreference | None,
    has_push: bool,
    plan: Plan,
    channels: tuple[Channel, ...],
    reason: SuppressionReason | None,
) -> None:
    decision = decide(routing.RULES[NotificationCategory.CHECKIN_MISSED], pref, has_push=has_push)
    assert (decision.plan, decision.channels, decision.reason) == (plan, channels, reason)


def test_critical_notices_skip_the_digest_but_not_an_opt_out() -> None:
    rule = routing.RULES[NotificationCategory.CADENCE_ESCALATED]
    weekly = CategoryPreference(ChannelChoice.EMAIL, DeliveryMode.WEEKLY)
    assert decide(rule, weekly, has_push=False).plan is Plan.SEND
    assert (
        decide(rule, CategoryPreference(ChannelChoice.NONE), has_push=False).plan is Plan.SUPPRESS
    )


def test_calendar_messages_skip_the_digest_and_the_daily_cap_but_not_an_opt_out() -> None:
    rule = routing.RULES[NotificationCategory.CHECKIN_INVITATION]
    assert (rule.calendar, rule.critical, rule.immediate) == (True, False, True)
    daily = CategoryPreference(ChannelChoice.EMAIL, DeliveryMode.DAILY)
    assert decide(rule, daily, has_push=False).plan is Plan.SEND
    assert not is_capped(rule.category, immediate=rule.immediate)
    assert is_capped(NotificationCategory.CHECKIN_DUE, immediate=False)
    assert (
        decide(rule, CategoryPreference(ChannelChoice.NONE), has_push=False).plan is Plan.SUPPRESS
    )


def test_each_change_of_a_checkin_is_its_own_invitation_with_its_method_and_sequence() -> None:
    common: dict[str, Any] = {
        "tenant_id": "t",
        "occurred_at": MONDAY_10_AMS,
        "checkin_id": "c-1",
        "kind": CheckinKind.MONTHLY,
        "employee_id": "e-1",
        "manager_id": "m-1",
        "initiated_by": Initiator.MANAGER,
    }
    first = datetime(2026, 3, 5, 9, tzinfo=UTC)
    triggers = [
        routing.trigger_for(event)
        for event in (
            CheckinScheduled(scheduled_for=first, **common),
            CheckinRescheduled(
                scheduled_for=first.replace(day=6),
                previous_scheduled_for=first,
                changed_by=Initiator.EMPLOYEE,
                sequence=1,
                **common,
            ),
            CheckinRescheduled(
                scheduled_for=first,  # back to the first time: still a new message
                previous_scheduled_for=first.replace(day=6),
                changed_by=Initiator.EMPLOYEE,
                sequence=2,
                **common,
            ),
            CheckinCancelled(
                scheduled_for=first, changed_by=Initiator.MANAGER, sequence=3, **common
            ),
        )
    ]
    assert all(t is not None for t in triggers)
    keys = [t.natural_key for t in triggers if t]
    assert len(set(keys)) == 4
    assert {t.category for t in triggers if t} == {NotificationCategory.CHECKIN_INVITATION}
    assert [(t.facts["method"], t.facts["sequence"]) for t in triggers if t] == [
        ("REQUEST", 0),
        ("REQUEST", 1),
        ("REQUEST", 2),
        ("CANCEL", 3),
    ]
    assert all(
        (t.facts["employee_id"], t.facts["manager_id"]) == ("e-1", "m-1") for t in triggers if t
    )


def test_unsubscribing_stops_email_but_keeps_push() -> None:
    assert after_unsubscribe(ChannelChoice.BOTH) is ChannelChoice.PUSH
    assert after_unsubscribe(ChannelChoice.EMAIL) is ChannelChoice.NONE


def test_quiet_hours_and_days_off_move_a_message_to_the_next_open_moment() -> None:
    schedule = Schedule(zone=AMS)  # 20:00-08:00 quiet, Monday to Friday
    assert schedule.next_open(MONDAY_10_AMS) == MONDAY_10_AMS
    friday_21 = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)
    assert schedule.next_open(friday_21) == datetime(2026, 3, 9, 7, 0, tzinfo=UTC)  # Mon 08:00
    tuesday_3am = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    assert schedule.next_open(tuesday_3am) == datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    no_quiet = Schedule(zone=AMS, quiet_start=None, quiet_end=None, working_days=frozenset({6}))
    assert no_quiet.next_open(MONDAY_10_AMS) == datetime(2026, 3, 6, 23, 0, tzinfo=UTC)


def test_quiet_hours_follow_daylight_saving_time() -> None:
    schedule = Schedule(zone=AMS, quiet_start=time(20, 0), quiet_end=time(8, 0))
    after_switch = datetime(2026, 3, 30, 2, 0, tzinfo=UTC)  # Monday 04:00 CEST
    assert schedule.next_open(after_switch) == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)


def test_digests_go_out_at_the_digest_hour_on_the_next_working_day() -> None:
    schedule = Schedule(zone=AMS)
    assert schedule.next_digest(MONDAY_10_AMS, DeliveryMode.DAILY) == datetime(
        2026, 3, 3, 8, 0, tzinfo=UTC
    )
    assert schedule.next_digest(MONDAY_10_AMS, DeliveryMode.WEEKLY) == datetime(
        2026, 3, 9, 8, 0, tzinfo=UTC
    )
    friday = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
    assert schedule.next_digest(friday, DeliveryMode.DAILY) == datetime(
        2026, 3, 9, 8, 0, tzinfo=UTC
    )


def test_retries_back_off_exponentially_with_jitter_and_stop() -> None:
    policy = RetryPolicy(max_attempts=4, base_s=10, max_s=60)
    rng = random.Random(1)
    delays = [policy.delay_s(n, rng) for n in (1, 2, 3, 4, 5)]
    assert 5 <= delays[0] <= 10
    assert 10 <= delays[1] <= 20
    assert 20 <= delays[2] <= 40
    assert all(30 <= d <= 60 for d in delays[3:])
    assert not policy.exhausted(3)
    assert policy.exhausted(4)


def test_webhook_signature_matches_the_standard_webhooks_example() -> None:
    # The example of the Standard Webhooks specification.
    assert (
        sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            '{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_unsubscribe_tokens_are_signed_and_tamper_proof() -> None:
    grant = UnsubscribeGrant("acme", "e-1", "checkin_due")
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    later = now + timedelta(days=60)
    token = sign_unsubscribe("secret", grant, expires_at=later)
    assert verify_unsubscribe(["secret"], token, now=now) == grant
    with pytest.raises(BadToken):
        verify_unsubscribe(["other-secret"], token, now=now)
    _body, mac = token.split(".")
    forged = sign_unsubscribe(
        "secret", UnsubscribeGrant("acme", "e-2", "checkin_due"), expires_at=later
    ).split(".")[0]
    with pytest.raises(BadToken):
        verify_unsubscribe(["secret"], f"{forged}.{mac}", now=now)
    with pytest.raises(BadToken):
        verify_unsubscribe(["secret"], "garbage", now=now)


def test_the_message_id_is_the_same_for_every_copy_of_one_notification() -> None:
    a = message_id("missed:e-1:ob-1:e-1:email", "Rhythm <r@acme.example.com>")
    assert a == message_id("missed:e-1:ob-1:e-1:email", "r@acme.example.com")
    assert a.endswith("@acme.example.com>")
    assert a != message_id("missed:e-1:ob-1:m-1:email", "r@acme.example.com")


def _written(rendered: Rendered, name: str, unsubscribe: str) -> tuple[bytes, EmailMessage]:
    raw = build_message(
        rendered,
        sender="Rhythm <rhythm@acme.example.com>",
        to_name=name,
        to_address="zoe@acme.example.com",
        unsubscribe_url=unsubscribe,
        idempotency_key="missed:e-1:ob-1:e-1:email",
        category="checkin_missed",
        now=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    )
    parsed = message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email_policy.default)
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects
    return raw, parsed


def test_an_email_is_written_as_seven_bit_lines_that_read_back_as_what_was_rendered() -> None:
    text = "Hallo Zoë,\n\nJe check-in met José is niet gebeurd. " + "é" * 90 + "\n.dot \n"
    unsubscribe = "https://rhythm.example.com/v1/unsubscribe?token=" + "t" * 150
    raw, msg = _written(
        Rendered("Gemist: je check-in met José — vandaag", text, "<p>Hallo Zoë</p>\n"),
        'Zoë "Z" de Vries, Jr.',
        unsubscribe,
    )
    lines = raw.split(b"\r\n")
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in lines)
    assert msg["Subject"] == "Gemist: je check-in met José — vandaag"
    assert msg["To"].addresses[0].display_name == 'Zoë "Z" de Vries, Jr.'
    assert msg["Message-ID"] == message_id("missed:e-1:ob-1:e-1:email", "rhythm@acme.example.com")
    # RFC 2369: the URI stays one line as it is (an encoded word there would be no URI).
    assert f"List-Unsubscribe: <{unsubscribe}>".encode() in lines
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.iter_parts()
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"
    assert plain.get_content().replace("\r\n", "\n") == text
    assert (html.get_content_type(), html.get_content()) == ("text/html", "<p>Hallo Zoë</p>\n")


def test_a_short_ascii_email_goes_as_it_is() -> None:
    raw, msg = _written(
        Rendered("Missed: your monthly check-in", "Hi Ana,\n", "<p>Hi Ana</p>\n"),
        "Ana de Vries",
        "https://rhythm.example.com/v1/unsubscribe?token=t",
    )
    assert b"\r\nTo: Ana de Vries <zoe@acme.example.com>\r\n" in raw
    assert b"\r\nSubject: Missed: your monthly check-in\r\n" in raw
    assert [p["Content-Transfer-Encoding"] for p in msg.iter_parts()] == ["7bit", "7bit"]
    assert msg["X-Rhythm-Category"] == "checkin_missed"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_list_unsubscribe_uri_that_is_not_one_ascii_line_fails_the_message() -> None:
    rendered = Rendered("Missed", "Hi\n", "<p>Hi</p>\n")
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        _written(rendered, "Ana", "https://rhythm.example.com/v1/unsubscribe?token=" + "t" * 990)
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        _written(rendered, "Ana", "https://rhythm.example.com/v1/unsubscribe?token=t\r\nBcc: x")


def test_templates_escape_html_but_not_plain_text_and_speak_the_persons_language() -> None:
    templates = Templates()
    context: dict[str, Any] = {
        "name": "Zoë <b>",
        "role": "receiver",
        "facts": {"giver_id": "g-1", "kind": "praise", "requested": False},
        "names": {"employee": "Zoë", "manager": "", "owner": "", "giver": "O'Brien & <Co>"},
        "unsubscribe_url": "http://x/u?token=a&b",
        "items": [],
        "summary": None,
    }
    en = templates.render("feedback_received", "en-GB", "Europe/Amsterdam", context)
    assert en.subject == "O'Brien & <Co> gave you feedback"
    assert "O'Brien & <Co> gave you praise." in en.text
    assert "O&#39;Brien &amp; &lt;Co&gt; gave you praise." in en.html
    assert "Hi Zoë &lt;b&gt;," in en.html
    assert 'href="http://x/u?token=a&amp;b"' in en.html
    nl = templates.render("feedback_received", "nl-BE", "Europe/Amsterdam", context)
    assert nl.subject == "O'Brien & <Co> gaf je feedback"
    assert language_of("fr") == "en"


@pytest.mark.parametrize("category", [c.value for c in NotificationCategory])
@pytest.mark.parametrize("locale", ["en", "nl"])
def test_every_category_renders_in_every_language(category: str, locale: str) -> None:
    facts = {
        "kind": "monthly",
        "due_at": "2026-03-05T16:00:00+00:00",
        "obligation_id": "ob-1",
        "consecutive_misses": 2,
        "level": "skip_level",
        "goal_id": "g-1",
        "last_progress_at": "2026-02-01T10:00:00+00:00",
        "update_interval_days": 14,
        "from_status": "on_track",
        "to_status": "at_risk",
        "giver_id": "g-1",
        "requested": False,
        "checkin_id": "c-1",
        "scheduled_for": "2026-03-05T14:00:00+00:00",
        "initiated_by": "employee",
    }
    names = {"employee": "Eva", "manager": "Mark", "owner": "Eva", "giver": "Gijs"}
    item = {"category": "checkin_missed", "facts": facts, "names": names, "role": "manager"}
    rendered = Templates().render(
        category,
        locale,
        "Europe/Amsterdam",
        {
            "name": "Eva",
            "role": "employee",
            "facts": facts,
            "names": names,
            "unsubscribe_url": "http://x/u",
            "items": [item],
            "summary": {"overdue": 1, "reports": 3},
        },
    )
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert "http://x/u" in rendered.text
    assert "http://x/u" in rendered.html


def test_every_category_has_a_link_pattern_and_ids_cannot_change_the_path() -> None:
    assert set(links.PATTERNS) == set(NotificationCategory)
    base = "https://app.example.com/rhythm/"
    assert links.link(base, "goal_stale", {"goal_id": "g-1"}) == (
        "https://app.example.com/rhythm/goals/g-1"
    )
    assert links.link(base, "checkin_due", {"obligation_id": "../admin?x=1#y"}) == (
        "https://app.example.com/rhythm/checkins/due/..%2Fadmin%3Fx%3D1%23y"
    )
    assert links.link(base, "digest", None) == "https://app.example.com/rhythm/"


def test_without_a_base_or_the_id_it_needs_there_is_no_link() -> None:
    assert links.link(None, "goal_stale", {"goal_id": "g-1"}) is None
    assert links.link("", "goal_stale", {"goal_id": "g-1"}) is None
    # Feedback decided before its id was kept in the facts: no link, not a broken one.
    assert links.link("https://app.example.com", "feedback_received", {"giver_id": "g"}) is None
    assert links.link("https://app.example.com", "goal_stale", {"goal_id": 7}) is None
    assert links.link("https://app.example.com", "no_such_category", {}) is None


def test_a_tenants_chat_channels_join_the_persons_channels_but_not_an_opt_out() -> None:
    rule = routing.RULES[routing.Category.CHECKIN_MISSED]
    chat = (Channel.SLACK, Channel.TEAMS)
    sent = decide(rule, None, has_push=False, chat=chat)
    assert sent.channels == (Channel.EMAIL, Channel.SLACK, Channel.TEAMS)
    none = CategoryPreference(ChannelChoice.NONE)
    assert decide(rule, none, has_push=False, chat=chat).plan is Plan.SUPPRESS
    daily = CategoryPreference(ChannelChoice.PUSH, DeliveryMode.DAILY)
    digest = decide(rule, daily, has_push=True, chat=chat)
    assert (digest.plan, digest.channels) == (Plan.DIGEST, (Channel.PUSH, *chat))
