"""the people directory keeps erasures for good and per-person data keys (crypto-shredding)

Revision ID: 0006
Revises: 0005
"""

from rhythm_shared.kit.schema import add_directory_erasure, drop_directory_erasure

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    add_directory_erasure()


def downgrade() -> None:
    drop_directory_erasure()
