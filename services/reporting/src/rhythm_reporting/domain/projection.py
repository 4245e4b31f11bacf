"""How events become facts, and facts become the rolled-up numbers dashboards read. Pure: no I/O.

A *fact* is one row per thing that happened (an obligation, a check-in, a piece of feedback, a
goal), kept as a plain dict whose keys are the read model's column names. Every fact is keyed by
its own id, and every change to it is guarded by time, so a duplicate or a replay changes nothing.

A fact *contributes* small integer counts to rollup rows (``unit_month_stats`` and friends). When
a fact changes, the rollups move by ``contribution(new) - contribution(old)``; integers keep that
exact, so a rebuild gives the same numbers as the live model whatever the order of the topics.

Org attribution: an event counts against the org unit the person was in *when it happened*
(the employee version valid at that instant). Unit rollups hold the totals of a unit's whole
subtree, so a dashboard reads one row per unit and month; the tenant total is the unit ``*``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinDue,
    CheckinMissed,
    CheckinScheduled,
    EmployeeDeactivated,
    EmployeeUpserted,
    FeedbackGiven,
    GoalArchived,
    GoalCreated,
    GoalProgressRecorded,
    GoalStale,
    GoalStatusChanged,
    OrgUnitUpserted,
    PulseRecorded,
    PulseSource,
    ReflectionSubmitted,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2

Fact = dict[str, Any]
#: The tenant-wide rollup row: every contribution lands here as well as on the unit's chain.
TENANT = "*"
#: Goals withdrawn, superseded or orphaned are no longer anyone's goal: not counted.
DROPPED_ARCHIVE_REASONS = frozenset({"withdrawn", "superseded", "owner_deactivated"})
OPEN_GOAL_STATUSES = frozenset({"on_track", "at_risk", "off_track"})
BASIS_POINTS = 10_000


def month_of(at: datetime) -> str:
    """The UTC calendar month of an instant, ``YYYY-MM``: the grain of every monthly rollup."""
    return f"{at.year:04d}-{at.month:02d}"


def period_labels(at: datetime) -> tuple[str, str, str]:
    """Month, quarter and year labels of an instant (UTC): ``2026-03``, ``2026-Q1``, ``2026``."""
    return month_of(at), f"{at.year:04d}-Q{(at.month - 1) // 3 + 1}", f"{at.year:04d}"


def to_basis_points(fraction: float) -> int:
    return round(fraction * BASIS_POINTS)


# ------------------------------------------------------------------------------------------
# The org dimension
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmployeeVersion:
    """An employee's assignment from ``valid_from`` until the next version starts."""

    valid_from: datetime
    org_unit_id: str
    manager_id: str | None
    display_name: str
    active: bool


def version_at(versions: Sequence[EmployeeVersion], at: datetime) -> EmployeeVersion | None:
    """The version valid at ``at`` (sorted input). Before the first known version, the first
    one: an HR sync that lags behind an event still attributes it to the person's unit."""
    if not versions:
        return None
    chosen = versions[0]
    for version in versions:
        if version.valid_from <= at:
            chosen = version
        else:
            break
    return chosen


def unit_at(versions: Sequence[EmployeeVersion], at: datetime | None) -> str | None:
    if at is None:
        return None
    version = version_at(versions, at)
    return version.org_unit_id if version else None


def current_employee(
    employee_id: str, versions: Sequence[EmployeeVersion], deactivated_at: datetime | None
) -> Fact:
    """The employee as of the latest version; deactivated when that came after the version.
    A deactivation seen before any version is kept (inactive, not yet placed)."""
    if not versions:
        return {
            "employee_id": employee_id,
            "display_name": None,
            "org_unit_id": None,
            "manager_id": None,
            "active": False,
            "deactivated_at": deactivated_at,
        }
    latest = versions[-1]
    active = latest.active and (deactivated_at is None or deactivated_at < latest.valid_from)
    return {
        "employee_id": employee_id,
        "display_name": latest.display_name,
        "org_unit_id": latest.org_unit_id,
        "manager_id": latest.manager_id,
        "active": active,
        "deactivated_at": deactivated_at,
    }


