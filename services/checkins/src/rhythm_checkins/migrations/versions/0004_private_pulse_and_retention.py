"""individual pulse internal by default; retention of texts after a person leaves

``tenant_settings.share_individual_pulse`` (off): whether the public check-in events carry each
person's pulse. ``departures`` records who left when, from the people directory (filled here from
the people already deactivated), so the retention job finds who is due through an index on the
time they left. Action item and feedback texts become nullable: the job removes the text and
keeps the row.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from rhythm_shared.kit.db import UtcDateTime

revision = "0004"
down_revision = "0003"
#: Only relaxes NOT NULL on texts: the image before it still reads and writes them.
rollback_safe = True

_TEXTS_DUE = "left_at IS NOT NULL AND texts_removed_at IS NULL"
_FEEDBACK_DUE = "left_at IS NOT NULL AND feedback_removed_at IS NULL"


def upgrade() -> None:
    op.add_column(
        "tenant_settings",
        sa.Column(
            "share_individual_pulse", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    with op.batch_alter_table("action_items") as batch:
        batch.alter_column("text", existing_type=sa.Text(), nullable=True)
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("text", existing_type=sa.Text(), nullable=True)
    op.create_table(
        "departures",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("left_at", UtcDateTime(), nullable=True),
        sa.Column("texts_removed_at", UtcDateTime(), nullable=True),
        sa.Column("feedback_removed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", name=op.f("pk_departures")),
        comment="Who left when, and whether their texts were removed (retention).",
    )
    op.create_index(
        "ix_departures_texts_due",
        "departures",
        ["left_at"],
        postgresql_where=sa.text(_TEXTS_DUE),
        sqlite_where=sa.text(_TEXTS_DUE),
    )
    op.create_index(
        "ix_departures_feedback_due",
        "departures",
        ["left_at"],
        postgresql_where=sa.text(_FEEDBACK_DUE),
        sqlite_where=sa.text(_FEEDBACK_DUE),
    )
    # People who left before this revision: the same rule as domain/retention.py's left_at.
    op.execute(
        """
        INSERT INTO departures (tenant_id, employee_id, left_at)
        SELECT tenant_id, employee_id, COALESCE(deactivated_at, profile_at)
        FROM directory_employees
        WHERE profile_at IS NOT NULL AND (deactivated_at IS NOT NULL OR active = false)
        """
    )


def downgrade() -> None:
    op.drop_index("ix_departures_feedback_due", table_name="departures")
    op.drop_index("ix_departures_texts_due", table_name="departures")
    op.drop_table("departures")
    # Removed texts cannot come back; the old schema wants a text.
    op.execute("UPDATE feedback SET text = '' WHERE text IS NULL")
    op.execute("UPDATE action_items SET text = '' WHERE text IS NULL")
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("text", existing_type=sa.Text(), nullable=False)
    with op.batch_alter_table("action_items") as batch:
        batch.alter_column("text", existing_type=sa.Text(), nullable=False)
    with op.batch_alter_table("tenant_settings") as batch:
        batch.drop_column("share_individual_pulse")
