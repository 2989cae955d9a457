"""The ops HTTP endpoint on its own port: ``/metrics``, ``/healthz``, ``/readyz``.

A deliberately tiny HTTP/1.1 responder on Trio (one request per connection,
``Connection: close``): it serves three GETs to Prometheus and orchestrators,
so it needs no web framework. Requests are bounded in size and time, connections in
number (``CONNECTIONS_MAX``: one more is closed at once), and ``/readyz`` reuses its last
answer for ``READINESS_CACHE_S`` (one check at a time), so a flood of probes can neither
exhaust descriptors nor turn into a flood of database queries (issue 11 item 6).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from ops.metrics import SwitchMetrics

log = logging.getLogger("atm.ops.http")

REQUEST_BYTES_MAX: Final = 8192  # a GET with headers; more is not a scrape
REQUEST_TIMEOUT_S: Final = 5.0  # slow clients must not hold a connection
READINESS_TIMEOUT_S: Final = 2.0  # /readyz answers 503 rather than hang
READINESS_CACHE_S: Final = 1.0  # /readyz answers within this age come from the last check
CONNECTIONS_MAX: Final = 64  # scrapers and probes need a handful; more are closed at once
CONTENT_TYPE_METRICS: Final = "text/plain; version=0.0.4; charset=utf-8"

Readiness = Callable[[], Awaitable[bool]]


async def serve_ops(
    host: str,
    port: int,
    metrics: SwitchMetrics,
    ready: Readiness,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``started((host, port))`` once listening (port 0 picks one)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    address = listeners[0].socket.getsockname()
    log.info("ops endpoint listening", extra={"address": f"{address[0]}:{address[1]}"})
    handler = _Handler(metrics, _CachedReadiness(ready))
    async with trio.open_nursery() as nursery:
        task_status.started((str(address[0]), int(address[1])))
        for listener in listeners:
            nursery.start_soon(trio.serve_listeners, handler, [listener])


class _CachedReadiness:
    """A "ready" answer is reused for ``READINESS_CACHE_S``; checks run one at a time and the
    callers that waited for one share its answer."""

    def __init__(self, check: Readiness, clock: Callable[[], float] = trio.current_time) -> None:
        self._check = check
        self._clock = clock
        self._value = False
        self._at = -float("inf")
        self._lock = trio.Lock()
        self.checks = 0  # how many times the real check ran (tests)

    async def __call__(self) -> bool:
        arrived = self._clock()
        async with self._lock:
            shared = self._at >= arrived  # a check finished while this caller waited
            fresh = self._value and self._clock() - self._at < READINESS_CACHE_S
            if not (shared or fresh):  # "not ready" is re-checked, one check at a time
                self.checks += 1
                value = False
                with trio.move_on_after(READINESS_TIMEOUT_S):
                    value = await self._check()
                self._value, self._at = value, self._clock()
            return self._value


class _Handler:
    def __init__(self, metrics: SwitchMetrics, ready: Readiness) -> None:
        self._metrics = metrics
        self._ready = ready
        self.open = 0

    async def __call__(self, stream: trio.SocketStream) -> None:
        if self.open >= CONNECTIONS_MAX:
            await trio.aclose_forcefully(stream)
            return
        self.open += 1
        try:
            await self._serve(stream)
        finally:
            self.open -= 1

    async def _serve(self, stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(REQUEST_TIMEOUT_S):
                request_line = await _read_request_line(stream)
                await stream.send_all(await self._respond(request_line or ""))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _respond(self, request_line: str) -> bytes:
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return _response(400, "text/plain", b"bad request\n")
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _response(405, "text/plain", b"method not allowed\n")
        status, content_type, body = await self._route(target)
        return _response(status, content_type, b"" if method == "HEAD" else body, len(body))

    async def _route(self, target: str) -> tuple[int, str, bytes]:
        if target == "/metrics":
            return 200, CONTENT_TYPE_METRICS, self._metrics.exposition()
        if target == "/healthz":
            return 200, "text/plain", b"ok\n"
        if target == "/readyz":
            ready = False
            with trio.move_on_after(READINESS_TIMEOUT_S):
                ready = await self._ready()
            return (200, "text/plain", b"ready\n") if ready else (503, "text/plain", b"not ready\n")
        return 404, "text/plain", b"not found\n"


async def _read_request_line(stream: trio.SocketStream) -> str | None:
    """Read up to the end of the headers; return the request line (None if invalid)."""
    received = bytearray()
    while b"\r\n\r\n" not in received and b"\n\n" not in received:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        received += chunk
        if len(received) > REQUEST_BYTES_MAX:
            return None
    line = bytes(received.split(b"\n", 1)[0]).rstrip(b"\r")
    try:
        return line.decode("ascii")
    except UnicodeDecodeError:
        return None


_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


def _response(status: int, content_type: str, body: bytes, length: int | None = None) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
