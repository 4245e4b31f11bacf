"""per-person data keys (crypto-shredding) and erasures with each service's part

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import rhythm_shared.kit.db

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "person_keys",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("wrapped_key", sa.String(length=512), nullable=True),
        sa.Column("issued_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id"),
        comment="Each person's data key, wrapped (crypto-shredding); destroyed by their erasure.",
    )
    op.create_table(
        "erasures",
        sa.Column("erasure_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("requested_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("erasure_id"),
        comment="Erasures (GDPR Art. 17); each row is the erased person's tombstone.",
    )
    op.create_index("ux_erasures_person", "erasures", ["tenant_id", "employee_id"], unique=True)
    op.create_table(
        "erasure_parts",
        sa.Column("erasure_id", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("erased_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("erasure_id", "service"),
        comment="Which service reported its part of an erasure done (PersonDataErased).",
    )


def downgrade() -> None:
    op.drop_table("erasure_parts")
    op.drop_index("ux_erasures_person", table_name="erasures")
    op.drop_table("erasures")
    op.drop_table("person_keys")
