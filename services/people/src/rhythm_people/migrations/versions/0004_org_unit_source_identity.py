"""an identity provider's externalId of an org unit (SCIM Group), and its SCIM deletion

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import rhythm_shared.kit.db

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("org_units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=256), nullable=True))
        batch_op.add_column(
            sa.Column(
                "scim_deleted_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index("ix_org_units_name", ["tenant_id", "name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("org_units", schema=None) as batch_op:
        batch_op.drop_index("ix_org_units_name")
        batch_op.drop_column("scim_deleted_at")
        batch_op.drop_column("external_id")
