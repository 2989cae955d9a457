"""The Trio TCP server: one task per terminal connection, no business rules.

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
import math
import ssl
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence, Set
from typing import Final, Protocol

import trio

from ops.metrics import SwitchMetrics
from switch.config import ServerConfig
from switch.outbox import WRITE_TIMEOUT_S, Outbox, WriteFailed
from switch.protocol.codes import NetworkCode, ResponseCode, is_request_mti
from switch.protocol.errors import FrameTooLarge, FramingError, MessageFormatError
from switch.protocol.framing import FrameDecoder, encode_frame
from switch.protocol.message import Message, decode_message, encode_message, peek_field
from switch.protocol.responses import (
    encode_format_error_response,
    response_fields,
    response_mti,
)
from switch.session import Session, SessionRegistry

log = logging.getLogger("atm.server")

RECEIVE_CHUNK_BYTES: Final = 16384  # below FrameDecoder's buffer bound (16 max frames)
# Requests held by the whole switch before new ones are shed with 91.
INFLIGHT_TOTAL_MAX: Final = 8192
# After a request's deadline, how long building the 91 (an HSM MAC) may take.
FALLBACK_ANSWER_TIMEOUT_S: Final = 1.0
# accept() errors that mean "out of resources": wait and retry instead of crashing.
_ACCEPT_RETRY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_RETRY_SLEEP_S: Final = 0.1
# How often the watchdog looks for idle connections and stuck writes.
WATCHDOG_INTERVAL_S: Final = 0.5
# The only MTI processed before sign-on (spec 10).
SIGN_ON_MTI: Final = b"0800"


class RequestHandler(Protocol):
    """What the server needs from the dispatcher."""

    async def handle(self, request: Message, raw: bytes, session: Session) -> bytes | None: ...

    async def fallback_response(
        self, request: Message, session: Session, response_code: str
    ) -> bytes | None: ...


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


class _Connection:
    """One terminal connection: its reader, its in-flight requests, its writer lock."""

    def __init__(
        self, server: SwitchServer, stream: trio.abc.Stream, connection_id: int, peer: str
    ) -> None:
        self.server = server
        self.stream = stream
        self.config = server.config
        self.session = Session(connection_id=connection_id, peer=peer)
        self.address = peer_host(peer)  # the per-address cap counts hosts, not ports
        self.certified = False  # a client certificate the listener's CA verified
        self.sign_ons_in_flight = 0
        self.session.attach_close_hook(self.stop_reading)
        self._decoder = FrameDecoder(
            max_bytes=self.config.frame_size_bytes_max, framing=self.config.framing
        )
        # Frames read and not yet taken by a worker, and the workers: busy ones plus idle
        # ones parked in ``_idle`` until the reader queues a frame (or reading ends).
        self._queue: deque[tuple[bytes, float]] = deque()
        self._requests = 0  # queued + being answered: at most inflight_per_connection_max
        self._workers = 0
        self._idle = trio.lowlevel.ParkingLot()
        self._room = trio.lowlevel.ParkingLot()  # the reader waits here when the cap is full
        self._reading = True
        self._outbox = Outbox(stream, write_timeout_s=None)  # the server's watchdog times writes
        self.last_receive_at = trio.current_time()
        self._reader_scope = trio.CancelScope()
        self._tasks: trio.Nursery | None = None
        # The whole connection's scope: its deadline is the sign-on deadline (spec 10),
        # lifted once at sign-on; cancelling it closes the connection (evict, abort).
        self._life = trio.CancelScope(deadline=trio.current_time() + self.config.sign_on_deadline_s)
        self._admitted = False
        self.close_reason: str | None = None

    @property
    def evictable(self) -> bool:
        """Only an anonymous connection idle before sign-on may make room for another."""
        return not (self.certified or self.sign_ons_in_flight or self.session.signed_on)

    def stop_reading(self, reason: str) -> None:
        """Read no further requests; the connection closes once in-flight ones are answered."""
        log.info(
            "connection stops reading",
            extra={"connection_id": self.session.connection_id, "reason": reason},
        )
        self.session.closing = True
        self._reader_scope.cancel()

    def abort(self) -> None:
        """Close now, abandoning in-flight requests (a peer that cannot be written to)."""
        if self.close_reason is None:
            self.close_reason = "aborted"  # not to be counted as a missed sign-on deadline
        self._life.cancel()

    def close_now(self, reason: str) -> None:
        """Close at once for an admission reason (evicted, handshake failed): counted and logged."""
        if self.close_reason is None:
            self.close_reason = reason
            self.server.metrics.protocol_error(reason)
            log.info("connection refused admission", extra=self._log_extra(reason=reason))
        self._life.cancel()

    async def run(self) -> None:
        with self._life:
            if not await self._handshake():
                return
            async with trio.open_nursery() as tasks:
                self._tasks = tasks
                try:
                    with self._reader_scope:
                        await self._read_frames(tasks)
                finally:
                    # Workers finish what is queued, then end (and so does the nursery).
                    self._reading = False
                    self._idle.unpark_all()
        if self._life.cancelled_caught and not self._admitted and self.close_reason is None:
            self.close_reason = "sign_on_deadline"
            self.server.metrics.protocol_error("sign_on_deadline")
            log.info("no sign-on before the deadline; closing", extra=self._log_extra())

    async def _handshake(self) -> bool:
        """Finish TLS under its own deadline; keep the client certificate's CN on the session."""
        stream = self.stream
        if not isinstance(stream, trio.SSLStream):
            return True
        with trio.move_on_after(self.config.tls_handshake_timeout_s):
            try:
                await stream.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.close_now("tls_handshake")
                return False
            context = self.server.ssl_context
            if context is not None and context.verify_mode == ssl.CERT_REQUIRED:
                self.session.certificate_cn = certificate_common_name(stream.getpeercert())
                # The CA vouched for this peer: a connect flood cannot evict it (issue 18).
                self.certified = True
                self.server.signed_on(self)
            return True
        self.close_now("tls_handshake")
        return False

    def _admit(self) -> None:
        """Signed on: no sign-on deadline any more, out of the eviction queue."""
        self._admitted = True
        self._life.deadline = math.inf
        self.server.signed_on(self)

    async def _read_frames(self, tasks: trio.Nursery) -> None:
        while True:
            data = await self._receive()
            if not data:
                return
            try:
                self._decoder.receive_data(data)
                while (frame := self._decoder.next_frame()) is not None:
                    if not frame:
                        continue  # a zero-length frame: keep-alive
                    if self._requests >= self.config.inflight_per_connection_max:
                        await self._room.park()  # back-pressure: stop reading while full
                    self._requests += 1
                    self._queue.append((frame, trio.current_time()))
                    if self._idle:
                        self._idle.unpark()
                    else:
                        self._workers += 1
                        tasks.start_soon(self._work)
            except FramingError as exc:
                kind = "frame_too_large" if isinstance(exc, FrameTooLarge) else "framing"
                self.server.metrics.protocol_error(kind)
                log.warning(
                    "framing error; closing",
                    extra=self._log_extra(reason=str(exc), error_kind=kind),
                )
                return

    async def _receive(self) -> bytes | bytearray:
        """The next bytes, or b"" on close or reset (idle timeouts: :meth:`check_timeouts`)."""
        try:
            data = await self.stream.receive_some(RECEIVE_CHUNK_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""
        self.last_receive_at = trio.current_time()
        return data

    def check_timeouts(self, now: float) -> None:
        """Called by the server's watchdog: idle connections close, stuck writers abort."""
        started = self._outbox.write_started_at
        if started is not None and now - started > WRITE_TIMEOUT_S:
            self.server.metrics.protocol_error("write_timeout")
            log.warning("write timeout; closing", extra=self._log_extra())
            self.abort()
            return
        if not self.session.closing and now - self.last_receive_at > self.config.idle_timeout_s:
            self.server.metrics.protocol_error("idle_timeout")
            log.info("idle timeout; closing", extra=self._log_extra())
            self.stop_reading("idle timeout")

    async def _work(self) -> None:
        """One worker: answer queued frames one after the other until reading has ended
        and nothing is left; park while the queue is empty."""
        try:
            while True:
                while self._queue:
                    frame, received_at = self._queue.popleft()
                    try:
                        await self._serve_frame(frame, received_at)
                    finally:
                        self._requests -= 1
                        if self._room:
                            self._room.unpark()
                if not self._reading:
                    return
                await self._idle.park()
        finally:
            self._workers -= 1

    async def _serve_frame(self, frame: bytes, received_at: float) -> None:
        server = self.server
        server.inflight_total += 1
        server.metrics.in_flight_now += 1
        try:
            if self.session.signed_on:
                await self._answer_frame(frame, received_at)
            elif frame[:4] == SIGN_ON_MTI:
                # A sign-on being looked up is not evicted for being slow (issue 18).
                self.sign_ons_in_flight += 1
                try:
                    await self._answer_frame(frame, received_at)
                finally:
                    self.sign_ons_in_flight -= 1
                if self.session.signed_on and not self._admitted:
                    self._admit()
            else:
                await self._refuse_before_sign_on(frame)
        finally:
            server.inflight_total -= 1
            server.metrics.in_flight_now -= 1

    async def _refuse_before_sign_on(self, frame: bytes) -> None:
        """Spec 10: before sign-on anything but an 0800 gets ``58`` without a MAC.

        Nothing of the request is looked up (no terminal, no key): the answer only
        echoes its fields. Unreadable MTI or STAN: the format-error path (close).
        """
        try:
            request = decode_message(frame)
        except MessageFormatError as exc:
            await self._answer_format_error(exc)
            return
        self.server.metrics.protocol_error("before_sign_on")
        if not is_request_mti(request.mti) or request.stan is None:
            self.stop_reading("unanswerable message before sign-on")
            return
        answer = encode_message(
            response_mti(request.mti),
            response_fields(request, ResponseCode.NOT_PERMITTED_TO_TERMINAL),
        )
        await self.send(answer)

    async def _answer_frame(self, frame: bytes, received_at: float) -> None:
        try:
            request = decode_message(frame)
        except MessageFormatError as exc:
            await self._answer_format_error(exc)
            return
        response = await self._answer(request, frame)
        if response is not None:
            await self.send(response)
        else:
            self.server.metrics.protocol_error("unexpected_response")
        response_code = _response_code(response)
        self.server.metrics.observe_request(
            request.mti,
            request.processing_code,
            response_code,
            (request.message_class or "other"),
            trio.current_time() - received_at,
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "answered",
                extra=self._log_extra(
                    mti=request.mti,
                    stan=request.stan,
                    response_code=response_code,
                    fields=request.fields,
                ),
            )

    async def _answer_format_error(self, exc: MessageFormatError) -> None:
        answer = encode_format_error_response(exc)
        if answer is None:
            self.server.metrics.protocol_error("format_unanswerable")
            log.warning("unreadable message; closing", extra=self._log_extra(reason=str(exc)))
            self.stop_reading("unreadable message")
            return
        self.server.metrics.protocol_error("format")
        log.info("format error", extra=self._log_extra(mti=exc.mti, stan=exc.stan, reason=str(exc)))
        await self.send(answer)

    async def _answer(self, request: Message, raw: bytes) -> bytes | None:
        server = self.server
        handler = server.handler
        is_echo = request.mti == "0800" and request.network_code is NetworkCode.ECHO
        if server.inflight_total > server.inflight_total_max and not is_echo:
            server.metrics.shed.inc()
            return await self._fallback(request, ResponseCode.UNAVAILABLE)
        try:
            if request.mti in server.self_timed_mtis:
                # The handler keeps this deadline itself (and answers 91 inside it).
                return await handler.handle(request, raw, self.session)
            with trio.move_on_after(self.config.request_deadline_s):
                return await handler.handle(request, raw, self.session)
        except server.fatal_errors:
            raise
        except Exception:
            log.exception(
                "request handler failed", extra=self._log_extra(mti=request.mti, stan=request.stan)
            )
            return await self._fallback(request, ResponseCode.SYSTEM_MALFUNCTION)
        log.warning(
            "request deadline passed", extra=self._log_extra(mti=request.mti, stan=request.stan)
        )
        return await self._fallback(request, ResponseCode.UNAVAILABLE)

    async def _fallback(self, request: Message, response_code: str) -> bytes | None:
        with trio.move_on_after(FALLBACK_ANSWER_TIMEOUT_S):
            return await self.server.handler.fallback_response(request, self.session, response_code)
        return None

    async def send(self, payload: bytes) -> None:
        """Write one framed message; a peer that is gone or does not read in time is dropped."""
        try:
            await self._outbox.send(encode_frame(payload, self.config.framing))
        except WriteFailed as exc:
            if exc.reason == "write timeout":
                self.server.metrics.protocol_error("write_timeout")
                log.warning("write timeout; closing", extra=self._log_extra())
            self.abort()

    def _log_extra(self, **extra: object) -> dict[str, object]:
        return {
            "connection_id": self.session.connection_id,
            "terminal_id": self.session.terminal_id,
            **extra,
        }


def certificate_common_name(certificate: object) -> str:
    """The subject CN of a verified peer certificate (``getpeercert()``), or "" (matches no
    terminal) when there is none or more than one."""
    names: list[str] = []
    subject = certificate.get("subject", ()) if isinstance(certificate, dict) else ()
    for rdn in subject:
        names.extend(str(value) for key, value in rdn if key == "commonName")
    return names[0] if len(names) == 1 else ""


def _response_code(response: bytes | None) -> str | None:
    """Field 39 of an answer: carried by the answer itself when its builder set it (no second
    decode on the hot path), else read from the bytes."""
    if response is None:
        return None
    code: str | None = getattr(response, "response_code", None)
    return code if code is not None else peek_field(response, "39")


def _sockname(listener: trio.SocketListener) -> tuple[str, int]:
    name = listener.socket.getsockname()
    return str(name[0]), int(name[1])


def _format_address(address: Sequence[object]) -> str:
    host = str(address[0])
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


def peer_host(peer: str) -> str:
    """The host of ``host:port`` / ``[v6]:port`` (an in-memory peer name is kept whole)."""
    host, sep, port = peer.rpartition(":")
    if not sep or not port.isdigit():
        return peer
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _peer(stream: trio.SocketStream) -> str:
    try:
        return _format_address(stream.socket.getpeername())
    except OSError:
        return "unknown"
