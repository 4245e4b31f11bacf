"""The v1 catalog: every type registered, examples valid, envelope round-trip, CloudEvents-valid."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError

from rhythm_shared.contracts import (
    CADENCE,
    CHECKINS,
    EVENT_TYPES,
    GOALS,
    INTERNAL_PULSE,
    NOTIFICATIONS,
    PEOPLE,
    TOPICS,
    EnvelopeError,
    Event,
    from_record,
    to_record,
    v1,
)
from rhythm_shared.contracts.v1 import (
    CadencePolicyChanged,
    CheckinCompleted,
    EmployeeUpserted,
    FeedbackGiven,
    GoalCreated,
    GoalStatusChanged,
    KeyResultSpec,
    PulseRecorded,
)

CATALOG = {
    "rhythm.employee.upserted.v1",
    "rhythm.employee.deactivated.v1",
    "rhythm.org_unit.upserted.v1",
    "rhythm.goal.created.v1",
    "rhythm.goal.updated.v1",
    "rhythm.goal.progress_recorded.v1",
    "rhythm.goal.status_changed.v1",
    "rhythm.goal.stale.v1",
    "rhythm.goal.archived.v1",
    "rhythm.checkin.scheduled.v1",
    "rhythm.checkin.rescheduled.v1",
    "rhythm.checkin.cancelled.v1",
    "rhythm.checkin.completed.v1",
    "rhythm.reflection.submitted.v1",
    "rhythm.feedback.given.v1",
    "rhythm.review.completed.v1",
    "rhythm.cadence_policy.changed.v1",
    "rhythm.checkin.due.v1",
    "rhythm.checkin.missed.v1",
    "rhythm.cadence.escalated.v1",
    "rhythm.notification.sent.v1",
    "rhythm.notification.failed.v1",
    "rhythm.notification.suppressed.v1",
    "rhythm.pulse.recorded.v1",
    "rhythm.employee.erased.v1",
    "rhythm.employee.upserted.v2",
    "rhythm.person_key.issued.v1",
    "rhythm.person_key.destroyed.v1",
    "rhythm.person_data.erased.v1",
}

MODELS = list(v1.EVENTS)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def example_of(model: type[Event]) -> dict[str, Any]:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict), f"{model.__name__} has no json_schema_extra examples"
    examples = extra["examples"]
    assert isinstance(examples, list)
    assert len(examples) == 1, f"{model.__name__} should have exactly one example"
    example = examples[0]
    assert isinstance(example, dict)
    return example


def event_of(model: type[Event]) -> Event:
    return model.model_validate(example_of(model))


def test_every_catalog_type_is_registered() -> None:
    assert set(EVENT_TYPES) >= CATALOG
    assert {model.type for model in MODELS} == CATALOG
    for event_type in CATALOG:
        assert EVENT_TYPES[event_type].type == event_type


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.type)
def test_classvars_are_consistent(model: type[Event]) -> None:
    assert model.topic in TOPICS
    assert model.entity_field in model.model_fields
    assert (model.__doc__ or "").strip()
    event = event_of(model)
    assert event.key == f"{event.tenant_id}/{getattr(event, model.entity_field)}"
    assert event.subject == f"{model.entity}/{getattr(event, model.entity_field)}"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.type)
def test_every_field_is_described(model: type[Event]) -> None:
    for name, info in model.model_fields.items():
        assert info.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.type)
def test_example_validates_and_round_trips_as_json(model: type[Event]) -> None:
    event = event_of(model)
    assert model.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.type)
def test_envelope_round_trip(model: type[Event]) -> None:
    event = event_of(model)
    record = to_record(
        event, source="/rhythm/test", event_id="evt-1", trace_headers={"traceparent": TRACEPARENT}
    )
    assert record.topic == model.topic
    assert record.key == event.key.encode()

    envelope = from_record(record.headers, record.value)
    assert envelope.event == event
    assert type(envelope.event) is model
    assert envelope.id == "evt-1"
    assert envelope.type == model.type
    assert envelope.source == "/rhythm/test"
    assert envelope.subject == event.subject
    assert envelope.tenant_id == event.tenant_id
    assert envelope.time == event.occurred_at
    assert envelope.trace_headers == {"traceparent": TRACEPARENT}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.type)
def test_record_is_a_valid_cloudevent(model: type[Event]) -> None:
    event = event_of(model)
    record = to_record(event, source="/rhythm/test", trace_headers={"traceparent": TRACEPARENT})
    message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)

    # The SDK validates required attributes, time zone awareness and extension names.
    cloud_event = from_binary(message, JSONFormat())

    assert cloud_event.get_specversion() == "1.0"
    assert cloud_event.get_type() == model.type
    assert cloud_event.get_source() == "/rhythm/test"
    assert cloud_event.get_id()
    assert cloud_event.get_subject() == event.subject
    assert cloud_event.get_time() == event.occurred_at
    assert cloud_event.get_datacontenttype() == "application/json"
    assert cloud_event.get_extension("tenantid") == event.tenant_id
    assert cloud_event.get_extension("partitionkey") == event.key
    assert cloud_event.get_data() == json.loads(event.model_dump_json())


# --- from_record says clearly what is wrong ----------------------------------------------------


def _record_parts() -> tuple[list[tuple[str, bytes]], bytes]:
    record = to_record(event_of(GoalCreated), source="/rhythm/goals")
    return list(record.headers), record.value


def _replace(headers: list[tuple[str, bytes]], name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value if k == name else v) for k, v in headers]


def test_from_record_rejects_missing_type() -> None:
    headers, value = _record_parts()
    headers = [(k, v) for k, v in headers if k != "ce_type"]
    with pytest.raises(EnvelopeError, match="missing headers ce_type"):
        from_record(headers, value)


def test_from_record_rejects_unknown_type() -> None:
    headers, value = _record_parts()
    with pytest.raises(EnvelopeError, match=r"unknown ce_type 'rhythm\.goal\.exploded\.v1'"):
        from_record(_replace(headers, "ce_type", b"rhythm.goal.exploded.v1"), value)


def test_from_record_rejects_non_json_body() -> None:
    headers, _ = _record_parts()
    with pytest.raises(EnvelopeError, match="body is not JSON"):
        from_record(headers, b"not json {")


def test_from_record_rejects_schema_mismatch() -> None:
    headers, value = _record_parts()
    body = json.loads(value)
    body["kind"] = "vibes"
    del body["owner_id"]
    with pytest.raises(
        EnvelopeError, match=r"body does not match rhythm\.goal\.created\.v1"
    ) as err:
        from_record(headers, json.dumps(body).encode())
    assert "kind" in str(err.value)
    assert "owner_id" in str(err.value)


def test_unknown_body_fields_are_dropped_on_read_so_smuggled_text_goes_nowhere() -> None:
    # Tolerant reader: a newer producer's additive field does not break an older consumer,
    # and nothing outside the model (such as smuggled text) survives into what it stores.
    headers, value = _record_parts()
    body = json.loads(value)
    body["notes"] = "We talked about the reorg."
    envelope = from_record(headers, json.dumps(body).encode())
    assert "notes" not in envelope.event.model_dump()
    assert "reorg" not in envelope.event.model_dump_json()


def test_from_record_rejects_tenant_mismatch() -> None:
    headers, value = _record_parts()
    with pytest.raises(EnvelopeError, match="ce_tenantid does not match"):
        from_record(_replace(headers, "ce_tenantid", b"globex"), value)


# --- model rules ------------------------------------------------------------------------------


def _with(model: type[Event], **changes: Any) -> Event:
    return model.model_validate({**example_of(model), **changes})


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        _with(GoalCreated, occurred_at="2026-03-01T09:00:00")


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "America/Argentina/Buenos_Aires", "UTC"])
def test_iana_time_zones_are_accepted(zone: str) -> None:
    assert _with(EmployeeUpserted, time_zone=zone).time_zone == zone  # type: ignore[attr-defined]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "CET+1", "../etc/passwd", "Europe/"])
def test_unknown_time_zones_are_rejected(zone: str) -> None:
    with pytest.raises(ValidationError, match="time_zone"):
        _with(EmployeeUpserted, time_zone=zone)


@pytest.mark.parametrize("locale", ["en", "nl", "en-GB", "es-419", "zh-Hant-TW"])
def test_locales(locale: str) -> None:
    _with(EmployeeUpserted, locale=locale)


@pytest.mark.parametrize("locale", ["EN", "en_GB", "english", "en-gb"])
def test_bad_locales_are_rejected(locale: str) -> None:
    with pytest.raises(ValidationError, match="locale"):
        _with(EmployeeUpserted, locale=locale)


def test_bad_email_is_rejected() -> None:
    with pytest.raises(ValidationError, match="email"):
        _with(EmployeeUpserted, email="ana at acme")


def test_private_goal_title_is_omitted() -> None:
    private = _with(GoalCreated, visibility="private", title=None)
    assert private.title is None  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="private goal's title"):
        _with(GoalCreated, visibility="private")
    with pytest.raises(ValidationError, match="carries its title"):
        _with(GoalCreated, title=None)


def test_goal_period_and_key_results() -> None:
    with pytest.raises(ValidationError, match="period_end is before period_start"):
        _with(GoalCreated, period_start="2026-04-01")
    with pytest.raises(ValidationError, match="beyond start"):
        KeyResultSpec(key_result_id="kr", unit="%", start=10, target=5, direction="increase")
    with pytest.raises(ValidationError, match="weight"):
        KeyResultSpec(
            key_result_id="kr", unit="%", start=0, target=5, direction="increase", weight=0
        )
    kr = example_of(GoalCreated)["key_results"][0]
    with pytest.raises(ValidationError, match="unique"):
        _with(GoalCreated, key_results=[kr, kr])


@pytest.mark.parametrize(
    ("field", "value"),
    [("goal_progress", 1.2), ("confidence", -0.1), ("pulse", 6), ("pulse", 0)],
)
def test_numeric_bounds(field: str, value: float) -> None:
    model = CheckinCompleted if field == "pulse" else v1.GoalProgressRecorded
    with pytest.raises(ValidationError, match=field):
        _with(model, **{field: value})


def test_checkin_completed_fields() -> None:
    event = _with(CheckinCompleted, obligation_id=None, due_at=None, pulse=None)
    assert isinstance(event, CheckinCompleted)
    assert event.open_action_items == 2
    with pytest.raises(ValidationError, match="open_action_items"):
        _with(CheckinCompleted, open_action_items="call Bob about the budget")
    with pytest.raises(ValidationError, match="obligation_id"):
        _with(CheckinCompleted, obligation_id=None)


def test_status_change_rules() -> None:
    with pytest.raises(ValidationError, match="the same"):
        _with(GoalStatusChanged, to_status="on_track")
    with pytest.raises(ValidationError, match="changed_by"):
        _with(GoalStatusChanged, suggested=False)
    assert _with(GoalStatusChanged, suggested=False, changed_by="e-0007")


def test_feedback_and_policy_rules() -> None:
    with pytest.raises(ValidationError, match="someone else"):
        _with(FeedbackGiven, giver_id="e-1042")
    with pytest.raises(ValidationError, match="tenant-wide"):
        _with(CadencePolicyChanged, scope="tenant", scope_id="ou-platform")
    assert _with(CadencePolicyChanged, scope="tenant", scope_id="acme")
    rule = example_of(CadencePolicyChanged)["rules"][0]
    with pytest.raises(ValidationError, match="one rule per"):
        _with(CadencePolicyChanged, rules=[rule, rule])


def test_events_are_immutable() -> None:
    event = event_of(GoalCreated)
    with pytest.raises(ValidationError):
        event.goal_id = "other"  # type: ignore[attr-defined]


def test_publishers() -> None:
    assert v1.topics_published_by("checkins") == (CHECKINS, CADENCE, INTERNAL_PULSE)
    assert v1.topics_published_by("goals") == (GOALS,)
    assert v1.publisher_of(PEOPLE) == "people"
    assert v1.publisher_of(NOTIFICATIONS) == "notifications"
    assert set(v1.PUBLISHERS) | set(v1.SHARED_TOPICS) == set(TOPICS)
    assert not set(v1.PUBLISHERS) & set(v1.SHARED_TOPICS)
    assert v1.source_of("goals") == "/rhythm/goals"
    published = {
        m.type
        for s in ("people", "goals", "checkins", "notifications")
        for m in v1.events_published_by(s)
    }
    assert published == CATALOG
    assert [m.__name__ for m in v1.events_on(PEOPLE)] == [
        "EmployeeUpserted",
        "EmployeeDeactivated",
        "OrgUnitUpserted",
        "EmployeeErased",
        "EmployeeUpsertedV2",
    ]


def test_individual_pulses_have_an_internal_topic_that_only_reporting_reads() -> None:
    assert PulseRecorded.topic == INTERNAL_PULSE
    assert v1.publisher_of(INTERNAL_PULSE) == "checkins"
    assert v1.CONSUMERS[INTERNAL_PULSE] == ("reporting",)
    assert [m.__name__ for m in v1.events_on(INTERNAL_PULSE)] == ["PulseRecorded"]
    event = event_of(PulseRecorded)
    assert event.key == "acme/e-1042"


def test_a_pulse_from_a_checkin_names_the_checkin() -> None:
    with pytest.raises(ValidationError, match="checkin_id"):
        _with(PulseRecorded, checkin_id=None)
    reflection = _with(PulseRecorded, checkin_id=None, source="reflection")
    assert isinstance(reflection, PulseRecorded)
    assert reflection.checkin_id is None
    with pytest.raises(ValidationError):
        _with(PulseRecorded, pulse=6)
