"""Who may do what in people: one table, from the caller's roles.

The people service is the door HR platforms and identity providers come in through, so every
operation is tenant-wide: it names no person the caller stands in a relationship to (the ids in
a body are the HR platform's data, never the caller's reach). Writes and reads alike are for the
integration and for hr_admin; everyone else reads people through the services that need them.
"""

from __future__ import annotations

from collections.abc import Mapping

from rhythm_shared.kit.access import Policy, Relationship

_MANAGERS_OF_PEOPLE_DATA = frozenset({Relationship.INTEGRATION, Relationship.HR_ADMIN})
#: SCIM is the identity provider's door: its tokens are the integration role's (RFC 7644 §2).
_IDENTITY_PROVIDERS = frozenset({Relationship.INTEGRATION})

POLICY: Policy = {
    "upsert_employee": _MANAGERS_OF_PEOPLE_DATA,
    "sync_people": _MANAGERS_OF_PEOPLE_DATA,
    "deactivate_employee": _MANAGERS_OF_PEOPLE_DATA,
    "upsert_org_unit": _MANAGERS_OF_PEOPLE_DATA,
    "read_employee": _MANAGERS_OF_PEOPLE_DATA,
    "list_employees": _MANAGERS_OF_PEOPLE_DATA,
    "read_org_unit": _MANAGERS_OF_PEOPLE_DATA,
    "list_org_units": _MANAGERS_OF_PEOPLE_DATA,
    "provision_over_scim": _IDENTITY_PROVIDERS,
    # Erasure (GDPR Art. 17): HR asks for it, or the HR platform on HR's behalf.
    "erase_employee": _MANAGERS_OF_PEOPLE_DATA,
    "read_erasure": _MANAGERS_OF_PEOPLE_DATA,
}

#: Every HTTP route -> the operation it performs; the matrix test fails for a route missing here.
ROUTES: Mapping[tuple[str, str], str] = {
    ("PUT", "/v1/people/employees/{employee_id}"): "upsert_employee",
    ("POST", "/v1/people/employees:batch"): "sync_people",
    ("POST", "/v1/people/employees/{employee_id}:deactivate"): "deactivate_employee",
    ("PUT", "/v1/people/org-units/{org_unit_id}"): "upsert_org_unit",
    ("GET", "/v1/people/employees/{employee_id}"): "read_employee",
    ("GET", "/v1/people/employees"): "list_employees",
    ("GET", "/v1/people/org-units/{org_unit_id}"): "read_org_unit",
    ("GET", "/v1/people/org-units"): "list_org_units",
    ("POST", "/v1/people/employees/{employee_id}:erase"): "erase_employee",
    ("GET", "/v1/people/erasures/{erasure_id}"): "read_erasure",
    # SCIM 2.0 (entrypoints/scim.py): every route under /scim/v2 is one operation.
    ("GET", "/scim/v2/{path}"): "provision_over_scim",
    ("POST", "/scim/v2/{path}"): "provision_over_scim",
    ("PUT", "/scim/v2/{path}"): "provision_over_scim",
    ("PATCH", "/scim/v2/{path}"): "provision_over_scim",
    ("DELETE", "/scim/v2/{path}"): "provision_over_scim",
}

#: Routes served outside the OpenAPI document (SCIM speaks application/scim+json and describes
#: itself at /scim/v2/Schemas); the access matrix checks them against this list instead.
UNDOCUMENTED_ROUTES = frozenset(route for route in ROUTES if route[1].startswith("/scim/v2/"))
