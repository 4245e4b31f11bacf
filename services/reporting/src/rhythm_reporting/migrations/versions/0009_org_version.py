"""read_model_generations.org_version: a number that every change of a generation's org
dimension (org units, employees and so headcounts) raises, in the same transaction

A dashboard request reads it with the active generation; the unit tree and headcounts it has
in memory from an earlier request serve it while the number is the same, so a request no
longer loads the whole org.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
#: An older image would change the org without raising the number, and this image's replicas
#: would go on answering from the org they had in memory: it must not run on this schema.
rollback_safe = False


def upgrade() -> None:
    # A plain ADD COLUMN (a constant default): SQLite's table copy would break the v_* views.
    op.add_column(
        "read_model_generations",
        sa.Column(
            "org_version",
            sa.Integer(),
            nullable=False,
            server_default="0",
            comment="Raised with every change of the generation's org units or employees.",
        ),
    )


def downgrade() -> None:
    op.drop_column("read_model_generations", "org_version")
