"""What an erasure changes in stored payloads: the person's name blanked, their obligations."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def without(value: Any, name: str) -> Any:
    """``value`` with ``name`` blanked wherever it is written out."""
    if isinstance(value, str):
        # Also where a line of text quotes the name ("Ana de Vries's goal is at risk").
        return value.replace(name, "")
    if isinstance(value, dict):
        return {k: without(v, name) for k, v in value.items()}
    if isinstance(value, list):
        return [without(v, name) for v in value]
    return value


def written_forms(name: str) -> set[str]:
    """JSON may store the name as written or with its non-ASCII letters escaped."""
    return {name, json.dumps(name)[1:-1]}


def obligations_named(payloads: Iterable[Any]) -> set[str]:
    """The obligations reminders were about, read from their payloads' facts."""
    found = set()
    for payload in payloads:
        facts = payload.get("facts") if isinstance(payload, dict) else None
        value = facts.get("obligation_id") if isinstance(facts, dict) else None
        if isinstance(value, str):
            found.add(value)
    return found
