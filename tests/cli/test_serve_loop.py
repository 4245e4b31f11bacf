"""`rhythm serve` runs a service on uvloop, the loop the benchmarks measure."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
import uvloop

from rhythm_cli import serve


def test_a_served_service_runs_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs, app=app))

    serve.serve(serve.ServiceName.goals, port=0)

    config = uvicorn.Config(seen["app"], loop=seen["loop"])
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
