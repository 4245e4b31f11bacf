"""``rhythm dlq list|replay GROUP``: inspect and re-drive a consumer group's dead letters.

A consumer that cannot read a record, or whose handler keeps failing, parks it unchanged on
``rhythm.dlq.<group>`` with ``rhythm_dlq_*`` headers saying why and where it came from (see
``rhythm_shared.kit.kafka.send_to_dlq``). Once the cause is fixed, ``replay`` sends each letter
back to its original topic with its original key, value and headers. Consumers deduplicate by
``ce_id``, so a letter that is replayed twice still has one effect.

How far a replay got is a committed offset of the consumer group ``rhythm-dlq-replay.<group>``
on the dead-letter topic (both names take ``KAFKA_TOPIC_PREFIX``), so the next replay starts
after the letters already re-driven.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rhythm_shared.contracts.topics import dlq_topic
from rhythm_shared.kit.kafka import DLQ_REASON, client_security, make_producer

app = typer.Typer(no_args_is_help=True, help="Dead letters: inspect them and re-drive them.")

DLQ_HEADER_PREFIX = "rhythm_dlq_"
REPLAY_GROUP_PREFIX = "rhythm-dlq-replay."


@app.callback()
def _dlq() -> None:
    """Dead letters of a consumer group (rhythm.dlq.<group>): list them, replay them."""


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str:
        for k, v in self.headers:
            if k == name:
                return v.decode(errors="replace")
        return ""

    @property
    def ce_id(self) -> str:
        return self.header("ce_id")

    @property
    def ce_type(self) -> str:
        return self.header("ce_type")

    @property
    def reason(self) -> str:
        return self.header(DLQ_REASON)

    @property
    def original_topic(self) -> str:
        return self.header("rhythm_dlq_topic")

    @property
    def origin(self) -> str:
        where = self.original_topic or "?"
        return f"{where}[{self.header('rhythm_dlq_partition')}]@{self.header('rhythm_dlq_offset')}"

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith(DLQ_HEADER_PREFIX)]


@dataclass
class ReplayReport:
    replayed: list[DeadLetter] = field(default_factory=list)
    skipped: list[DeadLetter] = field(default_factory=list)
    committed: dict[int, int] = field(default_factory=dict)


def _prefix() -> str:
    return os.environ.get("KAFKA_TOPIC_PREFIX", "")


def _bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def topic_of(group: str, prefix: str | None = None) -> str:
    return f"{_prefix() if prefix is None else prefix}{dlq_topic(group)}"


def replay_group_of(group: str, prefix: str | None = None) -> str:
    return f"{_prefix() if prefix is None else prefix}{REPLAY_GROUP_PREFIX}{group}"


def _letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        partition=record.partition,
        offset=record.offset,
        timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        key=record.key,
        value=record.value,
        headers=list(record.headers or ()),
    )


async def _read(
    consumer: AIOKafkaConsumer, topic: str, *, from_committed: bool, limit: int | None
) -> tuple[list[DeadLetter], dict[int, int]]:
    """Letters from the start (or the committed offsets) up to the end as it is now."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        return [], {}
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    starts = await consumer.beginning_offsets(tps)
    positions: dict[int, int] = {}
    for tp in tps:
        committed = await consumer.committed(tp) if from_committed else None
        position = max(committed if committed is not None else 0, starts[tp])
        consumer.seek(tp, position)
        positions[tp.partition] = position
    letters: list[DeadLetter] = []
    remaining = {tp for tp in tps if positions[tp.partition] < ends[tp]}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=1000)
        for tp, records in batch.items():
            for record in records:
                if record.offset < ends[tp]:
                    letters.append(_letter(record))
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
        if limit is not None and len(letters) >= limit:
            break
    letters.sort(key=lambda x: (x.timestamp, x.partition, x.offset))
    return letters[:limit] if limit is not None else letters, {tp.partition: ends[tp] for tp in tps}


