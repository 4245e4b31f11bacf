"""indexes on the time columns the history pruning deletes by

Revision ID: 0003
Revises: 0002
"""

from rhythm_shared.kit.migrations import create_indexes, drop_indexes

revision = "0003"
down_revision = "0002"

INDEXES = [
    ("ix_daily_caps_created_at", "daily_caps", "created_at"),
    ("ix_deliveries_updated_at", "deliveries", "updated_at"),
    ("ix_digest_items_created_at", "digest_items", "created_at"),
    ("ix_webhook_deliveries_updated_at", "webhook_deliveries", "updated_at"),
]


def upgrade() -> None:
    create_indexes(INDEXES)


def downgrade() -> None:
    drop_indexes(INDEXES)
