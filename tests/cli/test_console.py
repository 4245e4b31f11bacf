"""The ``rhythm`` console script: a service process loads only its own service's code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SERVICES = ("goals", "checkins", "notifications", "reporting", "people")
#: What only the operator's command lines need.
OPERATIONS = ("infra", "contracts", "mailbox", "dlq", "run", "main")


def _loaded_after(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Run the console script with ``argv`` in a fresh interpreter; its exit code and the
    rhythm modules it had imported by then."""
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.argv = ["rhythm", *{argv!r}]
        from rhythm_cli.console import main
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        print(json.dumps([code, sorted(m for m in sys.modules if m.startswith("rhythm_"))]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    code, modules = json.loads(done.stdout.strip().splitlines()[-1])
    return code, set(modules)


def _packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_process_imports_no_other_service(service: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"}
    # `migrate --check` loads the service and its schema for real, then says it is behind.
    code, modules = _loaded_after(["migrate", service, "--check"], env)
    assert code == 1
    assert f"rhythm_{service}.main" in modules
    assert _packages(modules) == {"rhythm_cli", "rhythm_shared", f"rhythm_{service}"}
    assert not {f"rhythm_cli.{name}" for name in OPERATIONS} & modules


def test_serve_and_migrate_keep_their_help() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from rhythm_cli.console import main; main()", "serve", "--help"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Run one service" in done.stdout


def test_every_other_command_line_gets_the_whole_command() -> None:
    code, modules = _loaded_after(["--help"])
    assert code == 0
    assert {f"rhythm_{s}.cli" for s in SERVICES} <= modules
    assert {f"rhythm_cli.{name}" for name in OPERATIONS} <= modules