async def list_letters(
    group: str, *, limit: int | None = 50, bootstrap: str | None = None, prefix: str | None = None
) -> tuple[list[DeadLetter], dict[int, int]]:
    """The group's dead letters, oldest first, and the replay position per partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap or _bootstrap(),
        **client_security(),
        group_id=replay_group_of(group, prefix),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        topic = topic_of(group, prefix)
        letters, _ = await _read(consumer, topic, from_committed=False, limit=limit)
        replayed_up_to: dict[int, int] = {}
        for p in {x.partition for x in letters}:
            committed = await consumer.committed(TopicPartition(topic, p))
            replayed_up_to[p] = committed or 0
        return letters, replayed_up_to
    finally:
        await consumer.stop()


async def replay_letters(
    group: str,
    *,
    dry_run: bool = False,
    ids: Sequence[str] = (),
    bootstrap: str | None = None,
    prefix: str | None = None,
) -> ReplayReport:
    """Re-publish the letters not replayed yet to their original topics, then record how far.

    With ``ids``, only those letters are re-driven and the replay position does not move (the
    others stay due; re-driving one of those ids again later is harmless: consumers dedupe).
    """
    bootstrap = bootstrap or _bootstrap()
    topic = topic_of(group, prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **client_security(),
        group_id=replay_group_of(group, prefix),
        enable_auto_commit=False,
    )
    await consumer.start()
    report = ReplayReport()
    try:
        letters, ends = await _read(consumer, topic, from_committed=not ids, limit=None)
        wanted = set(ids)
        for letter in letters:
            if wanted and letter.ce_id not in wanted:
                continue
            if not letter.original_topic:
                report.skipped.append(letter)  # nowhere to send it back to
            else:
                report.replayed.append(letter)
        if dry_run:
            return report
        producer = make_producer(bootstrap)
        await producer.start()
        try:
            futures = [
                await producer.send(
                    letter.original_topic,
                    letter.value,
                    key=letter.key,
                    headers=letter.original_headers(),
                )
                for letter in report.replayed
            ]
            await asyncio.gather(*futures)  # every letter acknowledged before the commit
        finally:
            await producer.stop()
        if not ids and ends:
            offsets = {
                TopicPartition(topic, p): OffsetAndMetadata(end, "") for p, end in ends.items()
            }
            await consumer.commit(offsets)
            report.committed = dict(ends)
        return report
    finally:
        await consumer.stop()


def _table(
    letters: Sequence[DeadLetter], title: str, replayed_up_to: dict[int, int] | None = None
) -> Table:
    table = Table(title=title)
    table.add_column("partition/offset", justify="right")
    table.add_column("time (UTC)")
    table.add_column("ce_type")
    table.add_column("ce_id")
    table.add_column("reason", overflow="fold")
    table.add_column("original topic[partition]@offset")
    if replayed_up_to is not None:
        table.add_column("replayed")
    for x in letters:
        row = [
            f"{x.partition}/{x.offset}",
            x.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            x.ce_type or "-",
            x.ce_id or "-",
            x.reason,
            x.origin,
        ]
        if replayed_up_to is not None:
            row.append("yes" if x.offset < replayed_up_to.get(x.partition, 0) else "no")
        table.add_row(*(Text(cell) for cell in row))  # reasons may hold [brackets]
    return table


@app.command("list")
def list_(
    group: Annotated[str, typer.Argument(help="Consumer group, e.g. goals or notifications.")],
    limit: Annotated[int, typer.Option(help="Most letters to show (oldest first).")] = 50,
) -> None:
    """List dead letters of GROUP: where they came from, what they are, why they failed."""
    console = Console()
    try:
        letters, replayed_up_to = asyncio.run(list_letters(group, limit=limit))
    except Exception as exc:
        console.print(f"[red]cannot read {topic_of(group)}:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(2) from None
    if not letters:
        console.print(f"No dead letters on {topic_of(group)}.")
        return
    console.print(_table(letters, f"Dead letters on {topic_of(group)}", replayed_up_to))


@app.command("replay")
def replay(
    group: Annotated[str, typer.Argument(help="Consumer group, e.g. goals or notifications.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be replayed; send nothing.")
    ] = False,
    ids: Annotated[
        list[str] | None,
        typer.Option(
            "--ids", help="Replay only these ce_ids (repeat the option, or comma-separate)."
        ),
    ] = None,
) -> None:
    """Re-publish GROUP's dead letters to their original topics (key, value, headers kept).

    Only letters not replayed before are sent; the position is committed for the consumer group
    rhythm-dlq-replay.GROUP. Consumers deduplicate by ce_id, so replaying is always safe.
    """
    console = Console()
    wanted = [i for arg in ids or [] for i in arg.split(",") if i]
    try:
        report = asyncio.run(replay_letters(group, dry_run=dry_run, ids=wanted))
    except Exception as exc:
        console.print(f"[red]replay failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(2) from None
    verb = "would replay" if dry_run else "replayed"
    if report.replayed:
        console.print(_table(report.replayed, f"{verb} {len(report.replayed)} letter(s)"))
    else:
        console.print(f"Nothing to replay on {topic_of(group)}.")
    if report.skipped:
        console.print(
            f"[yellow]{len(report.skipped)} letter(s) have no rhythm_dlq_topic header and "
            "cannot be replayed[/yellow]"
        )
    if wanted:
        missing = set(wanted) - {x.ce_id for x in report.replayed}
        if missing:
            console.print(f"[yellow]not found: {', '.join(sorted(missing))}[/yellow]")
