"""deploy/k8s: every manifest validates against the Kubernetes schemas (kubernetes-validate), each
overlay renders (tests/deploy/kustomize.py; also ``kubectl kustomize`` where it exists) into
hardened, consistent objects, and the CRDs (KEDA ScaledObject, Strimzi KafkaTopic) agree with the
code: Deployments, consumer groups and the topic map."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from rhythm_shared.contracts.topics import INTERNAL_PULSE, TOPICS
from tests.deploy import kustomize
from tests.deploy.services import (
    CONSUMER_GROUPS,
    PUBLISHES,
    SERVICES,
    UNSCALED_CONSUMERS,
    WRITABLE_TMP,
    default_port,
    env_names,
    expected_topics,
    load_settings,
    settings_class,
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
#: Oldest Kubernetes the manifests support, and the newest schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
#: Custom resources: their API group/version and the spec fields a valid object must have.
CRDS: dict[str, tuple[str, set[str]]] = {
    "ScaledObject": ("keda.sh/v1alpha1", {"scaleTargetRef", "triggers"}),
    "KafkaTopic": ("kafka.strimzi.io/v1beta2", {"partitions", "replicas"}),
    "KafkaUser": ("kafka.strimzi.io/v1beta2", {"authentication", "authorization"}),
    "TriggerAuthentication": ("keda.sh/v1alpha1", {"secretTargetRef"}),
    "PrometheusRule": ("monitoring.coreos.com/v1", {"groups"}),
    "PodMonitor": ("monitoring.coreos.com/v1", {"selector", "podMetricsEndpoints"}),
}

Resource = dict[str, Any]


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def _rendered(overlay: str) -> list[Resource]:
    return kustomize.build(K8S / "overlays" / overlay)


def _of_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def _validate(resource: Resource) -> None:
    kind = resource["kind"]
    if kind in CRDS:
        api_version, required = CRDS[kind]
        assert resource["apiVersion"] == api_version, kind
        assert resource["metadata"]["name"]
        missing = required - set(resource["spec"])
        assert not missing, f"{kind} {resource['metadata']['name']} lacks spec {missing}"
        return
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(resource, version, strict=True)


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Resource]]:
    name: str = request.param
    return name, _rendered(name)


# ---------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_file_validates_against_the_kubernetes_schemas(path: Path) -> None:
    documents = kustomize.load_documents(path)
    assert documents, f"{path} is empty"
    for resource in documents:
        _validate(resource)


def test_each_overlay_renders_to_valid_objects(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    keys = [(r["kind"], r["metadata"]["name"]) for r in resources]
    assert len(keys) == len(set(keys)), "an object is defined twice"
    for resource in resources:
        _validate(resource)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("name", OVERLAYS)
def test_the_test_renderer_agrees_with_kubectl_kustomize(name: str) -> None:
    output = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / name)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def key(resource: Resource) -> tuple[str, str]:
        return resource["kind"], resource["metadata"]["name"]

    expected = sorted((d for d in yaml.safe_load_all(output) if d), key=key)
    assert sorted(_rendered(name), key=key) == expected


# ---------------------------------------------------------------------------- deployments


def _container(deployment: Resource) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def test_every_service_has_a_deployment_and_nothing_else_does(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    assert set(_of_kind(resources, "Deployment")) == set(SERVICES)


@pytest.mark.parametrize("name", SERVICES)
def test_every_deployment_is_hardened(overlay: tuple[str, list[Resource]], name: str) -> None:
    _, resources = overlay
    deployment = _of_kind(resources, "Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    container = _container(deployment)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security.get("privileged", False) is False
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound]), bound
    # The one writable place: /tmp on an emptyDir.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[WRITABLE_TMP]]


@pytest.mark.parametrize(("name", "port"), SERVICES.items())
def test_every_deployment_serves_its_port_with_health_probes(
    overlay: tuple[str, list[Resource]], name: str, port: int
) -> None:
    _, resources = overlay
    container = _container(_of_kind(resources, "Deployment")[name])
    assert container["command"] == ["rhythm", "serve", name]
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    default = default_port(name)
    if default is not None:
        assert default == port
    env = {e["name"]: e for e in container["env"]}
    assert env["HTTP_PORT"]["value"] == str(port)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    service = _of_kind(resources, "Service")[name]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": name}
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(port, "http")]


def _config_maps(resources: list[Resource]) -> dict[str, dict[str, str]]:
    return {name: r.get("data", {}) for name, r in _of_kind(resources, "ConfigMap").items()}


def _settings_env(resources: list[Resource], name: str) -> dict[str, Any]:
    """Every variable the service's container gets: from ConfigMaps (values) and env entries."""
    container = _container(_of_kind(resources, "Deployment")[name])
    config_maps = _config_maps(resources)
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, "secrets are referenced key by key"
        env.update(config_maps[source["configMapRef"]["name"]])
    for entry in container["env"]:
        env[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return env


@pytest.mark.parametrize("name", SERVICES)
def test_every_variable_a_deployment_sets_is_one_of_the_services_settings(
    overlay: tuple[str, list[Resource]], name: str
) -> None:
    _, resources = overlay
    env = _settings_env(resources, name)
    unknown = set(env) - env_names(name)
    assert not unknown, f"{name}: not settings of {settings_class(name).__name__}: {unknown}"
    assert env["HTTP_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("name", SERVICES)
def test_secrets_are_referenced_never_committed(
    overlay: tuple[str, list[Resource]], name: str
) -> None:
    _, resources = overlay
    assert not _of_kind(resources, "Secret")
    container = _container(_of_kind(resources, "Deployment")[name])
    env = {e["name"]: e for e in container["env"]}
    for variable in ("DATABASE_URL", "JWT_SECRET"):
        assert "secretKeyRef" in env[variable]["valueFrom"], variable
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == f"rhythm-{name}"
    secret_like = ("SECRET", "PASSWORD", "DATABASE_URL", "PRIVATE_KEY")
    for variable, entry in env.items():
        if any(word in variable for word in secret_like):
            assert "value" not in entry, f"{variable} must come from a Secret"
    for data in _config_maps(resources).values():
        assert not [k for k in data if any(word in k for word in secret_like)]


def test_the_settings_each_overlay_gives_are_accepted_by_the_services(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    for name in SERVICES:
        values = {
            key: value
            for key, value in _settings_env(resources, name).items()
            if isinstance(value, str)
        }
        if name == "notifications":  # in the cluster it comes from Secret rhythm-notifications
            values["UNSUBSCRIBE_SECRET"] = "from-the-secret-" + "x" * 32
        if "DATA_KEY_ENCRYPTION_KEY" in _settings_env(resources, name):  # Secret rhythm-data-key
            values["DATA_KEY_ENCRYPTION_KEY"] = "ZnJvbS10aGUtc2VjcmV0LXJoeXRobS1kYXRhLWtleTA"
        if "KAFKA_SASL_PASSWORD" in _settings_env(resources, name):  # from the Strimzi Secret
            values["KAFKA_SASL_PASSWORD"] = "from-the-strimzi-secret"
        load_settings(name, values)  # raises on a bad value or a refused production setup


# ---------------------------------------------------------------------------- availability


def test_every_deployment_has_one_disruption_budget_and_one_autoscaler(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    deployments = _of_kind(resources, "Deployment")
    budgets = _of_kind(resources, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [
            b
            for b in budgets.values()
            if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, name
    autoscaled: list[str] = []
    for hpa in _of_kind(resources, "HorizontalPodAutoscaler").values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        autoscaled.append(hpa["spec"]["scaleTargetRef"]["name"])
    for scaled in _of_kind(resources, "ScaledObject").values():
        autoscaled.append(scaled["spec"]["scaleTargetRef"]["name"])
    # Exactly one autoscaler per Deployment: an HPA and a KEDA ScaledObject would fight.
    assert sorted(autoscaled) == sorted(deployments)


def test_keda_scales_each_consumer_on_its_groups_lag(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    scaled_objects = _of_kind(resources, "ScaledObject")
    if name == "dev":
        assert not scaled_objects
        return
    assert set(scaled_objects) == set(CONSUMER_GROUPS)
    deployments = _of_kind(resources, "Deployment")
    bootstrap = _config_maps(resources)["rhythm-config"]["KAFKA_BOOTSTRAP_SERVERS"]
    for service, scaled in scaled_objects.items():
        spec = scaled["spec"]
        target = spec["scaleTargetRef"]
        assert (target.get("kind", "Deployment"), target["name"]) == ("Deployment", service)
        assert target["name"] in deployments
        kafka = [t for t in spec["triggers"] if t["type"] == "kafka"]
        assert kafka, service
        topics = [t["metadata"]["topic"] for t in kafka]
        assert set(topics) <= set(TOPICS)
        # More consumers than partitions would sit idle.
        assert spec["maxReplicaCount"] <= min(TOPICS[t].partitions for t in topics)
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        for trigger in kafka:
            metadata = trigger["metadata"]
            assert metadata["bootstrapServers"] == bootstrap
            assert metadata["consumerGroup"] == service
            assert int(metadata["lagThreshold"]) > 0


def test_strimzi_topics_match_the_topic_map(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    topics = {r["spec"]["topicName"]: r for r in resources if r["kind"] == "KafkaTopic"}
    expected = expected_topics()
    assert set(topics) == set(expected)
    replicas = 1 if name == "dev" else 3
    for topic, resource in topics.items():
        spec = resource["spec"]
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == "rhythm"
        assert spec["partitions"] == expected[topic].partitions, topic
        assert int(spec["config"]["retention.ms"]) == expected[topic].retention_ms, topic
        assert spec["replicas"] == replicas
        assert int(spec["config"]["min.insync.replicas"]) < replicas or replicas == 1


def _acls(user: Resource) -> dict[tuple[str, str, str], set[str]]:
    """(resource type, name, pattern) -> operations, of a KafkaUser's simple authorization."""
    assert user["spec"]["authorization"]["type"] == "simple"
    out: dict[tuple[str, str, str], set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        key = (resource["type"], resource.get("name", ""), resource.get("patternType", "literal"))
        out.setdefault(key, set()).update(acl["operations"])
    return out


def _granted(acls: dict[tuple[str, str, str], set[str]], kind: str, operation: str) -> set[str]:
    return {
        name
        for (t, name, p), ops in acls.items()
        if t == kind and p == "literal" and operation in ops
    }


def test_in_prod_each_service_is_a_kafka_user_allowed_exactly_what_it_does() -> None:
    resources = _rendered("prod")
    users = _of_kind(resources, "KafkaUser")
    assert set(users) == set(SERVICES)
    scaled = _of_kind(resources, "ScaledObject")
    config = _config_maps(resources)["rhythm-config"]
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert config["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    for name, user in users.items():
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "rhythm"
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        acls = _acls(user)
        consumed = {
            t["metadata"]["topic"]
            for t in scaled.get(name, {"spec": {"triggers": []}})["spec"]["triggers"]
            if t["type"] == "kafka"
        }
        consumed |= UNSCALED_CONSUMERS.get(name, set())
        consumes = name in CONSUMER_GROUPS or name in UNSCALED_CONSUMERS
        dlq = {f"rhythm.dlq.{name}"} if consumes else set()
        assert _granted(acls, "topic", "Read") == consumed | dlq, name
        assert _granted(acls, "topic", "Write") == PUBLISHES[name] | dlq, name
        groups = {name, f"rhythm-dlq-replay.{name}"} if consumes else set()
        assert _granted(acls, "group", "Read") == groups, name
        # The start-up topic check sees the catalog; nothing beyond it, no Create or Alter.
        assert acls[("topic", "rhythm.", "prefix")] == {"Describe", "DescribeConfigs"}
        assert not [ops for ops in acls.values() if ops & {"All", "Create", "Alter", "Delete"}]
        # The Deployment authenticates as that user, with the Secret the User Operator issues.
        env = {e["name"]: e for e in _container(_of_kind(resources, "Deployment")[name])["env"]}
        assert env["KAFKA_SASL_USERNAME"]["value"] == name
        ref = env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (name, "password")


def test_in_prod_keda_reads_each_groups_lag_as_the_service_it_scales() -> None:
    resources = _rendered("prod")
    auths = _of_kind(resources, "TriggerAuthentication")
    for name, scaled in _of_kind(resources, "ScaledObject").items():
        for trigger in (t for t in scaled["spec"]["triggers"] if t["type"] == "kafka"):
            assert trigger["metadata"]["sasl"] == "scram_sha512", name
            auth = auths[trigger["authenticationRef"]["name"]]["spec"]
            assert auth["secretTargetRef"] == [
                {"parameter": "password", "name": name, "key": "password"}
            ]
            assert auth["env"] == [
                {"parameter": "username", "name": "KAFKA_SASL_USERNAME", "containerName": "service"}
            ]


# ---------------------------------------------------------------------------- network


def test_network_policies_deny_by_default_and_allow_what_rhythm_needs(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    policies = _of_kind(resources, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    ingress_ports = {
        port["port"]
        for policy in policies.values()
        for rule in policy["spec"].get("ingress", [])
        for port in rule["ports"]
    }
    assert ingress_ports == {"http"}
    egress_ports = {
        (port["port"], port.get("protocol", "TCP"))
        for policy in policies.values()
        for rule in policy["spec"].get("egress", [])
        for port in rule["ports"]
    }
    for needed in ((53, "UDP"), (9092, "TCP"), (5432, "TCP"), (4318, "TCP"), (587, "TCP")):
        assert needed in egress_ports


# ---------------------------------------------------------------------------- overlays


def test_dev_runs_one_small_replica_in_development_mode() -> None:
    resources = _rendered("dev")
    assert _config_maps(resources)["rhythm-config"]["ENVIRONMENT"] == "development"
    for deployment in _of_kind(resources, "Deployment").values():
        assert deployment["metadata"]["namespace"] == "rhythm-dev"
        assert deployment["spec"]["replicas"] == 1
        requests = _container(deployment)["resources"]["requests"]
        assert requests["cpu"] == "50m"


def test_prod_runs_pinned_images_in_production_mode_with_budgets() -> None:
    resources = _rendered("prod")
    config = _config_maps(resources)["rhythm-config"]
    assert config["ENVIRONMENT"] == "production"
    assert config["TOPIC_REPLICATION_FACTOR"] == "3"
    for name, deployment in _of_kind(resources, "Deployment").items():
        assert deployment["metadata"]["namespace"] == "rhythm"
        assert deployment["spec"]["replicas"] >= 3
        image = _container(deployment)["image"]
        assert image.rsplit(":", 1)[-1] not in ("", "latest", "dev"), image
        assert image.split(":")[0].endswith(f"/rhythm/{name}")
    for budget in _of_kind(resources, "PodDisruptionBudget").values():
        assert "minAvailable" in budget["spec"]
        assert "maxUnavailable" not in budget["spec"]


def test_namespaces_enforce_the_restricted_pod_security_standard(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    (namespace,) = _of_kind(resources, "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == namespace["metadata"]["name"]


def test_every_kustomization_is_used_by_an_overlay() -> None:
    used: set[Path] = set()

    def walk(directory: Path) -> None:
        used.add(directory.resolve())
        data = kustomize.load_kustomization(directory)
        for entry in [*data.get("resources", []), *data.get("components", [])]:
            if (directory / entry).is_dir():
                walk(directory / entry)

    for name in OVERLAYS:
        walk(K8S / "overlays" / name)
    every = {p.parent.resolve() for p in K8S.rglob("kustomization.yaml")}
    assert every == used


def test_in_prod_only_reporting_reads_the_internal_pulse_topic_and_only_checkins_writes_it() -> (
    None
):
    users = _of_kind(_rendered("prod"), "KafkaUser")
    readers = {n for n, u in users.items() if INTERNAL_PULSE in _granted(_acls(u), "topic", "Read")}
    writers = {
        n for n, u in users.items() if INTERNAL_PULSE in _granted(_acls(u), "topic", "Write")
    }
    assert (readers, writers) == ({"reporting"}, {"checkins"})
