"""The Trio TCP server: accepting, admission and shutdown; each connection is a
:class:`switch.connection.Connection`. No business rules.

Per connection: a reader task splits frames into a queue, and a few long-lived
worker tasks of the connection answer them, at most
``inflight_per_connection_max`` at a time (past that the reader stops reading,
so a fast sender is slowed by TCP itself). A worker is started only when a frame
arrives and every worker of the connection is busy, and then kept, so a terminal
with one request outstanding at a time costs one worker and no task, semaphore
or event per request (docs/performance.md). Each worker answers as soon as it
can, so responses go out in any order. Every request runs under
``request_deadline_s``; when it passes the terminal gets ``91``. When the whole
switch holds ``inflight_total_max`` requests, a new one is answered ``91`` at
once (DESIGN.md 6: shed load rather than let latency grow).

Errors stay inside their connection: a malformed message is answered ``30``
when its MTI and STAN can be read, otherwise (and on framing errors) the
connection is closed. Only the exception types in ``fatal_errors`` (a broken
invariant) stop the server.

Shutdown (:meth:`SwitchServer.request_shutdown`): stop accepting, stop reading,
let in-flight requests finish for up to ``shutdown_grace_s``, then close all.

Admission (spec 10), so that one peer cannot take terminals offline:

- ``connections_max`` caps all connections: one more is closed at once.
- ``not_signed_on_max`` caps the connections that have not signed on yet, apart
  from the first cap: a new connection counts at once, and when it is one too
  many the *oldest* evictable not-signed-on connection of the source address
  holding the most is closed. ``not_signed_on_per_address_max`` is the same cap
  per source address. A flood of idle sockets therefore cycles among itself
  while a terminal that signs on leaves the group. Never evicted (issue 18): a
  connection whose client certificate the CA verified, and one whose 0800 is
  being processed (a slow database must not make a real ATM lose its place);
  when nothing is evictable the new connection is the one closed.
- ``sign_on_deadline_s`` after accept, a connection that has not signed on is
  closed. The deadline is the connection's own cancel scope, set once at accept:
  keep-alives, echoes and refused requests cannot extend it.
- Before sign-on only 0800 is processed: any other request is answered ``58``
  without a MAC here, before the dispatcher and before overload shedding, so no
  key of the terminal named in field 41 is ever used for it.
- TLS: the handshake runs under ``tls_handshake_timeout_s``. When the listener
  requires client certificates, the subject CN is kept on the session and
  network management accepts a sign-on only for that terminal id.
"""

from __future__ import annotations

import errno
import itertools
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence, Set
from typing import Final

import trio

from ops.metrics import SwitchMetrics
from switch.config import ServerConfig
from switch.connection import Connection as _Connection
from switch.connection import RequestHandler, peer_host
from switch.session import SessionRegistry

__all__ = ["RequestHandler", "SwitchServer", "peer_host"]

log = logging.getLogger("atm.server")

# Requests held by the whole switch before new ones are shed with 91.
INFLIGHT_TOTAL_MAX: Final = 8192
# accept() errors that mean "out of resources": wait and retry instead of crashing.
_ACCEPT_RETRY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_RETRY_SLEEP_S: Final = 0.1
# How often the watchdog looks for idle connections and stuck writes.
WATCHDOG_INTERVAL_S: Final = 0.5


