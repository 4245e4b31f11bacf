"""What every benchmark shares: figures measured beside a baseline, and how they are reported.

Each benchmark prints its figures and, when ``RHYTHM_BENCH_OUT`` names a file, appends them
to it as JSON lines; ``bench/run_all.py`` collects them into ``bench/results/latest.json``.
Machines here are noisy: figures are medians of several rounds, and each is shown as a ratio
to a baseline measured in the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline_name: str | None = None
    baseline_value: float | None = None

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def report(bench: str, figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures)
    print(f"\n{bench}")
    for f in figures:
        line = f"  {f.name:<{width}}  {f.value:>14,.2f} {f.unit}"
        if f.baseline_name is not None and f.baseline_value is not None:
            line += f"   vs {f.baseline_name} {f.baseline_value:,.2f} (ratio {f.ratio:.3f})"
        print(line)
    out = os.environ.get("RHYTHM_BENCH_OUT")
    if out:
        with Path(out).open("a") as fh:
            for f in figures:
                fh.write(json.dumps({"bench": bench, **f.as_dict()}) + "\n")


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
