"""the kit's people directory replaces the service's own people slice; the audit trail

The old ``employees`` and ``org_units`` rows are copied into the directory: their version is the
time this service last wrote them with an empty event id, so any real people event of the same
instant or later wins. ``plan_at`` moves into ``planning``, the one column the directory does not
hold. Then the old tables go.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from rhythm_shared.kit.db import UtcDateTime
from rhythm_shared.kit.schema import (
    create_audit_log,
    create_people_directory,
    drop_audit_log,
    drop_people_directory,
)

revision = "0003"
down_revision = "0002"
#: Drops the service's own people tables, which the image before it reads.
rollback_safe = False


def _create_planning() -> None:
    op.create_table(
        "planning",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("plan_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", name=op.f("pk_planning")),
        comment="When each employee's obligations are next planned ahead (people: directory).",
    )
    op.create_index(
        "ix_planning_plan_at",
        "planning",
        ["plan_at"],
        unique=False,
        postgresql_where=sa.text("plan_at IS NOT NULL"),
        sqlite_where=sa.text("plan_at IS NOT NULL"),
    )


def upgrade() -> None:
    create_people_directory()
    create_audit_log()
    _create_planning()
    op.execute(
        """
        INSERT INTO directory_employees (
            tenant_id, employee_id, manager_id, org_unit_id, time_zone, locale, hired_on,
            active, deactivated_at, profile_at, profile_event_id,
            deactivation_at, deactivation_event_id)
        SELECT tenant_id, employee_id, manager_id, org_unit_id, time_zone, 'en', hired_on,
            active, deactivated_at, updated_at, '',
            CASE WHEN deactivated_at IS NULL THEN NULL ELSE updated_at END,
            CASE WHEN deactivated_at IS NULL THEN NULL ELSE '' END
        FROM employees
        """
    )
    op.execute(
        """
        INSERT INTO directory_org_units (
            tenant_id, org_unit_id, name, parent_id, head_id, version_at, version_event_id)
        SELECT tenant_id, org_unit_id, org_unit_id, parent_id, NULL, updated_at, ''
        FROM org_units
        """
    )
    op.execute(
        "INSERT INTO planning (tenant_id, employee_id, plan_at) "
        "SELECT tenant_id, employee_id, plan_at FROM employees"
    )
    op.drop_index("ix_employees_manager", table_name="employees")
    op.drop_index("ix_employees_plan_at", table_name="employees")
    op.drop_table("employees")
    op.drop_table("org_units")


def downgrade() -> None:
    op.create_table(
        "employees",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("manager_id", sa.String(length=128), nullable=True),
        sa.Column("org_unit_id", sa.String(length=128), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("hired_on", sa.Date(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("deactivated_at", UtcDateTime(), nullable=True),
        sa.Column("plan_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", name=op.f("pk_employees")),
        comment="Employees as rhythm.people.v1 describes them: manager chain, zone, activity.",
    )
    op.create_index("ix_employees_manager", "employees", ["tenant_id", "manager_id"])
    op.create_index(
        "ix_employees_plan_at",
        "employees",
        ["plan_at"],
        postgresql_where=sa.text("plan_at IS NOT NULL"),
        sqlite_where=sa.text("plan_at IS NOT NULL"),
    )
    op.create_table(
        "org_units",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("org_unit_id", sa.String(length=128), nullable=False),
        sa.Column("parent_id", sa.String(length=128), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "org_unit_id", name=op.f("pk_org_units")),
        comment="Org unit tree from rhythm.people.v1: nearest unit policy wins.",
    )
    # Only people an upsert described fit the old table (it required a unit and a hire date).
    op.execute(
        """
        INSERT INTO employees (
            tenant_id, employee_id, manager_id, org_unit_id, time_zone, hired_on, active,
            deactivated_at, plan_at, updated_at)
        SELECT d.tenant_id, d.employee_id, d.manager_id, d.org_unit_id, d.time_zone, d.hired_on,
            d.active, d.deactivated_at, p.plan_at, d.profile_at
        FROM directory_employees d
        LEFT JOIN planning p
            ON p.tenant_id = d.tenant_id AND p.employee_id = d.employee_id
        WHERE d.profile_at IS NOT NULL AND d.org_unit_id IS NOT NULL AND d.hired_on IS NOT NULL
        """
    )
    op.execute(
        "INSERT INTO org_units (tenant_id, org_unit_id, parent_id, updated_at) "
        "SELECT tenant_id, org_unit_id, parent_id, version_at FROM directory_org_units"
    )
    op.drop_index("ix_planning_plan_at", table_name="planning")
    op.drop_table("planning")
    drop_audit_log()
    drop_people_directory()
