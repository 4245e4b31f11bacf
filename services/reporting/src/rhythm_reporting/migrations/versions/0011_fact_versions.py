"""fact_versions: a number per family and month of facts (per tenant for goals), raised by
every change of them in the same transaction; it replaces obligation_months

Dashboards keep each month's small-group decisions in memory, as they keep the manager table,
while the org version and the month's number stay: a request no longer asks the facts again
which groups are small. Obligations' numbers carry over as the family 'obligations'.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
#: An older image would change facts without raising the numbers, and this image's replicas
#: would go on answering from the decisions they had in memory: it must not run on this schema.
rollback_safe = False


def upgrade() -> None:
    op.create_table(
        "fact_versions",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column(
            "family",
            sa.String(length=32),
            nullable=False,
            comment="A family of small-group decisions (domain/projection.py: decision_slots).",
        ),
        sa.Column(
            "slot",
            sa.String(length=7),
            nullable=False,
            comment="YYYY-MM (UTC) of the facts' time; '*' for goals (every period).",
        ),
        sa.Column(
            "version",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Raised by every batch that changes a fact of the family in the slot.",
        ),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "family", "slot", name=op.f("pk_fact_versions")
        ),
        comment=(
            "A number per family and month of facts (per tenant for goals), raised in the same "
            "transaction as every change of them: small-group decisions and manager tables kept "
            "in memory serve while their numbers (and the org version) stay."
        ),
    )
    op.execute(
        "INSERT INTO fact_versions (generation, tenant_id, family, slot, version) "
        "SELECT generation, tenant_id, 'obligations', month, version FROM obligation_months"
    )
    op.drop_table("obligation_months")


def downgrade() -> None:
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
    op.execute(
        "INSERT INTO obligation_months (generation, tenant_id, month, version) "
        "SELECT generation, tenant_id, slot, version FROM fact_versions "
        "WHERE family = 'obligations'"
    )
    op.drop_table("fact_versions")
