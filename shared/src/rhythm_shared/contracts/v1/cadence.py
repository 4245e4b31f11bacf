"""``rhythm.cadence.v1``: what the cadence owes and when the rhythm breaks.

Obligation events are keyed by employee (one employee's due/missed/escalated stay in order);
policy changes are keyed by the policy.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event, Identifier, Instant
from rhythm_shared.contracts.v1.values import (
    CheckinKind,
    EscalationLevel,
    EscalationTarget,
    Frequency,
    PolicyScope,
    check_period,
)

#: Consecutive misses of one kind for one employee (the first miss is 1).
Misses = Annotated[int, Field(ge=1)]


class CadenceRule(BaseModel):
    """One kind of check-in a policy owes, how often, and its reminder and grace windows."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: CheckinKind = Field(description="The kind of check-in that is owed.")
    frequency: Frequency = Field(description="How often it is owed.")
    grace_days: int = Field(
        ge=0, le=90, description="Days after the due time before it counts as missed."
    )
    lead_time_days: int = Field(
        ge=0, le=90, description="Days before the due time that the reminder (CheckinDue) goes out."
    )


class CadencePolicyChanged(Event):
    """A cadence policy was set or changed; the body is the policy's full current state."""

    type: ClassVar[str] = "rhythm.cadence_policy.changed.v1"
    topic: ClassVar[str] = topics.CADENCE
    entity: ClassVar[str] = "cadence_policy"
    entity_field: ClassVar[str] = "policy_id"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-01-02T09:00:00Z",
                    "policy_id": "pol-platform",
                    "scope": "org_unit",
                    "scope_id": "ou-platform",
                    "rules": [
                        {
                            "kind": "monthly",
                            "frequency": "monthly",
                            "grace_days": 5,
                            "lead_time_days": 3,
                        },
                        {
                            "kind": "quarterly_review",
                            "frequency": "quarterly",
                            "grace_days": 10,
                            "lead_time_days": 7,
                        },
                    ],
                    "escalate_after": 2,
                    "escalate_to": "skip_level",
                }
            ]
        }
    )

    policy_id: Identifier = Field(description="Identifier of the cadence policy.")
    scope: PolicyScope = Field(description="What the policy applies to.")
    scope_id: Identifier = Field(
        description="The tenant, org unit or employee id the policy applies to, per scope."
    )
    rules: list[CadenceRule] = Field(
        default_factory=list,
        max_length=10,
        description="The check-ins owed; at most one rule per kind. Empty: nothing is owed.",
    )
    escalate_after: int = Field(
        ge=1, le=12, description="Consecutive misses of a kind after which it is escalated."
    )
    escalate_to: EscalationTarget = Field(
        default=EscalationTarget.SKIP_LEVEL,
        description="Who hears of misses beyond the manager: skip-level manager or HR.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CadencePolicyChanged:
        if self.scope == PolicyScope.TENANT and self.scope_id != self.tenant_id:
            raise ValueError("a tenant-wide policy has scope_id equal to tenant_id")
        kinds = [rule.kind for rule in self.rules]
        if len(kinds) != len(set(kinds)):
            raise ValueError("at most one rule per check-in kind")
        return self


class _ObligationEvent(Event):
    """Common fields of the obligation events, ordered per employee (no ``type``)."""

    topic: ClassVar[str] = topics.CADENCE
    entity: ClassVar[str] = "employee"
    entity_field: ClassVar[str] = "employee_id"

    obligation_id: Identifier = Field(description="The owed check-in (one kind, one period).")
    employee_id: Identifier = Field(description="The employee the check-in is owed for.")
    manager_id: Identifier = Field(description="The manager expected to hold it.")


class CheckinDue(_ObligationEvent):
    """Reminder: an owed check-in falls due soon (sent lead_time_days before due_at)."""

    type: ClassVar[str] = "rhythm.checkin.due.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-25T08:00:00Z",
                    "obligation_id": "ob-e-1042-monthly-2026-02",
                    "employee_id": "e-1042",
                    "manager_id": "e-0007",
                    "kind": "monthly",
                    "period_start": "2026-02-01",
                    "period_end": "2026-02-28",
                    "due_at": "2026-02-28T17:00:00+01:00",
                }
            ]
        }
    )

    kind: CheckinKind = Field(description="Which check-in is owed.")
    period_start: date = Field(description="First day of the period it is owed for.")
    period_end: date = Field(description="Last day of the period it is owed for.")
    due_at: Instant = Field(description="When it is due, computed in the employee's time zone.")

    @model_validator(mode="after")
    def _period(self) -> CheckinDue:
        check_period(self.period_start, self.period_end)
        return self


class CheckinMissed(_ObligationEvent):
    """An owed check-in did not happen by its due time plus grace."""

    type: ClassVar[str] = "rhythm.checkin.missed.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-03-05T17:00:00+01:00",
                    "obligation_id": "ob-e-1042-monthly-2026-02",
                    "employee_id": "e-1042",
                    "manager_id": "e-0007",
                    "kind": "monthly",
                    "period_start": "2026-02-01",
                    "period_end": "2026-02-28",
                    "due_at": "2026-02-28T17:00:00+01:00",
                    "consecutive_misses": 1,
                }
            ]
        }
    )

    kind: CheckinKind = Field(description="Which check-in was missed.")
    period_start: date = Field(description="First day of the period it was owed for.")
    period_end: date = Field(description="Last day of the period it was owed for.")
    due_at: Instant = Field(description="When it was due.")
    consecutive_misses: Misses = Field(
        description="Misses of this kind in a row for the employee, this one included."
    )

    @model_validator(mode="after")
    def _period(self) -> CheckinMissed:
        check_period(self.period_start, self.period_end)
        return self


class CadenceEscalated(_ObligationEvent):
    """Repeated misses were escalated to someone who can fix the rhythm."""

    type: ClassVar[str] = "rhythm.cadence.escalated.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-04-05T17:00:00+02:00",
                    "obligation_id": "ob-e-1042-monthly-2026-03",
                    "employee_id": "e-1042",
                    "manager_id": "e-0007",
                    "escalated_to_id": "e-0002",
                    "level": "skip_level",
                    "consecutive_misses": 2,
                }
            ]
        }
    )

    escalated_to_id: Identifier = Field(
        description="Employee id of who was told: the manager, skip-level manager or HR contact."
    )
    level: EscalationLevel = Field(description="Which step of the escalation this is.")
    consecutive_misses: Misses = Field(description="Misses in a row that led to the escalation.")
