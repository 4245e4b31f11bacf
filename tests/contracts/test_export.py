"""The published contract: JSON Schema files and the AsyncAPI 3.0 document, generated from models.

``jsonschema`` is not a dependency, so a small validator below covers the keywords pydantic emits
(enough to show each exported schema accepts its example and rejects obvious breakage).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rhythm_cli.contracts import app as contracts_cli
from rhythm_shared.contracts import EVENT_TYPES, TOPICS, Event, v1
from rhythm_shared.contracts.export import (
    JSON_SCHEMA_DIALECT,
    asyncapi_document,
    event_schema,
    export_contracts,
    schema_filename,
)

MODELS = list(v1.EVENTS)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("contracts") / "out"
    export_contracts(directory)
    return directory


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _pointer(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"non-local $ref {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"$ref {ref} does not resolve"
        assert part in node, f"$ref {ref} does not resolve"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


# A minimal JSON Schema validator for the keywords pydantic emits; returns the errors.
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _errors(schema: dict[str, Any], value: Any, root: dict[str, Any], at: str = "$") -> list[str]:
    if "$ref" in schema:
        return _errors(_pointer(root, schema["$ref"]), value, root, at)
    errors: list[str] = []
    if "anyOf" in schema and all(_errors(s, value, root, at) for s in schema["anyOf"]):
        errors.append(f"{at}: matches no anyOf branch")
    kind = schema.get("type")
    if kind is not None:
        ok = isinstance(value, _TYPES[kind]) and not (
            kind in ("integer", "number") and isinstance(value, bool)
        )
        if not ok:
            return [f"{at}: not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: {value!r} not in enum")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{at}: {value!r} is not {schema['const']!r}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{at}: {value!r} does not match pattern")
        if len(value) > schema.get("maxLength", len(value)) or len(value) < schema.get(
            "minLength", 0
        ):
            errors.append(f"{at}: bad length")
        if schema.get("format") == "date-time":
            datetime.fromisoformat(value)
        if schema.get("format") == "date":
            date.fromisoformat(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{at}: below minimum")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{at}: above maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{at}: not above exclusiveMinimum")
    if isinstance(value, list):
        if "items" in schema:
            for i, item in enumerate(value):
                errors += _errors(schema["items"], item, root, f"{at}[{i}]")
        if len(value) > schema.get("maxItems", len(value)) or len(value) < schema.get(
            "minItems", 0
        ):
            errors.append(f"{at}: bad item count")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [
            f"{at}.{name}: required" for name in schema.get("required", []) if name not in value
        ]
        for name, item in value.items():
            if name in properties:
                errors += _errors(properties[name], item, root, f"{at}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{at}.{name}: not allowed")
    return errors


def _example(model: type[Event]) -> dict[str, Any]:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    example = extra["examples"][0]  # type: ignore[index]
    assert isinstance(example, dict)
    return example


# --- JSON Schemas -----------------------------------------------------------------------------


def test_export_writes_every_file(exported: Path) -> None:
    names = sorted(path.name for path in exported.iterdir())
    schemas = [name for name in names if name.endswith(".schema.json")]
    assert len(schemas) == len(EVENT_TYPES)
    assert sorted(schemas) == sorted(schema_filename(t) for t in EVENT_TYPES)
    assert "asyncapi.json" in names
    assert "asyncapi.yaml" in names  # PyYAML is a dev dependency


def test_export_returns_the_paths_it_wrote(tmp_path: Path) -> None:
    written = export_contracts(tmp_path / "nested" / "dir")
    assert len(written) == len(EVENT_TYPES) + 2
    assert all(path.is_file() for path in written)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.type)
def test_schema_file(exported: Path, model: type[Event]) -> None:
    schema = _load(exported / schema_filename(model.type))
    assert schema == event_schema(model)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["$id"].endswith(model.type)
    assert schema["title"] == model.__name__
    assert schema["description"]
    assert schema["type"] == "object"
    # Open to additive fields: integrators' validators keep accepting a newer producer's body.
    assert schema.get("additionalProperties", True) is not False
    assert set(schema["properties"]) == set(model.model_fields)
    assert {"tenant_id", "occurred_at"} <= set(schema["required"])
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{name} has no description"
    for ref in _refs(schema):
        _pointer(schema, ref)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.type)
def test_schema_accepts_its_example_and_rejects_breakage(
    exported: Path, model: type[Event]
) -> None:
    schema = _load(exported / schema_filename(model.type))
    (example,) = schema["examples"]
    assert example == _example(model)
    assert _errors(schema, example, schema) == []
    model.model_validate(example)

    assert "notes" not in schema["properties"]  # conversation text is never part of a body
    incomplete = {k: v for k, v in example.items() if k != model.entity_field}
    assert f"$.{model.entity_field}: required" in _errors(schema, incomplete, schema)
    assert _errors(schema, {**example, "tenant_id": "a/b"}, schema)


# --- AsyncAPI -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi(exported: Path) -> dict[str, Any]:
    return _load(exported / "asyncapi.json")


def test_asyncapi_files_agree(exported: Path, asyncapi: dict[str, Any]) -> None:
    assert asyncapi == asyncapi_document()
    assert yaml.safe_load((exported / "asyncapi.yaml").read_text(encoding="utf-8")) == asyncapi


def test_asyncapi_top_level(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"]
    assert asyncapi["info"]["version"]
    assert asyncapi["defaultContentType"] == "application/json"
    assert set(asyncapi) <= {
        "asyncapi", "id", "info", "servers", "defaultContentType", "channels", "operations",
        "components",
    }  # fmt: skip


def test_every_ref_resolves(asyncapi: dict[str, Any]) -> None:
    refs = _refs(asyncapi)
    assert refs
    for ref in refs:
        _pointer(asyncapi, ref)


def test_every_topic_is_a_channel(asyncapi: dict[str, Any]) -> None:
    channels = asyncapi["channels"]
    assert {channel["address"] for channel in channels.values()} == set(TOPICS)
    for channel in channels.values():
        assert channel["description"]
        assert channel["bindings"]["kafka"]["topic"] == channel["address"]
        assert channel["messages"]


def test_every_type_is_a_message(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    assert {m["x-cloudevents-type"] for m in messages.values()} == set(EVENT_TYPES)
    for model in MODELS:
        message = messages[model.__name__]
        assert message["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        assert message["contentType"] == "application/json"
        key = message["bindings"]["kafka"]["key"]
        assert key["type"] == "string"
        (example,) = message["examples"]
        assert example["payload"] == _example(model)
        assert example["headers"]["ce_type"] == model.type
        assert re.search(key["pattern"], model.model_validate(example["payload"]).key)
        headers = _pointer(asyncapi, message["headers"]["allOf"][0]["$ref"])
        assert _errors(headers, example["headers"], asyncapi) == []
        assert {"ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "ce_subject",
                "ce_tenantid", "content-type"} <= set(headers["required"])  # fmt: skip
        assert "traceparent" in headers["properties"]
        # The payload in components validates its example too.
        assert (
            _errors(_pointer(asyncapi, message["payload"]["$ref"]), example["payload"], asyncapi)
            == []
        )
        channel = next(c for c in asyncapi["channels"].values() if c["address"] == model.topic)
        assert model.__name__ in channel["messages"]


def test_operations(asyncapi: dict[str, Any]) -> None:
    operations = asyncapi["operations"]
    sent: set[str] = set()
    for operation in operations.values():
        assert operation["action"] in ("send", "receive")
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/")
        # AsyncAPI 3.0: an operation's messages are a subset of its channel's messages.
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/")
        if operation["action"] == "send":
            sent.add(_pointer(asyncapi, channel_ref)["address"])
    assert sent == set(TOPICS)


def test_servers_can_be_added() -> None:
    document = asyncapi_document({"local": {"host": "127.0.0.1:9092", "protocol": "kafka"}})
    assert list(document)[:3] == ["asyncapi", "info", "servers"]
    assert document["servers"]["local"]["protocol"] == "kafka"
    assert "servers" not in asyncapi_document()


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_export(tmp_path: Path) -> None:
    result = CliRunner().invoke(contracts_cli, ["export", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "asyncapi.json" in result.output
    assert len(list((tmp_path / "c").glob("*.schema.json"))) == len(EVENT_TYPES)


def test_the_internal_pulse_topic_is_documented_as_internal(asyncapi: dict[str, Any]) -> None:
    channel = asyncapi["channels"]["internalPulse"]
    assert channel["address"] == "rhythm.internal.pulse.v1"
    assert channel["description"].startswith("Internal:")
    assert "consumed by reporting." in channel["description"]
    assert list(channel["messages"]) == ["PulseRecorded"]
    assert {"sendInternalPulse", "receiveInternalPulse"} <= set(asyncapi["operations"])
