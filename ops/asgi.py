"""Serve an ASGI application under Trio with Hypercorn's HTTP machinery and a connection cap.

Hypercorn's own ``serve`` accepts every connection it is offered; an ops or admin port must not
let a scraper storm or a slow client exhaust the process's file descriptors, so this module runs
the accept loop itself and hands each connection to Hypercorn's per-connection ``TCPServer``
only while fewer than ``connections_max`` are open. A connection over the cap gets a canned
``503`` and is closed at once. Both the ops endpoint (:mod:`ops.http`) and the admin API
(:mod:`switch.admin`) use it, so the project has one HTTP stack.

Hypercorn's ``TCPServer`` and ``WorkerContext`` are internal classes: the dependency is pinned
below 0.19 in pyproject.toml and ``tests/admin/test_ops_asgi.py`` covers the cap.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app

log = logging.getLogger("atm.ops.asgi")

KEEP_ALIVE_S: Final = 5  # an idle keep-alive connection is closed after this
READ_TIMEOUT_S: Final = 10  # a client that stops sending mid-request is dropped
REQUEST_HEAD_BYTES_MAX: Final = 16 * 1024  # request line + headers
BODY_BYTES_MAX: Final = 1024 * 1024  # the largest JSON body or CSV form we accept
REFUSE_S: Final = 1.0  # the longest a refused connection is kept
OVER_CAP_RESPONSE: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 12\r\nConnection: close\r\n\r\ntoo popular\n"
)


def hypercorn_config() -> HypercornConfig:
    """Hypercorn settings shared by every port: short timeouts, bounded requests, no access log."""
    config = HypercornConfig()
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.read_timeout = READ_TIMEOUT_S
    config.h11_max_incomplete_size = REQUEST_HEAD_BYTES_MAX
    config.wsgi_max_body_size = BODY_BYTES_MAX
    config.accesslog = None
    config.errorlog = None
    return config


async def serve_asgi(
    app: Any,
    host: str,
    port: int,
    *,
    connections_max: int,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until cancelled; ``started((host, port))`` once listening (port 0 picks)."""
    if connections_max < 1:
        raise ValueError("connections_max must be at least 1")
    config = hypercorn_config()
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)
    listeners = await trio.open_tcp_listeners(port, host=host)
    address = listeners[0].socket.getsockname()
    limiter = trio.CapacityLimiter(connections_max)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            limiter.acquire_nowait()
        except trio.WouldBlock:
            await _refuse(stream)
            return
        try:
            await TCPServer(wrapped, config, context, {}, stream)  # type: ignore[arg-type]
        finally:
            limiter.release()

    async with trio.open_nursery() as nursery:
        task_status.started((str(address[0]), int(address[1])))
        for listener in listeners:
            nursery.start_soon(trio.serve_listeners, handle, [listener])


async def _refuse(stream: trio.SocketStream) -> None:
    """Over the cap: say so in one write and close, without reading the request."""
    try:
        with trio.move_on_after(REFUSE_S):
            await stream.send_all(OVER_CAP_RESPONSE)
            await stream.send_eof()
            # Drain what the client sent, so closing does not reset the connection (an RST
            # would destroy the 503 before the client reads it); bounded in bytes and time.
            drained = 0
            while drained < REQUEST_HEAD_BYTES_MAX and (chunk := await stream.receive_some(4096)):
                drained += len(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
