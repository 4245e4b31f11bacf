"""the source's identity and version of each employee (SCIM userName/externalId, HR versions)

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
        batch_op.add_column(sa.Column("user_name", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("department", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("organization", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column(
                "source_updated_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "scim_deleted_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index("ix_employees_user_name", ["tenant_id", "user_name"], unique=False)
        batch_op.create_index(
            "ix_employees_external_id", ["tenant_id", "external_id"], unique=False
        )
        batch_op.create_index("ix_employees_email", ["tenant_id", "email"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("employees", schema=None) as batch_op:
        batch_op.drop_index("ix_employees_email")
        batch_op.drop_index("ix_employees_external_id")
        batch_op.drop_index("ix_employees_user_name")
        for name in (
            "scim_deleted_at",
            "source_updated_at",
            "organization",
            "department",
            "external_id",
            "user_name",
        ):
            batch_op.drop_column(name)
