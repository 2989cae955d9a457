"""Cash dispenser emulator (Puloon LCDM-style, four cassettes with denominations).

`DispenserModel` is the sans-I/O mechanism: command text in, reply text out. Notes move from
cassettes past the check sensor, then either out of the exit into the presenter or into the
reject bin. Injected faults: pick-up error (a partial dispense), note jam, double-note rejects,
cassette low / empty / missing, notes not taken (left in the exit until retracted), no answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from terminals.devices import dispenser as proto
from terminals.devices.dispenser import (
    CassetteInfo,
    CassetteInfoReply,
    CassetteResult,
    CassetteState,
    DispenserCommand,
    DispenseReply,
    DispenserError,
    SimpleReply,
    StatusReply,
)
from terminals.devices.errors import RemoteProtocolError
from terminals.emulators.base import PoweredDevice
from terminals.emulators.faults import Fault, FaultSchedule
from terminals.emulators.link import DeviceLink
from terminals.transport.base import Transport

# Rejected notes one dispense may divert before it stops with OVER_REJECT (LCDM: 10).
rejects_per_dispense_max = 10


@dataclass
class Cassette:
    """One cassette: its denomination (minor units), currency and the notes really inside."""

    denomination: int
    currency: str = "156"
    count: int = 0
    present: bool = True
    low_threshold: int = 20  # the near-end sensor trips at or below this many notes

    def state(self) -> CassetteState:
        if not self.present:
            return CassetteState.MISSING
        if self.count == 0:
            return CassetteState.EMPTY
        return CassetteState.LOW if self.count <= self.low_threshold else CassetteState.OK


@dataclass
class _Dispense:
    """Running tallies of one dispense."""

    results: list[list[int]] = field(default_factory=lambda: [[0, 0, 0] for _ in range(4)])
    rejects: int = 0
    error: DispenserError = DispenserError.GOOD
    failed_cassette: int = 0


class DispenserModel(PoweredDevice):
    """The mechanism, the presenter (exit), the reject bin and the retract bin."""

    def __init__(
        self,
        cassettes: list[Cassette],
        faults: FaultSchedule | None = None,
        *,
        auto_take_notes: bool = True,
    ) -> None:
        super().__init__()
        if len(cassettes) != proto.cassettes_count:
            raise ValueError(f"a dispenser has {proto.cassettes_count} cassettes")
        self.cassettes = cassettes
        self.faults = faults or FaultSchedule()
        self.auto_take_notes = auto_take_notes  # the customer takes presented notes at once
        self.jammed_notes = 0  # notes stuck in the transport (until PURGE)
        self.notes_in_exit = [0] * proto.cassettes_count  # presented, not yet taken
        self.reject_bin = [0] * proto.cassettes_count
        self.retract_bin = 0
        self.notes_taken = [0] * proto.cassettes_count
        self._leave_notes = False

    def take_notes(self) -> int:
        """The customer takes the notes waiting in the exit; returns how many."""
        taken = sum(self.notes_in_exit)
        for i, count in enumerate(self.notes_in_exit):
            self.notes_taken[i] += count
        self.notes_in_exit = [0] * proto.cassettes_count
        return taken

    def handle(self, text: bytes) -> bytes | None:
        """Reply text for one command text (None: the dispenser stays silent)."""
        if self.faults.check(Fault.DISPENSER_SILENT):
            return None
        try:
            command, data = proto.decode_command(text)
        except RemoteProtocolError:
            return bytes(text[:1]) + DispenserError.UNDEFINED_COMMAND.value
        return self._execute(command, data).encode()

    def _execute(self, command: DispenserCommand, data: bytes) -> proto.Reply:
        if command is DispenserCommand.STATUS:
            return self._status()
        if command is DispenserCommand.CASSETTE_INFO:
            infos = tuple(
                CassetteInfo(c.denomination, c.currency, c.state()) for c in self.cassettes
            )
            return CassetteInfoReply(DispenserError.GOOD, infos)
        if command is DispenserCommand.PURGE:
            return self._purge()
        if command is DispenserCommand.RETRACT:
            retracted = sum(self.notes_in_exit)
            self.retract_bin += retracted
            self.notes_in_exit = [0] * proto.cassettes_count
            self._leave_notes = False
            return SimpleReply(command, DispenserError.GOOD, retracted)
        if command is DispenserCommand.TEST_DISPENSE:
            counts = tuple(1 if c.present and c.count else 0 for c in self.cassettes)
            return self._dispense(command, counts, to_reject=True)
        try:
            counts = proto.decode_dispense_counts(data)
        except RemoteProtocolError:
            return _failed(command, DispenserError.NOTE_REQUEST_ERROR)
        return self._dispense(command, counts, to_reject=False)

    def _status(self) -> StatusReply:
        if self.auto_take_notes and not self._leave_notes:
            self.take_notes()
        error = DispenserError.JAM_AT_CHECK_SENSOR if self.jammed_notes else DispenserError.GOOD
        return StatusReply(
            error,
            check_sensor_blocked=self.jammed_notes > 0,
            exit_sensor_blocked=sum(self.notes_in_exit) > 0,
            cassettes=tuple(c.state() for c in self.cassettes),
            notes_in_exit=sum(self.notes_in_exit) > 0,
        )

    def _purge(self) -> SimpleReply:
        """Jammed notes go to the reject bin (counted against cassette 1's bin slot)."""
        self.reject_bin[0] += self.jammed_notes
        self.jammed_notes = 0
        return SimpleReply(DispenserCommand.PURGE, DispenserError.GOOD)

    def _dispense(
        self, command: DispenserCommand, counts: tuple[int, ...], *, to_reject: bool
    ) -> DispenseReply:
        if self.jammed_notes:
            return _failed(command, DispenserError.JAM_AT_CHECK_SENSOR)
        if sum(self.notes_in_exit):
            return _failed(command, DispenserError.NOTES_IN_EXIT)
        if not any(counts) and not to_reject:
            return _failed(command, DispenserError.NOTE_REQUEST_ERROR)
        run = _Dispense()
        for index, wanted in enumerate(counts):
            if wanted and not self._dispense_cassette(run, index, wanted, to_reject=to_reject):
                break
        if not to_reject and any(r[1] for r in run.results):
            self._leave_notes = bool(self.faults.check(Fault.NOTES_NOT_TAKEN))
        results = tuple(CassetteResult(*r) for r in run.results)
        return DispenseReply(command, run.error, run.failed_cassette, results)

    def _dispense_cassette(
        self, run: _Dispense, index: int, wanted: int, *, to_reject: bool
    ) -> bool:
        """Pick `wanted` notes from cassette `index`; False when the dispense must stop."""
        cassette, tally, number = self.cassettes[index], run.results[index], index + 1
        self._apply_cassette_faults(cassette, number)
        if not cassette.present:
            return _stop(run, DispenserError.CASSETTE_NOT_RECOGNISED, number)
        while tally[1] < wanted and not (to_reject and tally[2] >= wanted):
            if cassette.count == 0:
                return _stop(run, DispenserError.CASSETTE_EMPTY, number)
            if self.faults.check(Fault.PICK_ERROR, cassette=number):
                return _stop(run, DispenserError.PICKUP_ERROR, number)
            cassette.count -= 1
            tally[0] += 1
            if self.faults.check(Fault.NOTE_JAM, cassette=number):
                self.jammed_notes += 1
                return _stop(run, DispenserError.JAM_AT_CHECK_SENSOR, number)
            if to_reject or self.faults.check(Fault.DOUBLE_NOTE_REJECT, cassette=number):
                tally[2] += 1
                self.reject_bin[index] += 1
                run.rejects += 0 if to_reject else 1
                if run.rejects > rejects_per_dispense_max:
                    return _stop(run, DispenserError.OVER_REJECT, number)
                continue
            tally[1] += 1
            self.notes_in_exit[index] += 1
        return True

    def _apply_cassette_faults(self, cassette: Cassette, number: int) -> None:
        """State faults: a cassette found missing, emptied, or down to its near-end level."""
        if self.faults.check(Fault.CASSETTE_MISSING, cassette=number):
            cassette.present = False
        if self.faults.check(Fault.CASSETTE_EMPTY, cassette=number):
            cassette.count = 0
        if self.faults.check(Fault.CASSETTE_LOW, cassette=number):
            cassette.count = min(cassette.count, cassette.low_threshold)


def _stop(run: _Dispense, error: DispenserError, cassette: int) -> bool:
    run.error, run.failed_cassette = error, cassette
    return False


def _failed(command: DispenserCommand, error: DispenserError) -> DispenseReply:
    empty = tuple(CassetteResult() for _ in range(proto.cassettes_count))
    return DispenseReply(command, error, 0, empty)


class DispenserEmulator:
    """Serves a `DispenserModel` on a transport."""

    def __init__(self, model: DispenserModel) -> None:
        self.model = model

    async def serve(self, transport: Transport) -> None:
        self.model.attach_lines(transport.lines)
        link = DeviceLink(
            transport,
            proto.DispenserFrameParser(proto.Direction.COMMAND),
            proto.encode_reply_frame,
            is_powered=self.model.is_powered,
        )

        async def handle(text: bytes) -> bytes | None:
            return self.model.handle(text)

        await link.serve(handle)
