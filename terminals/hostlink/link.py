"""The ATM's host link (spec 1, 5, 7, 8): one supervised connection to the switch.

``HostLink.run`` keeps a connection up: connect, sign on (0800/001), key exchange (0800/161, the
TPK and TAK go straight into the EPP as TR-31 blocks), then echo when idle (0800/301 after 60 s
without traffic), a new key exchange on schedule, and the store-and-forward of advices. When the
connection breaks it reconnects with a delay and does all of it again. The firmware calls
:meth:`HostLink.authorize` for each 0200 and :meth:`HostLink.queue_advice` for each 0220/0420.

STANs come from one counter persisted in the terminal's data directory, so they keep rising
across connections and restarts (spec 2: +1 per new message, 999999 -> 000001). MACs are made and
checked by the EPP (the terminal never holds the TAK in clear). No request other than the key
exchange is in flight between an 0800/161 and its 0810 (spec 5.1).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import trio

from switch.protocol.field48 import decode_tags
from switch.protocol.message import Message, encode_message, encode_message_async_mac, mac_input_of
from terminals.hostlink.connection import (
    HostConnection,
    HostConnectionClosed,
    HostLinkError,
    HostTimeout,
    transmission_datetime,
)
from terminals.hostlink.store_forward import StoreAndForward, StoredAdvice
from terminals.journal import Journal

log = logging.getLogger("atm.hostlink")

STAN_MAX = 999_999  # spec 2 field 11


@dataclass(frozen=True, slots=True)
class HostLinkConfig:
    host: str
    port: int
    terminal_id: str
    # A 0200 with no 0210 after this long is reversed with reason 68 (spec 5.4).
    response_timeout_s: float = 10.0
    # Spec 1: a terminal SHOULD send an echo after 60 s without traffic.
    echo_idle_s: float = 60.0
    # New working keys on this schedule besides each sign-on (a bank sets e.g. daily).
    key_exchange_interval_s: float = 24 * 3600.0
    reconnect_delay_s: float = 1.0
    # An unanswered advice is repeated (0221/0421) after this long.
    advice_retry_s: float = 5.0
    connect_timeout_s: float = 5.0


class LinkSecurity(Protocol):
    """The EPP's part in the host link: MACs and working-key import."""

    async def mac(self, data: bytes) -> str: ...

    async def install_working_keys(self, tpk_block: str, tak_block: str) -> None: ...


class HostUnavailable(HostLinkError):
    """No usable connection: nothing was sent, so nothing needs reversing."""


class NoResponse(HostLinkError):
    """The request went out but no valid response came back (timeout, disconnect, bad MAC):
    the caller must reverse it (reason 68)."""


class KeyExchangeFailed(HostLinkError):
    """The 0810 was declined or its key blocks were refused by the EPP."""


