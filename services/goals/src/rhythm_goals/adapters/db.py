"""The goals service's tables (their statements: :mod:`rhythm_goals.adapters.repository` for
the write side, :mod:`rhythm_goals.queries` for the read side)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from rhythm_shared.kit.db import BigId, UtcDateTime, define_kit_tables, new_metadata
from rhythm_shared.kit.people import define_directory_tables

metadata = new_metadata()
kit = define_kit_tables(metadata, audit=True)

_ID = 128

# --- people (the kit's directory, projected from rhythm.people.v1) ----------------------------

people_tables = define_directory_tables(metadata)

leavers = Table(
    "leavers",
    metadata,
    Column("tenant_id", String(_ID), primary_key=True),
    Column("employee_id", String(_ID), primary_key=True),
    Column("archive_goals_at", UtcDateTime, nullable=False),
    comment="Deactivations dated ahead: when each leaver's open goals are to be archived.",
)
Index("ix_leavers_archive_goals_at", leavers.c.archive_goals_at)

# --- goals ------------------------------------------------------------------------------------

goals = Table(
    "goals",
    metadata,
    Column("goal_id", String(_ID), primary_key=True),
    Column("tenant_id", String(_ID), nullable=False),
    Column("owner_type", String(16), nullable=False),
    Column("owner_id", String(_ID), nullable=False),
    Column("parent_goal_id", String(_ID), nullable=True),
    Column("kind", String(8), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("visibility", String(16), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("update_interval_days", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_overridden", Boolean, nullable=False, default=False),
    Column("progress", Float, nullable=False, default=0.0),
    Column("confidence", Float, nullable=True),
    Column("revision", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(_ID), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("last_progress_at", UtcDateTime, nullable=True),
    # When the staleness job should look at the goal next; NULL while it cannot go stale
    # (archived, closed, or already reported stale in the current spell).
    Column("next_stale_check_at", UtcDateTime, nullable=True),
    Column("stale_since", UtcDateTime, nullable=True),
    Column("archived_at", UtcDateTime, nullable=True),
    Column("archive_reason", String(32), nullable=True),
    comment="Goals (OKR objectives and KPIs): owner, period, alignment, status, progress.",
)
# The staleness job reads only due rows through this index, so its cost follows what is due,
# not how many goals exist; rows that cannot go stale stay out of the (partial) index.
Index(
    "ix_goals_next_stale_check_at",
    goals.c.next_stale_check_at,
    postgresql_where=goals.c.next_stale_check_at.is_not(None),
    sqlite_where=goals.c.next_stale_check_at.is_not(None),
)
Index("ix_goals_owner", goals.c.tenant_id, goals.c.owner_type, goals.c.owner_id)
Index("ix_goals_parent", goals.c.tenant_id, goals.c.parent_goal_id)
Index("ix_goals_listing", goals.c.tenant_id, goals.c.created_at, goals.c.goal_id)

key_results = Table(
    "key_results",
    metadata,
    Column("goal_id", String(_ID), primary_key=True),
    Column("key_result_id", String(_ID), primary_key=True),
    Column("tenant_id", String(_ID), nullable=False),
    Column("position", Integer, nullable=False),
    Column("title", String(200), nullable=True),
    Column("unit", String(32), nullable=False),
    Column("start", Float, nullable=False),
    Column("target", Float, nullable=False),
    Column("current", Float, nullable=False),
    Column("direction", String(16), nullable=False),
    Column("weight", Float, nullable=False),
    Column("confidence", Float, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    ForeignKeyConstraint(["goal_id"], ["goals.goal_id"], ondelete="CASCADE"),
    comment="Measurable key results of a goal: from start towards target.",
)

progress_records = Table(
    "progress_records",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(_ID), nullable=False),
    Column("goal_id", String(_ID), nullable=False),
    Column("key_result_id", String(_ID), nullable=False),
    Column("value", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("comment", Text, nullable=True),
    Column("goal_progress", Float, nullable=False),
    Column("recorded_by", String(_ID), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    ForeignKeyConstraint(["goal_id"], ["goals.goal_id"], ondelete="CASCADE"),
    comment="Every value recorded for a key result, with confidence and comment.",
)
Index("ix_progress_records_goal", progress_records.c.goal_id, progress_records.c.seq)

goal_revisions = Table(
    "goal_revisions",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(_ID), nullable=False),
    Column("goal_id", String(_ID), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("action", String(32), nullable=False),
    Column("changes", JSON, nullable=False),
    Column("changed_by", String(_ID), nullable=True),
    Column("changed_at", UtcDateTime, nullable=False),
    ForeignKeyConstraint(["goal_id"], ["goals.goal_id"], ondelete="CASCADE"),
    comment="Every change of a goal: who changed what, and when.",
)
Index(
    "ix_goal_revisions_goal_revision",
    goal_revisions.c.goal_id,
    goal_revisions.c.revision,
    unique=True,
)
