"""deploy/k8s at its edges: the Ingress (what is public, and what is not) and the operations Jobs
(``rhythm people import``, ``rhythm reporting rebuild``) that run from the service images with the
services' settings, inside the NetworkPolicies, with the volumes they need."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.routing import Match
from typer.testing import CliRunner

from tests.deploy import kustomize
from tests.deploy.services import SERVICES, WRITABLE_TMP, load_settings
from tests.deploy.test_k8s import (
    K8S,
    OVERLAYS,
    Resource,
    _config_maps,
    _container,
    _of_kind,
    _rendered,
    _validate,
)
from tests.kit.test_http_limits import build

JOBS = K8S / "jobs"
#: Each Job: its service and the `rhythm` command it runs.
JOB_COMMANDS = {
    "people-import": ("people", ["rhythm", "people", "import"]),
    "reporting-rebuild": ("reporting", ["rhythm", "reporting", "rebuild"]),
}
PUBLIC_HOST = "rhythm.example.com"
#: Operators' and developers' endpoints: never routed from outside.
INTERNAL_PATHS = ("/metrics", "/docs", "/openapi.json", "/redoc", "/healthz", "/readyz")


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Resource]]:
    name: str = request.param
    return name, _rendered(name)


#: A path each routed (service, Ingress path) must serve: proof the route leads somewhere.
PROBES = {
    ("reporting", "/dashboard"): "/dashboard",
    ("reporting", "/v1/dashboards"): "/v1/dashboards/units",
    ("notifications", "/v1/unsubscribe"): "/v1/unsubscribe",
    ("goals", "/v1"): "/v1/goals",
    ("checkins", "/v1"): "/v1/checkins",
    ("notifications", "/v1"): "/v1/webhook-endpoints",
    ("reporting", "/v1"): "/v1/dashboards/units",
    ("people", "/v1"): "/v1/people/employees",
    ("people", "/scim/v2"): "/scim/v2/Users",
}


@pytest.fixture(scope="module")
def serves(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], bool]:
    """Whether a service's app has a route for a path (any method; SCIM is not in the OpenAPI,
    so the app's router decides, as it does for a request)."""
    directory = tmp_path_factory.mktemp("apps")
    apps = {name: build(name, directory) for name in SERVICES}

    def check(service: str, path: str) -> bool:
        scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
        return any(route.matches(scope)[0] != Match.NONE for route in apps[service].router.routes)

    return check


# ---------------------------------------------------------------------------- the Ingress


def _ingress(resources: list[Resource]) -> Resource:
    (ingress,) = _of_kind(resources, "Ingress").values()
    return ingress


def _backend(ingress: Resource, host: str, path: str) -> str | None:
    """The Service a request reaches, by the Ingress rules (networking.k8s.io/v1: an Exact path
    matches itself; a Prefix matches element by element; the longest match wins)."""
    best: tuple[int, str] | None = None
    for rule in ingress["spec"]["rules"]:
        if rule.get("host") != host:
            continue
        for item in rule["http"]["paths"]:
            rule_path = item["path"]
            if item["pathType"] == "Exact":
                matches = path == rule_path
            else:
                parts = [p for p in rule_path.split("/") if p]
                matches = [p for p in path.split("/") if p][: len(parts)] == parts
            if matches and (best is None or len(rule_path) > best[0]):
                best = (len(rule_path), item["backend"]["service"]["name"])
    return None if best is None else best[1]


def _hosts(ingress: Resource) -> list[str]:
    return [rule["host"] for rule in ingress["spec"]["rules"]]


