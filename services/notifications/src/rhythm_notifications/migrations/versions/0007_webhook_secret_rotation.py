"""webhook endpoints keep their previous secret through a rotation's overlap

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import rhythm_shared.kit.db

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("previous_secret", sa.String(length=100), nullable=True))
        batch.add_column(
            sa.Column(
                "previous_secret_until",
                rhythm_shared.kit.db.UtcDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret")
