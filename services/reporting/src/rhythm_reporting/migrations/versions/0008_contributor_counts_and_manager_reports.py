"""the small-group rule's cell sizes kept at ingest (unit_contributor_counts), and the managers'
reports per month (manager_reports, manager_report_counts), filled from what is stored

A dashboard asks many cells whether they are small groups: their sizes are one row each, kept
with the contributors; the manager table's reports per manager and month no longer count the
month's obligations.

Revision ID: 0008
Revises: 0007
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
#: An older image would go on writing facts without these rows, and the rule would then read
#: wrong sizes where this image reads them: it must not run on this schema.
rollback_safe = False


def _month(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
    return f"substr({column}, 1, 7)"  # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS'


def _key(name: str, comment: str, length: int = 128) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=length), nullable=False, comment=comment)


def _scope() -> list[sa.Column[Any]]:
    return [
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        _key("tenant_id", "The tenant (organisation)."),
    ]


def _count(name: str, comment: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False, comment=comment)


def upgrade() -> None:
    op.create_table(
        "unit_contributor_counts",
        *_scope(),
        _key("org_unit_id", "The unit; '*' is the whole tenant."),
        _key("family", "obligations, checkins, pulse, ...", 32),
        _key("month", "YYYY-MM (UTC).", 7),
        _count("people", "Rows of unit_contributors with this unit, family and month (> 0)."),
        sa.PrimaryKeyConstraint(
            "generation",
            "tenant_id",
            "org_unit_id",
            "family",
            "month",
            name=op.f("pk_unit_contributor_counts"),
        ),
        comment=(
            "How many distinct contributors each unit subtree's monthly figure has (the "
            "small-group rule's cell sizes), kept with unit_contributors; a row goes when its "
            "count is 0."
        ),
    )
    op.create_table(
        "manager_reports",
        *_scope(),
        _key("month", "YYYY-MM (UTC) of the due time.", 7),
        _key("manager_id", "The manager the obligations name ('': none)."),
        _key("person_id", "A report (pseudonymous once erased)."),
        _count("facts", "The person's obligations due in the month that name the manager (> 0)."),
        sa.PrimaryKeyConstraint(
            "generation",
            "tenant_id",
            "month",
            "manager_id",
            "person_id",
            name=op.f("pk_manager_reports"),
        ),
        comment=(
            "The distinct people whose obligations due in a month name each manager (the "
            "manager table's small-group rule); a row goes when its count is 0."
        ),
    )
    op.create_table(
        "manager_report_counts",
        *_scope(),
        _key("month", "YYYY-MM (UTC) of the due time.", 7),
        _key("manager_id", "The manager the obligations name ('': none)."),
        _count("people", "Rows of manager_reports with this month and manager (> 0)."),
        sa.PrimaryKeyConstraint(
            "generation", "tenant_id", "month", "manager_id", name=op.f("pk_manager_report_counts")
        ),
        comment=(
            "How many distinct people each manager's obligations of a month come from, kept "
            "with manager_reports; a row goes when its count is 0."
        ),
    )
    op.execute(
        "INSERT INTO unit_contributor_counts"
        " (generation, tenant_id, org_unit_id, family, month, people)"
        " SELECT generation, tenant_id, org_unit_id, family, month, COUNT(*)"
        " FROM unit_contributors GROUP BY generation, tenant_id, org_unit_id, family, month"
    )
    # As ingest counts them (domain/projection.py): obligations with a due time and a person.
    op.execute(
        "INSERT INTO manager_reports (generation, tenant_id, month, manager_id, person_id, facts)"
        f" SELECT generation, tenant_id, {_month('due_at')}, COALESCE(manager_id, ''),"
        " employee_id, COUNT(*) FROM obligation_facts"
        " WHERE due_at IS NOT NULL AND employee_id IS NOT NULL"
        f" GROUP BY generation, tenant_id, {_month('due_at')}, COALESCE(manager_id, ''),"
        " employee_id"
    )
    op.execute(
        "INSERT INTO manager_report_counts (generation, tenant_id, month, manager_id, people)"
        " SELECT generation, tenant_id, month, manager_id, COUNT(*) FROM manager_reports"
        " GROUP BY generation, tenant_id, month, manager_id"
    )


def downgrade() -> None:
    op.drop_table("manager_report_counts")
    op.drop_table("manager_reports")
    op.drop_table("unit_contributor_counts")
