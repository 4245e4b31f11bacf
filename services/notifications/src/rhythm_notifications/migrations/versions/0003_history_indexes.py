"""indexes on the time columns the history pruning deletes by

Built concurrently on PostgreSQL: deliveries and digest items may be large by the time it runs.

Revision ID: 0003
Revises: 0002
"""

from rhythm_shared.kit.migrations import create_index_concurrently, drop_index_concurrently

revision = "0003"
down_revision = "0002"

INDEXES = [
    ("ix_daily_caps_created_at", "daily_caps", "created_at"),
    ("ix_deliveries_updated_at", "deliveries", "updated_at"),
    ("ix_digest_items_created_at", "digest_items", "created_at"),
    ("ix_webhook_deliveries_updated_at", "webhook_deliveries", "updated_at"),
]


def upgrade() -> None:
    for name, table, column in INDEXES:
        create_index_concurrently(name, table, [column])


def downgrade() -> None:
    for name, table, _ in INDEXES:
        drop_index_concurrently(name, table)