class StanCounter:
    """The terminal's STAN, persisted so it keeps rising across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._value = int(path.read_text().strip() or "0") % STAN_MAX
        except (FileNotFoundError, ValueError):
            self._value = 0

    def next(self) -> str:
        self._value = self._value % STAN_MAX + 1
        self.path.write_text(f"{self._value}\n")
        return f"{self._value:06d}"


class _Quiet:
    """Lets the key exchange wait for in-flight requests and hold new ones back (spec 5.1)."""

    def __init__(self) -> None:
        self._exclusive = trio.Lock()
        self._inflight = 0
        self._idle = trio.Event()
        self._idle.set()

    async def enter(self) -> None:
        async with self._exclusive:
            self._inflight += 1
            self._idle = trio.Event() if self._inflight == 1 else self._idle

    def leave(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()

    async def exclusive(self) -> trio.Lock:
        await self._exclusive.acquire()
        await self._idle.wait()
        return self._exclusive


class HostLink:
    """One terminal's supervised connection to its switch."""

    def __init__(self, config: HostLinkConfig, security: LinkSecurity, data_dir: Path,
                 journal: Journal | None = None) -> None:
        self.config = config
        self.security = security
        self.journal = journal
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = StoreAndForward(data_dir / "store")
        self.stans = StanCounter(data_dir / "stan")
        self.connections = 0
        self.late_replies: list[Message] = []
        self._connection: HostConnection | None = None
        self._ready = trio.Event()
        self._advice_queued = trio.Event()
        self._quiet = _Quiet()
        self._last_traffic = 0.0
        self._stopping = False

    # -- for the firmware ---------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self, timeout_s: float) -> bool:
        with trio.move_on_after(timeout_s):
            await self._ready.wait()
        return self._ready.is_set()

    def next_stan(self) -> str:
        return self.stans.next()

    async def authorize(self, fields: Mapping[str, str]) -> Message:
        """Send one MACed 0200 and return its verified 0210.

        Raises HostUnavailable (not sent) or NoResponse (sent; reverse it with reason 68).
        """
        connection = self._connection
        if connection is None or not self.ready or connection.closed:
            raise HostUnavailable("not signed on to the host")
        raw = await encode_message_async_mac("0200", fields, mac=self.security.mac)
        await self._quiet.enter()
        try:
            self._last_traffic = trio.current_time()
            response = await connection.request_encoded(raw)
            await self._check_mac(response, raw=b"", present_only=False)
            return response
        except (HostTimeout, HostConnectionClosed) as exc:
            raise NoResponse(str(exc)) from exc
        except ResponseMacMismatch as exc:
            self._record("response_mac_failed", stan=fields.get("11"))
            raise NoResponse(str(exc)) from exc
        finally:
            self._quiet.leave()

    def queue_advice(self, mti: str, fields: Mapping[str, str], **context: Any) -> StoredAdvice:
        """Store an advice durably and wake the forwarder (spec 5.3 / 5.4)."""
        advice = self.store.add(mti, fields, context)
        self._record("advice_queued", mti=mti, stan=fields.get("11"), **context)
        self._advice_queued.set()
        return advice

    async def wait_advices_sent(self, timeout_s: float) -> bool:
        """True once the store is empty (every advice acknowledged) within ``timeout_s``."""
        with trio.move_on_after(timeout_s):
            while len(self.store):
                await trio.sleep(0.02)
            return True
        return False

    def stop(self) -> None:
        self._stopping = True

    # -- the supervisor -----------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a signed-on connection; reconnect after every failure. Runs until cancelled."""
        task_status.started()
        while not self._stopping:
            try:
                await self._one_connection()
            except* (OSError, HostLinkError, trio.BrokenResourceError, trio.TooSlowError) as group:
                reasons = [f"{type(exc).__name__}: {exc}" for exc in group.exceptions]
                self._record("host_link_down", reason="; ".join(reasons))
            self._ready = trio.Event()
            self._connection = None
            if self._stopping:
                return
            await trio.sleep(self.config.reconnect_delay_s)

    async def _one_connection(self) -> None:
        config = self.config
        with trio.fail_after(config.connect_timeout_s):
            stream = await trio.open_tcp_stream(config.host, config.port)
        connection = HostConnection(
            stream, terminal_id=config.terminal_id, response_timeout_s=config.response_timeout_s,
            check_response=self._check_mac)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.run_reader)
            try:
                await self._serve_connection(connection)
            finally:
                await connection.aclose()
                nursery.cancel_scope.cancel()

    async def _serve_connection(self, connection: HostConnection) -> None:
        self.connections += 1
        self._connection = connection
        await self._sign_on(connection)
        await self._key_exchange(connection)
        self._ready.set()
        self._record("host_link_up", connection=self.connections)
        async with trio.open_nursery() as nursery:
            for task in (self._echo_when_idle, self._scheduled_key_exchange,
                         self._forward_advices):
                nursery.start_soon(self._until_link_error, task, connection)
            while not connection.closed:
                self._collect_late_replies(connection)
                await trio.sleep(0.05)
            self._collect_late_replies(connection)
            nursery.cancel_scope.cancel()
        raise HostConnectionClosed("the connection to the switch is closed")

    async def _until_link_error(self, task: Any, connection: HostConnection) -> None:
        """Run a connection task; a link error in it ends the connection (we reconnect)."""
        try:
            await task(connection)
        except HostLinkError as exc:
            self._record("host_link_error", reason=f"{type(exc).__name__}: {exc}")
            await connection.aclose()

    async def _network(self, connection: HostConnection, code: str) -> Message:
        fields = {"70": code, "11": self.next_stan(), "7": transmission_datetime()}
        self._last_traffic = trio.current_time()
        return await connection.request_encoded(
            encode_message("0800", {**fields, "41": connection.field41}))

    async def _sign_on(self, connection: HostConnection) -> None:
        response = await self._network(connection, "001")
        if response.response_code != "00":
            raise HostLinkError(f"sign-on answered {response.response_code}")
        self._record("signed_on")

    async def _key_exchange(self, connection: HostConnection) -> None:
        lock = await self._quiet.exclusive()
        try:
            response = await self._network(connection, "161")
        finally:
            lock.release()
        if response.response_code != "00":
            raise KeyExchangeFailed(f"key exchange answered {response.response_code}")
        tags = decode_tags(response.fields.get("48", ""))
        if "KP" not in tags or "KM" not in tags:
            raise KeyExchangeFailed("0810 lacks 48/KP or 48/KM")
        await self.security.install_working_keys(tags["KP"], tags["KM"])
        self._record("key_exchange")

    async def _echo_when_idle(self, connection: HostConnection) -> None:
        while True:
            idle = trio.current_time() - self._last_traffic
            if idle >= self.config.echo_idle_s:
                response = await self._network(connection, "301")
                self._record("echo", response_code=response.response_code)
            else:
                await trio.sleep(self.config.echo_idle_s - idle)

    async def _scheduled_key_exchange(self, connection: HostConnection) -> None:
        while True:
            await trio.sleep(self.config.key_exchange_interval_s)
            await self._key_exchange(connection)

    async def _forward_advices(self, connection: HostConnection) -> None:
        """Send open advices oldest first, repeating each until the host answers it."""
        while True:
            self._advice_queued = trio.Event()
            all_answered = True
            for advice in self.store.pending():
                if not await self._send_advice(connection, advice):
                    all_answered = False
                    break  # keep the order: retry this one before any later one
            if all_answered:
                await self._advice_queued.wait()
            else:
                await trio.sleep(self.config.advice_retry_s)

    async def _send_advice(self, connection: HostConnection, advice: StoredAdvice) -> bool:
        mti = advice.mti_to_send
        raw = await encode_message_async_mac(mti, advice.fields, mac=self.security.mac)
        self.store.mark_sent(advice)
        await self._quiet.enter()
        try:
            self._last_traffic = trio.current_time()
            response = await connection.request_encoded(raw)
        except (HostTimeout, ResponseMacMismatch) as exc:
            self._record("advice_unanswered", mti=mti, stan=advice.fields.get("11"),
                         reason=str(exc))
            return False
        finally:
            self._quiet.leave()
        if response.response_code != "00":
            self._record("advice_refused", mti=mti, response_code=response.response_code)
            return False
        self.store.acknowledge(advice)
        self._record("advice_acknowledged", mti=mti, stan=advice.fields.get("11"),
                     **advice.context)
        return True

    async def _check_mac(
        self, response: Message, raw: bytes, *, present_only: bool = True
    ) -> None:
        """Trust nothing unverified (spec 8, 10): a response without a MAC is accepted only
        where the spec sends none (0810s, and 30/58/63 declines); anything else, above all
        a 0210 00, must verify under the TAK or it counts as no response (reversal 68).

        The connection calls this for responses that carry a MAC; :meth:`authorize` calls it
        again with ``present_only=False`` to refuse a 0210 that carries none.
        """
        if response.mac is None:
            if response.mti.startswith("08") or response.response_code in UNMACED_DECLINES:
                return
            raise ResponseMacMismatch("response carries no MAC")
        if not present_only:
            return  # a present MAC was verified when the response arrived
        expected = await self.security.mac(mac_input_of(raw))
        if not hmac.compare_digest(expected, response.mac):
            raise ResponseMacMismatch("response MAC does not verify under the TAK")

    def _collect_late_replies(self, connection: HostConnection) -> None:
        while connection.unmatched:
            message = connection.unmatched.pop(0)
            self.late_replies.append(message)
            self._record("late_reply_ignored", mti=message.mti, stan=message.stan,
                         response_code=message.response_code)

    def _record(self, event: str, **fields: Any) -> None:
        log.debug("%s %s %s", self.config.terminal_id, event, sorted(fields))
        if self.journal is not None:
            self.journal.record(f"host.{event}", **fields)


# Spec 8: 30 and 58 carry no MAC; 63 none when the switch does not know the TAK.
UNMACED_DECLINES: Final = frozenset({"30", "58", "63"})


class ResponseMacMismatch(HostLinkError):
    """A response's MAC did not verify: the terminal treats it as no response."""
