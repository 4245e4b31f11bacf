"""The check-ins service's tables (SQLAlchemy Core) on its own metadata, with the kit's tables."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from rhythm_shared.kit.db import BigId, UtcDateTime, define_kit_tables, new_metadata
from rhythm_shared.kit.people import define_directory_tables

metadata = new_metadata()
kit = define_kit_tables(metadata, audit=True)

ID = 128  # contract Identifier max length

# --- slices of other services' state (event-carried) -------------------------------------------

#: People and org units: the kit's one people directory (rhythm.people.v1, last writer wins).
directory = define_directory_tables(metadata)

planning = Table(
    "planning",
    metadata,
    Column("tenant_id", String(ID), primary_key=True),
    Column("employee_id", String(ID), primary_key=True),
    # When the planner must next create obligations ahead for this employee (None: nothing owed).
    Column("plan_at", UtcDateTime, nullable=True),
    comment="When each employee's obligations are next planned ahead (people: directory).",
)
Index(
    "ix_planning_plan_at",
    planning.c.plan_at,
    postgresql_where=planning.c.plan_at.is_not(None),
    sqlite_where=planning.c.plan_at.is_not(None),
)

goals = Table(
    "goals",
    metadata,
    Column("tenant_id", String(ID), primary_key=True),
    Column("goal_id", String(ID), primary_key=True),
    Column("owner_type", String(16), nullable=False),
    Column("owner_id", String(ID), nullable=False),
    Column("title", String(200), nullable=True),
    Column("visibility", String(16), nullable=False),
    Column("progress", Float, nullable=False, default=0.0),
    Column("archived", Boolean, nullable=False, default=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Goals from rhythm.goals.v1: which may be discussed, and their progress.",
)
Index("ix_goals_owner", goals.c.tenant_id, goals.c.owner_id)

goal_progress = Table(
    "goal_progress",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(ID), nullable=False),
    Column("goal_id", String(ID), nullable=False),
    Column("progress", Float, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    comment="Progress history, to show progress since the last check-in.",
)
Index("ix_goal_progress_goal", goal_progress.c.tenant_id, goal_progress.c.goal_id)

# --- cadence -----------------------------------------------------------------------------------

tenant_settings = Table(
    "tenant_settings",
    metadata,
    Column("tenant_id", String(ID), primary_key=True),
    Column("reviews_visible_to_manager_chain", Boolean, nullable=False, default=False),
    # Whether the public CheckinCompleted / ReflectionSubmitted carry each person's pulse
    # (off: null; reporting reads the scores from the internal pulse topic either way).
    Column(
        "share_individual_pulse", Boolean, nullable=False, default=False, server_default=false()
    ),
    Column("updated_at", UtcDateTime, nullable=False),
)

cadence_policies = Table(
    "cadence_policies",
    metadata,
    Column("tenant_id", String(ID), primary_key=True),
    Column("policy_id", String(ID), primary_key=True),
    Column("scope", String(16), nullable=False),
    Column("scope_id", String(ID), nullable=False),
    Column("rules", JSON, nullable=False),
    Column("escalate_after", Integer, nullable=False),
    Column("escalate_to", String(16), nullable=False),
    Column("ramp_up_days", Integer, nullable=False),
    Column("hr_contact_id", String(ID), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "scope", "scope_id", name="uq_cadence_policies_scope"),
    comment="Who owes which check-ins how often; the most specific scope wins.",
)

obligations = Table(
    "obligations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(ID), nullable=False),
    Column("employee_id", String(ID), nullable=False),
    Column("manager_id", String(ID), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("policy_id", String(ID), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("remind_at", UtcDateTime, nullable=False),
    Column("miss_at", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    # When the sweeper must look at it next; NULL once nothing more can happen to it.
    Column("next_action_at", UtcDateTime, nullable=True),
    Column("consecutive_misses", Integer, nullable=False, default=0),
    Column("checkin_id", String(ID), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "tenant_id", "employee_id", "kind", "period_start", name="uq_obligations_period"
    ),
    comment="One owed check-in per employee x kind x period.",
)
# The sweep reads only rows with something due: a partial index keeps it proportional to those.
Index(
    "ix_obligations_next_action_at",
    obligations.c.next_action_at,
    postgresql_where=obligations.c.next_action_at.is_not(None),
    sqlite_where=obligations.c.next_action_at.is_not(None),
)

cadence_facts = Table(
    "cadence_facts",
    metadata,
    Column("obligation_id", String(40), primary_key=True),
    Column("fact", String(16), primary_key=True),
    Column("tenant_id", String(ID), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    comment="Natural key of every due/missed/escalated fact: each happens once per obligation.",
)

# --- conversations -----------------------------------------------------------------------------

checkins = Table(
    "checkins",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(ID), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("employee_id", String(ID), nullable=False),
    Column("manager_id", String(ID), nullable=False),
    Column("scheduled_for", UtcDateTime, nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("initiated_by", String(16), nullable=False),
    Column("initiated_by_id", String(ID), nullable=False),
    Column("state", String(16), nullable=False),
    # The invitation's revision (iCalendar SEQUENCE): 0 when scheduled, +1 per change.
    Column("invite_sequence", Integer, nullable=False, server_default=text("0")),
    Column("held_at", UtcDateTime, nullable=True),
    Column("obligation_id", String(40), nullable=True),
    Column("obligation_due_at", UtcDateTime, nullable=True),
    Column("reflection_wins", Text, nullable=True),
    Column("reflection_challenges", Text, nullable=True),
    Column("reflection_help_needed", Text, nullable=True),
    Column("pulse", Integer, nullable=True),
    Column("reflected_at", UtcDateTime, nullable=True),
    Column("grow_goal", Text, nullable=True),
    Column("grow_reality", Text, nullable=True),
    Column("grow_options", Text, nullable=True),
    Column("grow_will", Text, nullable=True),
    Column("notes", Text, nullable=True),
    Column("goals_discussed", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Check-ins and quarterly reviews; texts never leave this service.",
)
Index("ix_checkins_employee", checkins.c.tenant_id, checkins.c.employee_id, checkins.c.held_at)
Index("ix_checkins_manager", checkins.c.tenant_id, checkins.c.manager_id)

action_items = Table(
    "action_items",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(ID), nullable=False),
    Column("employee_id", String(ID), nullable=False),
    Column("checkin_id", String(ID), nullable=False),
    Column("owner_id", String(ID), nullable=False),
    # NULL once removed by the retention job (the item itself, its owner and times stay).
    Column("text", Text, nullable=True),
    Column("due_on", Date, nullable=True),
    Column("done_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    comment="Action items; open ones carry over to the employee's next check-ins until done.",
)
Index("ix_action_items_employee", action_items.c.tenant_id, action_items.c.employee_id)

feedback = Table(
    "feedback",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(ID), nullable=False),
    Column("giver_id", String(ID), nullable=False),
    Column("receiver_id", String(ID), nullable=False),
    Column("kind", String(16), nullable=False),
    # NULL once removed by the retention job (who gave what kind of feedback when stays).
    Column("text", Text, nullable=True),
    Column("requested", Boolean, nullable=False),
    Column("request_id", String(ID), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    comment="Informal feedback; the text is visible to giver and receiver only.",
)
Index("ix_feedback_receiver", feedback.c.tenant_id, feedback.c.receiver_id)
Index("ix_feedback_giver", feedback.c.tenant_id, feedback.c.giver_id)

feedback_requests = Table(
    "feedback_requests",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(ID), nullable=False),
    Column("requester_id", String(ID), nullable=False),
    Column("from_id", String(ID), nullable=False),
    Column("prompt", Text, nullable=True),
    Column("feedback_id", String(ID), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    comment="Someone asked someone else for feedback.",
)
Index("ix_feedback_requests_from", feedback_requests.c.tenant_id, feedback_requests.c.from_id)

# --- retention after leaving -------------------------------------------------------------------

departures = Table(
    "departures",
    metadata,
    Column("tenant_id", String(ID), primary_key=True),
    Column("employee_id", String(ID), primary_key=True),
    # When the person left (the directory's deactivation); NULL once they are back (a rehire).
    Column("left_at", UtcDateTime, nullable=True),
    # When the retention job removed their conversation texts / the feedback they received.
    Column("texts_removed_at", UtcDateTime, nullable=True),
    Column("feedback_removed_at", UtcDateTime, nullable=True),
    comment="Who left when, and whether their texts were removed (retention).",
)
# The retention job reads only departures whose texts are still there: partial indexes on the
# time they left keep its cost proportional to what is due.
Index(
    "ix_departures_texts_due",
    departures.c.left_at,
    postgresql_where=departures.c.left_at.is_not(None) & departures.c.texts_removed_at.is_(None),
    sqlite_where=departures.c.left_at.is_not(None) & departures.c.texts_removed_at.is_(None),
)
Index(
    "ix_departures_feedback_due",
    departures.c.left_at,
    postgresql_where=departures.c.left_at.is_not(None) & departures.c.feedback_removed_at.is_(None),
    sqlite_where=departures.c.left_at.is_not(None) & departures.c.feedback_removed_at.is_(None),
)
