"""per-tenant app base URL (links in messages) and chat channels (Slack, Teams)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import rhythm_shared.kit.db

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("app_base_url", sa.String(length=2048), nullable=True),
        sa.Column("updated_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_settings")),
        comment="Per-tenant overrides: the base URL of the app the tenant's people use.",
    )
    op.create_table(
        "chat_channels",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("updated_at", rhythm_shared.kit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kind", name=op.f("pk_chat_channels")),
        comment="Per-tenant chat incoming webhooks (Slack, Teams) and the categories posted there.",
    )


def downgrade() -> None:
    op.drop_table("chat_channels")
    op.drop_table("tenant_settings")
