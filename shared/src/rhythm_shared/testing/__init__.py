"""Test support shared by every service's tests: a real broker, real databases, helpers."""

from rhythm_shared.testing.kafka import publish_events, publish_raw, read_records, wait_for

__all__ = ["publish_events", "publish_raw", "read_records", "wait_for"]
