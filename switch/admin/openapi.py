"""The OpenAPI 3.1 document, generated from the operation table (served at /api/openapi.json).

Each operation lists the roles that may call it (``x-roles``) and whether it changes anything
(``x-changes``), so an outside check can test the role matrix from the document alone.
"""

from __future__ import annotations

from typing import Any, Final

from switch.admin.catalogue import OPERATIONS
from switch.admin.errors import STATUS_BY_CODE
from switch.admin.operations import Operation
from switch.admin.schema import obj, string

ERROR: Final = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string", "enum": sorted(STATUS_BY_CODE)},
                   "message": {"type": "string"}},
}
_DESCRIPTIONS: Final = {200: "OK", 201: "Created", 202: "Accepted: waiting for a second person",
                        400: "Invalid request", 401: "Not logged in", 403: "Role not allowed",
                        404: "Not found", 409: "Conflict", 413: "Body too large",
                        415: "Not JSON", 429: "Throttled", 503: "Database unavailable"}
LOGIN_BODY: Final = obj({"username": string(max_length=64),
                         "password": string(max_length=256)})


def _error(status: int) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(status: int) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {}}}}


def _operation(op: Operation) -> dict[str, Any]:
    errors = [400, 401, 403, 404, 503]
    if op.changes:
        errors += [409]
    if op.body is not None:
        errors += [413, 415]
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "x-roles": sorted(op.roles),
        "x-changes": op.changes,
        "security": [{"bearer": []}],
        "parameters": [
            {"name": p.name, "in": p.location, "required": p.required, "schema": p.schema}
            | ({"description": p.description} if p.description else {})
            for p in op.params
        ],
        "responses": {str(s): _ok(s) for s in op.statuses}
        | {str(s): _error(s) for s in errors},
    }
    if op.body is not None:
        doc["requestBody"] = {"required": True,
                              "content": {"application/json": {"schema": op.body}}}
    return doc


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    paths.setdefault("/api/session", {})["post"] = {
        "operationId": "session.login",
        "summary": "Log in: a bearer token for the API (anonymous)",
        "tags": ["people"],
        "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": LOGIN_BODY}}},
        "responses": {"200": {"description": "Logged in", "content": {"application/json": {
            "schema": {"type": "object", "required": ["token"],
                       "properties": {"token": {"type": "string"},
                                      "expires_in_s": {"type": "integer"},
                                      "role": {"type": "string"}}}}}},
                      **{str(s): _error(s) for s in (400, 401, 413, 415, 429, 503)}},
    }
    paths["/healthz"] = {"get": {
        "operationId": "health", "summary": "Liveness (anonymous)", "tags": ["ops"],
        "security": [],
        "responses": {"200": {"description": "alive",
                              "content": {"application/json": {"schema": {}}}}},
    }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "atm-switch back office", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
