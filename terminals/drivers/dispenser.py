"""Host-side cash dispenser driver (Puloon LCDM-style protocol, `terminals.devices.dispenser`).

A dispense is never resent after silence: when the dispenser goes quiet after a DISPENSE the
driver raises DeviceTimeout(maybe_executed=True) and the ATM must treat the outcome as unknown
(status, then a reversal for what it cannot prove was dispensed). Partial dispenses are results,
not exceptions: the ATM needs the per-cassette counts for its completion or reversal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import trio

from terminals.devices import dispenser as proto
from terminals.devices.dispenser import (
    CassetteInfo,
    CassetteInfoReply,
    DispenserCommand,
    DispenseReply,
    DispenserError,
    SimpleReply,
    StatusReply,
)
from terminals.devices.errors import LocalProtocolError, RemoteProtocolError
from terminals.drivers.errors import DeviceFault, DeviceLinkError, require_dsr
from terminals.drivers.link import AckNakLink, LinkTiming
from terminals.transport.base import Transport

_SAFE_TO_REPEAT = frozenset({DispenserCommand.STATUS, DispenserCommand.CASSETTE_INFO})


@dataclass(frozen=True, slots=True)
class DispenserTiming:
    """Deadlines of the dispenser (seconds)."""

    dispense_timeout_seconds: float = 30.0  # LCDM: up to ~60 notes per cassette at ~4 notes/s
    reply_timeout_seconds: float = 3.0  # status, purge, retract, info
    status_poll_seconds: float = 0.1
    power_up_seconds: float = 0.2
    link: LinkTiming = field(default_factory=LinkTiming)


@dataclass(frozen=True, slots=True)
class DispenseResult:
    """What came out: per cassette (index 0 = cassette 1) notes exited and rejected."""

    error: DispenserError
    failed_cassette: int
    exited: tuple[int, ...]
    rejected: tuple[int, ...]
    checked: tuple[int, ...]

    @property
    def complete(self) -> bool:
        return self.error is DispenserError.GOOD

    def amount(self, denominations: Sequence[int]) -> int:
        """Value of the notes that exited, in minor units."""
        return sum(n * d for n, d in zip(self.exited, denominations, strict=True))


class DispenserDriver:
    """Commands of the dispenser as async methods with typed outcomes."""

    def __init__(self, transport: Transport, *, timing: DispenserTiming = DispenserTiming()):
        self._transport = transport
        self._timing = timing
        self._link = AckNakLink(
            transport,
            proto.DispenserFrameParser(proto.Direction.REPLY),
            proto.encode_command_frame,
            device="dispenser",
            timing=timing.link,
        )

    async def status(self) -> StatusReply:
        reply = await self._command(DispenserCommand.STATUS.value)
        return _expect(reply, StatusReply)

    async def cassette_info(self) -> tuple[CassetteInfo, ...]:
        reply = await self._command(DispenserCommand.CASSETTE_INFO.value)
        return _expect(reply, CassetteInfoReply).cassettes

    async def purge(self) -> None:
        """Clear jammed notes into the reject bin; DeviceFault if that fails."""
        reply = _expect(await self._command(DispenserCommand.PURGE.value), SimpleReply)
        _raise_unless_good(reply.error)

    async def retract(self) -> int:
        """Pull notes left in the exit into the retract bin; returns how many."""
        reply = _expect(await self._command(DispenserCommand.RETRACT.value), SimpleReply)
        _raise_unless_good(reply.error)
        return reply.notes or 0

    async def dispense(self, counts: Sequence[int]) -> DispenseResult:
        """Dispense `counts[i]` notes from cassette i+1 (a partial dispense is a result)."""
        try:
            text = proto.encode_dispense(counts)
        except LocalProtocolError as error:
            raise ValueError(str(error)) from error
        reply = await self._command(text, timeout=self._timing.dispense_timeout_seconds)
        return _result(_expect(reply, DispenseReply))

    async def test_dispense(self) -> DispenseResult:
        """One note from each loaded cassette into the reject bin (a self-test)."""
        text = proto.encode_dispense((), test=True)
        reply = await self._command(text, timeout=self._timing.dispense_timeout_seconds)
        return _result(_expect(reply, DispenseReply))

    async def wait_notes_taken(self, timeout_seconds: float) -> bool:
        """Poll until the exit is empty (True) or the deadline passes (False)."""
        with trio.move_on_after(timeout_seconds):
            while (await self.status()).notes_in_exit:
                await trio.sleep(self._timing.status_poll_seconds)
            return True
        return False

    async def present(self, *, take_timeout_seconds: float) -> int:
        """Wait for the customer to take the notes; retract them if not taken in time.

        Returns the number of notes retracted (0 when the customer took them).
        """
        if await self.wait_notes_taken(take_timeout_seconds):
            return 0
        return await self.retract()

    async def _command(self, text: bytes, *, timeout: float | None = None) -> proto.Reply:
        await require_dsr(
            self._transport.lines, device="dispenser", settle_seconds=self._timing.power_up_seconds
        )
        command = DispenserCommand(text[:1])
        reply_text = await self._link.exchange(
            text,
            reply_timeout_seconds=timeout or self._timing.reply_timeout_seconds,
            safe_to_repeat=command in _SAFE_TO_REPEAT,
        )
        try:
            reply = proto.decode_reply(reply_text)
        except RemoteProtocolError as error:
            raise DeviceLinkError(f"dispenser: {error}") from error
        if getattr(reply, "command", command) is not command:
            raise DeviceLinkError(f"dispenser answered {reply_text[:1]!r} to {text[:1]!r}")
        return reply


ReplyType = TypeVar("ReplyType")


def _expect(reply: proto.Reply, kind: type[ReplyType]) -> ReplyType:
    if not isinstance(reply, kind):
        raise DeviceLinkError(f"dispenser sent {type(reply).__name__}, expected {kind.__name__}")
    return reply


def _raise_unless_good(error: DispenserError) -> None:
    if error is not DispenserError.GOOD:
        raise DeviceFault(error.value.decode(), error.name.lower().replace("_", " "))


def _result(reply: DispenseReply) -> DispenseResult:
    return DispenseResult(
        error=reply.error,
        failed_cassette=reply.failed_cassette,
        exited=tuple(c.exited for c in reply.cassettes),
        rejected=tuple(c.rejected for c in reply.cassettes),
        checked=tuple(c.checked for c in reply.cassettes),
    )
