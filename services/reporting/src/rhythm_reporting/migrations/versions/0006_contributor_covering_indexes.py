"""the small-group rule reads the manager from the obligations' unit index, and goals by unit

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
#: Indexes only: the previous image runs on them as it did on the old ones.
rollback_safe = True


def upgrade() -> None:
    # Manager rows take each month's (person, manager, unit) from one index range per unit.
    op.drop_index("ix_obligation_facts_unit_due", table_name="obligation_facts")
    op.create_index(
        "ix_obligation_facts_unit_due",
        "obligation_facts",
        ["generation", "tenant_id", "org_unit_id", "due_at", "employee_id", "manager_id"],
        unique=False,
    )
    op.create_index(
        "ix_goal_facts_unit_period",
        "goal_facts",
        ["generation", "tenant_id", "org_unit_id", "period_start", "period_end", "owner_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_goal_facts_unit_period", table_name="goal_facts")
    op.drop_index("ix_obligation_facts_unit_due", table_name="obligation_facts")
    op.create_index(
        "ix_obligation_facts_unit_due",
        "obligation_facts",
        ["generation", "tenant_id", "org_unit_id", "due_at", "employee_id"],
        unique=False,
    )