class OrgTree:
    """Parent pointers of a tenant's org units, as far as they are known."""

    def __init__(self, parents: Mapping[str, str | None]) -> None:
        self.parents = dict(parents)
        self._chains: dict[str, tuple[str, ...]] = {}

    def chain(self, unit: str | None) -> tuple[str, ...]:
        """``unit`` and its ancestors, nearest first; stops at a root, an unknown unit or a
        cycle (bad HR data must not hang ingestion)."""
        if unit is None:
            return ()
        cached = self._chains.get(unit)
        if cached is not None:
            return cached
        seen: list[str] = []
        current: str | None = unit
        while current is not None and current not in seen:
            seen.append(current)
            current = self.parents.get(current)
        chain = tuple(seen)
        self._chains[unit] = chain
        return chain

    def set_parent(self, unit: str, parent: str | None) -> None:
        self.parents[unit] = parent
        self._chains.clear()


# ------------------------------------------------------------------------------------------
# Facts: applying events
# ------------------------------------------------------------------------------------------

FACT_KINDS = ("obligation", "checkin", "reflection", "feedback", "goal")
#: Columns that name the employees a fact is attributed through (re-resolved on HR changes,
#: moved to a pseudonym on erasure).
PEOPLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "obligation": ("employee_id",),
    "checkin": ("employee_id",),
    "reflection": ("employee_id",),
    "feedback": ("giver_id", "receiver_id"),
    "goal": ("owner_id",),
}


@dataclass(frozen=True)
class FactRef:
    kind: str
    tenant_id: str
    key: str


def fact_ref(event: Event, event_id: str) -> FactRef | None:
    """Which fact an event changes; None for events reporting does not project as facts."""
    t = event.tenant_id
    match event:
        case CheckinDue() | CheckinMissed():
            return FactRef("obligation", t, event.obligation_id)
        case CheckinScheduled():
            return FactRef("checkin", t, event.checkin_id)
        case CheckinCompleted():
            return FactRef("checkin", t, event.checkin_id)
        case ReflectionSubmitted():
            return FactRef("reflection", t, _reflection_key(event))
        case PulseRecorded():
            # The internal pulse topic: the score of the check-in or reflection it accompanies.
            if event.source == PulseSource.CHECKIN and event.checkin_id is not None:
                return FactRef("checkin", t, event.checkin_id)
            return FactRef("reflection", t, _reflection_key(event))
        case FeedbackGiven():
            return FactRef("feedback", t, event.feedback_id)
        case (
            GoalCreated() | GoalProgressRecorded() | GoalStatusChanged() | GoalStale()
        ) | GoalArchived():
            return FactRef("goal", t, event.goal_id)
    return None


def _reflection_key(event: ReflectionSubmitted | PulseRecorded) -> str:
    # No id of its own: one person submits one reflection at one instant, so a re-sent copy
    # (even with a new CloudEvents id) is the same reflection; its PulseRecorded has that instant.
    return f"{event.employee_id}@{event.occurred_at.astimezone(UTC).isoformat()}"


def _fill(fact: Fact, column: str, value: Any) -> None:
    """Set a column that is still unknown (a loaded row holds None for it)."""
    if fact.get(column) is None:
        fact[column] = value


def _later(current: datetime | None, candidate: datetime) -> bool:
    return current is None or candidate >= current


