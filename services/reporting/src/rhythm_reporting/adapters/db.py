"""The read model: plain SQL tables (and views, see the migration) with documented columns.

Every read-model table carries ``generation``: ``rhythm reporting rebuild`` fills a new generation
from the start of the topics while the live one keeps answering, then swaps the pointer in
``read_model_generations``. The ``v_*`` views show the active generation only; BI tools
(Metabase, Superset, Grafana) connect to those. See services/reporting/README.md.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    Date,
    Float,
    Index,
    Integer,
    String,
    Table,
)

from rhythm_reporting.domain.projection import NO_MANAGER as NO_MANAGER
from rhythm_reporting.domain.projection import PEOPLE_COLUMNS as PEOPLE_COLUMNS
from rhythm_shared.kit.db import UtcDateTime, define_kit_tables, new_metadata
from rhythm_shared.kit.people import define_directory_tables

metadata = new_metadata()
kit = define_kit_tables(metadata)

Id = String(128)


def _gen() -> Column[int]:
    return Column("generation", Integer, primary_key=True, comment="Read-model generation.")


def _tenant() -> Column[str]:
    return Column("tenant_id", Id, primary_key=True, comment="The tenant (organisation).")


def _count(name: str, comment: str) -> Column[int]:
    return Column(name, BigInteger, nullable=False, server_default="0", comment=comment)


read_model_generations = Table(
    "read_model_generations",
    metadata,
    Column("generation", Integer, primary_key=True),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="building, active, retired or dropped (rows deleted).",
    ),
    Column("created_at", UtcDateTime, nullable=False),
    Column("activated_at", UtcDateTime, nullable=True),
    Column(
        "org_version",
        Integer,
        nullable=False,
        server_default="0",
        comment="Raised with every change of the generation's org units or employees.",
    ),
    comment="Read-model generations; exactly one is active (what dashboards and views show).",
)

consumer_positions = Table(
    "consumer_positions",
    metadata,
    Column("generation", Integer, primary_key=True),
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False, comment="The next offset to apply."),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="How far each generation has consumed, written in the same transaction as the "
    "read-model change: a replay or restart skips what is already counted.",
)

#: Who heads which unit and manages whom, for access decisions (domain/access.py): the kit's one
#: directory, by its last-writer-wins rule. The dimensions below are the read model's own history
#: (what counts where), not who may see it.
directory = define_directory_tables(metadata)

# -- the org dimension --------------------------------------------------------------------

org_units = Table(
    "org_units",
    metadata,
    _gen(),
    _tenant(),
    Column("org_unit_id", Id, primary_key=True),
    Column("name", String(200), nullable=True, comment="Null until the unit itself is known."),
    Column("parent_id", Id, nullable=True, comment="Enclosing unit; null for a root."),
    Column("head_id", Id, nullable=True, comment="Employee id of the unit's head."),
    Column("updated_at", UtcDateTime, nullable=True),
    comment="Org units as a tree (parent_id).",
)
Index("ix_org_units_parent", org_units.c.generation, org_units.c.tenant_id, org_units.c.parent_id)
Index("ix_org_units_head", org_units.c.generation, org_units.c.tenant_id, org_units.c.head_id)

employee_versions = Table(
    "employee_versions",
    metadata,
    _gen(),
    _tenant(),
    Column("employee_id", Id, primary_key=True),
    Column("valid_from", UtcDateTime, primary_key=True, comment="When this assignment began."),
    Column("valid_to", UtcDateTime, nullable=True, comment="When the next began; null: current."),
    Column("org_unit_id", Id, nullable=False),
    Column("manager_id", Id, nullable=True),
    Column("display_name", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
    comment="Employees' unit and manager over time: an event counts against the unit the "
    "person was in when it happened.",
)

employees = Table(
    "employees",
    metadata,
    _gen(),
    _tenant(),
    Column("employee_id", Id, primary_key=True),
    Column("display_name", String(200), nullable=True, comment="Null until an upsert is seen."),
    Column("org_unit_id", Id, nullable=True, comment="Null until an upsert is seen."),
    Column("manager_id", Id, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("deactivated_at", UtcDateTime, nullable=True),
    comment="Employees as they are now (the latest version).",
)
Index("ix_employees_manager", employees.c.generation, employees.c.tenant_id, employees.c.manager_id)

# -- facts ----------------------------------------------------------------------------------

obligation_facts = Table(
    "obligation_facts",
    metadata,
    _gen(),
    _tenant(),
    Column("obligation_id", Id, primary_key=True),
    Column("employee_id", Id, nullable=False),
    Column("manager_id", Id, nullable=True),
    Column("kind", String(32), nullable=True, comment="monthly or quarterly_review."),
    Column("period_start", Date, nullable=True),
    Column("period_end", Date, nullable=True),
    Column("due_at", UtcDateTime, nullable=True),
    Column("completed_at", UtcDateTime, nullable=True, comment="held_at of the check-in."),
    Column("checkin_id", Id, nullable=True),
    Column("missed_at", UtcDateTime, nullable=True, comment="When CheckinMissed was declared."),
    Column("consecutive_misses", Integer, nullable=True),
    Column("outcome", String(16), nullable=False, comment="open, on_time, late or missed."),
    Column("org_unit_id", Id, nullable=True, comment="Employee's unit at due_at."),
    comment="One row per owed check-in (obligation): due, completed on time or late, missed.",
)
Index(
    "ix_obligation_facts_employee",
    obligation_facts.c.generation,
    obligation_facts.c.tenant_id,
    obligation_facts.c.employee_id,
)

checkin_facts = Table(
    "checkin_facts",
    metadata,
    _gen(),
    _tenant(),
    Column("checkin_id", Id, primary_key=True),
    Column("employee_id", Id, nullable=False),
    Column("manager_id", Id, nullable=True),
    Column("kind", String(32), nullable=True),
    Column("initiated_by", String(16), nullable=True, comment="employee or manager."),
    Column("scheduled_for", UtcDateTime, nullable=True),
    Column("held_at", UtcDateTime, nullable=True, comment="Null until completed."),
    Column("completed", Boolean, nullable=False),
    Column("pulse", Integer, nullable=True, comment="Workload pulse 1-5, if given."),
    Column("obligation_id", Id, nullable=True),
    Column("obligation_due_at", UtcDateTime, nullable=True),
    Column("goals_discussed", Integer, nullable=True),
    Column("open_action_items", Integer, nullable=True),
    Column("org_unit_id", Id, nullable=True, comment="Employee's unit at held_at."),
    comment="One row per check-in (scheduled or completed).",
)
Index(
    "ix_checkin_facts_employee",
    checkin_facts.c.generation,
    checkin_facts.c.tenant_id,
    checkin_facts.c.employee_id,
)

reflection_facts = Table(
    "reflection_facts",
    metadata,
    _gen(),
    _tenant(),
    Column("reflection_key", String(200), primary_key=True, comment="<employee>@<time, UTC>."),
    Column("employee_id", Id, nullable=False),
    Column("checkin_id", Id, nullable=True),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("pulse", Integer, nullable=True),
    Column("org_unit_id", Id, nullable=True),
    comment="One row per submitted self-reflection (its workload pulse, never its text).",
)
Index(
    "ix_reflection_facts_employee",
    reflection_facts.c.generation,
    reflection_facts.c.tenant_id,
    reflection_facts.c.employee_id,
)

feedback_facts = Table(
    "feedback_facts",
    metadata,
    _gen(),
    _tenant(),
    Column("feedback_id", Id, primary_key=True),
    Column("giver_id", Id, nullable=False),
    Column("receiver_id", Id, nullable=False),
    Column("kind", String(16), nullable=False, comment="praise or constructive."),
    Column("requested", Boolean, nullable=False),
    Column("given_at", UtcDateTime, nullable=False),
    Column("giver_unit_id", Id, nullable=True),
    Column("receiver_unit_id", Id, nullable=True),
    comment="One row per piece of feedback, with the giver's and receiver's units at the time.",
)
Index(
    "ix_feedback_facts_giver",
    feedback_facts.c.generation,
    feedback_facts.c.tenant_id,
    feedback_facts.c.giver_id,
)
Index(
    "ix_feedback_facts_receiver",
    feedback_facts.c.generation,
    feedback_facts.c.tenant_id,
    feedback_facts.c.receiver_id,
)

goal_facts = Table(
    "goal_facts",
    metadata,
    _gen(),
    _tenant(),
    Column("goal_id", Id, primary_key=True),
    Column("owner_type", String(16), nullable=True, comment="person, org_unit or company."),
    Column("owner_id", Id, nullable=True),
    Column("kind", String(8), nullable=True, comment="okr or kpi."),
    Column("title", String(200), nullable=True, comment="Null for private goals."),
    Column("visibility", String(16), nullable=True),
    Column("period_start", Date, nullable=True),
    Column("period_end", Date, nullable=True),
    Column("update_interval_days", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=True),
    Column("status", String(16), nullable=True, comment="on_track, at_risk, off_track, ..."),
    Column("status_changed_at", UtcDateTime, nullable=True),
    Column("progress_bp", Integer, nullable=True, comment="Progress in basis points (0-10000)."),
    Column("confidence_bp", Integer, nullable=True, comment="Confidence in basis points."),
    Column("last_progress_at", UtcDateTime, nullable=True),
    Column("stale_marker", UtcDateTime, nullable=True, comment="last_progress_at of GoalStale."),
    Column("is_stale", Boolean, nullable=False, server_default="0"),
    Column("archived_reason", String(32), nullable=True),
    Column("needs_attention", Boolean, nullable=False, server_default="0"),
    Column("org_unit_id", Id, nullable=True, comment="Owner's unit when the goal was created."),
    comment="One row per goal: progress, confidence, status, staleness.",
)
Index("ix_goal_facts_owner", goal_facts.c.generation, goal_facts.c.tenant_id, goal_facts.c.owner_id)
Index(
    "ix_goal_facts_attention",
    goal_facts.c.generation,
    goal_facts.c.tenant_id,
    goal_facts.c.needs_attention,
    goal_facts.c.org_unit_id,
)
# The at-risk list of a whole tenant walks this one in its order and stops at the limit.
Index(
    "ix_goal_facts_attention_order",
    goal_facts.c.generation,
    goal_facts.c.tenant_id,
    goal_facts.c.needs_attention,
    goal_facts.c.status,
    goal_facts.c.progress_bp,
)

# -- rollups (what dashboards read) --------------------------------------------------------

UNIT_MONTH_COUNTS = {
    "obligations": "Obligations due in the month (by due_at, UTC).",
    "on_time": "... completed by their due time.",
    "late": "... completed after their due time.",
    "missed": "... declared missed and not completed.",
    "open": "... neither completed nor missed yet.",
    "checkins": "Check-ins held in the month.",
    "checkins_employee_initiated": "... of which the employee initiated.",
    "pulse_responses": "Workload pulse answers (check-ins and reflections).",
    "pulse_sum": "Sum of those answers (1-5).",
    "pulse_1": "Answers of 1 (far too little).",
    "pulse_2": "Answers of 2.",
    "pulse_3": "Answers of 3 (about right).",
    "pulse_4": "Answers of 4.",
    "pulse_5": "Answers of 5 (far too much).",
    "feedback_given": "Feedback given by people of the unit.",
    "feedback_received": "Feedback received by people of the unit.",
    "feedback_praise": "Given feedback that was praise.",
    "feedback_constructive": "Given feedback that was constructive.",
    "feedback_requested": "Given feedback that the receiver had asked for.",
}
UNIT_GOAL_COUNTS = {
    "goals": "Goals counted (not withdrawn, superseded or orphaned).",
    "on_track": "Status on_track.",
    "at_risk": "Status at_risk.",
    "off_track": "Status off_track.",
    "achieved": "Status achieved.",
    "abandoned": "Status abandoned.",
    "stale": "Open goals that went stale (no progress in their update interval).",
    "progress_0_20": "Progress below 20 %.",
    "progress_20_40": "Progress 20-40 %.",
    "progress_40_60": "Progress 40-60 %.",
    "progress_60_80": "Progress 60-80 %.",
    "progress_80_100": "Progress 80 % or more.",
    "progress_bp_sum": "Sum of progress in basis points.",
    "confidence_bp_sum": "Sum of confidence in basis points (goals with a confidence).",
    "confidence_n": "Goals with a confidence.",
}
OBLIGATION_COUNTS = {
    k: UNIT_MONTH_COUNTS[k] for k in ("obligations", "on_time", "late", "missed", "open")
}

unit_month_stats = Table(
    "unit_month_stats",
    metadata,
    _gen(),
    _tenant(),
    Column("org_unit_id", Id, primary_key=True, comment="The unit; '*' is the whole tenant."),
    Column("month", String(7), primary_key=True, comment="YYYY-MM (UTC)."),
    *(_count(name, comment) for name, comment in UNIT_MONTH_COUNTS.items()),
    comment="Monthly counts of a unit's whole subtree (the unit and every unit below it).",
)

unit_goal_stats = Table(
    "unit_goal_stats",
    metadata,
    _gen(),
    _tenant(),
    Column("org_unit_id", Id, primary_key=True, comment="The unit; '*' is the whole tenant."),
    Column("period_start", Date, primary_key=True, comment="The goals' period."),
    Column("period_end", Date, primary_key=True),
    *(_count(name, comment) for name, comment in UNIT_GOAL_COUNTS.items()),
    comment="Goal counts of a unit's whole subtree, per goal period.",
)

unit_people = Table(
    "unit_people",
    metadata,
    _gen(),
    _tenant(),
    Column("org_unit_id", Id, primary_key=True, comment="The unit; '*' is the whole tenant."),
    _count("people", "Active employees in the unit's subtree now."),
    comment="Headcount of each subtree: groups below 5 people are suppressed on dashboards.",
)

manager_people = Table(
    "manager_people",
    metadata,
    _gen(),
    _tenant(),
    Column("manager_id", Id, primary_key=True),
    _count("people", "Active direct reports now."),
    comment="Team size of each manager (suppression of small teams).",
)

#: The families of facts whose contributors the small-group rule counts (domain/metrics.py).
CONTRIBUTOR_FAMILIES = ("obligations", "checkins", "pulse", "feedback_given", "feedback_received")

unit_contributors = Table(
    "unit_contributors",
    metadata,
    _gen(),
    _tenant(),
    Column("org_unit_id", Id, primary_key=True, comment="The unit; '*' is the whole tenant."),
    Column("family", String(32), primary_key=True, comment="obligations, checkins, pulse, ..."),
    Column("month", String(7), primary_key=True, comment="YYYY-MM (UTC)."),
    Column("person_id", Id, primary_key=True, comment="A contributor (pseudonymous once erased)."),
    _count("facts", "The person's facts of the family in the month in the subtree (> 0)."),
    comment=(
        "The distinct people whose facts make each unit subtree's monthly figures, where they "
        "were at the time (the small-group rule's contributors); a row goes when its count is 0."
    ),
)

unit_contributor_counts = Table(
    "unit_contributor_counts",
    metadata,
    _gen(),
    _tenant(),
    Column("org_unit_id", Id, primary_key=True, comment="The unit; '*' is the whole tenant."),
    Column("family", String(32), primary_key=True, comment="obligations, checkins, pulse, ..."),
    Column("month", String(7), primary_key=True, comment="YYYY-MM (UTC)."),
    _count("people", "Rows of unit_contributors with this unit, family and month (> 0)."),
    comment=(
        "How many distinct contributors each unit subtree's monthly figure has (the small-group "
        "rule's cell sizes), kept with unit_contributors; a row goes when its count is 0."
    ),
)

manager_reports = Table(
    "manager_reports",
    metadata,
    _gen(),
    _tenant(),
    Column("month", String(7), primary_key=True, comment="YYYY-MM (UTC) of the due time."),
    Column(
        "manager_id", Id, primary_key=True, comment="The manager the obligations name ('': none)."
    ),
    Column("person_id", Id, primary_key=True, comment="A report (pseudonymous once erased)."),
    _count("facts", "The person's obligations due in the month that name the manager (> 0)."),
    comment=(
        "The distinct people whose obligations due in a month name each manager (the manager "
        "table's small-group rule); a row goes when its count is 0."
    ),
)

manager_report_counts = Table(
    "manager_report_counts",
    metadata,
    _gen(),
    _tenant(),
    Column("month", String(7), primary_key=True, comment="YYYY-MM (UTC) of the due time."),
    Column(
        "manager_id", Id, primary_key=True, comment="The manager the obligations name ('': none)."
    ),
    _count("people", "Rows of manager_reports with this month and manager (> 0)."),
    comment=(
        "How many distinct people each manager's obligations of a month come from, kept with "
        "manager_reports; a row goes when its count is 0."
    ),
)

fact_versions = Table(
    "fact_versions",
    metadata,
    _gen(),
    _tenant(),
    Column(
        "family",
        String(32),
        primary_key=True,
        comment="A family of small-group decisions (domain/projection.py: decision_slots).",
    ),
    Column(
        "slot",
        String(7),
        primary_key=True,
        comment="YYYY-MM (UTC) of the facts' time; '*' for goals (every period).",
    ),
    Column(
        "version",
        BigInteger,
        nullable=False,
        server_default="0",
        comment="Raised by every batch that changes a fact of the family in the slot.",
    ),
    comment=(
        "A number per family and month of facts (per tenant for goals), raised in the same "
        "transaction as every change of them: small-group decisions and manager tables kept "
        "in memory serve while their numbers (and the org version) stay."
    ),
)

#: Sortable share missed (-1 when nothing is resolved yet), computed by the database.
MISSED_SHARE = "COALESCE(CAST(missed AS FLOAT) / NULLIF(on_time + late + missed, 0), -1)"

manager_period_stats = Table(
    "manager_period_stats",
    metadata,
    _gen(),
    _tenant(),
    Column("manager_id", Id, primary_key=True),
    Column("period", String(7), primary_key=True, comment="YYYY-MM, YYYY-Qn or YYYY."),
    *(_count(name, comment) for name, comment in OBLIGATION_COUNTS.items()),
    Column(
        "missed_share",
        Float,
        Computed(MISSED_SHARE, persisted=True),
        comment="missed / (on_time + late + missed); -1 when none is resolved.",
    ),
    comment="Obligations of each manager's direct reports, per month, quarter and year.",
)
# "Managers whose teams miss most" walks this index from the top and stops at the limit.
Index(
    "ix_manager_period_stats_rank",
    manager_period_stats.c.generation,
    manager_period_stats.c.tenant_id,
    manager_period_stats.c.period,
    manager_period_stats.c.missed_share.desc(),
    manager_period_stats.c.obligations.desc(),
    manager_period_stats.c.manager_id.desc(),
)
Index("ix_employees_unit", employees.c.generation, employees.c.tenant_id, employees.c.org_unit_id)

FACT_TABLES: dict[str, tuple[Table, str]] = {
    "obligation": (obligation_facts, "obligation_id"),
    "checkin": (checkin_facts, "checkin_id"),
    "reflection": (reflection_facts, "reflection_key"),
    "feedback": (feedback_facts, "feedback_id"),
    "goal": (goal_facts, "goal_id"),
}
ROLLUP_TABLES: dict[str, Table] = {
    "unit_month_stats": unit_month_stats,
    "unit_goal_stats": unit_goal_stats,
    "unit_people": unit_people,
    "unit_contributors": unit_contributors,
    "manager_people": manager_people,
    "manager_period_stats": manager_period_stats,
    "manager_reports": manager_reports,
}
#: Rollups whose rows are members (a person in a unit's month), removed when they reach 0, and
#: the table counting the members of each group (the key less the person), kept with them.
MEMBERSHIP_ROLLUPS: dict[str, Table] = {
    "unit_contributors": unit_contributor_counts,
    "manager_reports": manager_report_counts,
}
GENERATIONAL_TABLES: tuple[Table, ...] = (
    org_units,
    employee_versions,
    employees,
    *(t for t, _ in FACT_TABLES.values()),
    *ROLLUP_TABLES.values(),
    *MEMBERSHIP_ROLLUPS.values(),
)


def key_columns(table: Table) -> list[str]:
    """Primary-key columns after generation and tenant."""
    return [c.name for c in table.primary_key.columns if c.name not in ("generation", "tenant_id")]


def value_columns(table: Table) -> list[str]:
    """Columns the service writes (not the key, not what the database computes)."""
    return [c.name for c in table.columns if not c.primary_key and c.computed is None]


# The small-group rule counts distinct contributors per unit and period (adapters/queries.py
# ``contributors``): these cover those counts (unit, time, person) so each is a range scan over
# the units asked for, not a pass over the tenant's facts. The obligations' one also holds the
# manager (manager rows), goals theirs by goal period.
Index(
    "ix_obligation_facts_unit_due",
    obligation_facts.c.generation,
    obligation_facts.c.tenant_id,
    obligation_facts.c.org_unit_id,
    obligation_facts.c.due_at,
    obligation_facts.c.employee_id,
    obligation_facts.c.manager_id,
)
Index(
    "ix_goal_facts_unit_period",
    goal_facts.c.generation,
    goal_facts.c.tenant_id,
    goal_facts.c.org_unit_id,
    goal_facts.c.period_start,
    goal_facts.c.period_end,
    goal_facts.c.owner_id,
)
Index(
    "ix_checkin_facts_unit_held",
    checkin_facts.c.generation,
    checkin_facts.c.tenant_id,
    checkin_facts.c.org_unit_id,
    checkin_facts.c.held_at,
    checkin_facts.c.employee_id,
)
Index(
    "ix_reflection_facts_unit_submitted",
    reflection_facts.c.generation,
    reflection_facts.c.tenant_id,
    reflection_facts.c.org_unit_id,
    reflection_facts.c.submitted_at,
    reflection_facts.c.employee_id,
)
Index(
    "ix_feedback_facts_giver_unit_given",
    feedback_facts.c.generation,
    feedback_facts.c.tenant_id,
    feedback_facts.c.giver_unit_id,
    feedback_facts.c.given_at,
    feedback_facts.c.giver_id,
)
Index(
    "ix_feedback_facts_receiver_unit_given",
    feedback_facts.c.generation,
    feedback_facts.c.tenant_id,
    feedback_facts.c.receiver_unit_id,
    feedback_facts.c.given_at,
    feedback_facts.c.receiver_id,
)
