"""Consumers: the people directory from ``rhythm.people.v1`` and the people's data keys from
``rhythm.keys.v1`` (group ``goals``).

The kit parses each record, deduplicates it through the inbox (a replayed ce_id has no second
effect), runs the handler in one transaction and commits the offset after it. An
``EmployeeErased`` erases what the service holds of the person (:mod:`rhythm_goals.erasure`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rhythm_goals import erasure, use_cases
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.app import Runtime
from rhythm_shared.kit.consumer import ConsumerSpec

GROUP = "goals"


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    return [
        ConsumerSpec(
            group=GROUP,
            topics=[topics.PEOPLE, topics.KEYS],
            handlers={
                EmployeeUpserted: use_cases.apply_person,
                EmployeeUpsertedV2: use_cases.apply_person,
                EmployeeDeactivated: use_cases.apply_person,
                EmployeeErased: erasure.erase_person,
                OrgUnitUpserted: use_cases.apply_org_unit,
                PersonKeyIssued: use_cases.apply_person_key,
                PersonKeyDestroyed: use_cases.apply_person_key,
            },
        )
    ]
