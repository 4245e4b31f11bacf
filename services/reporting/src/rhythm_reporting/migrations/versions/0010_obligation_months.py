"""obligation_months: a number per month of obligations that every change of the month's
obligations (and an erasure) raises, in the same transaction

The manager table's small-group rule reads every manager of the tenant for each month of a
period; a dashboard keeps that table in memory while the org version and its months' numbers
stay, so a request no longer reads and checks every manager. A month with no row is at 0.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
#: An older image would change obligations without raising the numbers, and this image's
#: replicas would go on answering from the manager table they had in memory: it must not run
#: on this schema.
rollback_safe = False


def upgrade() -> None:
    op.create_table(
        "obligation_months",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column(
            "month", sa.String(length=7), nullable=False, comment="YYYY-MM (UTC) of the due time."
        ),
        sa.Column(
            "version",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Raised by every batch that changes an obligation due in the month.",
        ),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "month", name=op.f("pk_obligation_months")
        ),
        comment=(
            "A number per month of obligations, raised in the same transaction as every change "
            "of them (and by an erasure): the manager table kept in memory serves while its "
            "months' numbers stay."
        ),
    )


def downgrade() -> None:
    op.drop_table("obligation_months")
