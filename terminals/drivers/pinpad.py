"""Host-side EPP driver (SZZT-style protocol, `terminals.devices.pinpad`).

The EPP talks unprompted during PIN entry, so a reader task owns the receive side and routes
each frame: replies to the command waiting for them, key events and the PIN result to the PIN
entry in progress. Use it as `async with PinPadDriver.open(transport) as pinpad: ...`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import trio

from terminals.devices import pinpad as proto
from terminals.devices.errors import LocalProtocolError, RemoteProtocolError
from terminals.devices.events import Frame
from terminals.devices.pinpad import (
    DisplayKey,
    KeyEvent,
    KeySlot,
    PinEntryRequest,
    PinPadCommand,
    PinPadStatus,
    PinResult,
    Reply,
)
from terminals.devices.receiving import receive_event
from terminals.drivers.errors import (
    DeviceFault,
    DeviceLinkError,
    DeviceTimeout,
    DriverError,
    require_dsr,
)
from terminals.transport.base import Transport, TransportClosed

_SAFE_TO_REPEAT = frozenset(
    {PinPadCommand.STATUS, PinPadCommand.RESET, PinPadCommand.PIN_ENTRY, PinPadCommand.CANCEL_ENTRY}
)
Item = TypeVar("Item")
# Frames buffered between the reader task and their consumer (a PIN entry makes ~15).
routed_frames_max = 64


class PinEntryCancelled(DriverError):
    """The customer pressed CANCEL (or the host cancelled)."""


class PinEntryTimeout(DriverError):
    """The customer did not finish the PIN in time."""


@dataclass(frozen=True, slots=True)
class PinPadTiming:
    """Deadlines of the EPP (seconds)."""

    reply_timeout_seconds: float = 1.0
    command_retries_max: int = 2  # resends of a safe command after silence
    entry_grace_seconds: float = 2.0  # beyond the EPP's own entry timeout
    power_up_seconds: float = 0.2


@dataclass(frozen=True, slots=True)
class PinPadState:
    tmk_loaded: bool
    tpk_loaded: bool
    tak_loaded: bool
    entry_active: bool


class PinPadDriver:
    """Commands of the EPP as async methods; PIN entry with key events."""

    def __init__(self, transport: Transport, *, timing: PinPadTiming = PinPadTiming()) -> None:
        self._transport = transport
        self._timing = timing
        self._replies_in, self._replies = trio.open_memory_channel[Reply](routed_frames_max)
        self._entry_in, self._entry_events = trio.open_memory_channel[KeyEvent | PinResult](
            routed_frames_max
        )
        self._lock = trio.Lock()
        self.frames_dropped = 0

    @classmethod
    @asynccontextmanager
    async def open(
        cls, transport: Transport, *, timing: PinPadTiming = PinPadTiming()
    ) -> AsyncIterator[PinPadDriver]:
        """A driver with its reader task running for the life of the block."""
        driver = cls(transport, timing=timing)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(driver._read_frames)
            try:
                yield driver
            finally:
                nursery.cancel_scope.cancel()

    # -- keys ------------------------------------------------------------------------------
    async def load_tmk(self, components: Sequence[str], expected_kcv: str) -> list[str]:
        """Key ceremony: load each clear component, then form the TMK if its KCV matches.

        Returns the component KCVs (for the custodians to compare with their slips).
        """
        if not 2 <= len(components) <= 9:
            raise ValueError("a TMK needs 2..9 components")
        kcvs = []
        for index, component in enumerate(components, start=1):
            data = self._encode(proto.load_component_data, index, component)
            kcvs.append((await self._ok(PinPadCommand.LOAD_COMPONENT, data)).data)
        await self._ok(PinPadCommand.COMBINE_TMK, f"{len(components)}{expected_kcv.upper()}")
        return kcvs

    async def import_key(self, slot: KeySlot, key_block: str) -> str:
        """Import a TPK or TAK (TR-31 block under the TMK); returns its KCV."""
        data = self._encode(proto.import_key_data, slot, key_block)
        return (await self._ok(PinPadCommand.IMPORT_KEY, data)).data

    async def status(self) -> PinPadState:
        flags = (await self._ok(PinPadCommand.STATUS, "")).data
        if len(flags) != 4 or set(flags) - {"0", "1"}:
            raise DeviceLinkError(f"PIN pad status flags malformed: {flags!r}")
        return PinPadState(*(flag == "1" for flag in flags))

    async def reset(self) -> None:
        await self._ok(PinPadCommand.RESET, "")

    async def mac(self, data: bytes) -> str:
        """Retail MAC of `data` under the TAK, 16 hex digits."""
        chunk_size = proto.mac_chunk_bytes_max
        chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]
        for chunk in chunks[:-1]:
            await self._ok(PinPadCommand.MAC, proto.mac_chunk_data(chunk, last=False))
        reply = await self._ok(PinPadCommand.MAC, proto.mac_chunk_data(chunks[-1], last=True))
        if not proto.is_hex(reply.data, 16):
            raise DeviceLinkError("PIN pad returned a malformed MAC")
        return reply.data

    # -- PIN entry -------------------------------------------------------------------------
    async def enter_pin(
        self,
        pan: str,
        *,
        length_min: int = 4,
        length_max: int = 6,
        timeout_seconds: int = 30,
        on_key: Callable[[DisplayKey], None] | None = None,
    ) -> str:
        """Run one PIN entry; returns the format 0 PIN block (16 hex) under the TPK.

        Raises PinEntryCancelled, PinEntryTimeout, or DeviceTimeout if the EPP never reports an
        end (the entry is then cancelled). `on_key` sees each key event ('*' for digits).
        """
        request = PinEntryRequest(pan, length_min, length_max, timeout_seconds)
        self._drain(self._entry_events)
        await self._ok(PinPadCommand.PIN_ENTRY, self._encode(request.encode))
        with trio.move_on_after(timeout_seconds + self._timing.entry_grace_seconds):
            while True:
                event = await self._receive(self._entry_events)
                if isinstance(event, KeyEvent):
                    if on_key is not None:
                        on_key(event.key)
                    continue
                return _pin_block_or_raise(event)
        await self.cancel_entry()
        raise DeviceTimeout("PIN pad never ended the PIN entry", maybe_executed=False)

    async def cancel_entry(self) -> None:
        await self._ok(PinPadCommand.CANCEL_ENTRY, "")

    # -- plumbing --------------------------------------------------------------------------
    async def _ok(self, command: PinPadCommand, data: str) -> Reply:
        reply = await self._command(command, data)
        if reply.status is not PinPadStatus.OK:
            detail = reply.status.name.lower().replace("_", " ")
            raise DeviceFault(reply.status.value, f"PIN pad {command.name.lower()}: {detail}")
        return reply

    async def _command(self, command: PinPadCommand, data: str) -> Reply:
        await require_dsr(
            self._transport.lines, device="PIN pad", settle_seconds=self._timing.power_up_seconds
        )
        frame = proto.encode_frame(proto.encode_command(command, data))
        attempts = 1 + (self._timing.command_retries_max if command in _SAFE_TO_REPEAT else 0)
        async with self._lock:
            self._drain(self._replies)
            for _attempt in range(attempts):
                await self._send(frame)
                with trio.move_on_after(self._timing.reply_timeout_seconds):
                    while True:
                        reply = await self._receive(self._replies)
                        if reply.command is command:
                            return reply
                        self.frames_dropped += 1  # a late reply to an earlier command
        raise DeviceTimeout(f"PIN pad did not answer {command.name}", maybe_executed=True)

    async def _read_frames(self) -> None:
        """Route every frame from the EPP; close the channels when the line goes away."""
        parser = proto.PinPadFrameParser()
        async with self._replies_in, self._entry_in:
            try:
                while True:
                    event = await receive_event(self._transport, parser)
                    if isinstance(event, Frame):
                        await self._route(event.text)
            except TransportClosed:
                return

    async def _route(self, text: bytes) -> None:
        try:
            message = proto.decode_device_message(text)
        except RemoteProtocolError:
            self.frames_dropped += 1
            return
        if isinstance(message, Reply):
            await self._replies_in.send(message)
        else:
            await self._entry_in.send(message)

    async def _send(self, frame: bytes) -> None:
        try:
            await self._transport.send_all(frame)
        except TransportClosed as error:
            raise DeviceLinkError("PIN pad: serial line closed") from error

    @staticmethod
    async def _receive(channel: trio.MemoryReceiveChannel[Item]) -> Item:
        try:
            return await channel.receive()
        except trio.EndOfChannel:
            raise DeviceLinkError("PIN pad: serial line closed") from None

    @staticmethod
    def _drain(channel: trio.MemoryReceiveChannel[object]) -> None:
        while True:
            try:
                channel.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return

    @staticmethod
    def _encode(build: Callable[..., str], *args: object) -> str:
        try:
            return build(*args)
        except LocalProtocolError as error:
            raise ValueError(str(error)) from error


def _pin_block_or_raise(result: PinResult) -> str:
    if result.status is PinPadStatus.OK:
        return result.pin_block
    if result.status is PinPadStatus.CANCELLED:
        raise PinEntryCancelled("customer cancelled PIN entry")
    if result.status is PinPadStatus.TIMEOUT:
        raise PinEntryTimeout("PIN entry timed out")
    raise DeviceFault(result.status.value, "PIN entry failed")
