"""A small JSON Schema subset checked on every request body and parameter.

The same schema objects go into the OpenAPI document, so what the document promises is what
the server enforces: types ``object`` (properties, required, additionalProperties false),
``string`` (pattern, enum, maxLength, minLength), ``integer`` (minimum, maximum),
``boolean``, ``array`` (items, minItems, maxItems).
"""

from __future__ import annotations

import re
from typing import Any

from switch.admin.errors import ApiError

Schema = dict[str, Any]


def string(pattern: str | None = None, *, max_length: int = 64, enum: tuple[str, ...] = (),
           min_length: int = 1) -> Schema:
    schema: Schema = {"type": "string", "maxLength": max_length, "minLength": min_length}
    if pattern:
        schema["pattern"] = pattern
    if enum:
        schema["enum"] = list(enum)
    return schema


def integer(minimum: int, maximum: int) -> Schema:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": required | (optional or {}),
        "required": list(required),
        "additionalProperties": False,
    }


def validate(value: Any, schema: Schema, where: str) -> Any:
    """``value`` if it matches ``schema``; else ``ApiError("invalid_field", ...)`` naming it."""
    kind = schema.get("type")
    if kind == "object":
        return _object(value, schema, where)
    if kind == "string":
        return _string(value, schema, where)
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError("invalid_field", f"{where}: must be an integer")
        if not schema["minimum"] <= value <= schema["maximum"]:
            raise ApiError("invalid_field",
                           f"{where}: must be {schema['minimum']}..{schema['maximum']}")
        return value
    if kind == "array":
        if not isinstance(value, list):
            raise ApiError("invalid_field", f"{where}: must be an array")
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 1000):
            raise ApiError("invalid_field", f"{where}: wrong number of items")
        return [validate(item, schema["items"], f"{where}[{i}]") for i, item in enumerate(value)]
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ApiError("invalid_field", f"{where}: must be true or false")
        return value
    raise ValueError(f"schema type {kind!r} not supported")


def _object(value: Any, schema: Schema, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError("invalid_field", f"{where}: must be a JSON object")
    properties: dict[str, Schema] = schema["properties"]
    for name in schema["required"]:
        if name not in value:
            raise ApiError("invalid_field", f"{where}.{name}: required")
    unknown = sorted(set(value) - set(properties))
    if unknown:
        raise ApiError("invalid_field", f"{where}.{unknown[0]}: unknown field")
    return {name: validate(item, properties[name], f"{where}.{name}")
            for name, item in value.items()}


def _string(value: Any, schema: Schema, where: str) -> str:
    if not isinstance(value, str):
        raise ApiError("invalid_field", f"{where}: must be a string")
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 1 << 20):
        raise ApiError("invalid_field", f"{where}: wrong length")
    if "enum" in schema and value not in schema["enum"]:
        raise ApiError("invalid_field", f"{where}: must be one of {', '.join(schema['enum'])}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        raise ApiError("invalid_field", f"{where}: wrong format")
    return value


def coerce_parameter(raw: str, schema: Schema, where: str) -> Any:
    """Query and path parameters arrive as text: convert, then validate."""
    if schema.get("type") == "integer":
        if not re.fullmatch(r"-?[0-9]{1,18}", raw):
            raise ApiError("invalid_field", f"{where}: must be an integer")
        return validate(int(raw), schema, where)
    if schema.get("type") == "boolean":
        if raw not in ("true", "false"):
            raise ApiError("invalid_field", f"{where}: must be true or false")
        return raw == "true"
    return validate(raw, schema, where)
