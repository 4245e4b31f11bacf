"""the kit's people directory replaces the service's own people table

Rows of ``people`` are copied into ``directory_employees``: their version is the time the old
table last changed them (``updated_at``) with the event id "", so any real event of the same
instant or later wins; ``inactive_from`` becomes a deactivation of the same version. The old
table kept no org unit (the next upsert brings it) and no org units at all.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from rhythm_shared.kit.db import UtcDateTime
from rhythm_shared.kit.schema import create_people_directory, drop_people_directory

revision = "0005"
down_revision = "0004"
#: Drops the service's own people tables, which the image before it reads.
rollback_safe = False


def upgrade() -> None:
    create_people_directory()
    op.execute(
        """
        INSERT INTO directory_employees (
            tenant_id, employee_id, email, display_name, manager_id, org_unit_id, time_zone,
            locale, hired_on, active, deactivated_at, profile_at, profile_event_id,
            deactivation_at, deactivation_event_id
        )
        SELECT
            tenant_id, employee_id, email, display_name, manager_id, NULL, time_zone,
            locale, NULL, active, inactive_from, updated_at, '',
            CASE WHEN inactive_from IS NULL THEN NULL ELSE updated_at END,
            CASE WHEN inactive_from IS NULL THEN NULL ELSE '' END
        FROM people
        """
    )
    op.drop_index("ix_people_manager", table_name="people")
    op.drop_table("people")


def downgrade() -> None:
    op.create_table(
        "people",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("manager_id", sa.String(length=128), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("inactive_from", UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", name=op.f("pk_people")),
        comment="The slice of rhythm.people.v1 needed to write to someone.",
    )
    op.create_index("ix_people_manager", "people", ["tenant_id", "manager_id"], unique=False)
    op.execute(
        """
        INSERT INTO people (
            tenant_id, employee_id, email, display_name, manager_id, locale, time_zone,
            active, inactive_from, updated_at
        )
        SELECT
            tenant_id, employee_id, COALESCE(email, ''), COALESCE(display_name, ''), manager_id,
            locale, time_zone, active, deactivated_at, profile_at
        FROM directory_employees
        WHERE profile_at IS NOT NULL
        """
    )
    drop_people_directory()
