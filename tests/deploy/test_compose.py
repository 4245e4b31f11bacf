"""docker-compose.yml and the Dockerfiles agree with the code: commands, settings, ports, health
checks, databases and the topic map. No Docker engine is needed; ``docker compose config`` runs
too where the compose plugin exists."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from rhythm_shared.kit.kafka import topic_configs
from tests.deploy.services import (
    CONSUMER_GROUPS,
    SERVICES,
    WRITABLE_TMP,
    default_port,
    env_names,
    expected_topics,
    load_settings,
    settings_class,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
INFRASTRUCTURE = ("kafka", "kafka-init", "postgres", "mailpit", "otel-collector", "jaeger")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service = compose["services"][name]
    assert isinstance(service, dict)
    return service


def _env(compose: dict[str, Any], name: str) -> dict[str, str]:
    env = _service(compose, name)["environment"]
    assert isinstance(env, dict), f"{name}: write environment as a mapping"
    return {key: str(value) for key, value in env.items()}


def _published(port: str) -> tuple[str, int, int]:
    """``[host_ip:]host_port:container_port`` -> (host_ip, host_port, container_port)."""
    *ip, host, container = port.split(":")
    return (ip[0] if ip else "0.0.0.0", int(host), int(container))


def test_compose_defines_the_infrastructure_and_every_service(compose: dict[str, Any]) -> None:
    assert set(INFRASTRUCTURE) | set(SERVICES) <= set(compose["services"])


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_its_own_serve_command(compose: dict[str, Any], name: str) -> None:
    service = _service(compose, name)
    assert service["command"] == ["rhythm", "serve", name]
    assert service["build"] == {"context": ".", "dockerfile": f"services/{name}/Dockerfile"}


@pytest.mark.parametrize("name", SERVICES)
def test_rhythm_serve_knows_every_service(name: str) -> None:
    from rhythm_cli.serve import ServiceName

    assert name in {choice.value for choice in ServiceName}, f"`rhythm serve {name}` is refused"


@pytest.mark.parametrize("name", SERVICES)
def test_every_variable_a_service_gets_is_one_of_its_settings(
    compose: dict[str, Any], name: str
) -> None:
    env = _env(compose, name)
    unknown = set(env) - env_names(name)
    assert not unknown, f"{name}: not settings of {settings_class(name).__name__}: {unknown}"
    # The values pass the service's own validation (types, enums, the production guards).
    settings = load_settings(name, env)
    assert settings.http_host == "0.0.0.0"
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.otel_exporter_otlp_endpoint == "http://otel-collector:4318"


@pytest.mark.parametrize(("name", "port"), SERVICES.items())
def test_http_port_is_the_services_default_and_the_published_port(
    compose: dict[str, Any], name: str, port: int
) -> None:
    default = default_port(name)
    if default is not None:
        assert default == port
    assert _env(compose, name)["HTTP_PORT"] == str(port)
    published = [_published(p) for p in _service(compose, name)["ports"]]
    assert published == [("127.0.0.1", port, port)]


@pytest.mark.parametrize(("name", "port"), SERVICES.items())
def test_health_check_asks_readyz_on_the_services_port(
    compose: dict[str, Any], name: str, port: int
) -> None:
    check = _service(compose, name)["healthcheck"]
    assert check["test"][0] == "CMD"
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(check["test"])


@pytest.mark.parametrize("name", SERVICES)
def test_services_start_after_topics_database_and_collector(
    compose: dict[str, Any], name: str
) -> None:
    depends = _service(compose, name)["depends_on"]
    assert depends["kafka-init"] == {"condition": "service_completed_successfully"}
    assert depends["postgres"] == {"condition": "service_healthy"}
    assert "otel-collector" in depends
    for dependency in depends:
        assert dependency in compose["services"]
    if name == "notifications":
        assert depends["mailpit"] == {"condition": "service_healthy"}


@pytest.mark.parametrize("name", SERVICES)
def test_services_run_hardened(compose: dict[str, Any], name: str) -> None:
    service = _service(compose, name)
    assert service["user"] == "10001:10001"
    assert service["read_only"] is True
    assert service["tmpfs"] == [WRITABLE_TMP]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]


def test_each_service_has_its_own_postgres_database(compose: dict[str, Any]) -> None:
    init_sql = "\n".join(
        p.read_text() for p in sorted((ROOT / "deploy/compose/postgres").glob("*.sql"))
    )
    databases = set()
    for name in SERVICES:
        url = urlsplit(_env(compose, name)["DATABASE_URL"])
        assert url.scheme == "postgresql+asyncpg"
        assert (url.hostname, url.port) == ("postgres", 5432)
        database = url.path.lstrip("/")
        databases.add(database)
        assert re.search(rf"CREATE ROLE {url.username} LOGIN PASSWORD '{url.password}';", init_sql)
        assert re.search(rf"CREATE DATABASE {database} OWNER {url.username};", init_sql)
    assert len(databases) == len(SERVICES), "services must not share a database"
    postgres = _service(compose, "postgres")
    assert "./deploy/compose/postgres:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def _created_topics(compose: dict[str, Any]) -> dict[str, tuple[int, int]]:
    init = _service(compose, "kafka-init")
    script = "\n".join(init["command"])
    created: dict[str, tuple[int, int]] = {}
    for line in script.splitlines():
        words = shlex.split(line)
        if not words or words[0] != "create":
            continue
        pairs = list(zip(words[1::2], words[2::2], strict=True))
        options = dict(pairs)
        configs = dict(v.split("=", 1) for k, v in pairs if k == "--config")
        created[options["--topic"]] = (int(options["--partitions"]), int(configs["retention.ms"]))
        CONFIGS[options["--topic"]] = configs
    return created


#: Each created topic's --config options, as the script last gave them.
CONFIGS: dict[str, dict[str, str]] = {}


def test_topic_creation_makes_every_topic_of_the_topic_map_with_its_partitions(
    compose: dict[str, Any],
) -> None:
    expected = {
        name: (spec.partitions, spec.retention_ms) for name, spec in expected_topics().items()
    }
    assert _created_topics(compose) == expected
    assert {f"rhythm.dlq.{group}" for group in CONSUMER_GROUPS} <= set(expected)
    for name, spec in expected_topics().items():
        assert CONFIGS[name] == topic_configs(spec), name


def test_topic_creation_targets_the_internal_listener_and_is_idempotent(
    compose: dict[str, Any],
) -> None:
    init = _service(compose, "kafka-init")
    script = "\n".join(init["command"])
    assert "--bootstrap-server kafka:9092 --create --if-not-exists" in script
    assert init["image"] == _service(compose, "kafka")["image"]
    assert init["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert init["restart"] == "no"


def test_kafka_is_the_official_image_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = _service(compose, "kafka")
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    env = {key: str(value) for key, value in kafka["environment"].items()}
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])
    assert "healthcheck" in kafka


def test_traces_flow_from_the_collector_to_jaeger(compose: dict[str, Any]) -> None:
    collector = _service(compose, "otel-collector")
    assert collector["image"].startswith("otel/opentelemetry-collector-contrib:")
    mount = next(
        v for v in collector["volumes"] if v.endswith(":/etc/otelcol-contrib/config.yaml:ro")
    )
    config = yaml.safe_load((ROOT / mount.split(":")[0]).read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    jaeger_exporters = [e for e in pipeline["exporters"] if e.startswith("otlp/jaeger")]
    assert [config["exporters"][e]["endpoint"] for e in jaeger_exporters] == ["jaeger:4317"]
    for section in ("receivers", "processors", "exporters"):
        for component in pipeline[section]:
            assert component in config[section]
    jaeger = _service(compose, "jaeger")
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"


def test_mail_goes_to_mailpit(compose: dict[str, Any]) -> None:
    mailpit = _service(compose, "mailpit")
    assert mailpit["image"].startswith("axllent/mailpit:")
    assert {_published(p)[2] for p in mailpit["ports"]} == {1025, 8025}
    env = _env(compose, "notifications")
    assert (env["SMTP_HOST"], env["SMTP_PORT"], env["SMTP_SECURITY"]) == ("mailpit", "1025", "none")


# ---------------------------------------------------------------------------- Dockerfiles


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line and not line.startswith("#")
    ]


@pytest.mark.parametrize(("name", "port"), SERVICES.items())
def test_dockerfile_builds_a_slim_non_root_image_that_serves_the_service(
    name: str, port: int
) -> None:
    steps = _instructions(ROOT / "services" / name / "Dockerfile")
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for i, a in steps if i == "ARG" and "=" in a}
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert args["UV_VERSION"] == "0.13.8"
    stages = [a for i, a in steps if i == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    runs = [a for i, a in steps if i == "RUN"]
    assert any('pip install --no-cache-dir "uv==${UV_VERSION}"' in r for r in runs)
    syncs = [r for r in runs if r.startswith("uv sync")]
    assert syncs, "the image installs from uv.lock"
    for sync in syncs:
        words = sync.split()
        assert {"--frozen", "--no-dev"} <= set(words)
        packages = {words[i + 1] for i, w in enumerate(words) if w == "--package"}
        # The service, and the `rhythm` command that serves it.
        assert packages == {f"rhythm-{name}", "rhythm-cli"}
    assert "--no-editable" in syncs[-1]
    copies = [a for i, a in steps if i == "COPY"]
    assert f"services/{name}/ services/{name}/" in copies
    assert "--from=build /opt/venv /opt/venv" in copies
    runtime = steps[[i for i, _ in steps].index("FROM", 1) :]
    assert ("USER", "10001:10001") in runtime
    assert any(i == "RUN" and "--uid 10001" in a for i, a in runtime)
    assert ("EXPOSE", str(port)) in runtime
    env = " ".join(a for i, a in runtime if i == "ENV")
    for setting in ("HTTP_HOST=0.0.0.0", f"HTTP_PORT={port}", "HOME=/tmp"):
        assert setting in env
    healthcheck = next(a for i, a in runtime if i == "HEALTHCHECK")
    assert "/healthz" in healthcheck
    cmd = json.loads(next(a for i, a in runtime if i == "CMD"))
    assert cmd == ["rhythm", "serve", name]


@pytest.mark.parametrize("name", SERVICES)
def test_the_lock_file_knows_the_package_each_image_installs(name: str) -> None:
    lock = (ROOT / "uv.lock").read_text()
    assert f'name = "rhythm-{name}"' in lock, f"run `uv lock` after adding services/{name}"


def test_dockerignore_keeps_local_state_out_and_the_sources_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for excluded in (".git", ".venv", ".run", "**/__pycache__", "**/*.db"):
        assert excluded in patterns
    for needed in ("shared", "cli", "services", "uv.lock", "pyproject.toml"):
        assert needed not in patterns


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _compose_plugin(), reason="the docker compose plugin is not installed")
def test_docker_compose_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
