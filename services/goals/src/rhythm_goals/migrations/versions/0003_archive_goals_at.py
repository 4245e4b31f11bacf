"""employees.archive_goals_at: deactivations dated ahead archive goals when they take effect

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import rhythm_shared.kit.db

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("employees", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("archive_goals_at", rhythm_shared.kit.db.UtcDateTime(), nullable=True)
        )
        batch_op.create_index(
            "ix_employees_archive_goals_at",
            ["archive_goals_at"],
            unique=False,
            postgresql_where=sa.text("archive_goals_at IS NOT NULL"),
            sqlite_where=sa.text("archive_goals_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("employees", schema=None) as batch_op:
        batch_op.drop_index("ix_employees_archive_goals_at")
        batch_op.drop_column("archive_goals_at")
