"""closed obligations (their reminders expire) and a recovery count per delivery

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import rhythm_shared.kit.db

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "closed_obligations",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("obligation_id", sa.String(length=128), nullable=False),
        sa.Column("closed_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "obligation_id", name=op.f("pk_closed_obligations")),
        comment="Obligations a check-in has closed: their reminders are no longer sent.",
    )
    op.create_index(
        op.f("ix_closed_obligations_closed_at"), "closed_obligations", ["closed_at"], unique=False
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("recoveries", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("recoveries")
    op.drop_index(op.f("ix_closed_obligations_closed_at"), table_name="closed_obligations")
    op.drop_table("closed_obligations")
