"""Web Push subscriptions (RFC 8030): one per browser or device, owned by who subscribed it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PushSubscription:
    id: str
    tenant_id: str
    employee_id: str
    endpoint: str
    endpoint_hash: str
    p256dh: str
    auth: str
    created_at: datetime


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()
