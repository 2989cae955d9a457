"""A reusable outbound ISO 8583 link to a card network (Trio), built on ``switch/protocol``.

The switch is the client here: it connects, signs on (0800/001), sends an echo (0800/301)
when the link has been idle, matches each response to its request by the response MTI and
fields 41 + 11, gives every request a deadline, bounds the requests in flight, and
reconnects with bounded exponential backoff when the connection breaks. The network may
send 0800s of its own: echo and sign-on/sign-off are answered (a sign-off stops traffic,
``92``, until the network signs on again).

A misbehaving peer ends *that link*, never the process (issue 11 item 2): an answer whose
MAC is missing or does not verify, a frame that cannot be decoded, a message the link did
not expect (a request other than an 0800, an answer to nothing it sent recently), or a peer
that does not read what is sent within ``send_timeout_s`` resets the connection, and the
loop reconnects with backoff. With ``tls_ca`` set the link speaks TLS 1.2+ (verifying the
network's certificate), presenting ``tls_cert``/``tls_key`` as its client certificate.

    link = OutboundLink(LinkSettings(host, port))  # LinkSettings: link_settings.py
    await nursery.start(link.run)
    response = await link.request("0200", fields, deadline=trio.current_time() + 3)
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

import trio

from switch.networks.base import (
    NetworkProtocolError,
    NetworkSignedOff,
    NetworkStatus,
    NetworkUnavailable,
)
from switch.networks.link_settings import LinkSettings, next_backoff
from switch.protocol.codes import NetworkCode
from switch.protocol.errors import MessageBuildError, ProtocolError
from switch.protocol.framing import FrameDecoder, encode_frame
from switch.protocol.message import (
    Message,
    decode_message,
    encode_message,
    encode_message_async_mac,
)
from switch.protocol.responses import response_mti

log = logging.getLogger("atm.networks.link")

STAN_MAX: Final = 999_999  # field 11 wraps 999999 -> 000001
receive_bytes_max: Final = 65_536  # one receive_some call
# Answers to requests that already timed out are tolerated (logged, dropped) for this many of
# the most recent request keys; an answer to anything else is unexpected and resets the link.
recent_keys_max: Final = 1_024

AsyncMac = Callable[[bytes], Awaitable[str]]
ResponseCheck = Callable[[Message, bytes], Awaitable[None]]


class _LinkBroken(Exception):
    """The current connection is unusable (no sign-on / echo answer, peer closed)."""


class _PeerMisbehaved(Exception):
    """The peer sent something it must not (bad MAC, junk, an unexpected message)."""


class _Pending:
    __slots__ = ("done", "raw", "response")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.response: Message | None = None
        self.raw = b""


class OutboundLink:
    """One long-lived connection to a network; :meth:`run` keeps it up."""

    def __init__(
        self,
        settings: LinkSettings,
        *,
        mac: AsyncMac | None = None,
        check_response: ResponseCheck | None = None,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.settings = settings
        self.mac = mac  # MACs requests of the 02xx/04xx classes when set
        self.check_response = check_response  # verifies MAC'd responses (raises)
        self._clock = clock
        self._stream: trio.abc.Stream | None = None
        self._signed_on = False
        self._signed_off_by_peer = False
        self._pending: dict[tuple[str, str, str], _Pending] = {}
        self._send_lock = trio.Lock()
        self._stan = 0
        self._last_received = 0.0
        self._recent_keys: collections.deque[tuple[str, str, str]] = collections.deque(
            maxlen=recent_keys_max
        )
        self._misbehaved: str | None = None  # why the current connection must end
        self._tls = settings.tls_context()
        self.connections = 0  # how many times a connection was signed on (for tests / metrics)
        self.changed = trio.Event()  # set (and replaced) on every status change

    @property
    def status(self) -> NetworkStatus:
        if self._signed_off_by_peer:
            return NetworkStatus.SIGNED_OFF
        return NetworkStatus.SIGNED_ON if self._signed_on else NetworkStatus.LINK_DOWN

    @property
    def inflight(self) -> int:
        return len(self._pending)

    def next_stan(self) -> str:
        self._stan = self._stan % STAN_MAX + 1
        return f"{self._stan:06d}"

    def _set_status(self, *, signed_on: bool | None = None, peer_off: bool | None = None) -> None:
        if signed_on is not None:
            self._signed_on = signed_on
        if peer_off is not None:
            self._signed_off_by_peer = peer_off
        self.changed.set()
        self.changed = trio.Event()

    def _warn_if_plain(self) -> None:
        """A link without TLS shows its traffic (PANs, amounts) to the path: say so loudly."""
        if self._tls is not None:
            return
        extra = self._log_extra(reason="no tls_ca: plain TCP")
        if self.settings.insecure:
            log.warning("network link without TLS (insecure = true)", extra=extra)
        else:
            log.error("INSECURE network link: plain TCP, no TLS (set tls_ca; insecure = true "
                      "only for a lab)", extra=extra)

    # -- the connection loop --------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, sign on, serve; reconnect with backoff. ``started()`` after the first try."""
        backoff = self.settings.reconnect_backoff_min_s
        started = False
        self._warn_if_plain()

        def report_started() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        while True:
            try:
                stream = await self._connect()
            except (OSError, trio.TooSlowError) as exc:
                log.info("network link connect failed", extra={"reason": repr(exc)})
            else:
                signed_on = await self._serve(stream, report_started)
                if signed_on:
                    backoff = self.settings.reconnect_backoff_min_s
            report_started()
            await trio.sleep(backoff)
            backoff = next_backoff(backoff, self.settings)

    async def _connect(self) -> trio.abc.Stream:
        settings = self.settings
        with trio.fail_after(settings.connect_timeout_s):
            stream: trio.abc.Stream = await trio.open_tcp_stream(settings.host, settings.port)
            if self._tls is not None:
                tls = trio.SSLStream(
                    stream, self._tls, server_hostname=settings.tls_server_name or settings.host
                )
                try:
                    await tls.do_handshake()
                except trio.BrokenResourceError as exc:
                    await trio.aclose_forcefully(stream)
                    raise OSError(f"TLS handshake failed: {exc.__cause__ or exc}") from exc
                stream = tls
            return stream

    async def _serve(self, stream: trio.abc.Stream, report_started: Callable[[], None]) -> bool:
        """Run one connection until it breaks; True if it got signed on."""
        self._stream = stream
        self._last_received = self._clock()
        self._misbehaved = None
        signed_on = False
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop, stream, nursery.cancel_scope)
                try:
                    await self._sign_on()
                    signed_on = True
                    self.connections += 1
                    log.info("network link up", extra=self._log_extra())
                    report_started()
                    await self._echo_loop()
                except (_LinkBroken, NetworkUnavailable, trio.BrokenResourceError,
                        trio.ClosedResourceError) as exc:
                    log.info("network link reset", extra=self._log_extra(reason=repr(exc)))
                nursery.cancel_scope.cancel()
        finally:
            self._stream = None
            self._set_status(signed_on=False)
            log.info("network link down", extra=self._log_extra(reason=self._misbehaved))
            for pending in self._pending.values():
                pending.done.set()
            await trio.aclose_forcefully(stream)
        return signed_on

    async def _sign_on(self) -> None:
        answer = await self._network_request(NetworkCode.SIGN_ON)
        if answer.response_code != "00":
            self._set_status(peer_off=True)
            raise _LinkBroken(f"sign-on refused with {answer.response_code}")
        self._set_status(signed_on=True, peer_off=False)

    async def _echo_loop(self) -> None:
        idle_s = self.settings.echo_idle_s
        while True:
            await trio.sleep_until(self._last_received + idle_s)
            if self._clock() - self._last_received >= idle_s:
                await self._network_request(NetworkCode.ECHO)

    async def _network_request(self, code: str) -> Message:
        deadline = self._clock() + self.settings.network_management_timeout_s
        fields = {"70": str(code), "41": self.settings.node_id.ljust(8)[:8]}
        message, _ = await self._exchange("0800", fields, deadline, mac=False)
        return message

    # -- reading --------------------------------------------------------------------------

    async def _read_loop(self, stream: trio.abc.Stream, scope: trio.CancelScope) -> None:
        decoder = FrameDecoder(self.settings.frame_size_bytes_max, self.settings.framing)
        try:
            while True:
                data = await stream.receive_some(receive_bytes_max)
                if not data:
                    break
                self._last_received = self._clock()
                decoder.receive_data(data)
                while (frame := decoder.next_frame()) is not None:
                    await self._on_frame(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError) as exc:
            log.info("network link read ended", extra=self._log_extra(reason=repr(exc)))
        except (_PeerMisbehaved, NetworkUnavailable) as exc:
            self._misbehaved = str(exc)
            log.warning("network peer misbehaved; resetting the link",
                        extra=self._log_extra(reason=str(exc)))
        scope.cancel()  # the connection is over: stop the echo loop too

    async def _on_frame(self, frame: bytes) -> None:
        if not frame:
            return  # keep-alive
        try:
            message = decode_message(frame)
        except ProtocolError as exc:
            raise _PeerMisbehaved(f"undecodable message: {type(exc).__name__}") from None
        if int(message.mti[2]) % 2 == 1:
            key = (message.mti, message.fields.get("41", ""), message.stan or "")
            pending = self._pending.get(key)
            if pending is not None and not pending.done.is_set():
                pending.response, pending.raw = message, frame
                pending.done.set()
            elif key not in self._recent_keys:
                raise _PeerMisbehaved(f"unexpected answer {message.mti}")
            else:
                log.info("late network answer dropped", extra=self._log_extra(mti=message.mti))
            return
        if message.mti != "0800":
            raise _PeerMisbehaved(f"unexpected request {message.mti} from the network")
        await self._answer_network_request(message)

    def _log_extra(self, **extra: object) -> dict[str, object]:
        return {"peer": f"{self.settings.host}:{self.settings.port}", **extra}

    def _end_connection(self, reason: str) -> None:
        """Reset the link now (bad MAC on an answer): the run loop reconnects with backoff."""
        self._misbehaved = reason
        log.warning("network peer misbehaved; resetting the link",
                    extra=self._log_extra(reason=reason))
        stream = self._stream
        if stream is not None:
            self._stream = None
            self._set_status(signed_on=False)
            _close_transport(stream)  # wakes the reader: the connection task ends

    async def _answer_network_request(self, message: Message) -> None:
        """The network's own 0800: echo answered, sign-off/on change what we may send."""
        code = message.fields.get("70")
        if code == NetworkCode.SIGN_OFF:
            self._set_status(peer_off=True)
        elif code == NetworkCode.SIGN_ON:
            self._set_status(peer_off=False)
        fields = {k: v for k, v in message.fields.items() if k in ("7", "11", "41", "70")}
        fields["39"] = "00" if code in (NetworkCode.SIGN_ON, NetworkCode.SIGN_OFF,
                                        NetworkCode.ECHO) else "12"
        await self._send(encode_message("0810", fields))

    # -- sending --------------------------------------------------------------------------

    async def _send(self, payload: bytes) -> None:
        stream = self._stream
        if stream is None:
            raise NetworkUnavailable("link down")
        async with self._send_lock:
            with trio.move_on_after(self.settings.send_timeout_s):
                await stream.send_all(encode_frame(payload, self.settings.framing))
                return
        self._end_connection("the network does not read (send timed out)")
        raise NetworkUnavailable("send timed out", sent=True)

    async def request(
        self, mti: str, fields: Mapping[str, str], *, deadline: float
    ) -> tuple[Message, bytes]:
        """Send a financial request or advice and wait for its answer until ``deadline``.

        Raises :class:`NetworkSignedOff` (``92``), or :class:`NetworkUnavailable` (``91``):
        link down, too many in flight, or no answer in time (``sent=True``).
        """
        if self.status is NetworkStatus.SIGNED_OFF:
            raise NetworkSignedOff("the network is signed off")
        if self.status is not NetworkStatus.SIGNED_ON:
            raise NetworkUnavailable("link down")
        if len(self._pending) >= self.settings.inflight_max:
            raise NetworkUnavailable("too many requests in flight")
        return await self._exchange(mti, fields, deadline, mac=self.mac is not None)

    async def _exchange(
        self, mti: str, fields: Mapping[str, str], deadline: float, *, mac: bool
    ) -> tuple[Message, bytes]:
        complete = dict(fields)
        complete.setdefault("11", self.next_stan())
        complete.setdefault("7", _transmission_now())
        key = (response_mti(mti), complete.get("41", ""), complete["11"])
        if key in self._pending:
            raise NetworkUnavailable(f"a request {key} is already outstanding")
        self._recent_keys.append(key)
        payload = await self._encode(mti, complete, mac=mac)
        pending = _Pending()
        self._pending[key] = pending
        sent = False
        try:
            await self._send(payload)
            sent = True
            with trio.move_on_at(deadline):
                await pending.done.wait()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise NetworkUnavailable("link broke while sending", sent=sent) from exc
        finally:
            del self._pending[key]
        if pending.response is None:
            raise NetworkUnavailable("no answer in time" if sent else "link down", sent=sent)
        if self.check_response is not None and mac:
            try:
                await self.check_response(pending.response, pending.raw)
            except NetworkProtocolError as exc:
                self._end_connection(f"answer failed its MAC check: {exc}")
                raise
        return pending.response, pending.raw

    async def _encode(self, mti: str, fields: Mapping[str, str], *, mac: bool) -> bytes:
        try:
            if mac and self.mac is not None:
                return await encode_message_async_mac(mti, fields, mac=self.mac)
            return encode_message(mti, fields)
        except MessageBuildError as exc:
            raise NetworkProtocolError(f"cannot encode {mti}: {exc}") from exc


def _close_transport(stream: trio.abc.Stream) -> None:
    """Close a stream's socket from synchronous code (a TLS stream's transport socket); Trio
    wakes any task blocked on it with ClosedResourceError."""
    transport = getattr(stream, "transport_stream", stream)
    if isinstance(transport, trio.SocketStream):
        transport.socket.close()


def _transmission_now() -> str:
    """Field 7 of the link's own messages, MMDDhhmmss in UTC."""
    return dt.datetime.now(dt.UTC).strftime("%m%d%H%M%S")
