"""``make bench``: every benchmark, against the real broker, into bench/results/latest.{json,md}.

Each benchmark runs as its own process (``python bench/<name>.py``, with ``--quick`` for
``make bench QUICK=1``) and appends its figures — each beside a baseline measured in the same
run — to a shared file; this collects them into one JSON document and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

#: In the order they run; cheap and fundamental first.
BENCHMARKS = [
    "broker_ceiling",
    "people_import",
    "goals_staleness",
    "checkins_sweep",
    "notifications_fanout",
    "reporting_ingest",
    "reporting_dashboard",
    "e2e",
    "replicas",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under 5 minutes)")
    parser.add_argument("only", nargs="*", help="run only these benchmarks")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkstemp(prefix="rhythm-bench-", suffix=".jsonl")[1])
    # Benchmarks import their neighbours (`from common import ...`) and the repository root.
    path = os.pathsep.join([str(ROOT / "bench"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "RHYTHM_BENCH_OUT": str(out), "PYTHONPATH": path}
    runs = []
    for name in args.only or BENCHMARKS:
        command = [sys.executable, str(ROOT / "bench" / f"{name}.py")]
        command += ["--quick"] if args.quick else []
        print(f"==> {name}", flush=True)
        started = time.monotonic()
        log = RESULTS / f"{name}.log"
        with log.open("w") as fh:
            code = subprocess.run(command, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                  check=False).returncode  # fmt: skip
        took = time.monotonic() - started
        runs.append({"bench": name, "exit_code": code, "seconds": round(took, 1)})
        print(f"    {'ok' if code == 0 else f'FAILED ({code}), see {log}'} in {took:.0f}s")
    figures = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    out.unlink(missing_ok=True)
    document = {
        "generated_at": datetime.now(UTC).isoformat(),
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "runs": runs,
        "figures": figures,
    }  # fmt: skip
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(document))
    print(markdown(document))
    return 0 if all(r["exit_code"] == 0 for r in runs) else 1


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"


def markdown(document: dict[str, object]) -> str:
    lines = [
        f"# Benchmarks ({'quick' if document['quick'] else 'full'}), {document['generated_at']}",
        "",
        "| benchmark | figure | value | unit | baseline | baseline value | ratio |",
        "|---|---|---:|---|---|---:|---:|",
    ]
    for f in document["figures"]:  # type: ignore[attr-defined]
        lines.append(
            f"| {f['bench']} | {f['name']} | {_fmt(f['value'])} | {f['unit']} | "
            f"{f.get('baseline_name') or ''} | {_fmt(f.get('baseline_value'))} | "
            f"{_fmt(f.get('ratio'))} |"
        )
    failed = [r for r in document["runs"] if r["exit_code"]]  # type: ignore[attr-defined]
    if failed:
        lines += ["", "Failed: " + ", ".join(r["bench"] for r in failed)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
