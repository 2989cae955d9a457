"""Card reader emulator (Sankyo ICT3-style motorised reader with a retain bin).

`CardReaderModel` is the sans-I/O device: command text in, reply text out, plus the customer's
hands (`insert_card`, `take_card`). `CardReaderEmulator` serves it over a transport.
Injected faults: card jam (on a card movement), unreadable track 2, card not taken at the gate,
no answer at all, a mute chip (no ATR at power-on) and a chip that stops answering (at a
GENERATE AC). A card may carry a chip (:class:`terminals.emulators.chip_card.ChipCard`): the
reader powers its contacts and passes APDUs through.
"""

from __future__ import annotations

from terminals.devices import card_reader as proto
from terminals.devices.card_reader import (
    CardPosition,
    NegativeReply,
    PositiveReply,
    ReaderCommand,
    ReaderErrorCode,
    ReaderStatus,
)
from terminals.devices.errors import LocalProtocolError, RemoteProtocolError
from terminals.emulators.base import PoweredDevice
from terminals.emulators.chip_card import ChipCard
from terminals.emulators.faults import Fault, FaultSchedule
from terminals.emulators.link import DeviceLink
from terminals.emv.apdu import Ins
from terminals.transport.base import Transport

retain_bin_capacity_cards = 50

_MOVEMENTS = frozenset({ReaderCommand.EJECT, ReaderCommand.CAPTURE})
_ICC_COMMANDS = frozenset(
    {ReaderCommand.ICC_ACTIVATE, ReaderCommand.ICC_DEACTIVATE, ReaderCommand.ICC_APDU})


