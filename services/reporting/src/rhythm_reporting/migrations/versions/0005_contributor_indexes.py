"""indexes for the small-group rule's contributor counts (unit, time, person per fact table)

Built concurrently on PostgreSQL: the fact tables are the largest of the read model.

Revision ID: 0005
Revises: 0004
"""

from rhythm_shared.kit.migrations import create_index_concurrently, drop_index_concurrently

revision = "0005"
down_revision = "0004"

_INDEXES = (
    ("ix_obligation_facts_unit_due", "obligation_facts", "org_unit_id", "due_at", "employee_id"),
    ("ix_checkin_facts_unit_held", "checkin_facts", "org_unit_id", "held_at", "employee_id"),
    (
        "ix_reflection_facts_unit_submitted",
        "reflection_facts",
        "org_unit_id",
        "submitted_at",
        "employee_id",
    ),
    (
        "ix_feedback_facts_giver_unit_given",
        "feedback_facts",
        "giver_unit_id",
        "given_at",
        "giver_id",
    ),
    (
        "ix_feedback_facts_receiver_unit_given",
        "feedback_facts",
        "receiver_unit_id",
        "given_at",
        "receiver_id",
    ),
)


def upgrade() -> None:
    for name, table, unit, at, person in _INDEXES:
        create_index_concurrently(name, table, ["generation", "tenant_id", unit, at, person])


def downgrade() -> None:
    for name, table, *_ in _INDEXES:
        drop_index_concurrently(name, table)
