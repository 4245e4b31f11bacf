"""Run one service exactly like ``rhythm serve <name>``, on a clock shifted by a fixed offset.

The chaos run needs every incarnation of a service (a restart after kill -9, a second replica)
to live on the same shifted timeline from its first instant, so that e.g. the notifications
service never decides "it is Saturday, wait until Monday" in the moment before a clock could be
moved over HTTP. ``CHAOS_CLOCK_OFFSET_S`` carries that offset; everything else is the service's
own composition root and settings from the environment.

    python -m bench.chaos.serve notifications
"""

from __future__ import annotations

import importlib
import os
import sys
from datetime import timedelta

import uvicorn

from rhythm_shared.kit.clock import SystemClock


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m bench.chaos.serve <service>")
    module = importlib.import_module(f"rhythm_{argv[0]}.main")
    settings = module.Settings()
    offset = timedelta(seconds=float(os.environ.get("CHAOS_CLOCK_OFFSET_S", "0")))
    app = module.build(settings, clock=SystemClock(offset))
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
