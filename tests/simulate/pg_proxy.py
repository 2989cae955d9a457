"""A fault-injecting TCP proxy between the switch and PostgreSQL (the switch's DSN points here;
the proxy forwards to the server's Unix socket).

It reads the frontend side of the PostgreSQL wire protocol just enough to see where a statement
ends (``Sync`` of the extended protocol, or a simple ``Query``), because that is where the
database boundary fails in real life:

* ``db.delay``: the statement reaches PostgreSQL, but its reply is held for ``delay_s`` (past
  the switch's request deadline), then delivered: the commit happened, the switch learns it late;
* ``db.cut_before``: the connection is cut before the statement reaches PostgreSQL (nothing
  of it happens; an open transaction rolls back);
* ``db.cut_after``: the statement is sent, then the connection is cut before any reply: the
  switch cannot know whether it committed;
* ``db.slow``: the reply is held a little (well inside the deadline) so requests pile up into
  batches.

Faults fire only while a window is open (``open_window``), each statement with the window's
probability, drawn from a generator seeded by the history's seed. Each switch instance talks
to its own ``Front`` (port); ``sever`` drops all of a front's connections at once and closes
it for good: that is how a switch "dies" in-process (nothing it does afterwards reaches the
database, see docs/simulation.md).
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

import trio

receive_bytes_max = 65536
# Untyped startup-phase requests (protocol codes from the PostgreSQL documentation).
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_STATEMENT_ENDS = frozenset(b"SQ")  # Sync, simple Query
# Parse, Bind, Describe, Execute, Close: parts of a statement, sent on when it ends. Anything
# else (Flush, Terminate, a password) goes on at once.
_STATEMENT_PARTS = frozenset(b"PBDEC")


class DbFault(StrEnum):
    DELAY = "db.delay"
    CUT_BEFORE = "db.cut_before"
    CUT_AFTER = "db.cut_after"
    SLOW = "db.slow"


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """While open, each statement gets ``fault`` with ``probability``."""

    fault: DbFault
    probability: float
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within 0..1")


class _Link:
    """One proxied connection: the switch's socket and PostgreSQL's."""

    def __init__(self, client: trio.SocketStream, server: trio.SocketStream) -> None:
        self.client = client
        self.server = server
        self.hold_until = 0.0  # server -> client bytes wait until this trio time
        self.closed = trio.Event()

    async def close(self) -> None:
        self.closed.set()
        for stream in (self.client, self.server):
            await trio.aclose_forcefully(stream)


class Front:
    """The proxy's face for one switch instance: its own port and connections, so that once
    severed nothing of that instance (a task still waiting for a pool connection, say) can
    reach the database again."""

    def __init__(self, port: int, scope: trio.CancelScope) -> None:
        self.port = port
        self.scope = scope
        self.links: set[_Link] = set()
        self.severed = False

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}?sslmode=disable"


class PgProxy:
    """Forwards to PostgreSQL's socket; ``open_front`` gives each switch instance a port."""

    def __init__(self, socket_path: str, *, seed: int = 0) -> None:
        self.socket_path = socket_path
        self.window: FaultWindow | None = None
        self.fired: Counter[str] = Counter()
        self.statements = 0
        self._rng = random.Random(f"{seed}:pg-proxy")

    def open_window(self, window: FaultWindow | None) -> None:
        self.window = window

    async def open_front(self, nursery: trio.Nursery) -> Front:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        front = Front(listeners[0].socket.getsockname()[1], trio.CancelScope())

        async def serve() -> None:
            with front.scope:
                await trio.serve_listeners(
                    lambda client: self._serve(front, client),  # type: ignore[arg-type]
                    listeners)

        nursery.start_soon(serve)
        return front

    async def sever(self, front: Front) -> None:
        """Drop every connection of ``front`` (held replies are lost) and close its port."""
        front.severed = True
        front.scope.cancel()
        for link in list(front.links):
            await link.close()

    async def _serve(self, front: Front, client: trio.SocketStream) -> None:
        if front.severed:
            await trio.aclose_forcefully(client)
            return
        try:
            server = await trio.open_unix_socket(self.socket_path)
        except OSError:  # PostgreSQL down or restarting: the switch sees a refused connection
            await trio.aclose_forcefully(client)
            return
        link = _Link(client, server)
        front.links.add(link)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._client_to_server, link, nursery.cancel_scope)
                nursery.start_soon(self._server_to_client, link, nursery.cancel_scope)
        finally:
            front.links.discard(link)
            await link.close()

    async def _client_to_server(self, link: _Link, scope: trio.CancelScope) -> None:
        buffer = bytearray()
        startup = True  # the first messages carry no type byte
        pending = bytearray()  # messages of the current statement, sent at its end
        try:
            while True:
                data = await link.client.receive_some(receive_bytes_max)
                if not data:
                    break
                buffer += data
                while True:
                    message, kind, startup = _next_message(buffer, startup)
                    if message is None:
                        break
                    pending += message
                    if kind in _STATEMENT_ENDS:
                        if not await self._forward_statement(link, bytes(pending)):
                            scope.cancel()
                            return
                        pending.clear()
                    elif kind not in _STATEMENT_PARTS:
                        await link.server.send_all(bytes(pending))
                        pending.clear()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        scope.cancel()

    async def _forward_statement(self, link: _Link, payload: bytes) -> bool:
        """Send one statement on, or fail it; False when the connection was cut."""
        self.statements += 1
        window = self.window
        if window is None or self._rng.random() >= window.probability:
            await link.server.send_all(payload)
            return True
        self.fired[window.fault.value] += 1
        if window.fault is DbFault.CUT_BEFORE:
            await link.close()
            return False
        if window.fault is DbFault.CUT_AFTER:
            link.hold_until = float("inf")  # the reply is never delivered
            await link.server.send_all(payload)
            await trio.sleep(0.05)  # let PostgreSQL read it
            await link.close()
            return False
        await link.server.send_all(payload)
        link.hold_until = max(link.hold_until, trio.current_time() + window.delay_s)
        return True

    async def _server_to_client(self, link: _Link, scope: trio.CancelScope) -> None:
        try:
            while True:
                data = await link.server.receive_some(receive_bytes_max)
                if not data:
                    break
                if link.hold_until > trio.current_time():
                    await trio.sleep_until(link.hold_until)
                await link.client.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        scope.cancel()


def _next_message(buffer: bytearray, startup: bool) -> tuple[bytes | None, int | None, bool]:
    """Cut one frontend message off ``buffer``: (bytes, type byte or None, still in startup)."""
    if startup:
        if len(buffer) < 8:
            return None, None, True
        length, code = struct.unpack("!II", buffer[:8])
        if len(buffer) < length:
            return None, None, True
        message = bytes(buffer[:length])
        del buffer[:length]
        # After an SSL/GSS request another untyped message follows; a cancel request ends it.
        return message, None, code in (_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST)
    if len(buffer) < 5:
        return None, None, False
    (length,) = struct.unpack("!I", buffer[1:5])
    if len(buffer) < 1 + length:
        return None, None, False
    message = bytes(buffer[: 1 + length])
    del buffer[: 1 + length]
    return message, message[0], False
