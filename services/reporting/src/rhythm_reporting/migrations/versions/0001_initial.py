# ruff: noqa: E501
"""initial

Revision ID: 0001
Revises:
Create Date: 2026-11-28 14:43:10.961532

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rhythm_shared.kit.db
from rhythm_shared.kit.schema import create_kit_tables, drop_kit_tables

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Views for BI tools (Metabase, Superset, Grafana): the active generation only, no
# generation column. Column lists are spelled out so this revision never changes.
VIEWS: dict[str, tuple[str, list[str]]] = {
    "v_org_units": (
        "org_units",
        ["tenant_id", "org_unit_id", "name", "parent_id", "head_id", "updated_at"],
    ),
    "v_employee_history": (
        "employee_versions",
        [
            "tenant_id",
            "employee_id",
            "valid_from",
            "valid_to",
            "org_unit_id",
            "manager_id",
            "display_name",
            "active",
        ],
    ),
    "v_employees": (
        "employees",
        [
            "tenant_id",
            "employee_id",
            "display_name",
            "org_unit_id",
            "manager_id",
            "active",
            "deactivated_at",
        ],
    ),
    "v_obligations": (
        "obligation_facts",
        [
            "tenant_id",
            "obligation_id",
            "employee_id",
            "manager_id",
            "kind",
            "period_start",
            "period_end",
            "due_at",
            "completed_at",
            "checkin_id",
            "missed_at",
            "consecutive_misses",
            "outcome",
            "org_unit_id",
        ],
    ),
    "v_checkins": (
        "checkin_facts",
        [
            "tenant_id",
            "checkin_id",
            "employee_id",
            "manager_id",
            "kind",
            "initiated_by",
            "scheduled_for",
            "held_at",
            "completed",
            "pulse",
            "obligation_id",
            "obligation_due_at",
            "goals_discussed",
            "open_action_items",
            "org_unit_id",
        ],
    ),
    "v_reflections": (
        "reflection_facts",
        [
            "tenant_id",
            "reflection_key",
            "employee_id",
            "checkin_id",
            "submitted_at",
            "pulse",
            "org_unit_id",
        ],
    ),
    "v_feedback": (
        "feedback_facts",
        [
            "tenant_id",
            "feedback_id",
            "giver_id",
            "receiver_id",
            "kind",
            "requested",
            "given_at",
            "giver_unit_id",
            "receiver_unit_id",
        ],
    ),
    "v_goals": (
        "goal_facts",
        [
            "tenant_id",
            "goal_id",
            "owner_type",
            "owner_id",
            "kind",
            "title",
            "visibility",
            "period_start",
            "period_end",
            "update_interval_days",
            "created_at",
            "status",
            "status_changed_at",
            "progress_bp",
            "confidence_bp",
            "last_progress_at",
            "stale_marker",
            "is_stale",
            "archived_reason",
            "needs_attention",
            "org_unit_id",
        ],
    ),
    "v_unit_month_stats": (
        "unit_month_stats",
        [
            "tenant_id",
            "org_unit_id",
            "month",
            "obligations",
            "on_time",
            "late",
            "missed",
            "open",
            "checkins",
            "checkins_employee_initiated",
            "pulse_responses",
            "pulse_sum",
            "pulse_1",
            "pulse_2",
            "pulse_3",
            "pulse_4",
            "pulse_5",
            "feedback_given",
            "feedback_received",
            "feedback_praise",
            "feedback_constructive",
            "feedback_requested",
        ],
    ),
    "v_unit_goal_stats": (
        "unit_goal_stats",
        [
            "tenant_id",
            "org_unit_id",
            "period_start",
            "period_end",
            "goals",
            "on_track",
            "at_risk",
            "off_track",
            "achieved",
            "abandoned",
            "stale",
            "progress_0_20",
            "progress_20_40",
            "progress_40_60",
            "progress_60_80",
            "progress_80_100",
            "progress_bp_sum",
            "confidence_bp_sum",
            "confidence_n",
        ],
    ),
    "v_unit_people": ("unit_people", ["tenant_id", "org_unit_id", "people"]),
    "v_manager_people": ("manager_people", ["tenant_id", "manager_id", "people"]),
    "v_manager_period_stats": (
        "manager_period_stats",
        [
            "tenant_id",
            "manager_id",
            "period",
            "obligations",
            "on_time",
            "late",
            "missed",
            "open",
            "missed_share",
        ],
    ),
}


def upgrade() -> None:
    """Upgrade schema."""
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "checkin_facts",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column("checkin_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("manager_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column(
            "initiated_by", sa.String(length=16), nullable=True, comment="employee or manager."
        ),
        sa.Column("scheduled_for", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "held_at",
            rhythm_shared.kit.db.UtcDateTime(timezone=True),
            nullable=True,
            comment="Null until completed.",
        ),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("pulse", sa.Integer(), nullable=True, comment="Workload pulse 1-5, if given."),
        sa.Column("obligation_id", sa.String(length=128), nullable=True),
        sa.Column(
            "obligation_due_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("goals_discussed", sa.Integer(), nullable=True),
        sa.Column("open_action_items", sa.Integer(), nullable=True),
        sa.Column(
            "org_unit_id",
            sa.String(length=128),
            nullable=True,
            comment="Employee's unit at held_at.",
        ),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "checkin_id", name=op.f("pk_checkin_facts")
        ),
        comment="One row per check-in (scheduled or completed).",
    )
    with op.batch_alter_table("checkin_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_checkin_facts_employee", ["generation", "tenant_id", "employee_id"], unique=False
        )

    op.create_table(
        "consumer_positions",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column(
            "next_offset", sa.BigInteger(), nullable=False, comment="The next offset to apply."
        ),
        sa.Column("updated_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "generation", "topic", "partition", name=op.f("pk_consumer_positions")
        ),
        comment="How far each generation has consumed, written in the same transaction as the read-model change: a replay or restart skips what is already counted.",
    )
    op.create_table(
        "employee_versions",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column(
            "valid_from",
            rhythm_shared.kit.db.UtcDateTime(timezone=True),
            nullable=False,
            comment="When this assignment began.",
        ),
        sa.Column(
            "valid_to",
            rhythm_shared.kit.db.UtcDateTime(timezone=True),
            nullable=True,
            comment="When the next began; null: current.",
        ),
        sa.Column("org_unit_id", sa.String(length=128), nullable=False),
        sa.Column("manager_id", sa.String(length=128), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "generation",
            "tenant_id",
            "employee_id",
            "valid_from",
            name=op.f("pk_employee_versions"),
        ),
        comment="Employees' unit and manager over time: an event counts against the unit the person was in when it happened.",
    )
    op.create_table(
        "employees",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column(
            "display_name",
            sa.String(length=200),
            nullable=True,
            comment="Null until an upsert is seen.",
        ),
        sa.Column(
            "org_unit_id",
            sa.String(length=128),
            nullable=True,
            comment="Null until an upsert is seen.",
        ),
        sa.Column("manager_id", sa.String(length=128), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("deactivated_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "employee_id", name=op.f("pk_employees")
        ),
        comment="Employees as they are now (the latest version).",
    )
    with op.batch_alter_table("employees", schema=None) as batch_op:
        batch_op.create_index(
            "ix_employees_manager", ["generation", "tenant_id", "manager_id"], unique=False
        )
        batch_op.create_index(
            "ix_employees_unit", ["generation", "tenant_id", "org_unit_id"], unique=False
        )

    op.create_table(
        "feedback_facts",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column("feedback_id", sa.String(length=128), nullable=False),
        sa.Column("giver_id", sa.String(length=128), nullable=False),
        sa.Column("receiver_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="praise or constructive."),
        sa.Column("requested", sa.Boolean(), nullable=False),
        sa.Column("given_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("giver_unit_id", sa.String(length=128), nullable=True),
        sa.Column("receiver_unit_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "feedback_id", name=op.f("pk_feedback_facts")
        ),
        comment="One row per piece of feedback, with the giver's and receiver's units at the time.",
    )
    with op.batch_alter_table("feedback_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_feedback_facts_giver", ["generation", "tenant_id", "giver_id"], unique=False
        )
        batch_op.create_index(
            "ix_feedback_facts_receiver", ["generation", "tenant_id", "receiver_id"], unique=False
        )

    op.create_table(
        "goal_facts",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column("goal_id", sa.String(length=128), nullable=False),
        sa.Column(
            "owner_type",
            sa.String(length=16),
            nullable=True,
            comment="person, org_unit or company.",
        ),
        sa.Column("owner_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=True, comment="okr or kpi."),
        sa.Column("title", sa.String(length=200), nullable=True, comment="Null for private goals."),
        sa.Column("visibility", sa.String(length=16), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("update_interval_days", sa.Integer(), nullable=True),
        sa.Column("created_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=True,
            comment="on_track, at_risk, off_track, ...",
        ),
        sa.Column(
            "status_changed_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "progress_bp",
            sa.Integer(),
            nullable=True,
            comment="Progress in basis points (0-10000).",
        ),
        sa.Column(
            "confidence_bp", sa.Integer(), nullable=True, comment="Confidence in basis points."
        ),
        sa.Column(
            "last_progress_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "stale_marker",
            rhythm_shared.kit.db.UtcDateTime(timezone=True),
            nullable=True,
            comment="last_progress_at of GoalStale.",
        ),
        sa.Column("is_stale", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("archived_reason", sa.String(length=32), nullable=True),
        sa.Column("needs_attention", sa.Boolean(), server_default="0", nullable=False),
        sa.Column(
            "org_unit_id",
            sa.String(length=128),
            nullable=True,
            comment="Owner's unit when the goal was created.",
        ),
        sa.PrimaryKeyConstraint("generation", "tenant_id", "goal_id", name=op.f("pk_goal_facts")),
        comment="One row per goal: progress, confidence, status, staleness.",
    )
    with op.batch_alter_table("goal_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_goal_facts_attention",
            ["generation", "tenant_id", "needs_attention", "org_unit_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_goal_facts_attention_order",
            ["generation", "tenant_id", "needs_attention", "status", "progress_bp"],
            unique=False,
        )
        batch_op.create_index(
            "ix_goal_facts_owner", ["generation", "tenant_id", "owner_id"], unique=False
        )

    create_kit_tables()
    op.create_table(
        "manager_people",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column("manager_id", sa.String(length=128), nullable=False),
        sa.Column(
            "people",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Active direct reports now.",
        ),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "manager_id", name=op.f("pk_manager_people")
        ),
        comment="Team size of each manager (suppression of small teams).",
    )
    op.create_table(
        "manager_period_stats",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column("manager_id", sa.String(length=128), nullable=False),
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="YYYY-MM, YYYY-Qn or YYYY."
        ),
        sa.Column(
            "obligations",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Obligations due in the month (by due_at, UTC).",
        ),
        sa.Column(
            "on_time",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="... completed by their due time.",
        ),
        sa.Column(
            "late",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="... completed after their due time.",
        ),
        sa.Column(
            "missed",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="... declared missed and not completed.",
        ),
        sa.Column(
            "open",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="... neither completed nor missed yet.",
        ),
        sa.Column(
            "missed_share",
            sa.Float(),
            sa.Computed(
                "COALESCE(CAST(missed AS FLOAT) / NULLIF(on_time + late + missed, 0), -1)",
                persisted=True,
            ),
            nullable=True,
            comment="missed / (on_time + late + missed); -1 when none is resolved.",
        ),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "manager_id", "period", name=op.f("pk_manager_period_stats")
        ),
        comment="Obligations of each manager's direct reports, per month, quarter and year.",
    )
    with op.batch_alter_table("manager_period_stats", schema=None) as batch_op:
        batch_op.create_index(
            "ix_manager_period_stats_rank",
            [
                "generation",
                "tenant_id",
                "period",
                sa.literal_column("missed_share DESC"),
                sa.literal_column("obligations DESC"),
                sa.literal_column("manager_id DESC"),
            ],
            unique=False,
        )

    op.create_table(
        "obligation_facts",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column("obligation_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("manager_id", sa.String(length=128), nullable=True),
        sa.Column(
            "kind", sa.String(length=32), nullable=True, comment="monthly or quarterly_review."
        ),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("due_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "completed_at",
            rhythm_shared.kit.db.UtcDateTime(timezone=True),
            nullable=True,
            comment="held_at of the check-in.",
        ),
        sa.Column("checkin_id", sa.String(length=128), nullable=True),
        sa.Column(
            "missed_at",
            rhythm_shared.kit.db.UtcDateTime(timezone=True),
            nullable=True,
            comment="When CheckinMissed was declared.",
        ),
        sa.Column("consecutive_misses", sa.Integer(), nullable=True),
        sa.Column(
            "outcome",
            sa.String(length=16),
            nullable=False,
            comment="open, on_time, late or missed.",
        ),
        sa.Column(
            "org_unit_id",
            sa.String(length=128),
            nullable=True,
            comment="Employee's unit at due_at.",
        ),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "obligation_id", name=op.f("pk_obligation_facts")
        ),
        comment="One row per owed check-in (obligation): due, completed on time or late, missed.",
    )
    with op.batch_alter_table("obligation_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_obligation_facts_employee", ["generation", "tenant_id", "employee_id"], unique=False
        )

    op.create_table(
        "org_units",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column("org_unit_id", sa.String(length=128), nullable=False),
        sa.Column(
            "name",
            sa.String(length=200),
            nullable=True,
            comment="Null until the unit itself is known.",
        ),
        sa.Column(
            "parent_id",
            sa.String(length=128),
            nullable=True,
            comment="Enclosing unit; null for a root.",
        ),
        sa.Column(
            "head_id",
            sa.String(length=128),
            nullable=True,
            comment="Employee id of the unit's head.",
        ),
        sa.Column("updated_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "org_unit_id", name=op.f("pk_org_units")
        ),
        comment="Org units as a tree (parent_id).",
    )
    with op.batch_alter_table("org_units", schema=None) as batch_op:
        batch_op.create_index(
            "ix_org_units_head", ["generation", "tenant_id", "head_id"], unique=False
        )
        batch_op.create_index(
            "ix_org_units_parent", ["generation", "tenant_id", "parent_id"], unique=False
        )

    op.create_table(
        "read_model_generations",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="building, active, retired or dropped (rows deleted).",
        ),
        sa.Column("created_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("generation", name=op.f("pk_read_model_generations")),
        comment="Read-model generations; exactly one is active (what dashboards and views show).",
    )
    op.create_table(
        "reflection_facts",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column(
            "reflection_key",
            sa.String(length=200),
            nullable=False,
            comment="<employee>@<time, UTC>.",
        ),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("checkin_id", sa.String(length=128), nullable=True),
        sa.Column("submitted_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("pulse", sa.Integer(), nullable=True),
        sa.Column("org_unit_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "reflection_key", name=op.f("pk_reflection_facts")
        ),
        comment="One row per submitted self-reflection (its workload pulse, never its text).",
    )
    with op.batch_alter_table("reflection_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reflection_facts_employee", ["generation", "tenant_id", "employee_id"], unique=False
        )

    op.create_table(
        "unit_goal_stats",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column(
            "org_unit_id",
            sa.String(length=128),
            nullable=False,
            comment="The unit; '*' is the whole tenant.",
        ),
        sa.Column("period_start", sa.Date(), nullable=False, comment="The goals' period."),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column(
            "goals",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Goals counted (not withdrawn, superseded or orphaned).",
        ),
        sa.Column(
            "on_track",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Status on_track.",
        ),
        sa.Column(
            "at_risk",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Status at_risk.",
        ),
        sa.Column(
            "off_track",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Status off_track.",
        ),
        sa.Column(
            "achieved",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Status achieved.",
        ),
        sa.Column(
            "abandoned",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Status abandoned.",
        ),
        sa.Column(
            "stale",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Open goals that went stale (no progress in their update interval).",
        ),
        sa.Column(
            "progress_0_20",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Progress below 20 %.",
        ),
        sa.Column(
            "progress_20_40",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Progress 20-40 %.",
        ),
        sa.Column(
            "progress_40_60",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Progress 40-60 %.",
        ),
        sa.Column(
            "progress_60_80",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Progress 60-80 %.",
        ),
        sa.Column(
            "progress_80_100",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Progress 80 % or more.",
        ),
        sa.Column(
            "progress_bp_sum",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Sum of progress in basis points.",
        ),
        sa.Column(
            "confidence_bp_sum",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Sum of confidence in basis points (goals with a confidence).",
        ),
        sa.Column(
            "confidence_n",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Goals with a confidence.",
        ),
        sa.PrimaryKeyConstraint(
            "generation",
            "tenant_id",
            "org_unit_id",
            "period_start",
            "period_end",
            name=op.f("pk_unit_goal_stats"),
        ),
        comment="Goal counts of a unit's whole subtree, per goal period.",
    )
    op.create_table(
        "unit_month_stats",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column(
            "org_unit_id",
            sa.String(length=128),
            nullable=False,
            comment="The unit; '*' is the whole tenant.",
        ),
        sa.Column("month", sa.String(length=7), nullable=False, comment="YYYY-MM (UTC)."),
        sa.Column(
            "obligations",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Obligations due in the month (by due_at, UTC).",
        ),
        sa.Column(
            "on_time",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="... completed by their due time.",
        ),
        sa.Column(
            "late",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="... completed after their due time.",
        ),
        sa.Column(
            "missed",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="... declared missed and not completed.",
        ),
        sa.Column(
            "open",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="... neither completed nor missed yet.",
        ),
        sa.Column(
            "checkins",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Check-ins held in the month.",
        ),
        sa.Column(
            "checkins_employee_initiated",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="... of which the employee initiated.",
        ),
        sa.Column(
            "pulse_responses",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Workload pulse answers (check-ins and reflections).",
        ),
        sa.Column(
            "pulse_sum",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Sum of those answers (1-5).",
        ),
        sa.Column(
            "pulse_1",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Answers of 1 (far too little).",
        ),
        sa.Column(
            "pulse_2", sa.BigInteger(), server_default="0", nullable=False, comment="Answers of 2."
        ),
        sa.Column(
            "pulse_3",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Answers of 3 (about right).",
        ),
        sa.Column(
            "pulse_4", sa.BigInteger(), server_default="0", nullable=False, comment="Answers of 4."
        ),
        sa.Column(
            "pulse_5",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Answers of 5 (far too much).",
        ),
        sa.Column(
            "feedback_given",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Feedback given by people of the unit.",
        ),
        sa.Column(
            "feedback_received",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Feedback received by people of the unit.",
        ),
        sa.Column(
            "feedback_praise",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Given feedback that was praise.",
        ),
        sa.Column(
            "feedback_constructive",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Given feedback that was constructive.",
        ),
        sa.Column(
            "feedback_requested",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Given feedback that the receiver had asked for.",
        ),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "org_unit_id", "month", name=op.f("pk_unit_month_stats")
        ),
        comment="Monthly counts of a unit's whole subtree (the unit and every unit below it).",
    )
    op.create_table(
        "unit_people",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column(
            "org_unit_id",
            sa.String(length=128),
            nullable=False,
            comment="The unit; '*' is the whole tenant.",
        ),
        sa.Column(
            "people",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Active employees in the unit's subtree now.",
        ),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "org_unit_id", name=op.f("pk_unit_people")
        ),
        comment="Headcount of each subtree: groups below 5 people are suppressed on dashboards.",
    )
    # ### end Alembic commands ###
    for view, (table, columns) in VIEWS.items():
        selected = ", ".join(f"t.{c}" for c in columns)
        op.execute(
            f"CREATE VIEW {view} AS SELECT {selected} FROM {table} t "
            "JOIN read_model_generations g ON g.generation = t.generation "
            "WHERE g.status = 'active'"
        )


def downgrade() -> None:
    """Downgrade schema."""
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_table("unit_people")
    op.drop_table("unit_month_stats")
    op.drop_table("unit_goal_stats")
    with op.batch_alter_table("reflection_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_reflection_facts_employee")

    op.drop_table("reflection_facts")
    op.drop_table("read_model_generations")
    with op.batch_alter_table("org_units", schema=None) as batch_op:
        batch_op.drop_index("ix_org_units_parent")
        batch_op.drop_index("ix_org_units_head")

    op.drop_table("org_units")
    with op.batch_alter_table("obligation_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_obligation_facts_employee")

    op.drop_table("obligation_facts")
    with op.batch_alter_table("manager_period_stats", schema=None) as batch_op:
        batch_op.drop_index("ix_manager_period_stats_rank")

    op.drop_table("manager_period_stats")
    op.drop_table("manager_people")
    drop_kit_tables()
    with op.batch_alter_table("goal_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_goal_facts_owner")
        batch_op.drop_index("ix_goal_facts_attention_order")
        batch_op.drop_index("ix_goal_facts_attention")

    op.drop_table("goal_facts")
    with op.batch_alter_table("feedback_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_facts_receiver")
        batch_op.drop_index("ix_feedback_facts_giver")

    op.drop_table("feedback_facts")
    with op.batch_alter_table("employees", schema=None) as batch_op:
        batch_op.drop_index("ix_employees_unit")
        batch_op.drop_index("ix_employees_manager")

    op.drop_table("employees")
    op.drop_table("employee_versions")
    op.drop_table("consumer_positions")
    with op.batch_alter_table("checkin_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_checkin_facts_employee")

    op.drop_table("checkin_facts")
    # ### end Alembic commands ###
