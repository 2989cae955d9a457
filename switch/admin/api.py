"""The admin HTTP API: a Starlette application routed from the operation table.

Every request under ``/api/`` except login is authenticated by a bearer token, checked against
the operation's roles (403), validated against the operation's schemas (400), and, when it
changes anything, written to the audit trail before the answer leaves. Errors are always JSON
``{"code", "message"}``. The console (:mod:`switch.admin.console`) shares the application.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from switch.admin import audit, openapi, sessions, users
from switch.admin.catalogue import OPERATIONS
from switch.admin.context import AdminContext
from switch.admin.errors import ApiError
from switch.admin.operations import Call, Changed, Operation
from switch.admin.schema import coerce_parameter, validate
from switch.admin.throttle import LoginThrottle
from switch.db.runtime import DatabaseUnavailable

log = logging.getLogger("atm.admin.api")

JSON_BODY_BYTES_MAX: Final = 64 * 1024
SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
}


def json_response(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str).encode()
    return Response(body, status, headers=SECURITY_HEADERS, media_type="application/json")


def error_response(error: ApiError) -> Response:
    return json_response(error.body(), error.status)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def read_json(request: Request) -> Any:
    """The JSON body (bounded; checked against the operation's schema by :func:`invoke`)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ApiError("unsupported_media_type", "send application/json")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > JSON_BODY_BYTES_MAX:
            raise ApiError("payload_too_large", f"a body is at most {JSON_BODY_BYTES_MAX} bytes")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError("bad_request", "the body is not JSON") from exc
    return value


def coerce_params(op: Operation, raw: dict[str, str], *, empty_is_absent: bool
                  ) -> dict[str, Any]:
    """The operation's declared parameters, converted and checked (undeclared ones ignored).

    For the API an empty value is a value (``?date=`` is refused, not ignored); an HTML form
    sends every field, so the console treats an empty one as absent.
    """
    found: dict[str, Any] = {}
    for param in op.params:
        value = raw.get(param.name)
        if value is None or (empty_is_absent and value == ""):
            if param.required:
                raise ApiError("invalid_field", f"{param.name}: required")
            continue
        found[param.name] = coerce_parameter(value, param.schema, param.name)
    return found


async def invoke(ctx: AdminContext, principal: sessions.Principal, op: Operation,
                 raw_params: dict[str, str], body: Any, *, empty_is_absent: bool = True) -> Any:
    """Run one operation for a principal: role check, schemas, handler, and the audit row of a
    change before returning. The API and the console both come through here."""
    if principal.role not in op.roles:
        raise ApiError("forbidden", f"role {principal.role} may not {op.operation_id}")
    params = coerce_params(op, raw_params, empty_is_absent=empty_is_absent)
    checked = validate(body, op.body, "body") if op.body is not None else None
    if not op.changes:
        return await op.handler(ctx, Call(principal, params, checked))
    # The change and its audit row commit together or not at all (issue 18): the handler
    # sees a database handle bound to one transaction, and the audit row is its last write.
    async with ctx.db.transaction() as tx:
        result = await op.handler(replace(ctx, db=tx), Call(principal, params, checked))
        if not isinstance(result, Changed):
            raise RuntimeError(f"{op.operation_id} changed something without an audit record")
        await audit.record(tx, principal, action=result.action, subject=result.subject,
                           before=result.before, after=result.after)
    return result


def _endpoint(ctx: AdminContext, op: Operation) -> Any:
    async def endpoint(request: Request) -> Response:
        token = bearer_token(request)
        principal = None
        if token is not None:
            principal = await sessions.resolve(ctx.db, token, kind="api",
                                               address=client_address(request))
        if principal is None:
            raise ApiError("unauthenticated", "log in first: POST /api/session")
        if principal.role not in op.roles:  # before reading the body of a refused call
            raise ApiError("forbidden", f"role {principal.role} may not {op.operation_id}")
        raw = dict(request.query_params) | {k: str(v) for k, v in request.path_params.items()}
        body = await read_json(request) if op.body is not None else None
        result = await invoke(ctx, principal, op, raw, body, empty_is_absent=False)
        if op.operation_id == "session.logout":
            await sessions.revoke(ctx.db, token or "")
        if isinstance(result, Changed):
            return json_response(result.response, result.status)
        return json_response(result)

    endpoint.__name__ = op.operation_id.replace(".", "_")
    return endpoint


def _login(ctx: AdminContext, throttle: LoginThrottle) -> Any:
    async def login(request: Request) -> Response:
        address = client_address(request) or "unknown"
        if not throttle.allow(address):
            raise ApiError("throttled", "too many login attempts from this address")
        body = validate(await read_json(request), openapi.LOGIN_BODY, "body")
        try:
            user = await users.authenticate(ctx.db, body["username"], body["password"])
        except users.LoginRefused as exc:
            if exc.throttled:
                raise ApiError("throttled", "account locked for a while after failures") from exc
            raise ApiError("unauthenticated", "wrong user name or password") from exc
        principal = sessions.Principal(user.username, user.role, "api", address)
        async with ctx.db.transaction() as tx:
            made = await sessions.open_session(tx, user, kind="api", address=address)
            await audit.record(tx, principal, action="session.login",
                               subject=f"user:{user.username}", before=None,
                               after={"kind": "api"})
        return json_response({"token": made.token, "expires_in_s": made.expires_in_s,
                              "role": user.role})

    return login


def _openapi(ctx: AdminContext) -> Any:
    document = openapi.document()

    async def serve(request: Request) -> Response:
        token = bearer_token(request)
        if token is None or await sessions.resolve(ctx.db, token, kind="api",
                                                   address=client_address(request)) is None:
            raise ApiError("unauthenticated", "log in first: POST /api/session")
        return json_response(document)

    return serve


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


def api_routes(ctx: AdminContext) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/session", _login(ctx, LoginThrottle()), methods=["POST"]),
        Route("/api/openapi.json", _openapi(ctx), methods=["GET"]),
    ]
    # Several operations share a path with different methods: one Route per (path, method).
    routes += [Route(op.path, _endpoint(ctx, op), methods=[op.method]) for op in OPERATIONS]
    return routes


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return json_response({"code": code, "message": str(exc.detail)}, exc.status_code)


async def _unavailable(request: Request, exc: Exception) -> Response:
    return error_response(ApiError("unavailable", "the database is unavailable"))


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("admin request failed", exc_info=exc)
    return error_response(ApiError("internal", "internal error"))


def exception_handlers() -> dict[Any, Any]:
    return {ApiError: _api_error, HTTPException: _http_error,
            DatabaseUnavailable: _unavailable, Exception: _internal}


def admin_app(ctx: AdminContext, extra_routes: list[BaseRoute] | None = None) -> Starlette:
    return Starlette(routes=api_routes(ctx) + (extra_routes or []),
                     exception_handlers=exception_handlers())