def apply_event(facts: dict[FactRef, Fact], ref: FactRef, event: Event) -> None:
    """Fold one event into the fact it changes (created on first sight). Idempotent."""
    fact = facts.setdefault(ref, {})
    match event:
        case CheckinDue() | CheckinMissed():
            _fill(fact, "employee_id", event.employee_id)
            fact["manager_id"] = event.manager_id
            fact["kind"] = str(event.kind)
            fact["period_start"] = event.period_start
            fact["period_end"] = event.period_end
            fact["due_at"] = event.due_at
            if isinstance(event, CheckinMissed):
                fact["missed_at"] = fact.get("missed_at") or event.occurred_at
                fact["consecutive_misses"] = event.consecutive_misses
        case CheckinScheduled():
            _fill(fact, "employee_id", event.employee_id)
            _fill(fact, "manager_id", event.manager_id)
            _fill(fact, "kind", str(event.kind))
            _fill(fact, "initiated_by", str(event.initiated_by))
            fact["scheduled_for"] = event.scheduled_for
        case CheckinCompleted():
            # The pulse comes from PulseRecorded (either order); a public one (a tenant that
            # shares it, or a record from before the internal topic) counts as well.
            if event.pulse is not None:
                fact["pulse"] = event.pulse
            fact.update(
                employee_id=event.employee_id,
                manager_id=event.manager_id,
                kind=str(event.kind),
                initiated_by=str(event.initiated_by),
                held_at=event.held_at,
                obligation_id=event.obligation_id,
                obligation_due_at=event.due_at,
                goals_discussed=len(event.goals_discussed),
                open_action_items=event.open_action_items,
            )
        case ReflectionSubmitted():
            if event.pulse is not None:
                fact["pulse"] = event.pulse
            fact.update(
                employee_id=event.employee_id,
                checkin_id=event.checkin_id,
                submitted_at=event.occurred_at,
            )
        case PulseRecorded():
            fact["pulse"] = event.pulse
            _fill(fact, "employee_id", event.employee_id)
            if event.source == PulseSource.REFLECTION:
                _fill(fact, "checkin_id", event.checkin_id)
                _fill(fact, "submitted_at", event.occurred_at)
        case FeedbackGiven():
            fact.update(
                giver_id=event.giver_id,
                receiver_id=event.receiver_id,
                kind=str(event.kind),
                requested=event.requested,
                given_at=event.occurred_at,
            )
        case GoalCreated():
            fact.update(
                owner_type=str(event.owner_type),
                owner_id=event.owner_id,
                kind=str(event.kind),
                title=event.title,
                visibility=str(event.visibility),
                period_start=event.period_start,
                period_end=event.period_end,
                update_interval_days=event.update_interval_days,
                created_at=event.occurred_at,
            )
            _fill(fact, "status", "on_track")
        case GoalProgressRecorded():
            if _later(fact.get("last_progress_at"), event.occurred_at):
                fact["last_progress_at"] = event.occurred_at
                fact["progress_bp"] = to_basis_points(event.goal_progress)
                fact["confidence_bp"] = to_basis_points(event.confidence)
        case GoalStatusChanged():
            _fill(fact, "owner_id", event.owner_id)
            if _later(fact.get("status_changed_at"), event.occurred_at):
                fact["status_changed_at"] = event.occurred_at
                fact["status"] = str(event.to_status)
        case GoalStale():
            _fill(fact, "owner_id", event.owner_id)
            marker = fact.get("stale_marker")
            if marker is None or event.last_progress_at > marker:
                fact["stale_marker"] = event.last_progress_at
        case GoalArchived():
            fact["archived_reason"] = str(event.reason)


def obligation_outcome(fact: Fact) -> str:
    """on_time: completed by the due time; late: completed after it (also after a miss);
    missed: the cadence declared it missed and no completion is known; open: neither yet."""
    completed, due = fact.get("completed_at"), fact.get("due_at")
    if completed is not None and due is not None:
        return "on_time" if completed <= due else "late"
    if fact.get("missed_at") is not None:
        return "missed"
    return "open"


def goal_is_stale(fact: Fact) -> bool:
    """GoalStale was received and no progress was recorded after the staleness it reported."""
    marker, last = fact.get("stale_marker"), fact.get("last_progress_at")
    if marker is None or fact.get("status", "on_track") not in OPEN_GOAL_STATUSES:
        return False
    return last is None or last <= marker


