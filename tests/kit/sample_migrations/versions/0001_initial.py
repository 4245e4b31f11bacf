"""The sample service's tables (created from its metadata: a test fixture, not a real service).

Revision ID: 0001
"""

from alembic import op

from tests.kit.sample import metadata

revision = "0001"
down_revision = None


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
