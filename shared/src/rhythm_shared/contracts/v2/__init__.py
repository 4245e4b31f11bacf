"""Event catalog v2: types whose v1 shape had to change incompatibly. Importing this package
registers them in ``EVENT_TYPES`` beside v1."""

from rhythm_shared.contracts.v2.people import EmployeeUpsertedV2, SealedPersonalData

__all__ = ["EmployeeUpsertedV2", "SealedPersonalData"]
