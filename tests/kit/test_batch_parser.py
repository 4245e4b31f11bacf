"""The kit's batch parser: FastStream's own parser reads the first record of a batch only, and
the handler still gets every record, as it arrived, with every body."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from aiokafka.structs import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser

from rhythm_shared.contracts.envelope import to_record
from rhythm_shared.contracts.v1 import EmployeeUpserted
from rhythm_shared.kit.app import _batch_parser


def _records(n: int, *, broken_at: int | None = None) -> tuple[ConsumerRecord[bytes, bytes], ...]:
    out = []
    for i in range(n):
        event = EmployeeUpserted(
            tenant_id="t-1", occurred_at=datetime.now(UTC), employee_id=f"e-{i}",
            email=f"e-{i}@t.example.com", display_name=f"E {i}", org_unit_id="ou-1",
            time_zone="Etc/UTC", locale="en", hired_on=date(2020, 1, 6),
        )  # fmt: skip
        record = to_record(event, source="test")
        headers: list[tuple[str, Any]] = list(record.headers)
        if i == broken_at:
            headers += [("x-broken", b"\xff\xfe"), ("x-null", None)]
        out.append(
            ConsumerRecord(
                topic="people", partition=0, offset=100 + i, timestamp=1_000 + i,
                timestamp_type=0, key=record.key, value=record.value, checksum=None,
                serialized_key_size=len(record.key or b""),
                serialized_value_size=len(record.value), headers=tuple(headers),
            )
        )  # fmt: skip
    return tuple(out)


class _Counting(AioKafkaBatchParser):
    """FastStream's batch parser, counting the records it is given."""

    seen = 0

    async def parse_batch(self, message: Any) -> Any:
        type(self).seen += len(message)
        return await super().parse_batch(message)


async def test_the_framework_parses_the_first_record_and_the_handler_gets_them_all() -> None:
    records = _records(2_000)
    framework = _Counting(KafkaMessage, None)
    _Counting.seen = 0
    parsed = await _batch_parser(records, framework.parse_batch)
    assert _Counting.seen == 1
    assert parsed.raw_message is records
    assert parsed.body == [r.value for r in records]
    assert parsed.headers["ce_id"] == dict(records[0].headers)["ce_id"].decode()
    assert parsed.message_id == "100-2099-1000"


async def test_broken_headers_reach_the_consumer_as_they_arrived() -> None:
    framework = AioKafkaBatchParser(KafkaMessage, None)
    for broken_at in (0, 1):  # the first record (the framework reads it) or any other
        records = _records(3, broken_at=broken_at)
        parsed = await _batch_parser(records, framework.parse_batch)
        assert parsed.raw_message is records
        assert ("x-broken", b"\xff\xfe") in parsed.raw_message[broken_at].headers
        assert len(parsed.body) == 3
