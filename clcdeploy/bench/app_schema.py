"""The app-result JSON schema (one file, shared with the Android app) and a validator for the subset it uses.

Supported JSON Schema (draft 2020-12) keywords: `type` (name or list), `enum`, `const`, `required`,
`properties`, `additionalProperties` (bool or schema), `items`, `minItems`, `minimum`. Any other keyword in
the schema file is refused when the schema is loaded, so the file cannot silently outgrow this checker.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "app_result.schema.json"

_ANNOTATIONS = {"$schema", "$id", "title", "description"}
_SUPPORTED = _ANNOTATIONS | {
    "type", "enum", "const", "required", "properties", "additionalProperties", "items", "minItems", "minimum",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The schema shipped in this package (the same file the app's Kotlin keys are tested against)."""
    text = resources.files("clcdeploy.bench").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema = json.loads(text)
    _check_supported(schema, "#")
    return schema


def _check_supported(schema: dict[str, Any], where: str) -> None:
    unknown = set(schema) - _SUPPORTED
    if unknown:
        raise ValueError(f"{SCHEMA_FILE} at {where} uses keywords this validator does not implement: {sorted(unknown)}")
    for name, sub in schema.get("properties", {}).items():
        _check_supported(sub, f"{where}/properties/{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _check_supported(schema[key], f"{where}/{key}")


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[name])


def validate(value: Any, schema: dict[str, Any] | None = None, path: str = "$") -> list[str]:
    """Every violation of `schema` (default: the app-result schema) by `value`, as `path: problem` lines."""
    schema = load_schema() if schema is None else schema
    problems: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, n) for n in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(value).__name__} {value!r:.60}"]
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must be {schema['const']!r}, got {value!r:.60}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: must be one of {schema['enum']}, got {value!r:.60}")
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        problems.append(f"{path}: must be >= {schema['minimum']}, got {value}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{path}: needs at least {schema['minItems']} item(s), has {len(value)}")
        if "items" in schema:
            for i, item in enumerate(value):
                problems += validate(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{path}: missing required key {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                problems += validate(item, props[key], f"{path}.{key}")
            elif extra is False:
                problems.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                problems += validate(item, extra, f"{path}.{key}")
    return problems
