"""A small kustomize renderer: the subset of kustomize that deploy/k8s uses, so the tests can
check what an overlay really produces on machines without a ``kustomize``/``kubectl`` binary.

Supported: ``resources`` (files and directories), ``components``, ``namespace``, ``images``
(newName/newTag), ``replicas``, and ``patches`` given by ``path`` or inline ``patch``: strategic
merge patches (maps merge, lists of named items merge by name, ``$patch: delete``) and JSON 6902
patches (add/replace/remove) with a ``target`` of kind and/or name. Anything else raises
``Unsupported``, so a manifest change that needs real kustomize fails loudly here rather than
being rendered wrong. Where ``kubectl`` exists, test_k8s compares this output with
``kubectl kustomize``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

_KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "namespace",
    "images",
    "replicas",
    "patches",
}
#: Cluster-scoped kinds the namespace transformer leaves alone.
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class Unsupported(Exception):
    """The kustomization uses a feature this renderer does not implement."""


def load_kustomization(directory: Path) -> dict[str, Any]:
    data = yaml.safe_load((directory / "kustomization.yaml").read_text())
    if not isinstance(data, dict):
        raise Unsupported(f"{directory}: kustomization.yaml is not a mapping")
    unknown = set(data) - _KNOWN_FIELDS
    if unknown:
        raise Unsupported(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    return data


def load_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def build(directory: Path) -> list[Resource]:
    """Render the Kustomization in ``directory``, like ``kustomize build``."""
    data = load_kustomization(directory)
    if data.get("kind", "Kustomization") != "Kustomization":
        raise Unsupported(f"{directory}: a Component cannot be built on its own")
    resources = _load_resources(directory, data)
    for component in data.get("components", []):
        resources = _apply_component(directory / component, resources)
    return _transform(directory, data, resources)


def _load_resources(directory: Path, data: dict[str, Any]) -> list[Resource]:
    resources: list[Resource] = []
    for entry in data.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources.extend(build(path))
        elif path.is_file():
            resources.extend(load_documents(path))
        else:
            raise FileNotFoundError(f"{directory}: resource {entry} does not exist")
    return resources


def _apply_component(directory: Path, resources: list[Resource]) -> list[Resource]:
    data = load_kustomization(directory)
    if data.get("kind") != "Component":
        raise Unsupported(f"{directory}: not a Component")
    return _transform(directory, data, resources + _load_resources(directory, data))


def _transform(directory: Path, data: dict[str, Any], resources: list[Resource]) -> list[Resource]:
    resources = copy.deepcopy(resources)
    for patch in data.get("patches", []):
        resources = _apply_patch(directory, patch, resources)
    if "namespace" in data:
        for resource in resources:
            if resource["kind"] not in _CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = data["namespace"]
    for image in data.get("images", []):
        for container in _containers(resources):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                new_name = image.get("newName", name)
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name
    for replica in data.get("replicas", []):
        matched = [
            r
            for r in resources
            if r["kind"] in ("Deployment", "StatefulSet")
            and r["metadata"]["name"] == replica["name"]
        ]
        if not matched:
            raise KeyError(f"{directory}: replicas for unknown workload {replica['name']}")
        for resource in matched:
            resource["spec"]["replicas"] = replica["count"]
    return resources


def _containers(resources: list[Resource]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in resources:
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        found.extend(pod.get("containers", []))
        found.extend(pod.get("initContainers", []))
    return found


def _apply_patch(
    directory: Path, entry: dict[str, Any], resources: list[Resource]
) -> list[Resource]:
    if "path" in entry:
        body = yaml.safe_load((directory / entry["path"]).read_text())
    elif "patch" in entry:
        body = yaml.safe_load(entry["patch"])
    else:
        raise Unsupported(f"{directory}: a patch needs path or patch")
    target = entry.get("target")
    if isinstance(body, list):
        if not target:
            raise Unsupported(f"{directory}: a JSON 6902 patch needs a target")
        matched = [r for r in resources if _matches(r, target)]
        if not matched:
            raise KeyError(f"{directory}: patch target {target} matches nothing")
        for resource in matched:
            for operation in body:
                _json6902(resource, operation)
        return resources
    if not isinstance(body, dict):
        raise Unsupported(f"{directory}: patch is neither a map nor a list")
    target = target or {"kind": body["kind"], "name": body["metadata"]["name"]}
    matched = [r for r in resources if _matches(r, target)]
    if not matched:
        raise KeyError(f"{directory}: patch target {target} matches nothing")
    if body.get("$patch") == "delete":
        return [r for r in resources if not any(r is m for m in matched)]
    for resource in matched:
        patch = copy.deepcopy(body)
        patch.pop("apiVersion", None)
        patch.pop("kind", None)
        patch.get("metadata", {}).pop("name", None)
        _merge(resource, patch)
    return resources


def _matches(resource: Resource, target: dict[str, Any]) -> bool:
    unknown = set(target) - {"kind", "name"}
    if unknown:
        raise Unsupported(f"patch target fields {sorted(unknown)}")
    return all(
        (key == "kind" and resource["kind"] == value)
        or (key == "name" and resource["metadata"]["name"] == value)
        for key, value in target.items()
    )


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    """Strategic merge, as far as Rhythm's patches need it."""
    for key, value in patch.items():
        current = into.get(key)
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            _merge(current, value)
        elif isinstance(value, list) and isinstance(current, list) and _named(value + current):
            by_name = {item["name"]: item for item in current}
            added = []
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item)
                else:
                    added.append(copy.deepcopy(item))
            # kustomize puts the patch's new items first (as `kubectl kustomize` renders them).
            current[:0] = added
        else:
            into[key] = copy.deepcopy(value)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _json6902(resource: Resource, operation: dict[str, Any]) -> None:
    op = operation["op"]
    parts = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
    parent: Any = resource
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if op in ("add", "replace"):
        if op == "replace" and (last not in parent if isinstance(parent, dict) else False):
            raise KeyError(f"replace of missing {operation['path']}")
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op == "add":
                parent.insert(index, copy.deepcopy(operation["value"]))
            else:
                parent[index] = copy.deepcopy(operation["value"])
        else:
            parent[last] = copy.deepcopy(operation["value"])
    elif op == "remove":
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    else:
        raise Unsupported(f"JSON 6902 op {op}")
