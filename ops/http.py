"""The ops HTTP endpoint on its own port: ``/metrics``, ``/healthz``, ``/readyz``.

A small Starlette application served by :func:`ops.asgi.serve_asgi` (Hypercorn's HTTP/1.1 on
Trio), the same stack as the admin API, so there is one HTTP implementation to keep safe.
The endpoint stays unauthenticated and read-only (GET and HEAD only) and has its own connection
cap. ``/metrics`` is prometheus-client's own ASGI app over the switch's registry.

``/readyz`` answers from a cached readiness result: a load balancer polling every node every
second must not become a query per poll on PostgreSQL. At most one readiness check runs at a
time, and its answer is reused for ``readiness_ttl_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import trio
from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ops.asgi import serve_asgi
from ops.metrics import SwitchMetrics

log = logging.getLogger("atm.ops.http")

READINESS_TIMEOUT_S: Final = 2.0  # /readyz answers 503 rather than hang
READINESS_TTL_S: Final = 1.0  # one readiness check (a database ping) per second at most
OPS_CONNECTIONS_MAX: Final = 64  # scrapers and orchestrator probes; more is a storm

Readiness = Callable[[], Awaitable[bool]]


class OpsEndpointUnavailable(OSError):
    """The ops endpoint's port cannot be bound: named apart from the terminal port, so the
    operator is told which of the two ports is taken."""


class CachedReadiness:
    """Readiness checked at most once per ``ttl_s``, one check at a time."""

    def __init__(self, ready: Readiness, ttl_s: float) -> None:
        self._ready = ready
        self._ttl_s = ttl_s
        self._lock = trio.Lock()
        self._value = False
        self._checked_at: float | None = None

    async def __call__(self) -> bool:
        async with self._lock:  # concurrent probes wait for the one check in flight
            now = trio.current_time()
            if self._checked_at is None or now - self._checked_at >= self._ttl_s:
                value = False
                with trio.move_on_after(READINESS_TIMEOUT_S):
                    value = await self._ready()
                self._value = value
                self._checked_at = trio.current_time()
            return self._value


def ops_app(metrics: SwitchMetrics, ready: Readiness, *, readiness_ttl_s: float) -> Starlette:
    """The ops ASGI application (exposed for tests)."""
    readiness = CachedReadiness(ready, readiness_ttl_s)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if await readiness():
            return PlainTextResponse("ready\n")
        return PlainTextResponse("not ready\n", status_code=503)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
            Route("/metrics", _ReadOnlyMetrics(make_asgi_app(registry=metrics.registry))),
        ]
    )


class _ReadOnlyMetrics:
    """prometheus-client's ASGI app, GET/HEAD only (it would answer any method)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await PlainTextResponse("method not allowed\n", status_code=405)(scope, receive, send)
            return
        await self._app(scope, receive, send)


async def serve_ops(
    host: str,
    port: int,
    metrics: SwitchMetrics,
    ready: Readiness,
    *,
    readiness_ttl_s: float = READINESS_TTL_S,
    connections_max: int = OPS_CONNECTIONS_MAX,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``started((host, port))`` once listening (port 0 picks one)."""
    app = ops_app(metrics, ready, readiness_ttl_s=readiness_ttl_s)
    async with trio.open_nursery() as nursery:
        try:
            address: tuple[str, int] = await nursery.start(
                lambda task_status: serve_asgi(
                    app, host, port, connections_max=connections_max, task_status=task_status
                )
            )
        except OSError as exc:
            raise OpsEndpointUnavailable(
                exc.errno, f"cannot listen on the ops endpoint {host}:{port}: "
                f"{exc.strerror or exc} (ops.metrics_port)"
            ) from exc
        log.info("ops endpoint listening", extra={"address": f"{address[0]}:{address[1]}"})
        task_status.started(address)
