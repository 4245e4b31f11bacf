"""the small-group rule's contributors kept at ingest (unit_contributors), filled from the facts

One row per (unit subtree, family, month, person) with the person's facts there, for each unit
on the fact's chain and the tenant ('*'), as ingest keeps them from now on.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
#: An older image would go on writing facts without their contributors, and the rule would then
#: count too few people where this image reads them: it must not run on this schema.
rollback_safe = False

#: (family, table, person, time, unit, required column) as adapters/queries.py reads the facts.
_SOURCES = (
    ("obligations", "obligation_facts", "employee_id", "due_at", "org_unit_id", None),
    ("checkins", "checkin_facts", "employee_id", "held_at", "org_unit_id", None),
    ("pulse", "checkin_facts", "employee_id", "held_at", "org_unit_id", "pulse"),
    ("pulse", "reflection_facts", "employee_id", "submitted_at", "org_unit_id", "pulse"),
    ("feedback_given", "feedback_facts", "giver_id", "given_at", "giver_unit_id", None),
    ("feedback_received", "feedback_facts", "receiver_id", "given_at", "receiver_unit_id", None),
)


def _month(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
    return f"substr({column}, 1, 7)"  # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS'


def upgrade() -> None:
    op.create_table(
        "unit_contributors",
        sa.Column("generation", sa.Integer(), nullable=False, comment="Read-model generation."),
        sa.Column(
            "tenant_id", sa.String(length=128), nullable=False, comment="The tenant (organisation)."
        ),
        sa.Column(
            "org_unit_id",
            sa.String(length=128),
            nullable=False,
            comment="The unit; '*' is the whole tenant.",
        ),
        sa.Column(
            "family",
            sa.String(length=32),
            nullable=False,
            comment="obligations, checkins, pulse, ...",
        ),
        sa.Column("month", sa.String(length=7), nullable=False, comment="YYYY-MM (UTC)."),
        sa.Column(
            "person_id",
            sa.String(length=128),
            nullable=False,
            comment="A contributor (pseudonymous once erased).",
        ),
        sa.Column(
            "facts",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="The person's facts of the family in the month in the subtree (> 0).",
        ),
        sa.PrimaryKeyConstraint(
            "generation",
            "tenant_id",
            "org_unit_id",
            "family",
            "month",
            "person_id",
            name=op.f("pk_unit_contributors"),
        ),
        comment=(
            "The distinct people whose facts make each unit subtree's monthly figures, where "
            "they were at the time (the small-group rule's contributors); a row goes when its "
            "count is 0."
        ),
    )
    facts = " UNION ALL ".join(
        f"SELECT generation, tenant_id, {unit} AS unit, '{family}' AS family, "
        f"{_month(at)} AS month, {person} AS person FROM {table} WHERE {at} IS NOT NULL"
        + (f" AND {required} IS NOT NULL" if required else "")
        for family, table, person, at, unit, required in _SOURCES
    )
    # Each fact's unit and the units above it, as ingest walks the tree (UNION stops cycles).
    op.execute(
        "INSERT INTO unit_contributors"
        " (generation, tenant_id, org_unit_id, family, month, person_id, facts)"
        f" WITH RECURSIVE facts AS ({facts}),"
        " chain (generation, tenant_id, unit, ancestor) AS ("
        "  SELECT DISTINCT generation, tenant_id, unit, unit FROM facts WHERE unit IS NOT NULL"
        "  UNION"
        "  SELECT c.generation, c.tenant_id, c.unit, o.parent_id FROM chain c"
        "  JOIN org_units o ON o.generation = c.generation AND o.tenant_id = c.tenant_id"
        "   AND o.org_unit_id = c.ancestor WHERE o.parent_id IS NOT NULL)"
        " SELECT f.generation, f.tenant_id, c.ancestor, f.family, f.month, f.person, COUNT(*)"
        " FROM facts f JOIN chain c ON c.generation = f.generation"
        "  AND c.tenant_id = f.tenant_id AND c.unit = f.unit"
        " GROUP BY f.generation, f.tenant_id, c.ancestor, f.family, f.month, f.person"
        " UNION ALL"
        " SELECT generation, tenant_id, '*', family, month, person, COUNT(*) FROM facts"
        " GROUP BY generation, tenant_id, family, month, person"
    )


def downgrade() -> None:
    op.drop_table("unit_contributors")
