"""the people directory keeps erasures for good and per-person data keys (crypto-shredding)

Revision ID: 0005
Revises: 0004
"""

from rhythm_shared.kit.schema import add_directory_erasure, drop_directory_erasure

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    add_directory_erasure()


def downgrade() -> None:
    drop_directory_erasure()
