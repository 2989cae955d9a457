"""Host-level fault injection: a TCP proxy between the ATM and the switch that, on a seeded
schedule, swallows a 0210 (host timeout), delivers it too late (late reply), cuts the
connection after a 0200 went out (disconnect), or tampers with the 0210's MAC (strips it, or
flips one digit: the terminal must trust neither, spec 10).

The faults happen on the real wire, so the terminal's real timeout, reversal and reconnect paths
are what gets exercised, and the switch really processed the request it never answered. An
opportunity is each 0200 passing towards the switch; rules fire on chosen occurrence numbers
and/or with a probability from a generator seeded by (seed, fault name), like the device faults.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import trio

from switch.protocol.errors import ProtocolError
from switch.protocol.framing import FrameDecoder, encode_frame
from switch.protocol.message import decode_message, encode_message, peek_field

receive_bytes_max = 65536


class HostFault(StrEnum):
    TIMEOUT = "host.timeout"  # the 0210 never reaches the terminal
    LATE_REPLY = "host.late_reply"  # the 0210 arrives after `late_reply_delay_s`
    DISCONNECT = "host.disconnect"  # the connection drops right after the 0200 went out
    MAC_STRIPPED = "host.mac_stripped"  # the 0210 arrives without its MAC
    MAC_CORRUPTED = "host.mac_corrupted"  # the 0210 arrives with one MAC digit changed


@dataclass(frozen=True, slots=True)
class HostFaultRule:
    fault: HostFault
    occurrences: frozenset[int] = frozenset()
    probability: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"{self.fault}: probability must be within 0..1")
        if any(n < 1 for n in self.occurrences):
            raise ValueError(f"{self.fault}: occurrences count from 1")


@dataclass
class HostFaultSchedule:
    rules: tuple[HostFaultRule, ...] = ()
    seed: int = 0
    late_reply_delay_s: float = 15.0
    fired: list[tuple[str, int]] = field(default_factory=list)
    _opportunities: Counter[HostFault] = field(default_factory=Counter)
    _generators: dict[HostFault, random.Random] = field(default_factory=dict)

    def check(self, fault: HostFault) -> bool:
        self._opportunities[fault] += 1
        opportunity = self._opportunities[fault]
        for rule in self.rules:
            if rule.fault is not fault:
                continue
            generator = self._generators.setdefault(
                fault, random.Random(f"{self.seed}:{fault.value}"))
            if opportunity in rule.occurrences or generator.random() < rule.probability:
                self.fired.append((fault.value, opportunity))
                return True
        return False

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any], *, seed: int = 0,
                     late_reply_delay_s: float = 15.0) -> HostFaultSchedule:
        """{"host.timeout": {"at": [1]}, "host.late_reply": {"probability": 0.1}}."""
        rules = []
        for name, value in spec.items():
            try:
                fault = HostFault(name)
            except ValueError:
                known = ", ".join(f.value for f in HostFault)
                raise ValueError(f"unknown host fault {name!r}; known: {known}") from None
            if not isinstance(value, Mapping) or set(value) - {"at", "probability"}:
                raise ValueError(f"{name}: expected a table with 'at' and/or 'probability'")
            rules.append(HostFaultRule(fault, frozenset(int(n) for n in value.get("at", ())),
                                       float(value.get("probability", 0.0))))
        return cls(tuple(rules), seed, late_reply_delay_s)


class FaultProxy:
    """Listens on 127.0.0.1 and relays each terminal connection to the switch."""

    def __init__(self, upstream: tuple[str, int], schedule: HostFaultSchedule) -> None:
        self.upstream = upstream
        self.schedule = schedule
        self.port = 0
        self.late_replies_in_flight = 0

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._relay, listeners)

    async def _relay(self, terminal: trio.SocketStream) -> None:
        try:
            switch = await trio.open_tcp_stream(*self.upstream)
        except OSError:
            await trio.aclose_forcefully(terminal)
            return
        doomed: dict[str, HostFault] = {}  # STAN -> what happens to its 0210
        to_terminal = _Sender(terminal)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._upstream, terminal, switch, doomed, nursery.cancel_scope)
            nursery.start_soon(self._downstream, switch, to_terminal, doomed, nursery)
        await trio.aclose_forcefully(terminal)
        await trio.aclose_forcefully(switch)

    async def _upstream(self, terminal: trio.SocketStream, switch: trio.SocketStream,
                        doomed: dict[str, HostFault], everything: trio.CancelScope) -> None:
        decoder = FrameDecoder()
        try:
            async for data in terminal:
                decoder.receive_data(data)
                while (frame := decoder.next_frame()) is not None:
                    await switch.send_all(encode_frame(frame))
                    if frame[:4] == b"0200" and self._doom(frame, doomed):
                        everything.cancel()  # disconnect: drop both sides now
                        return
        except (trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError):
            pass
        everything.cancel()

    def _doom(self, frame: bytes, doomed: dict[str, HostFault]) -> bool:
        """Decide this 0200's fate; True when the connection must drop now."""
        stan = peek_field(frame, "11") or ""
        if self.schedule.check(HostFault.DISCONNECT):
            return True
        if self.schedule.check(HostFault.TIMEOUT):
            doomed[stan] = HostFault.TIMEOUT
        elif self.schedule.check(HostFault.LATE_REPLY):
            doomed[stan] = HostFault.LATE_REPLY
            self.late_replies_in_flight += 1  # from now until delivered (or the line drops)
        elif self.schedule.check(HostFault.MAC_STRIPPED):
            doomed[stan] = HostFault.MAC_STRIPPED
        elif self.schedule.check(HostFault.MAC_CORRUPTED):
            doomed[stan] = HostFault.MAC_CORRUPTED
        return False

    async def _downstream(self, switch: trio.SocketStream, terminal: _Sender,
                          doomed: dict[str, HostFault], nursery: trio.Nursery) -> None:
        decoder = FrameDecoder()
        try:
            async for data in switch:
                decoder.receive_data(data)
                while (frame := decoder.next_frame()) is not None:
                    fate = doomed.pop(peek_field(frame, "11") or "", None) \
                        if frame[:4] == b"0210" else None
                    if fate is HostFault.TIMEOUT:
                        continue
                    if fate is HostFault.LATE_REPLY:
                        nursery.start_soon(self._late, terminal, frame)
                        continue
                    if fate in (HostFault.MAC_STRIPPED, HostFault.MAC_CORRUPTED):
                        frame = _tamper_mac(frame, strip=fate is HostFault.MAC_STRIPPED)
                    await terminal.send_all(encode_frame(frame))
        except (trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError):
            pass
        nursery.cancel_scope.cancel()

    async def _late(self, terminal: _Sender, frame: bytes) -> None:
        try:
            await trio.sleep(self.schedule.late_reply_delay_s)
            await terminal.send_all(encode_frame(frame))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.late_replies_in_flight -= 1

    async def wait_late_replies_delivered(self, timeout_s: float) -> bool:
        """True once no late reply is waiting to be delivered (a scenario's faults played out)."""
        with trio.move_on_after(timeout_s):
            while self.late_replies_in_flight:
                await trio.sleep(0.02)
            return True
        return False


def _tamper_mac(frame: bytes, *, strip: bool) -> bytes:
    """The 0210 without its MAC field, or with the MAC's last hex digit changed."""
    message = decode_message(frame)
    fields = dict(message.fields)
    mac_field = message.mac_field
    if mac_field is None:
        return frame
    if strip:
        del fields[mac_field]
    else:
        mac = fields[mac_field]
        fields[mac_field] = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    return encode_message(message.mti, fields)


class _Sender:
    """One writer at a time on the terminal's side (late replies are sent from their own task)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._lock = trio.Lock()

    async def send_all(self, data: bytes) -> None:
        async with self._lock:
            await self._stream.send_all(data)
