"""Host side of the ACK/NAK link used by the card reader and the dispenser.

One exchange: send the command frame; wait for ACK (resend on NAK, and on silence when the
command is safe to repeat); then wait for the reply frame, NAK it while it arrives corrupt, ACK it
when good. Every wait has a deadline: a driver must not assume the device always answers.

A device resends a reply whose ACK it did not get in time (0.5 s), so an ACK that leaves a busy
host late finds a second copy of that reply already on the line. A copy of the previous reply
that arrives before the next command's ACK is acknowledged again and dropped: taken as the new
command's reply it would report the previous result (the previous dispense's notes, say).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio

from terminals.devices.events import ACK, NAK, ControlCode, CorruptFrame, Event, Frame
from terminals.devices.framing import FrameParser
from terminals.devices.receiving import receive_event
from terminals.drivers.errors import DeviceLinkError, DeviceTimeout
from terminals.transport.base import Transport, TransportClosed

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkTiming:
    """Deadlines and retry limits of one ACK/NAK link."""

    ack_timeout_seconds: float = 0.5  # device must ACK/NAK a command this fast
    command_retries_max: int = 3  # resends of a NAKed (or unanswered, if safe) command
    reply_naks_max: int = 3  # corrupt replies we NAK before giving up


class AckNakLink:
    """One driver's end of an ACK/NAK framed serial link."""

    def __init__(
        self,
        transport: Transport,
        parser: FrameParser,
        encode_frame: Callable[[bytes], bytes],
        *,
        device: str,
        timing: LinkTiming = LinkTiming(),
    ) -> None:
        self._transport = transport
        self._parser = parser
        self._encode_frame = encode_frame
        self._device = device
        self._timing = timing
        self._lock = trio.Lock()  # one exchange at a time: the protocol has no request ids
        self.naks_received = 0
        self.naks_sent = 0
        self.resent_replies_dropped = 0
        self._previous_reply: bytes | None = None

    async def exchange(
        self, text: bytes, *, reply_timeout_seconds: float, safe_to_repeat: bool
    ) -> bytes:
        """Send one command text and return the reply text.

        `safe_to_repeat`: resend when the device stays silent (status, read); False for commands
        that move cards or notes, which are only resent after an explicit NAK.
        """
        async with self._lock:
            try:
                reply = await self._send_and_receive(
                    text, safe_to_repeat=safe_to_repeat, reply_timeout_seconds=reply_timeout_seconds
                )
            except TransportClosed as error:
                raise DeviceLinkError(f"{self._device}: serial line closed") from error
            self._previous_reply = reply
            return reply

    async def _send_and_receive(
        self, text: bytes, *, safe_to_repeat: bool, reply_timeout_seconds: float
    ) -> bytes:
        frame = self._encode_frame(text)
        for _attempt in range(self._timing.command_retries_max + 1):
            await self._transport.send_all(frame)
            deadline = trio.current_time() + self._timing.ack_timeout_seconds
            while True:
                event = await self._next_event(deadline - trio.current_time())
                if event == ACK:
                    return await self._receive_reply(reply_timeout_seconds, naks=0)
                if isinstance(event, Frame) and event.text == self._previous_reply:
                    # The device resent its previous reply (our ACK of it was late): ACK the
                    # copy and keep waiting. Should it be this command's reply with its ACK
                    # lost, the wait ends in a timeout, resent or reported as maybe executed.
                    self.resent_replies_dropped += 1
                    await self._transport.send_all(bytes([ControlCode.ACK]))
                    continue
                if isinstance(event, Frame):
                    # The ACK was lost but the reply made it: take it as the acknowledgement.
                    await self._transport.send_all(bytes([ControlCode.ACK]))
                    return event.text
                if isinstance(event, CorruptFrame):
                    # Frame bytes mean the device is replying: it has the command. Ask for the
                    # reply again rather than send the command twice.
                    await self._send_nak()
                    return await self._receive_reply(reply_timeout_seconds, naks=1)
                if event == NAK:
                    self.naks_received += 1
                    break
                if event is None:
                    if not safe_to_repeat:
                        raise DeviceTimeout(
                            f"{self._device}: no ACK to a command that must not be repeated",
                            maybe_executed=True,
                        )
                    self._parser.abandon_partial_frame()
                    break
                # Any other control byte is a corrupted ACK or noise: keep waiting.
        raise DeviceLinkError(f"{self._device}: command not acknowledged after retries")

    async def _receive_reply(self, timeout_seconds: float, *, naks: int) -> bytes:
        deadline = trio.current_time() + timeout_seconds
        while True:
            event = await self._next_event(deadline - trio.current_time())
            if event is None:
                self._parser.abandon_partial_frame()
                raise DeviceTimeout(f"{self._device}: no reply in time", maybe_executed=True)
            if isinstance(event, Frame):
                await self._transport.send_all(bytes([ControlCode.ACK]))
                return event.text
            if isinstance(event, CorruptFrame):
                naks += 1
                if naks > self._timing.reply_naks_max:
                    raise DeviceLinkError(f"{self._device}: reply corrupt after retries")
                await self._send_nak()
            # Stray control bytes (a duplicate ACK) are ignored.

    async def _send_nak(self) -> None:
        self.naks_sent += 1
        await self._transport.send_all(bytes([ControlCode.NAK]))

    async def _next_event(self, timeout_seconds: float) -> Event | None:
        """The next parser event, or None when the deadline passes first."""
        return await receive_event(self._transport, self._parser, timeout_seconds=timeout_seconds)
