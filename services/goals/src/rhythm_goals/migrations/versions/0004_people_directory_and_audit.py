"""The kit's people directory replaces goals' own people slice; leavers; the audit trail

The old ``employees`` and ``org_units`` rows move into the directory: their HR time becomes the
version with an empty event id, so any real event of the same instant or later wins. A
deactivation dated ahead (``employees.archive_goals_at``) moves to ``leavers``.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import rhythm_shared.kit.db
from rhythm_shared.kit.schema import (
    create_audit_log,
    create_people_directory,
    drop_audit_log,
    drop_people_directory,
)

revision = "0004"
down_revision = "0003"
#: Drops the service's own people tables, which the image before it reads.
rollback_safe = False


def upgrade() -> None:
    create_people_directory()
    create_audit_log()
    op.create_table(
        "leavers",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("archive_goals_at", rhythm_shared.kit.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", name=op.f("pk_leavers")),
        comment="Deactivations dated ahead: when each leaver's open goals are to be archived.",
    )
    op.create_index("ix_leavers_archive_goals_at", "leavers", ["archive_goals_at"])

    op.execute(
        "INSERT INTO directory_employees (tenant_id, employee_id, email, display_name, "
        "manager_id, org_unit_id, time_zone, locale, hired_on, active, deactivated_at, "
        "profile_at, profile_event_id, deactivation_at, deactivation_event_id) "
        "SELECT tenant_id, employee_id, NULL, display_name, manager_id, org_unit_id, 'UTC', "
        "'en', NULL, active, deactivated_at, source_time, '', "
        "CASE WHEN deactivated_at IS NULL THEN NULL ELSE source_time END, "
        "CASE WHEN deactivated_at IS NULL THEN NULL ELSE '' END "
        "FROM employees"
    )
    op.execute(
        "INSERT INTO directory_org_units (tenant_id, org_unit_id, name, parent_id, head_id, "
        "version_at, version_event_id) "
        "SELECT tenant_id, org_unit_id, name, parent_id, head_id, source_time, '' FROM org_units"
    )
    op.execute(
        "INSERT INTO leavers (tenant_id, employee_id, archive_goals_at) "
        "SELECT tenant_id, employee_id, archive_goals_at FROM employees "
        "WHERE archive_goals_at IS NOT NULL"
    )
    op.drop_index("ix_employees_archive_goals_at", table_name="employees")
    op.drop_index("ix_employees_manager", table_name="employees")
    op.drop_index("ix_employees_org_unit", table_name="employees")
    op.drop_table("employees")
    op.drop_index("ix_org_units_head", table_name="org_units")
    op.drop_index("ix_org_units_parent", table_name="org_units")
    op.drop_table("org_units")


def downgrade() -> None:
    utc = rhythm_shared.kit.db.UtcDateTime
    op.create_table(
        "employees",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("manager_id", sa.String(length=128), nullable=True),
        sa.Column("org_unit_id", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("deactivated_at", utc(), nullable=True),
        sa.Column("archive_goals_at", utc(), nullable=True),
        sa.Column("source_time", utc(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", name=op.f("pk_employees")),
        comment="Who reports to whom and who belongs where, from rhythm.people.v1.",
    )
    op.create_index("ix_employees_manager", "employees", ["tenant_id", "manager_id"])
    op.create_index("ix_employees_org_unit", "employees", ["tenant_id", "org_unit_id"])
    op.create_index(
        "ix_employees_archive_goals_at",
        "employees",
        ["archive_goals_at"],
        postgresql_where=sa.text("archive_goals_at IS NOT NULL"),
        sqlite_where=sa.text("archive_goals_at IS NOT NULL"),
    )
    op.create_table(
        "org_units",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("org_unit_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.String(length=128), nullable=True),
        sa.Column("head_id", sa.String(length=128), nullable=True),
        sa.Column("source_time", utc(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "org_unit_id", name=op.f("pk_org_units")),
        comment="Org units and their heads, from rhythm.people.v1.",
    )
    op.create_index("ix_org_units_head", "org_units", ["tenant_id", "head_id"])
    op.create_index("ix_org_units_parent", "org_units", ["tenant_id", "parent_id"])
    # Only people an upsert described fit the old table (a name and a unit were required).
    op.execute(
        "INSERT INTO employees (tenant_id, employee_id, display_name, manager_id, org_unit_id, "
        "active, deactivated_at, archive_goals_at, source_time) "
        "SELECT d.tenant_id, d.employee_id, COALESCE(d.display_name, d.employee_id), "
        "d.manager_id, d.org_unit_id, d.active, d.deactivated_at, l.archive_goals_at, "
        "COALESCE(d.deactivation_at, d.profile_at) "
        "FROM directory_employees d LEFT JOIN leavers l "
        "ON l.tenant_id = d.tenant_id AND l.employee_id = d.employee_id "
        "WHERE d.profile_at IS NOT NULL AND d.org_unit_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO org_units (tenant_id, org_unit_id, name, parent_id, head_id, source_time) "
        "SELECT tenant_id, org_unit_id, name, parent_id, head_id, version_at "
        "FROM directory_org_units"
    )
    op.drop_index("ix_leavers_archive_goals_at", table_name="leavers")
    op.drop_table("leavers")
    drop_audit_log()
    drop_people_directory()
