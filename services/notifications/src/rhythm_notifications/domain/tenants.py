"""Per-tenant configuration: the app's base URL (links) and chat channels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from rhythm_shared.contracts.v1 import Channel


@dataclass(frozen=True)
class ChatChannel:
    kind: Channel  # slack | teams
    url: str
    categories: list[str]
    updated_at: datetime

    def view(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "url": masked(self.url),
            "categories": list(self.categories),
            "updated_at": self.updated_at,
        }


def masked(url: str) -> str:
    """A chat webhook URL is its own credential: shown as its host and last characters."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}/…{url[-4:]}"
