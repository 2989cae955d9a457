"""The terminal side of the host link (spec 1, 5.1): one TCP (or TLS) connection to the switch.

``HostConnection`` frames and sends requests, matches responses by fields 41 + 11
(they may come back in any order), allows up to 8 requests outstanding, keeps the
STAN counter (wraps 999999 -> 000001) and offers sign-on, echo and sign-off. MACs
are optional hooks, so the simulator and tests can MAC requests with their TAK and
check the responses' MACs.

    async with open_host_connection("127.0.0.1", 8583, terminal_id="ATM00001") as link:
        assert (await link.sign_on()).response_code == "00"
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

import trio

from switch.protocol.codes import NetworkCode
from switch.protocol.errors import MessageFormatError, ProtocolError
from switch.protocol.framing import FrameDecoder, encode_frame
from switch.protocol.message import (
    Message,
    decode_message,
    encode_message,
    encode_message_async_mac,
    peek_field,
)

OUTSTANDING_MAX: Final = 8  # spec 1
STAN_MAX: Final = 999_999  # spec 2 field 11: wraps to 000001
RESPONSE_TIMEOUT_S: Final = 30.0  # a terminal waits this long before it reverses
UNMATCHED_KEPT_MAX: Final = 64  # responses matching no request, kept for inspection

RequestMac = Callable[[bytes], Awaitable[str]]
ResponseCheck = Callable[[Message, bytes], Awaitable[None]]


class HostLinkError(Exception):
    """Base of the host link's errors."""


class HostTimeout(HostLinkError):
    """No response within the response timeout."""


class HostConnectionClosed(HostLinkError):
    """The switch closed the connection (or it broke) before the response arrived."""


def transmission_datetime(now: dt.datetime | None = None) -> str:
    """Field 7, MMDDhhmmss in UTC."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%m%d%H%M%S")


class HostConnection:
    """A connected host link; :meth:`run_reader` runs in a nursery (open_host_connection)."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        terminal_id: str,
        framing: str = "binary2",
        max_frame_bytes: int = 4096,
        response_timeout_s: float = RESPONSE_TIMEOUT_S,
        first_stan: int = 1,
        mac_request: RequestMac | None = None,
        check_response: ResponseCheck | None = None,
    ) -> None:
        self.stream = stream
        self.terminal_id = terminal_id
        self.field41 = terminal_id.ljust(8)[:8]
        self.framing = framing
        self.response_timeout_s = response_timeout_s
        #: MAC hooks: ``mac_request(mac_input) -> hex`` for 0200/0220/0420 and
        #: ``check_response(message, raw)`` (raises) for MACed responses; both settable later.
        self.mac_request = mac_request
        self.check_response = check_response
        self.unmatched: list[Message] = []
        self._decoder = FrameDecoder(max_bytes=max_frame_bytes, framing=framing)
        self._stan = (first_stan - 1) % STAN_MAX
        self._slots = trio.Semaphore(OUTSTANDING_MAX)
        self._send_lock = trio.Lock()
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def next_stan(self) -> str:
        """The next STAN: +1 per new message, 999999 -> 000001."""
        self._stan = self._stan % STAN_MAX + 1
        return f"{self._stan:06d}"

    async def sign_on(self) -> Message:
        return await self.network_request(NetworkCode.SIGN_ON)

    async def echo(self) -> Message:
        return await self.network_request(NetworkCode.ECHO)

    async def sign_off(self) -> Message:
        return await self.network_request(NetworkCode.SIGN_OFF)

    async def network_request(self, code: str) -> Message:
        """An 0800 with field 70 = ``code`` (no MAC, spec 5.1)."""
        return await self.request("0800", {"70": str(code)}, mac=False)

    async def request(
        self, mti: str, fields: Mapping[str, str], *, mac: bool | None = None
    ) -> Message:
        """Send a request and wait for its response.

        Fills 11 (next STAN), 41 and 7 when absent. ``mac`` defaults to "MAC when a
        ``mac_request`` hook is set and the MTI is not 08xx".
        """
        complete = dict(fields)
        complete.setdefault("41", self.field41)
        complete.setdefault("11", self.next_stan())
        complete.setdefault("7", transmission_datetime())
        use_mac = (
            (self.mac_request is not None and not mti.startswith("08")) if mac is None else mac
        )
        if use_mac:
            if self.mac_request is None:
                raise HostLinkError("mac=True needs a mac_request hook")
            raw = await encode_message_async_mac(mti, complete, mac=self.mac_request)
        else:
            raw = encode_message(mti, complete)
        return await self.request_encoded(raw)

    async def request_encoded(self, raw: bytes) -> Message:
        """Send an already encoded request (e.g. from ``terminals.hostlink.financial``)."""
        key = (peek_field(raw, "41") or "", peek_field(raw, "11") or "")
        async with self._slots:
            if key in self._pending:
                raise HostLinkError(f"a request with 41+11 {key} is already outstanding")
            pending = _Pending()
            self._pending[key] = pending
            try:
                await self.send_payload(raw)
                with trio.move_on_after(self.response_timeout_s):
                    await pending.done.wait()
            finally:
                del self._pending[key]
        return await self._result(pending, key)

    async def _result(self, pending: _Pending, key: tuple[str, str]) -> Message:
        if pending.response is None:
            if self._closed:
                raise HostConnectionClosed(f"connection closed before the response to {key}")
            raise HostTimeout(f"no response to {key} within {self.response_timeout_s} s")
        if self.check_response is not None and pending.response.mac is not None:
            await self.check_response(pending.response, pending.raw)
        return pending.response

    async def send_payload(self, payload: bytes) -> None:
        """Frame and send bytes as one message (tests use it to send junk)."""
        await self.send_bytes(encode_frame(payload, self.framing))

    async def send_bytes(self, data: bytes) -> None:
        """Send bytes as they are, no framing."""
        async with self._send_lock:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._mark_closed()
                raise HostConnectionClosed(str(exc)) from exc

    async def run_reader(self) -> None:
        """Read responses and hand each to its waiting request, until the connection ends."""
        try:
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    return
                self._decoder.receive_data(data)
                while (frame := self._decoder.next_frame()) is not None:
                    self._deliver(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError):
            return
        finally:
            self._mark_closed()

    def _deliver(self, frame: bytes) -> None:
        try:
            message = decode_message(frame)
        except MessageFormatError:
            return  # a terminal ignores a response it cannot read (it will time out and reverse)
        pending = self._pending.get((message.fields.get("41", ""), message.stan or ""))
        if pending is None or pending.done.is_set():
            if len(self.unmatched) < UNMATCHED_KEPT_MAX:
                self.unmatched.append(message)
            return
        pending.response, pending.raw = message, frame
        pending.done.set()

    def _mark_closed(self) -> None:
        self._closed = True
        for pending in self._pending.values():
            pending.done.set()

    async def aclose(self) -> None:
        self._mark_closed()
        await trio.aclose_forcefully(self.stream)


class _Pending:
    __slots__ = ("done", "raw", "response")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.response: Message | None = None
        self.raw = b""


@contextlib.asynccontextmanager
async def open_host_connection(
    host: str,
    port: int,
    *,
    terminal_id: str,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    **options: Any,
) -> AsyncIterator[HostConnection]:
    """Connect (TLS when ``ssl_context`` is given), run the reader, close on exit."""
    stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    if ssl_context is not None:
        stream = trio.SSLStream(stream, ssl_context, server_hostname=server_hostname or host)
    link = HostConnection(stream, terminal_id=terminal_id, **options)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(link.run_reader)
        try:
            yield link
        finally:
            await link.aclose()
            nursery.cancel_scope.cancel()
