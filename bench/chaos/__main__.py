"""``python -m bench.chaos [--quick]``: exits non-zero on any loss, duplicate or stray record."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from rich.console import Console

from .scenario import FULL, QUICK, print_summary, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="~5,000 events instead of 50,000")
    parser.add_argument("--events", type=int, help="records of the run (default 50,000 / 5,000)")
    parser.add_argument("--employees", type=int, help="size of the organisation")
    parser.add_argument("--poison", type=int, help="poison records mixed in")
    parser.add_argument(
        "--bootstrap",
        help="use this broker (no broker restart) instead of starting one of the run's own",
    )
    parser.add_argument("--no-broker-restart", action="store_true")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    cfg = replace(
        cfg,
        events=args.events or cfg.events,
        employees=args.employees or cfg.employees,
        poison=args.poison if args.poison is not None else cfg.poison,
        bootstrap=args.bootstrap,
        broker_restart=not args.no_broker_restart and not args.bootstrap,
        seed=args.seed,
        keep=args.keep,
    )
    console = Console(width=max(150, Console().width))
    outcome = run(cfg, console)
    print_summary(console, outcome)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
