"""the kit's people directory, for access decisions

Seeded from the active generation's dimensions so that unit heads keep their dashboards until
the next people events: with version "epoch, event id ''", any real event wins. The dimensions
hold no email, time zone or locale (the directory's defaults stand in until an upsert).

Revision ID: 0003
Revises: 0002
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from rhythm_shared.kit.db import UtcDateTime
from rhythm_shared.kit.schema import create_people_directory, drop_people_directory

revision = "0003"
down_revision = "0002"

_ACTIVE = "(SELECT generation FROM read_model_generations WHERE status = 'active')"


def _seed(sql: str) -> None:
    epoch = sa.bindparam("epoch", datetime(1970, 1, 1, tzinfo=UTC), type_=UtcDateTime())
    op.get_bind().execute(sa.text(sql).bindparams(epoch))


def upgrade() -> None:
    create_people_directory()
    _seed(
        f"""
        INSERT INTO directory_org_units
            (tenant_id, org_unit_id, name, parent_id, head_id, version_at, version_event_id)
        SELECT tenant_id, org_unit_id, COALESCE(name, org_unit_id), parent_id, head_id,
            :epoch, ''
        FROM org_units WHERE generation = {_ACTIVE}
        """
    )
    _seed(
        f"""
        INSERT INTO directory_employees (
            tenant_id, employee_id, display_name, manager_id, org_unit_id, time_zone, locale,
            active, deactivated_at, profile_at, profile_event_id
        )
        SELECT tenant_id, employee_id, display_name, manager_id, org_unit_id, 'UTC', 'en',
            active, deactivated_at, :epoch, ''
        FROM employees WHERE generation = {_ACTIVE} AND org_unit_id IS NOT NULL
        """
    )


def downgrade() -> None:
    drop_people_directory()
