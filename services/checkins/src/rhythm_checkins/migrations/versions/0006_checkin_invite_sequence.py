"""a check-in's invitation revision (iCalendar SEQUENCE), one more on each reschedule or cancel

``checkins.invite_sequence`` starts at 0 (the first invitation); the check-ins already there keep
their first invitation's 0.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column(
        "checkins",
        sa.Column("invite_sequence", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("checkins") as batch:
        batch.drop_column("invite_sequence")
