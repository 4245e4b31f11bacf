"""What a person wants per category, and what that means for one notification."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo

from rhythm_notifications.domain.routing import RULES, Category, ChannelChoice, Rule
from rhythm_notifications.domain.schedule import (
    DEFAULT_DIGEST_HOUR,
    DEFAULT_QUIET_END,
    DEFAULT_QUIET_START,
    DEFAULT_WORKING_DAYS,
    DeliveryMode,
    Schedule,
    format_hhmm,
    parse_hhmm,
)
from rhythm_shared.contracts.v1 import Channel, SuppressionReason


@dataclass(frozen=True)
class CategoryPreference:
    channel: ChannelChoice
    mode: DeliveryMode = DeliveryMode.IMMEDIATE
    unsubscribed: bool = False  # set by the one-click link, not the preferences page


class Plan(StrEnum):
    SEND = "send"
    DIGEST = "digest"
    SUPPRESS = "suppress"


@dataclass(frozen=True)
class Decision:
    plan: Plan
    channels: tuple[Channel, ...] = ()
    mode: DeliveryMode = DeliveryMode.IMMEDIATE
    reason: SuppressionReason | None = None


def channels_for(choice: ChannelChoice, *, has_push: bool) -> tuple[Channel, ...]:
    """Email and/or push; push needs a subscription, and a push-only choice without one falls
    back to email rather than reaching nobody."""
    wanted: list[Channel] = []
    if choice in (ChannelChoice.EMAIL, ChannelChoice.BOTH):
        wanted.append(Channel.EMAIL)
    if choice in (ChannelChoice.PUSH, ChannelChoice.BOTH) and has_push:
        wanted.append(Channel.PUSH)
    if choice is ChannelChoice.PUSH and not has_push:
        wanted.append(Channel.EMAIL)
    return tuple(wanted)


def decide(
    rule: Rule,
    pref: CategoryPreference | None,
    *,
    has_push: bool,
    chat: tuple[Channel, ...] = (),
) -> Decision:
    """Send now, collect in a digest, or suppress (opt-out is respected even when critical).

    ``chat``: the tenant's chat channels that take this category; they join the person's
    channels (a person who chose none gets none of them either)."""
    choice = pref.channel if pref else rule.default_channel
    if choice is ChannelChoice.NONE:
        reason = (
            SuppressionReason.UNSUBSCRIBED
            if pref and pref.unsubscribed
            else SuppressionReason.OPTED_OUT
        )
        return Decision(Plan.SUPPRESS, reason=reason)
    channels = channels_for(choice, has_push=has_push) + chat
    mode = pref.mode if pref else DeliveryMode.IMMEDIATE
    if mode is not DeliveryMode.IMMEDIATE and not rule.immediate:
        return Decision(Plan.DIGEST, channels, mode=mode)
    return Decision(Plan.SEND, channels)


def after_unsubscribe(current: ChannelChoice) -> ChannelChoice:
    """The one-click link stops email for the category; push, if chosen, stays."""
    if current in (ChannelChoice.BOTH, ChannelChoice.PUSH):
        return ChannelChoice.PUSH
    return ChannelChoice.NONE


def is_capped(category: Category, *, immediate: bool) -> bool:
    """At most one message per category per day, except escalations (critical notices) and
    calendar messages (``Rule.immediate``)."""
    return not immediate and category is not Category.DIGEST


@dataclass(frozen=True)
class RecipientSettings:
    """A person's quiet hours (local "HH:MM", both or none), working days and digest hour."""

    quiet_start: str | None
    quiet_end: str | None
    working_days: list[int]
    digest_hour: int

    def schedule(self, zone: ZoneInfo) -> Schedule:
        return Schedule(
            zone=zone,
            quiet_start=parse_hhmm(self.quiet_start),
            quiet_end=parse_hhmm(self.quiet_end),
            working_days=frozenset(self.working_days),
            digest_hour=self.digest_hour,
        )


@dataclass(frozen=True)
class RecipientChoices:
    """What a recipient chose that decides one message of a category: their schedule (None:
    the defaults), their setting for the category (None: its default) and whether they can be
    pushed to."""

    settings: RecipientSettings | None = None
    preference: CategoryPreference | None = None
    has_push: bool = False


DEFAULT_SETTINGS = RecipientSettings(
    quiet_start=format_hhmm(DEFAULT_QUIET_START),
    quiet_end=format_hhmm(DEFAULT_QUIET_END),
    working_days=sorted(DEFAULT_WORKING_DAYS),
    digest_hour=DEFAULT_DIGEST_HOUR,
)


@dataclass(frozen=True)
class CategorySetting:
    channel: ChannelChoice
    mode: DeliveryMode = DeliveryMode.IMMEDIATE


@dataclass(frozen=True)
class PreferencesView:
    employee_id: str
    quiet_hours_start: str | None
    quiet_hours_end: str | None
    working_days: list[int]
    digest_hour: int
    categories: dict[str, CategorySetting]
    unsubscribed: list[str] = field(default_factory=list)


def preferences_view(
    employee_id: str,
    settings: RecipientSettings | None,
    chosen: dict[str, CategoryPreference],
) -> PreferencesView:
    """What a person sees: their schedule (or the defaults) and every category's setting."""
    categories = {
        category.value: CategorySetting(rule.default_channel) for category, rule in RULES.items()
    }
    for category, pref in chosen.items():
        categories[category] = CategorySetting(pref.channel, pref.mode)
    settings = settings or DEFAULT_SETTINGS
    return PreferencesView(
        employee_id=employee_id,
        quiet_hours_start=settings.quiet_start,
        quiet_hours_end=settings.quiet_end,
        working_days=list(settings.working_days),
        digest_hour=settings.digest_hour,
        categories=categories,
        unsubscribed=sorted(c for c, pref in chosen.items() if pref.unsubscribed),
    )
