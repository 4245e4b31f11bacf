"""A Kafka broker of a test's own, started and stopped by ``rhythm infra``'s launcher on free
ports and a data directory of the test (as ``make chaos`` does), so stopping it disturbs nobody
else using the shared broker."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rhythm_cli import infra


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class OwnBroker:
    bootstrap: str
    sasl: bool

    def stop(self) -> None:
        infra.kafka_down()

    def start(self) -> None:
        infra.kafka_up(self.bootstrap, sasl=self.sasl)


@contextlib.contextmanager
def own_broker(
    directory: Path, monkeypatch: pytest.MonkeyPatch, *, sasl: bool = False
) -> Iterator[OwnBroker]:
    if infra.kafka_pid() is None and not (infra.KAFKA_LIBS.is_dir()):
        pytest.skip("no Kafka jars: run `rhythm infra up` once")
    kafka_dir = directory / "kafka"
    kafka_dir.mkdir(parents=True)
    for name, path in {
        "KAFKA_DIR": kafka_dir,
        "KAFKA_DATA": kafka_dir / "data",
        "KAFKA_PROPERTIES": kafka_dir / "server.properties",
        "KAFKA_CLUSTER_ID": kafka_dir / "cluster.id",
        "KAFKA_LOG": kafka_dir / "kafka.log",
        "KAFKA_PID": kafka_dir / "kafka.pid",
    }.items():
        monkeypatch.setattr(infra, name, path)
    monkeypatch.setenv("RHYTHM_KAFKA_CONTROLLER_PORT", str(_free_port()))
    broker = OwnBroker(f"127.0.0.1:{_free_port()}", sasl)
    broker.start()
    try:
        yield broker
    finally:
        with contextlib.suppress(Exception):
            broker.stop()