def test_every_route_reaches_a_service_port_of_the_overlay(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    ingress = _ingress(resources)
    _validate(ingress)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    services = _of_kind(resources, "Service")
    for rule in ingress["spec"]["rules"]:
        for item in rule["http"]["paths"]:
            backend = item["backend"]["service"]
            ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
            assert backend["port"] == {"name": "http"}
            assert "http" in ports
    assert set(ingress["spec"]["tls"][0]["hosts"]) == set(_hosts(ingress))


def test_the_dashboard_and_unsubscribe_are_public_on_one_host(
    overlay: tuple[str, list[Resource]], serves: Callable[[str, str], bool]
) -> None:
    _, resources = overlay
    ingress = _ingress(resources)
    public = {
        "/dashboard": "reporting",
        "/dashboard/app.js": "reporting",
        "/v1/dashboards/cadence-adherence": "reporting",
        "/v1/unsubscribe": "notifications",
    }
    for path, service in public.items():
        assert _backend(ingress, PUBLIC_HOST, path) == service, path
    for path, service in public.items():
        assert serves(service, path), path
    # Nothing else of notifications is on the public host.
    assert _backend(ingress, PUBLIC_HOST, "/v1/webhook-endpoints") is None


def test_the_unsubscribe_links_the_emails_carry_reach_the_unsubscribe_endpoint(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    base = _config_maps(resources)["rhythm-notifications-config"]["PUBLIC_BASE_URL"]
    url = urlsplit(base.rstrip("/") + "/v1/unsubscribe")
    assert url.scheme == "https"
    assert _backend(_ingress(resources), url.hostname or "", url.path) == "notifications"


def test_metrics_and_docs_are_not_routed_from_outside(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    ingress = _ingress(resources)
    for host in _hosts(ingress):
        for path in INTERNAL_PATHS:
            assert _backend(ingress, host, path) is None, f"{host}{path} is public"


def test_every_routed_path_is_served_by_its_service(
    overlay: tuple[str, list[Resource]], serves: Callable[[str, str], bool]
) -> None:
    _, resources = overlay
    ingress = _ingress(resources)
    for rule in ingress["spec"]["rules"]:
        for item in rule["http"]["paths"]:
            service = item["backend"]["service"]["name"]
            probe = PROBES[(service, item["path"])]
            assert _backend(ingress, rule["host"], probe) == service, probe
            assert serves(service, probe), f"{rule['host']}{probe}: {service} serves nothing"
    assert not serves("goals", "/v1/no-such-thing")  # the check can say no


def test_the_ingress_controller_may_reach_the_services(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    policy = _of_kind(resources, "NetworkPolicy")["rhythm-allow-http"]["spec"]
    sources = [peer for rule in policy["ingress"] for peer in rule["from"]]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in sources


# ---------------------------------------------------------------------------- the Jobs


def _job_files() -> dict[str, Resource]:
    jobs: dict[str, Resource] = {}
    for path in sorted(JOBS.glob("*.yaml")):
        for resource in kustomize.load_documents(path):
            if resource["kind"] == "Job":
                jobs[resource["metadata"]["labels"]["app.kubernetes.io/name"]] = resource
    return jobs


def _job_container(job: Resource) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = container
    return result


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_there_is_a_job_for_each_operation() -> None:
    jobs = _job_files()
    assert set(jobs) == set(JOB_COMMANDS)
    for job in jobs.values():
        _validate(job)
        # `kubectl create -f` makes a new Job each run; the namespace is the operator's -n.
        assert "generateName" in job["metadata"]
        assert "namespace" not in job["metadata"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("name", JOB_COMMANDS)
def test_each_job_runs_a_rhythm_command_that_exists(name: str) -> None:
    from rhythm_cli.main import app

    _, command = JOB_COMMANDS[name]
    args = _job_container(_job_files()[name])["command"]
    assert args[: len(command)] == command
    done = CliRunner().invoke(app, [*command[1:], "--help"])
    assert done.exit_code == 0, done.output


@pytest.mark.parametrize("name", JOB_COMMANDS)
def test_each_job_runs_from_its_service_image_with_the_services_settings(
    overlay: tuple[str, list[Resource]], name: str
) -> None:
    _, resources = overlay
    service, _ = JOB_COMMANDS[name]
    job = _job_container(_job_files()[name])
    deployment = _container(_of_kind(resources, "Deployment")[service])
    base_image = _container(_of_kind(kustomize.build(K8S / "base"), "Deployment")[service])["image"]
    assert job["image"] == base_image  # the same image, so `kustomize edit set image` applies
    assert job["envFrom"] == deployment["envFrom"]
    job_env, service_env = _env(job), _env(deployment)
    for variable in ("DATABASE_URL", "JWT_SECRET", "DATA_KEY_ENCRYPTION_KEY"):
        assert job_env[variable] == service_env[variable], variable
    assert job_env["KAFKA_SASL_USERNAME"] == service
    assert job_env["KAFKA_SASL_PASSWORD"]["secretKeyRef"]["name"] == service
    # What the Job's process would read is accepted by the service's settings.
    values = {
        k: v
        for cm in job["envFrom"]
        for k, v in _config_maps(resources)[cm["configMapRef"]["name"]].items()
    }
    values |= {k: v for k, v in job_env.items() if isinstance(v, str)}
    values["DATA_KEY_ENCRYPTION_KEY"] = "ZnJvbS10aGUtc2VjcmV0LXJoeXRobS1kYXRhLWtleTA"
    if values.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").startswith("SASL_"):
        values["KAFKA_SASL_PASSWORD"] = "from-the-strimzi-secret"
    load_settings(service, values)


@pytest.mark.parametrize("name", JOB_COMMANDS)
def test_each_job_is_hardened_and_writes_only_tmp(name: str) -> None:
    job = _job_files()[name]
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    container = _job_container(job)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound])
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
    assert [m["mountPath"] for m in writable] == [WRITABLE_TMP]
    assert "emptyDir" in volumes[writable[0]["name"]]
    assert job["spec"]["activeDeadlineSeconds"] > 0


def test_the_import_reads_its_file_from_the_imports_volume() -> None:
    job = _job_files()["people-import"]
    container = _job_container(job)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    file = Path(container["command"][3])
    mount = mounts[str(file.parent)]
    assert mount["readOnly"] is True
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    loader = {r["kind"]: r for r in kustomize.load_documents(JOBS / "imports.yaml")}
    assert loader["PersistentVolumeClaim"]["metadata"]["name"] == claim
    pod = loader["Pod"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == str(file.parent)
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("name", JOB_COMMANDS)
def test_the_network_policies_let_each_job_reach_kafka_and_its_database_only(
    overlay: tuple[str, list[Resource]], name: str
) -> None:
    _, resources = overlay
    labels = _job_files()[name]["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, Any]) -> bool:
        return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())

    policies = _of_kind(resources, "NetworkPolicy").values()
    egress_ports = {
        port["port"]
        for policy in policies
        if selects(policy["spec"]["podSelector"])
        for rule in policy["spec"].get("egress", [])
        for port in rule["ports"]
    }
    assert {53, 9092, 5432} <= egress_ports
    assert 587 not in egress_ports  # SMTP is notifications' own
    # Its own name: no Service sends it traffic and no disruption budget counts it.
    for service in _of_kind(resources, "Service").values():
        assert not selects({"matchLabels": service["spec"]["selector"]}), service["metadata"]
    for budget in _of_kind(resources, "PodDisruptionBudget").values():
        assert not selects(budget["spec"]["selector"]), budget["metadata"]
