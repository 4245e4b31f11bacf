"""indexes on the kit tables' time columns, for housekeeping

Revision ID: 0002
Revises: 0001
"""

from rhythm_shared.kit.schema import add_housekeeping_indexes, drop_housekeeping_indexes

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    add_housekeeping_indexes()


def downgrade() -> None:
    drop_housekeeping_indexes()
