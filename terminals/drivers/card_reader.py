"""Host-side card reader driver (Sankyo ICT3-style protocol, `terminals.devices.card_reader`).

Every call has a deadline; commands that move the card are never blindly resent after silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from terminals.devices import card_reader as proto
from terminals.devices.card_reader import (
    CardPosition,
    NegativeReply,
    PositiveReply,
    ReaderCommand,
    ReaderStatus,
)
from terminals.devices.errors import RemoteProtocolError
from terminals.drivers.errors import DeviceFault, DeviceLinkError, require_dsr
from terminals.drivers.link import AckNakLink, LinkTiming
from terminals.transport.base import Transport

_SAFE_TO_REPEAT = frozenset(
    {
        ReaderCommand.STATUS,
        ReaderCommand.READ_TRACK2,
        ReaderCommand.ENABLE_ENTRY,
        ReaderCommand.INHIBIT_ENTRY,
    }
)
_INITIALISE = {
    "eject": ReaderCommand.INITIALISE_EJECT,
    "capture": ReaderCommand.INITIALISE_CAPTURE,
    "keep": ReaderCommand.INITIALISE_NO_MOVE,
}


@dataclass(frozen=True, slots=True)
class CardReaderTiming:
    """Deadlines of the card reader (seconds)."""

    reply_timeout_seconds: float = 2.0  # a card movement takes well under a second
    status_poll_seconds: float = 0.05  # how often to poll while waiting for the customer
    power_up_seconds: float = 0.2  # how long DSR may take to rise before the reader is offline
    link: LinkTiming = field(default_factory=LinkTiming)


class CardReaderDriver:
    """Commands of the card reader as async methods with typed outcomes."""

    def __init__(self, transport: Transport, *, timing: CardReaderTiming = CardReaderTiming()):
        self._transport = transport
        self._timing = timing
        self._link = AckNakLink(
            transport,
            proto.CardReaderFrameParser(),
            proto.encode_frame,
            device="card reader",
            timing=timing.link,
        )

    async def initialise(self, *, card_action: str = "eject") -> ReaderStatus:
        """Reset the mechanism (clears a jam); a card inside is ejected, captured or kept."""
        try:
            command = _INITIALISE[card_action]
        except KeyError:
            raise ValueError(f"card_action must be one of {sorted(_INITIALISE)}") from None
        return (await self._command(command)).status

    async def status(self) -> ReaderStatus:
        return (await self._command(ReaderCommand.STATUS)).status

    async def enable_entry(self) -> None:
        await self._command(ReaderCommand.ENABLE_ENTRY)

    async def inhibit_entry(self) -> None:
        await self._command(ReaderCommand.INHIBIT_ENTRY)

    async def wait_for_card(self, timeout_seconds: float) -> bool:
        """Enable entry and poll until a card is inside (True) or the deadline passes (False,
        entry inhibited again)."""
        await self.enable_entry()
        if await self._poll_until(CardPosition.INSIDE, timeout_seconds):
            return True
        await self.inhibit_entry()
        return False

    async def read_track2(self) -> str:
        """Track 2 of the card inside; DeviceFault("20") when unreadable."""
        reply = await self._command(ReaderCommand.READ_TRACK2)
        try:
            return proto.validate_track2(reply.data.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as error:
            raise DeviceLinkError(f"card reader returned a malformed track: {error}") from error

    async def activate_chip(self) -> bytes:
        """Power the chip on (cold reset) and return its ATR; DeviceFault("60") when the card
        has no chip or a mute one."""
        return (await self._command(ReaderCommand.ICC_ACTIVATE)).data

    async def deactivate_chip(self) -> None:
        await self._command(ReaderCommand.ICC_DEACTIVATE)

    async def transmit_apdu(self, apdu: bytes) -> bytes:
        """Send one command APDU to the chip; the response APDU (data || SW1 SW2).

        Never repeated after silence: a GENERATE AC changes the card's state.
        DeviceFault("61") when the chip stopped answering.
        """
        reply = await self._command(ReaderCommand.ICC_APDU, proto.validate_apdu(apdu))
        if len(reply.data) < 2:
            raise DeviceLinkError("card reader returned a response APDU without SW1 SW2")
        return reply.data

    async def eject(self) -> None:
        """Carry the card to the gate."""
        await self._command(ReaderCommand.EJECT)

    async def capture(self) -> None:
        """Retain the card in the bin."""
        await self._command(ReaderCommand.CAPTURE)

    async def return_card(self, *, take_timeout_seconds: float) -> bool:
        """Eject, wait for the customer to take the card; retain it if not taken in time.

        Returns True when taken, False when retained.
        """
        await self.eject()
        if await self._poll_until(CardPosition.NO_CARD, take_timeout_seconds):
            return True
        await self.capture()
        return False

    async def _poll_until(self, position: CardPosition, timeout_seconds: float) -> bool:
        """Poll between exchanges, never cancelling one: a status request cut off after it
        was sent would leave its reply on the line for the next command to read."""
        deadline = trio.current_time() + timeout_seconds
        while (await self.status()).card is not position:
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                return False
            await trio.sleep(min(self._timing.status_poll_seconds, remaining))
        return True

    async def _command(self, command: ReaderCommand, data: bytes = b"") -> PositiveReply:
        await require_dsr(
            self._transport.lines,
            device="card reader",
            settle_seconds=self._timing.power_up_seconds,
        )
        text = await self._link.exchange(
            proto.Command(command, data).encode(),
            reply_timeout_seconds=self._timing.reply_timeout_seconds,
            safe_to_repeat=command in _SAFE_TO_REPEAT,
        )
        try:
            reply = proto.decode_reply(text)
        except RemoteProtocolError as error:
            raise DeviceLinkError(f"card reader: {error}") from error
        if reply.command is not command:
            raise DeviceLinkError(f"card reader answered {reply.command} to {command}")
        if isinstance(reply, NegativeReply):
            raise DeviceFault(reply.error.value, reply.error.name.lower().replace("_", " "))
        return reply
