"""the people directory keeps erasures for good and per-person data keys (crypto-shredding)

Revision ID: 0004
Revises: 0003
"""

from rhythm_shared.kit.schema import add_directory_erasure, drop_directory_erasure

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    add_directory_erasure()


def downgrade() -> None:
    drop_directory_erasure()
