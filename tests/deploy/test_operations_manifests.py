"""The operations pieces of deploy/k8s agree with the code: the migration Jobs run `rhythm
migrate` from each service's image with the Deployment's secrets, and the alert rules name only
metrics (and labels) the services export, and runbook sections that exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from rhythm_cli.serve import ServiceName
from tests.deploy import kustomize
from tests.deploy.services import SERVICES, env_names

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
RULES = K8S / "components" / "monitoring" / "prometheusrule.yaml"
RUNBOOK = ROOT / "docs" / "operations-consumers.md"
#: The modules that define the metrics the rules use.
METRIC_MODULES = (
    "rhythm_shared.kit.consumer",
    "rhythm_shared.kit.lag",
    "rhythm_shared.kit.kafka",
    "rhythm_notifications.use_cases.sending",
)

Resource = dict[str, Any]


@pytest.fixture(scope="module")
def prod() -> list[Resource]:
    return kustomize.build(K8S / "overlays" / "prod")


def _of_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def _secret_refs(container: dict[str, Any]) -> dict[str, Any]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_migration_job_from_its_own_image(
    prod: list[Resource], service: str
) -> None:
    job = _of_kind(prod, "Job")[f"{service}-migrate"]
    deployment = _of_kind(prod, "Deployment")[service]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (served,) = deployment["spec"]["template"]["spec"]["containers"]

    assert service in {n.value for n in ServiceName}
    assert container["command"] == ["rhythm", "migrate", service]
    assert container["image"] == served["image"]
    # The same database and secrets as the service (settings validate the same way).
    assert _secret_refs(container).items() <= _secret_refs(served).items()
    assert {"DATABASE_URL", "DATA_KEY_ENCRYPTION_KEY"} <= set(_secret_refs(container))
    assert container["envFrom"] == served["envFrom"]
    assert {e["name"] for e in container["env"]} <= env_names(service)
    assert container["securityContext"] == served["securityContext"]
    assert pod["securityContext"] == deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    # The egress policy (database port) selects the Job's pod like the service's.
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "rhythm"


def test_with_the_jobs_the_services_do_not_migrate_on_start(prod: list[Resource]) -> None:
    config = _of_kind(prod, "ConfigMap")["rhythm-config"]["data"]
    assert config["MIGRATE_ON_START"] == "false"
    assert all("MIGRATE_ON_START" in env_names(s) for s in SERVICES)


def _exported() -> dict[str, tuple[set[str], str]]:
    """Every sample name the metric modules export: its labels, and the source of its package
    (where a label's values are spelled, in the module or in an enum of the domain)."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    names: dict[str, tuple[set[str], str]] = {}
    for name in METRIC_MODULES:
        module = importlib.import_module(name)
        package = Path(str(importlib.import_module(name.split(".")[0]).__file__)).parent
        source = "".join(p.read_text(encoding="utf-8") for p in package.rglob("*.py"))
        for metric in vars(module).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            labels = set(metric._labelnames)  # no public view of its labels
            for family in metric.describe():
                for suffix in suffixes.get(family.type, ("",)):
                    names[family.name + suffix] = (labels, source)
    return names


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def test_the_alert_rules_cover_lag_stalls_dead_letters_and_delivery_failures() -> None:
    alerts = {rule["alert"] for rule in _rules()}
    assert {
        "RhythmConsumerLagHigh",
        "RhythmConsumerStalled",
        "RhythmDeadLetters",
        "RhythmDeliveryFailures",
    } <= alerts


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_every_alert_names_exported_metrics_labels_and_values(rule: dict[str, Any]) -> None:
    expr: str = rule["expr"]
    assert expr.count("(") == expr.count(")")
    assert expr.count("{") == expr.count("}")
    exported = _exported()
    used = set(re.findall(r"\brhythm_[a-z_]+\b", expr))
    assert used, "an alert on no Rhythm metric"
    unknown = used - set(exported)
    assert not unknown, f"{rule['alert']}: the code exports no {unknown}"
    labels = set().union(*(exported[name][0] for name in used))
    for grouping in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr):
        named = {label.strip() for label in grouping.split(",") if label.strip()}
        assert named <= labels, f"{rule['alert']}: no metric has labels {named - labels}"
    for name, label, value in re.findall(r'\b(rhythm_[a-z_]+)\{(\w+)="([^"]*)"\}', expr):
        assert label in exported[name][0], f"{name} has no label {label}"
        assert f'"{value}"' in exported[name][1], f"{name}{{{label}}} is never {value!r}"


def _anchors(markdown: str) -> set[str]:
    headings = re.findall(r"^#+\s+(.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_every_alert_points_to_a_section_of_the_runbook(rule: dict[str, Any]) -> None:
    path, _, anchor = rule["annotations"]["runbook"].partition("#")
    assert ROOT / path == RUNBOOK
    assert anchor in _anchors(RUNBOOK.read_text(encoding="utf-8"))
