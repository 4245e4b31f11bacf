"""Closed sets and small value types shared by the v1 events.

Enums are ``StrEnum`` so a body carries the plain string and the JSON Schema lists every value:
an integrator can switch on them without guessing. Adding a value is a breaking change for a
consumer that switches exhaustively, so it means a ``v2`` type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic.networks import validate_email
from pydantic_core import CoreSchema, core_schema


class OwnerType(StrEnum):
    """Who owns a goal: a person, an org unit (department, team) or the whole company."""

    PERSON = "person"
    ORG_UNIT = "org_unit"
    COMPANY = "company"


class GoalKind(StrEnum):
    """An OKR (objective with measurable key results) or a KPI (a measure kept on target)."""

    OKR = "okr"
    KPI = "kpi"


class Visibility(StrEnum):
    """Who may see a goal: everyone in the tenant, or only the owner and their manager chain."""

    TENANT = "tenant"
    PRIVATE = "private"


class GoalStatus(StrEnum):
    """Where a goal stands."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    ACHIEVED = "achieved"
    ABANDONED = "abandoned"


class Direction(StrEnum):
    """Whether a key result is met by going up (revenue) or down (churn) towards its target."""

    INCREASE = "increase"
    DECREASE = "decrease"


class ArchiveReason(StrEnum):
    """Why a goal left the active set."""

    PERIOD_ENDED = "period_ended"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"
    OWNER_DEACTIVATED = "owner_deactivated"


class CheckinKind(StrEnum):
    """A conversation the cadence can owe: the monthly check-in or the quarterly review."""

    MONTHLY = "monthly"
    QUARTERLY_REVIEW = "quarterly_review"


class FeedbackKind(StrEnum):
    """Informal feedback: recognition of something that went well, or a suggestion to improve."""

    PRAISE = "praise"
    CONSTRUCTIVE = "constructive"


class Initiator(StrEnum):
    """Who started a check-in; the employee-initiated share is a reported ownership measure."""

    EMPLOYEE = "employee"
    MANAGER = "manager"


class PulseSource(StrEnum):
    """Where a workload pulse was given: a completed check-in or a self-reflection."""

    CHECKIN = "checkin"
    REFLECTION = "reflection"


class PolicyScope(StrEnum):
    """What a cadence policy applies to; the most specific wins (employee > org_unit > tenant)."""

    TENANT = "tenant"
    ORG_UNIT = "org_unit"
    EMPLOYEE = "employee"


class Frequency(StrEnum):
    """How often a kind of check-in is owed."""

    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class EscalationTarget(StrEnum):
    """Where a cadence policy escalates repeated misses beyond the manager."""

    SKIP_LEVEL = "skip_level"
    HR = "hr"


class EscalationLevel(StrEnum):
    """Who an escalation went to: the manager first, then the skip-level manager or HR."""

    MANAGER = "manager"
    SKIP_LEVEL = "skip_level"
    HR = "hr"


class Channel(StrEnum):
    """How a notification reaches its recipient."""

    EMAIL = "email"
    PUSH = "push"
    WEBHOOK = "webhook"
    SLACK = "slack"  # a tenant's Slack incoming webhook (Block Kit)
    TEAMS = "teams"  # a tenant's Microsoft Teams incoming webhook / Workflow (Adaptive Card)


class NotificationCategory(StrEnum):
    """What a notification is about; recipients opt in or out per category."""

    CHECKIN_DUE = "checkin_due"
    CHECKIN_MISSED = "checkin_missed"
    CADENCE_ESCALATED = "cadence_escalated"
    GOAL_STALE = "goal_stale"
    GOAL_AT_RISK = "goal_at_risk"
    FEEDBACK_RECEIVED = "feedback_received"
    CHECKIN_INVITATION = "checkin_invitation"
    DIGEST = "digest"


class DeliveryFailure(StrEnum):
    """Why a delivery failed for good (after its retries)."""

    INVALID_ADDRESS = "invalid_address"
    REJECTED = "rejected"
    BOUNCED = "bounced"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    PROVIDER_ERROR = "provider_error"


