"""Consumers: the people directory from ``rhythm.people.v1`` (group ``goals``).

The kit parses each record, deduplicates it through the inbox (a replayed ce_id has no second
effect), runs the handler in one transaction and commits the offset after it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rhythm_goals import use_cases
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.v1 import EmployeeDeactivated, EmployeeUpserted, OrgUnitUpserted
from rhythm_shared.kit.app import Runtime
from rhythm_shared.kit.consumer import ConsumerSpec

GROUP = "goals"


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    return [
        ConsumerSpec(
            group=GROUP,
            topics=[topics.PEOPLE],
            handlers={
                EmployeeUpserted: use_cases.apply_person,
                EmployeeDeactivated: use_cases.apply_person,
                OrgUnitUpserted: use_cases.apply_org_unit,
            },
        )
    ]