#: Where each kind of fact's small-group decisions are: (its time, the families it makes).
#: Goals overlap periods, so one slot (ALL_PERIODS) covers all of them.
FACT_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "obligation": ("due_at", ("obligations",)),
    "checkin": ("held_at", ("checkins", "pulse")),
    "reflection": ("submitted_at", ("pulse",)),
    "feedback": ("given_at", ("feedback_given", "feedback_received")),
}
ALL_PERIODS = "*"


def goal_membership(fact: Fact | None) -> tuple[Any, ...] | None:
    """What the goals' small-group rule reads of a goal: whose it is, where and when it counts
    (not its progress or status, which change far more often)."""
    if not fact:
        return None
    return tuple(
        fact.get(k)
        for k in (
            "owner_type",
            "owner_id",
            "org_unit_id",
            "created_at",
            "archived_reason",
            "period_start",
            "period_end",
        )
    )


def decision_slots(kind: str, before: Fact | None, after: Fact | None) -> set[tuple[str, str]]:
    """The (family, slot)s whose small-group decisions a fact's change from ``before`` to
    ``after`` can change: the families it makes, in the months of both versions' times."""
    if kind == "goal":
        changed = goal_membership(before) != goal_membership(after)
        return {("goals", ALL_PERIODS)} if changed else set()
    time, families = FACT_FAMILIES[kind]
    return {
        (family, month_of(fact[time]))
        for fact in (before, after)
        if fact and fact.get(time) is not None
        for family in families
    }


def goal_is_counted(fact: Fact) -> bool:
    return (
        fact.get("period_start") is not None
        and fact.get("archived_reason") not in DROPPED_ARCHIVE_REASONS
    )