class SuppressionReason(StrEnum):
    """Why a notification was deliberately not sent."""

    OPTED_OUT = "opted_out"
    UNSUBSCRIBED = "unsubscribed"
    DIGESTED = "digested"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    INACTIVE = "inactive"
    EXPIRED = "expired"  # lost its point before it could be sent (too old, already happened)


def _iana_zone(value: str) -> str:
    # The zone must load here, or every consumer computing local due times would fail later.
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone") from exc
    return value


TimeZoneName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$",
        examples=["Europe/Amsterdam"],
    ),
    AfterValidator(_iana_zone),
]
"""An IANA time zone name such as ``Europe/Amsterdam``."""

Locale = Annotated[
    str,
    Field(pattern=r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$", examples=["en-GB"]),
]
"""A BCP 47 language tag of language, optional script and optional region: ``nl``, ``en-GB``."""

#: What a single line of text may not hold: C0 controls (TAB, CR and LF among them), DEL, C1
#: controls (NEL among them), the Unicode line and paragraph separators, the explicit bidi
#: embeddings, overrides and isolates of UAX #9 (an unterminated override reverses the rest of a
#: subject line it is pasted into: "Trojan Source", CVE-2021-42574) and lone surrogates (JSON
#: allows them; UTF-8 cannot encode them). LRM/RLM marks stay allowed: names in Arabic or Hebrew
#: use them and they affect nothing beyond the name.
CONTROL_CHARACTERS = r"[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
# Surrogates only here: a schema validator reading UTF-16 (JavaScript) sees an emoji as a pair.
_CONTROL = re.compile(CONTROL_CHARACTERS[:-1] + r"\ud800-\udfff]")


def refuse_control_characters(value: str) -> str:
    """``value`` unchanged, or a ValueError naming the first control character and where it is."""
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(
            f"must not contain control characters such as line breaks or tabs "
            f"(U+{ord(found.group()):04X} at position {found.start() + 1})"
        )
    return value


@dataclass(frozen=True)
class _OneLine:
    """Marks a ``str`` as one line of text (see CONTROL_CHARACTERS); the JSON Schema says so."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(
            refuse_control_characters, handler(source)
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        # ECMA-262 (JSON Schema's regex dialect) reads the same escapes as Python's re.
        json_schema["pattern"] = f"^(?!.*{CONTROL_CHARACTERS})"
        return json_schema


ONE_LINE = _OneLine()
"""Put in ``Annotated[str, ..., ONE_LINE]`` for text that becomes a name, a title, a header or a
filename. Free multi-line text (notes, reflections, feedback) does not use it."""

DisplayName = Annotated[str, Field(min_length=1, max_length=200), ONE_LINE]
"""A human name shown in messages and headers (person, org unit): one line, no control
characters."""

Title = DisplayName
"""A goal's or key result's title: the same rules as a name (it rides into subjects and
titles of notifications)."""

MeasureUnit = Annotated[str, Field(min_length=1, max_length=32), ONE_LINE]
"""The unit a key result is measured in (%, EUR, NPS): one short line."""


def check_period(start: date, end: date) -> None:
    """Shared rule for every ``period_start``/``period_end`` pair."""
    if end < start:
        raise ValueError("period_end is before period_start")


# The common shape of a work address, accepted without the full RFC 5322/IDNA machinery of
# email-validator (which costs ~40 µs an address: 8 s of a 200,000-row import). Anything else
# (quoted parts, Unicode, punycode, special-use domains) goes the full way; the result is
# exactly what pydantic's EmailStr gives (domain lowercased). Every consumer decodes every
# EmployeeUpserted with it, so it is also a third of decoding a people event.
_SIMPLE_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def _email(value: str) -> str:
    simple = value.strip()
    match = _SIMPLE_EMAIL.fullmatch(simple)
    if match and len(simple) <= 254 and len(match["local"]) <= 64 and "--" not in simple:
        domain = match["domain"].lower()
        labels = domain.split(".")
        suffixes = {".".join(labels[i:]) for i in range(len(labels))}
        if suffixes.isdisjoint(_SPECIAL_USE):
            return f"{match['local']}@{domain}"
    return validate_email(value)[1]


#: Like ``EmailStr``: a string first (anything else is refused as not a string), then the address.
Email = Annotated[
    str,
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email"}),
]
"""An email address, validated and normalised exactly as pydantic's ``EmailStr``."""
