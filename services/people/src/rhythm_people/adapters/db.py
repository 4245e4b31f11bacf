"""The people service's tables (every row scoped by tenant); the statements on them are in
:mod:`rhythm_people.adapters.repository`."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Index, String, Table

from rhythm_shared.kit.db import UtcDateTime, define_kit_tables, new_metadata

metadata = new_metadata()
kit = define_kit_tables(metadata)

org_units = Table(
    "org_units",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("org_unit_id", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("parent_id", String(128), nullable=True),
    Column("head_id", String(128), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    # An identity provider's id of the unit (SCIM Group externalId) and its SCIM DELETE: the
    # unit stays (no event removes a unit), it is only no longer served as a Group.
    Column("external_id", String(256), nullable=True),
    Column("scim_deleted_at", UtcDateTime, nullable=True),
    comment="Org units as the HR platform last stated them.",
)
Index("ix_org_units_parent", org_units.c.tenant_id, org_units.c.parent_id)
Index("ix_org_units_name", org_units.c.tenant_id, org_units.c.name)

employees = Table(
    "employees",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("employee_id", String(128), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("manager_id", String(128), nullable=True),
    Column("org_unit_id", String(128), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("locale", String(35), nullable=False),
    Column("hired_on", Date, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("deactivated_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    # How an identity provider names the person (SCIM userName and externalId, RFC 7643 §3.1,
    # §4.1) and the department/organization it stated; null for people only HR feeds sent.
    Column("user_name", String(320), nullable=True),
    Column("external_id", String(256), nullable=True),
    Column("department", String(200), nullable=True),
    Column("organization", String(200), nullable=True),
    # The newest version of the person the source stated: an older write is dropped.
    Column("source_updated_at", UtcDateTime, nullable=True),
    # A SCIM DELETE: deactivated, and gone from /scim/v2/Users; the row (history) stays.
    Column("scim_deleted_at", UtcDateTime, nullable=True),
    comment="Employees as the HR platform last stated them, plus their deactivation.",
)
Index("ix_employees_manager", employees.c.tenant_id, employees.c.manager_id)
Index("ix_employees_org_unit", employees.c.tenant_id, employees.c.org_unit_id)
Index("ix_employees_user_name", employees.c.tenant_id, employees.c.user_name)
Index("ix_employees_external_id", employees.c.tenant_id, employees.c.external_id)
Index("ix_employees_email", employees.c.tenant_id, employees.c.email)

person_keys = Table(
    "person_keys",
    metadata,
    Column("tenant_id", String(128), primary_key=True),
    Column("employee_id", String(128), primary_key=True),
    Column("key_id", String(128), nullable=False),
    # Wrapped by the key-encryption key; NULL once destroyed (the person's erasure).
    Column("wrapped_key", String(512), nullable=True),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("destroyed_at", UtcDateTime, nullable=True),
    comment="Each person's data key, wrapped (crypto-shredding); destroyed by their erasure.",
)

erasures = Table(
    "erasures",
    metadata,
    Column("erasure_id", String(64), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    # The tombstone: the erased person's id, and nothing else of them.
    Column("employee_id", String(128), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    comment="Erasures (GDPR Art. 17); each row is the erased person's tombstone.",
)
Index("ux_erasures_person", erasures.c.tenant_id, erasures.c.employee_id, unique=True)

erasure_parts = Table(
    "erasure_parts",
    metadata,
    Column("erasure_id", String(64), primary_key=True),
    Column("service", String(32), primary_key=True),
    Column("erased_at", UtcDateTime, nullable=False),
    comment="Which service reported its part of an erasure done (PersonDataErased).",
)