def progress_bucket(progress_bp: int | None) -> str:
    """Progress buckets of the distribution: 0-20 %, 20-40 %, ..., 80-100 % (upper bound
    exclusive except for the last)."""
    p = progress_bp or 0
    index = min(p * 5 // BASIS_POINTS, 4)
    return f"progress_{index * 20}_{index * 20 + 20}"


def link_completions(facts: Mapping[FactRef, Fact], obligations: dict[FactRef, Fact]) -> None:
    """A completed check-in names the obligation it fulfils (and its due time): carry that to
    the obligation fact, creating it if the cadence events have not arrived yet."""
    for ref, fact in facts.items():
        if ref.kind != "checkin" or fact.get("held_at") is None or not fact.get("obligation_id"):
            continue
        oref = FactRef("obligation", ref.tenant_id, fact["obligation_id"])
        obligation = obligations.setdefault(oref, {})
        _fill(obligation, "employee_id", fact.get("employee_id"))
        _fill(obligation, "manager_id", fact["manager_id"])
        _fill(obligation, "kind", fact["kind"])
        if fact.get("obligation_due_at") is not None:
            _fill(obligation, "due_at", fact["obligation_due_at"])
        completed = obligation.get("completed_at")
        if completed is None or fact["held_at"] < completed:
            obligation["completed_at"] = fact["held_at"]
            obligation["checkin_id"] = ref.key


# ------------------------------------------------------------------------------------------
# Attribution and contributions
# ------------------------------------------------------------------------------------------

VersionsOf = Callable[[str, str], Sequence[EmployeeVersion]]


def people_of(kind: str, fact: Fact) -> list[str]:
    """The employees whose org assignment decides where a fact counts."""
    if kind == "feedback":
        return [p for p in (fact.get("giver_id"), fact.get("receiver_id")) if p]
    if kind == "goal":
        return [fact["owner_id"]] if fact.get("owner_type") == "person" else []
    return [fact["employee_id"]] if fact.get("employee_id") else []


def resolve(kind: str, tenant: str, fact: Fact, versions: VersionsOf) -> None:
    """Set the fact's org unit(s) and derived columns from the versions known now."""
    if kind == "obligation":
        fact["org_unit_id"] = unit_at(versions(tenant, fact["employee_id"]), fact.get("due_at"))
        fact["outcome"] = obligation_outcome(fact)
    elif kind == "checkin":
        fact["org_unit_id"] = unit_at(versions(tenant, fact["employee_id"]), fact.get("held_at"))
        fact["completed"] = fact.get("held_at") is not None
    elif kind == "reflection":
        fact["org_unit_id"] = unit_at(versions(tenant, fact["employee_id"]), fact["submitted_at"])
    elif kind == "feedback":
        at = fact["given_at"]
        fact["giver_unit_id"] = unit_at(versions(tenant, fact["giver_id"]), at)
        fact["receiver_unit_id"] = unit_at(versions(tenant, fact["receiver_id"]), at)
    elif kind == "goal":
        owner_type = fact.get("owner_type")
        if owner_type == "person":
            fact["org_unit_id"] = unit_at(versions(tenant, fact["owner_id"]), fact["created_at"])
        elif owner_type == "org_unit":
            fact["org_unit_id"] = fact["owner_id"]
        else:
            fact["org_unit_id"] = None
        fact["is_stale"] = goal_is_stale(fact)
        status = fact.get("status", "on_track")
        fact["needs_attention"] = goal_is_counted(fact) and (
            status in ("at_risk", "off_track") or fact["is_stale"]
        )


@dataclass(frozen=True)
class Contribution:
    """Counts a fact adds to one rollup row; ``unit`` is the leaf unit for unit rollups."""

    table: str
    unit: str | None
    key: tuple[Any, ...]
    counts: Mapping[str, int]


def _pulse_counts(pulse: int | None) -> dict[str, int]:
    if pulse is None:
        return {}
    return {"pulse_responses": 1, "pulse_sum": pulse, f"pulse_{pulse}": 1}


def _contributor(unit: str | None, family: str, at: datetime, person: str | None) -> Contribution:
    """The person is one of the contributors of ``family`` in the month of ``at``, in ``unit``
    and every unit above it (the small-group rule's counts, domain/metrics.py). Counted per
    fact, so the person stays one as long as any fact of theirs is there."""
    counts = {"facts": 1} if person else {}  # a fact that names nobody (a partial test fact)
    return Contribution("unit_contributors", unit, (family, month_of(at), person), counts)


#: The manager of an obligation that names none, in manager_reports (a key cannot be null).
NO_MANAGER = ""


def _report(due: datetime, manager: str | None, person: str | None) -> Contribution:
    """The person is one of the reports whose obligations due in the month name ``manager``
    (the manager table's small-group rule); counted per obligation, like ``_contributor``."""
    counts = {"facts": 1} if person else {}
    key = (month_of(due), manager or NO_MANAGER, person)
    return Contribution("manager_reports", None, key, counts)


def contributions(kind: str, fact: Fact | None) -> list[Contribution]:
    """What a fact adds to the rollups (empty for a fact that does not count yet)."""
    if not fact:
        return []
    out: list[Contribution] = []
    if kind == "obligation":
        due = fact.get("due_at")
        if due is None:
            return []
        outcome = obligation_outcome(fact)
        counts = {"obligations": 1, outcome: 1}
        unit = fact.get("org_unit_id")
        out.append(Contribution("unit_month_stats", unit, (month_of(due),), counts))
        out.append(_contributor(unit, "obligations", due, fact.get("employee_id")))
        out.append(_report(due, fact.get("manager_id"), fact.get("employee_id")))
        if fact.get("manager_id"):
            for label in period_labels(due):
                out.append(
                    Contribution("manager_period_stats", None, (fact["manager_id"], label), counts)
                )
    elif kind == "checkin":
        held = fact.get("held_at")
        if held is None:
            return []
        counts = {"checkins": 1, **_pulse_counts(fact.get("pulse"))}
        if fact.get("initiated_by") == "employee":
            counts["checkins_employee_initiated"] = 1
        unit = fact.get("org_unit_id")
        out.append(Contribution("unit_month_stats", unit, (month_of(held),), counts))
        out.append(_contributor(unit, "checkins", held, fact.get("employee_id")))
        if fact.get("pulse") is not None:
            out.append(_contributor(unit, "pulse", held, fact.get("employee_id")))
    elif kind == "reflection":
        pulse = _pulse_counts(fact.get("pulse"))
        if pulse:
            at, unit = fact["submitted_at"], fact.get("org_unit_id")
            out.append(Contribution("unit_month_stats", unit, (month_of(at),), pulse))
            out.append(_contributor(unit, "pulse", at, fact.get("employee_id")))
    elif kind == "feedback":
        at = fact["given_at"]
        when = (month_of(at),)
        given = {"feedback_given": 1, f"feedback_{fact['kind']}": 1}
        if fact.get("requested"):
            given["feedback_requested"] = 1
        giver_unit, receiver_unit = fact.get("giver_unit_id"), fact.get("receiver_unit_id")
        out.append(Contribution("unit_month_stats", giver_unit, when, given))
        out.append(Contribution("unit_month_stats", receiver_unit, when, {"feedback_received": 1}))
        out.append(_contributor(giver_unit, "feedback_given", at, fact.get("giver_id")))
        out.append(_contributor(receiver_unit, "feedback_received", at, fact.get("receiver_id")))
    elif kind == "goal":
        if not goal_is_counted(fact) or fact.get("created_at") is None:
            return []
        status = fact.get("status", "on_track")
        counts = {
            "goals": 1,
            status: 1,
            progress_bucket(fact.get("progress_bp")): 1,
            "progress_bp_sum": fact.get("progress_bp") or 0,
        }
        if fact.get("confidence_bp") is not None:
            counts["confidence_bp_sum"] = fact["confidence_bp"]
            counts["confidence_n"] = 1
        if goal_is_stale(fact):
            counts["stale"] = 1
        key = (fact["period_start"], fact["period_end"])
        out.append(Contribution("unit_goal_stats", fact.get("org_unit_id"), key, counts))
    elif kind == "employee" and fact.get("active"):
        out.append(Contribution("unit_people", fact.get("org_unit_id"), (), {"people": 1}))
        if fact.get("manager_id"):
            out.append(Contribution("manager_people", None, (fact["manager_id"],), {"people": 1}))
    return out


#: Rollups whose unit rows hold the totals of the unit's subtree (plus the tenant row ``*``).
SUBTREE_ROLLUPS = ("unit_month_stats", "unit_goal_stats", "unit_people", "unit_contributors")
RowKey = tuple[str, str, tuple[Any, ...]]  # (table, tenant, key incl. unit for unit rollups)


@dataclass
class Deltas:
    """Pending changes to rollup rows, summed; zero rows are dropped when written."""

    rows: dict[RowKey, dict[str, int]] = field(default_factory=dict)
    #: (table, tenant, unit) -> keys of that unit's pending rows (subtree rollups only).
    by_unit: dict[tuple[str, str, str], set[tuple[Any, ...]]] = field(default_factory=dict)
    #: Contributions to subtree rollups by leaf unit, not yet spread over the ancestors.
    leaf: dict[tuple[str, str, str | None, tuple[Any, ...]], dict[str, int]] = field(
        default_factory=dict
    )
    _tree: OrgTree = field(default_factory=lambda: OrgTree({}))

    def add(
        self,
        table: str,
        tenant: str,
        key: tuple[Any, ...],
        counts: Mapping[str, int],
        sign: int,
    ) -> None:
        row_key = (table, tenant, key)
        bucket = self.rows.get(row_key)
        if bucket is None:
            bucket = self.rows[row_key] = {}
            if table in SUBTREE_ROLLUPS:
                self.by_unit.setdefault((table, tenant, key[0]), set()).add(key)
        for column, value in counts.items():
            bucket[column] = bucket.get(column, 0) + sign * value

    def add_contribution(self, tenant: str, c: Contribution, tree: OrgTree, sign: int) -> None:
        if c.table not in SUBTREE_ROLLUPS:
            self.add(c.table, tenant, c.key, c.counts, sign)
            return
        # Summed per leaf unit first; spread over the unit's ancestors once, when written.
        self._tree = tree
        leaf_key = (c.table, tenant, c.unit, c.key)
        bucket = self.leaf.get(leaf_key)
        if bucket is None:
            bucket = self.leaf[leaf_key] = {}
        for column, value in c.counts.items():
            bucket[column] = bucket.get(column, 0) + sign * value

    def _spread(self) -> None:
        for (table, tenant, unit, key), counts in self.leaf.items():
            if not any(counts.values()):  # a fact that changed and stays where it was
                continue
            for ancestor in (*self._tree.chain(unit), TENANT):
                self.add(table, tenant, (ancestor, *key), counts, +1)
        self.leaf.clear()

    def pending_for_unit(
        self, table: str, tenant: str, unit: str
    ) -> dict[tuple[Any, ...], dict[str, int]]:
        """The unit's pending changes, by the rest of the row key (without the unit)."""
        self._spread()
        keys = self.by_unit.get((table, tenant, unit), ())
        return {key[1:]: self.rows[(table, tenant, key)] for key in keys}

    def nonzero(self) -> Iterable[tuple[RowKey, dict[str, int]]]:
        """The changed rows, in no particular order: the store sorts what it writes."""
        self._spread()
        for row_key, row in self.rows.items():
            counts = {c: v for c, v in row.items() if v}
            if counts:
                yield row_key, counts


def move_subtree(
    deltas: Deltas,
    tenant: str,
    table: str,
    unit: str,
    totals: Mapping[tuple[Any, ...], Mapping[str, int]],
    old_chain: Sequence[str],
    new_chain: Sequence[str],
) -> None:
    """A unit changed parent: its subtree totals leave the old ancestors and join the new."""
    for key, counts in totals.items():
        for ancestor in old_chain:
            deltas.add(table, tenant, (ancestor, *key), counts, -1)
        for ancestor in new_chain:
            deltas.add(table, tenant, (ancestor, *key), counts, +1)
    del unit  # named for the reader; the totals are already the unit's own row


def apply_org_unit(tree: OrgTree, event: OrgUnitUpserted) -> tuple[str | None, str | None]:
    """Returns (old parent, new parent)."""
    old = tree.parents.get(event.org_unit_id)
    tree.set_parent(event.org_unit_id, event.parent_id)
    return old, event.parent_id


#: A people event and, for an upsert v2, its name opened (None: a v1 upsert says it plainly).
EmployeeEvent = tuple[EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated, str | None]


def apply_employee_event(
    versions: dict[datetime, EmployeeVersion],
    deactivation: datetime | None,
    event: EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated,
    *,
    display_name: str | None = None,
) -> datetime | None:
    """Fold a people event into an employee's versions; returns the deactivation instant.

    An upsert v2 seals the name: ``display_name`` is it opened ("" where it does not open)."""
    if isinstance(event, EmployeeUpserted | EmployeeUpsertedV2):
        if isinstance(event, EmployeeUpserted):
            display_name = event.display_name
        versions[event.occurred_at] = EmployeeVersion(
            valid_from=event.occurred_at,
            org_unit_id=event.org_unit_id,
            manager_id=event.manager_id,
            display_name=display_name or "",
            active=event.active,
        )
        return deactivation
    if deactivation is None or event.effective_at > deactivation:
        return event.effective_at
    return deactivation


def dates_overlap(a_start: date, a_end: date, b_start: date, b_end: date) -> bool:
    return a_start <= b_end and b_start <= a_end