class SwitchServer:
    """Listens, accepts and serves terminal connections until shut down."""

    def __init__(
        self,
        config: ServerConfig,
        handler: RequestHandler,
        metrics: SwitchMetrics,
        sessions: SessionRegistry,
        *,
        ssl_context: ssl.SSLContext | None = None,
        inflight_total_max: int = INFLIGHT_TOTAL_MAX,
        fatal_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self.config = config
        self.handler = handler
        self.metrics = metrics
        self.sessions = sessions
        self.ssl_context = ssl_context
        self.inflight_total_max = inflight_total_max
        self.fatal_errors = fatal_errors
        self.addresses: list[tuple[str, int]] = []
        # How to listen; ``serve --reuse-port`` swaps in SO_REUSEPORT sockets (supervisor.py).
        self.open_listeners: Callable[[], Awaitable[list[trio.SocketListener]]] = (
            self._open_tcp_listeners
        )
        self.inflight_total = 0
        # MTIs whose handler answers within request_deadline_s on its own (it says so through
        # ``self_timed_mtis``): the server adds no cancel scope of its own for them.
        # (A live view of the handler's set: extensions register after the server is built.)
        self.self_timed_mtis: Set[str] = getattr(handler, "self_timed_mtis", frozenset())
        self._connections: set[_Connection] = set()
        # Not signed on yet, oldest first (dicts keep insertion order): the eviction queue.
        self._not_signed_on: dict[_Connection, None] = {}
        self._ids = itertools.count(1)
        self._shutdown = trio.Event()
        self._drained = trio.Event()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def not_signed_on_count(self) -> int:
        return len(self._not_signed_on)

    def request_shutdown(self) -> None:
        """Begin a graceful shutdown (idempotent; safe from any Trio task)."""
        self._shutdown.set()

    async def run(
        self, *, task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until :meth:`request_shutdown`; ``started(addresses)`` once listening."""
        listeners = await self.open_listeners()
        self.addresses = [_sockname(listener) for listener in listeners]
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as accepting:
                accepting.start_soon(self._watchdog)
                for listener in listeners:
                    accepting.start_soon(self._accept_loop, listener, connections)
                log.info("listening", extra={"address": _format_address(self.addresses[0])})
                task_status.started(list(self.addresses))
                await self._shutdown.wait()
                accepting.cancel_scope.cancel()
            for listener in listeners:
                await trio.aclose_forcefully(listener)
            await self._drain(connections)

    async def _watchdog(self) -> None:
        """Idle and write timeouts for every connection, checked every ``WATCHDOG_INTERVAL_S``.

        One task instead of a cancel scope per read and per write (a scope costs tens of
        microseconds here, several per request; docs/performance.md): a connection idle past
        ``idle_timeout_s`` stops reading and closes; one whose peer has not taken a response
        for ``WRITE_TIMEOUT_S`` is aborted. Timeouts fire up to one interval late.
        """
        while True:
            await trio.sleep(WATCHDOG_INTERVAL_S)
            now = trio.current_time()
            for connection in list(self._connections):
                connection.check_timeouts(now)

    async def _open_tcp_listeners(self) -> list[trio.SocketListener]:
        return await trio.open_tcp_listeners(self.config.port, host=self.config.host)

    async def _drain(self, connections: trio.Nursery) -> None:
        log.info("draining", extra={"count": len(self._connections)})
        for connection in list(self._connections):
            connection.stop_reading("shutdown")
        if self._connections:
            with trio.move_on_after(self.config.shutdown_grace_s):
                await self._drained.wait()
        connections.cancel_scope.cancel()

    async def _accept_loop(self, listener: trio.SocketListener, connections: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_RETRY_ERRNOS:
                    raise
                log.warning(
                    "accept failed; retrying", extra={"reason": errno.errorcode.get(exc.errno or 0)}
                )
                await trio.sleep(ACCEPT_RETRY_SLEEP_S)
                continue
            if len(self._connections) >= self.config.connections_max:
                self.metrics.connections_rejected.inc()
                await trio.aclose_forcefully(stream)
                continue
            self.start_connection(self._wrap(stream), _peer(stream), connections)

    def start_connection(self, stream: trio.abc.Stream, peer: str, nursery: trio.Nursery) -> None:
        """Serve one accepted stream in ``nursery``; it counts as not signed on at once.

        The accept loop's second half, public so that tests can feed in-memory streams.
        """
        connection = _Connection(self, stream, next(self._ids), peer)
        self._connections.add(connection)
        self._not_signed_on[connection] = None
        self._admit_within_caps(connection)
        nursery.start_soon(self._serve, connection)

    def _admit_within_caps(self, new: _Connection) -> None:
        """Apply both not-signed-on caps after ``new`` joined: per source address, then for
        the whole switch, evicting from the address holding the most (issue 18)."""
        same_address = [c for c in self._not_signed_on if c.address == new.address]
        if len(same_address) > self.config.not_signed_on_per_address_max:
            self._evict_one(same_address, new)
        if len(self._not_signed_on) > self.config.not_signed_on_max:
            counts = Counter(c.address for c in self._not_signed_on if c.evictable)
            crowded = max(counts, key=lambda a: counts[a], default=new.address)
            self._evict_one([c for c in self._not_signed_on if c.address == crowded], new)

    def _evict_one(self, oldest_first: list[_Connection], new: _Connection) -> None:
        """Close the oldest evictable connection of the group, or the new one when none is:
        a connection with a verified client certificate or a sign-on in flight never is."""
        victim = next((c for c in oldest_first if c.evictable), new)
        self._not_signed_on.pop(victim, None)
        victim.close_now("not_signed_on_evicted")

    def signed_on(self, connection: _Connection) -> None:
        """``connection`` signed on (or proved who it is with a client certificate): it
        leaves the eviction queue."""
        self._not_signed_on.pop(connection, None)

    def _wrap(self, stream: trio.SocketStream) -> trio.abc.Stream:
        if self.ssl_context is None:
            return stream
        return trio.SSLStream(stream, self.ssl_context, server_side=True, https_compatible=False)

    async def _serve(self, connection: _Connection) -> None:
        self.metrics.connections.inc()
        self.metrics.connections_open_now += 1
        log.info(
            "connection opened",
            extra={
                "connection_id": connection.session.connection_id,
                "peer": connection.session.peer,
            },
        )
        try:
            await connection.run()
        except ExceptionGroup as group:  # never swallow Cancelled (a BaseException)
            fatal, _ = group.split(self.fatal_errors) if self.fatal_errors else (None, None)
            if fatal is not None:
                raise
            log.exception(
                "connection failed", extra={"connection_id": connection.session.connection_id}
            )
        finally:
            self._connections.discard(connection)
            self._not_signed_on.pop(connection, None)
            self.sessions.release(connection.session)
            self.metrics.connections_open_now -= 1
            await trio.aclose_forcefully(connection.stream)
            log.info(
                "connection closed",
                extra={
                    "connection_id": connection.session.connection_id,
                    "terminal_id": connection.session.terminal_id,
                },
            )
            if self._shutdown.is_set() and not self._connections:
                self._drained.set()


def _sockname(listener: trio.SocketListener) -> tuple[str, int]:
    name = listener.socket.getsockname()
    return str(name[0]), int(name[1])


def _format_address(address: Sequence[object]) -> str:
    host = str(address[0])
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


def _peer(stream: trio.SocketStream) -> str:
    try:
        return _format_address(stream.socket.getpeername())
    except OSError:
        return "unknown"
