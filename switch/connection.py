"""One terminal connection of :class:`switch.server.SwitchServer`: its reader, its workers,
its writer (the module docstring of ``switch/server.py`` describes the whole contract).

The reader splits frames into a queue; a few long-lived workers of the connection answer
them (started only when a frame arrives and every worker is busy, parked when idle), at
most ``inflight_per_connection_max`` at a time, so a terminal with one request outstanding
costs one worker and no task, semaphore or event per request (docs/performance.md).
"""

from __future__ import annotations

import logging
import math
import ssl
from collections import deque
from typing import TYPE_CHECKING, Final, Protocol

import trio

from switch.outbox import WRITE_TIMEOUT_S, Outbox, WriteFailed
from switch.protocol.answer import Reply, payload_of, response_code_of
from switch.protocol.codes import NetworkCode, ResponseCode, is_request_mti
from switch.protocol.errors import FrameTooLarge, FramingError, MessageFormatError
from switch.protocol.framing import FrameDecoder, encode_frame
from switch.protocol.message import Message, decode_message, encode_message
from switch.protocol.responses import (
    encode_format_error_response,
    response_fields,
    response_mti,
)
from switch.session import Session

if TYPE_CHECKING:
    from switch.server import SwitchServer

log = logging.getLogger("atm.server")

RECEIVE_CHUNK_BYTES: Final = 16384  # below FrameDecoder's buffer bound (16 max frames)
# After a request's deadline, how long building the 91 (an HSM MAC) may take.
FALLBACK_ANSWER_TIMEOUT_S: Final = 1.0
# The only MTI processed before sign-on (spec 10).
SIGN_ON_MTI: Final = b"0800"


class RequestHandler(Protocol):
    """What the server needs from the dispatcher."""

    async def handle(self, request: Message, raw: bytes, session: Session) -> Reply: ...

    async def fallback_response(
        self, request: Message, session: Session, response_code: str
    ) -> bytes | None: ...


class Connection:
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
        if self.session.signed_on and not self._admitted:
            # Before the answer leaves: a terminal that has its 0800 answer must already be
            # out of the eviction queue, or its next connection could find it still there.
            self._admit()
        payload = payload_of(response)
        if payload is not None:
            await self.send(payload)
        else:
            self.server.metrics.protocol_error("unexpected_response")
        response_code = response_code_of(response)
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

    async def _answer(self, request: Message, raw: bytes) -> Reply:
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

    async def _fallback(self, request: Message, response_code: str) -> Reply:
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


def peer_host(peer: str) -> str:
    """The host of ``host:port`` / ``[v6]:port`` (an in-memory peer name is kept whole)."""
    host, sep, port = peer.rpartition(":")
    if not sep or not port.isdigit():
        return peer
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host