class CardReaderModel(PoweredDevice):
    """State of the reader: where the card is, what is on its track 2, jams, the retain bin."""

    def __init__(self, faults: FaultSchedule | None = None, *, auto_take_card: bool = True) -> None:
        super().__init__()
        self.faults = faults or FaultSchedule()
        self.auto_take_card = auto_take_card  # the customer takes an ejected card at once
        self.card = CardPosition.NO_CARD
        self.track2: str | None = None
        self.chip: ChipCard | None = None
        self.chip_powered = False
        self.entry_enabled = False
        self.jammed = False
        self.retained_cards = 0
        self._leave_card_at_gate = False

    # -- the customer's side -------------------------------------------------------------
    def insert_card(self, track2: str, chip: ChipCard | None = None) -> bool:
        """Push a card in (with its chip, if it has one); accepted only while entry is enabled
        and the reader is empty."""
        if not self.entry_enabled or self.card is not CardPosition.NO_CARD:
            return False
        self.track2 = proto.validate_track2(track2)
        self.chip, self.chip_powered = chip, False
        self.card = CardPosition.INSIDE
        self.entry_enabled = False  # the shutter closes behind the card
        return True

    def take_card(self) -> bool:
        """Take the card from the gate (True if there was one)."""
        if self.card is not CardPosition.AT_GATE:
            return False
        self.card, self.track2, self.chip = CardPosition.NO_CARD, None, None
        return True

    # -- the host's side -----------------------------------------------------------------
    def handle(self, text: bytes) -> bytes | None:
        """Reply text for one command text (None: the reader stays silent)."""
        if self.faults.check(Fault.CARD_READER_SILENT):
            return None
        try:
            decoded = proto.decode_command(text)
        except RemoteProtocolError:
            return proto.undefined_command_reply(text)
        if decoded.command in _ICC_COMMANDS:
            return self._icc(decoded.command, decoded.data).encode()
        return self._execute(decoded.command).encode()

    def status(self) -> ReaderStatus:
        return ReaderStatus(self.card, self.retained_cards >= retain_bin_capacity_cards)

    def _execute(self, command: ReaderCommand) -> PositiveReply | NegativeReply:
        if command is ReaderCommand.STATUS:
            self._customer_acts()
            return PositiveReply(command, self.status())
        if command in (ReaderCommand.ENABLE_ENTRY, ReaderCommand.INHIBIT_ENTRY):
            self.entry_enabled = command is ReaderCommand.ENABLE_ENTRY
            return PositiveReply(command, self.status())
        if command.value.startswith("0"):
            return self._initialise(command)
        if self.jammed:
            return NegativeReply(command, ReaderErrorCode.CARD_JAM)
        if command is ReaderCommand.READ_TRACK2:
            return self._read_track2()
        return self._move(command)

    def _initialise(self, command: ReaderCommand) -> PositiveReply | NegativeReply:
        """Initialise clears a jam (the mechanism is reset) and applies the card action."""
        self.jammed, self.entry_enabled = False, False
        self.chip_powered = False
        if self.card is CardPosition.INSIDE:
            if command is ReaderCommand.INITIALISE_EJECT:
                self.card = CardPosition.AT_GATE
            elif command is ReaderCommand.INITIALISE_CAPTURE:
                self._retain()
        return PositiveReply(command, self.status())

    def _read_track2(self) -> PositiveReply | NegativeReply:
        command = ReaderCommand.READ_TRACK2
        if self.card is not CardPosition.INSIDE or self.track2 is None:
            return NegativeReply(command, ReaderErrorCode.SEQUENCE_ERROR)
        if self.faults.check(Fault.UNREADABLE_TRACK):
            return NegativeReply(command, ReaderErrorCode.READ_ERROR)
        return PositiveReply(command, self.status(), self.track2.encode("ascii"))

    def _move(self, command: ReaderCommand) -> PositiveReply | NegativeReply:
        if command not in _MOVEMENTS or self.card is CardPosition.NO_CARD:
            return NegativeReply(command, ReaderErrorCode.SEQUENCE_ERROR)
        if self.faults.check(Fault.CARD_JAM):
            self.jammed, self.card = True, CardPosition.INSIDE
            return NegativeReply(command, ReaderErrorCode.CARD_JAM)
        self.chip_powered = False  # the contacts lift before the card moves
        if command is ReaderCommand.CAPTURE:
            if self.retained_cards >= retain_bin_capacity_cards:
                return NegativeReply(command, ReaderErrorCode.RETAIN_BIN_FULL)
            self._retain()
        else:
            self.card = CardPosition.AT_GATE
            self._leave_card_at_gate = bool(self.faults.check(Fault.CARD_NOT_TAKEN))
        return PositiveReply(command, self.status())

    def _retain(self) -> None:
        self.card, self.track2, self.chip = CardPosition.NO_CARD, None, None
        self.retained_cards += 1

    # -- the chip ------------------------------------------------------------------------
    def _icc(self, command: ReaderCommand, data: bytes) -> PositiveReply | NegativeReply:
        if self.jammed:
            return NegativeReply(command, ReaderErrorCode.CARD_JAM)
        if self.card is not CardPosition.INSIDE:
            return NegativeReply(command, ReaderErrorCode.SEQUENCE_ERROR)
        if command is ReaderCommand.ICC_DEACTIVATE:
            self.chip_powered = False
            return PositiveReply(command, self.status())
        if command is ReaderCommand.ICC_ACTIVATE:
            return self._activate()
        return self._apdu(data)

    def _activate(self) -> PositiveReply | NegativeReply:
        command = ReaderCommand.ICC_ACTIVATE
        if self.chip is None or self.faults.check(Fault.CHIP_MUTE):
            self.chip_powered = False
            return NegativeReply(command, ReaderErrorCode.ICC_NO_ATR)
        self.chip_powered = True
        return PositiveReply(command, self.status(), self.chip.reset())

    def _apdu(self, data: bytes) -> PositiveReply | NegativeReply:
        command = ReaderCommand.ICC_APDU
        if self.chip is None or not self.chip_powered:
            return NegativeReply(command, ReaderErrorCode.SEQUENCE_ERROR)
        try:
            apdu = proto.validate_apdu(data)
        except LocalProtocolError:
            return NegativeReply(command, ReaderErrorCode.PARAMETER_ERROR)
        # Opportunities of chip_no_answer are the GENERATE ACs: "at = [2]" is the second one.
        if apdu[1] == Ins.GENERATE_AC and self.faults.check(Fault.CHIP_NO_ANSWER):
            self.chip_powered = False
            return NegativeReply(command, ReaderErrorCode.ICC_NO_RESPONSE)
        return PositiveReply(command, self.status(), self.chip.exchange(apdu))

    def _customer_acts(self) -> None:
        """Between status polls the simulated customer takes a card waiting at the gate."""
        if self.auto_take_card and not self._leave_card_at_gate:
            self.take_card()


class CardReaderEmulator:
    """Serves a `CardReaderModel` on a transport (the pty master in the simulator)."""

    def __init__(self, model: CardReaderModel) -> None:
        self.model = model

    async def serve(self, transport: Transport) -> None:
        """Run until the transport closes (raises TransportClosed) or the task is cancelled."""
        self.model.attach_lines(transport.lines)
        link = DeviceLink(
            transport,
            proto.CardReaderFrameParser(),
            proto.encode_frame,
            is_powered=self.model.is_powered,
        )

        async def handle(text: bytes) -> bytes | None:
            return self.model.handle(text)

        await link.serve(handle)
