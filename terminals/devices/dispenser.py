"""Cash dispenser protocol, modelled on the Puloon LCDM family, extended to four cassettes.

Frames::

    command (host -> dispenser): EOT(0x04) ID(0x50) STX(0x02) CMD DATA ETX(0x03) BCC
    reply   (dispenser -> host): SOH(0x01) ID(0x50) STX(0x02) CMD DATA ETX(0x03) BCC

BCC is the XOR of every byte from EOT/SOH through ETX. Each frame is answered by ACK (0x06) or
NAK (0x15), as on the LCDM-2000. DATA is printable ASCII only (digits and letters), so ETX can
only end a frame. Command table, reply layouts and error codes: docs/devices.md.

Extensions to the LCDM-2000 (which has an upper and a lower cassette): DISPENSE carries a count
for each of four cassettes and its reply reports notes checked, exited and rejected per cassette;
STATUS reports each cassette's state and whether notes wait in the exit; RETRACT and
CASSETTE_INFO (denomination and currency per cassette) are new commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

from terminals.devices.checksums import xor_bcc
from terminals.devices.errors import LocalProtocolError, RemoteProtocolError
from terminals.devices.events import (
    NEED_DATA,
    Control,
    ControlCode,
    CorruptFrame,
    Event,
    Frame,
    _NeedData,
)
from terminals.devices.framing import FrameParser, receive_chunk_bytes_max

DEVICE_ID: Final = 0x50
cassettes_count: Final = 4
# LCDM limit per cassette per command: two ASCII digits, at most 60 notes.
notes_per_cassette_per_dispense_max: Final = 60
# The largest text (CMD + DATA) any command or reply of this table needs, with room to spare.
text_size_bytes_max: Final = 96
frame_overhead_bytes: Final = 5  # start, ID, STX ... ETX, BCC
buffer_size_bytes_max: Final = text_size_bytes_max + frame_overhead_bytes + receive_chunk_bytes_max
denomination_digits: Final = 8  # minor units, e.g. 00010000 = 100.00 CNY


class Direction(Enum):
    """Which frames a parser accepts: commands (the dispenser's side) or replies (the host's)."""

    COMMAND = ControlCode.EOT
    REPLY = ControlCode.SOH


def encode_frame(text: bytes, direction: Direction) -> bytes:
    """Frame one CMD + DATA text."""
    if not text or len(text) > text_size_bytes_max:
        raise LocalProtocolError(f"dispenser text must be 1..{text_size_bytes_max} bytes")
    if any(byte < 0x20 or byte > 0x7E for byte in text):
        raise LocalProtocolError("dispenser text must be printable ASCII")
    body = bytes([direction.value, DEVICE_ID, ControlCode.STX]) + text + bytes([ControlCode.ETX])
    return body + bytes([xor_bcc(body)])


def encode_command_frame(text: bytes) -> bytes:
    return encode_frame(text, Direction.COMMAND)


def encode_reply_frame(text: bytes) -> bytes:
    return encode_frame(text, Direction.REPLY)


class DispenserFrameParser(FrameParser):
    """Frames of one direction plus ACK/NAK; anything else is skipped."""

    def __init__(self, direction: Direction) -> None:
        super().__init__(buffer_size_bytes_max=buffer_size_bytes_max)
        self._start = direction.value

    def _parse_head(self) -> Event | _NeedData | None:
        head = self._buffer[0]
        if head in (ControlCode.ACK, ControlCode.NAK):
            self._consume(1)
            return Control(ControlCode(head))
        if head != self._start:
            self._discard(1)
            return None
        if len(self._buffer) < 3:
            return NEED_DATA
        if self._buffer[1] != DEVICE_ID or self._buffer[2] != ControlCode.STX:
            self._discard(1)
            return None
        return self._parse_body()

    def _parse_body(self) -> Event | _NeedData | None:
        end = self._buffer.find(bytes([ControlCode.ETX]), 3, 3 + text_size_bytes_max + 1)
        if end < 0:
            if len(self._buffer) > 3 + text_size_bytes_max:
                self._discard(1)
                return CorruptFrame("dispenser frame has no ETX within the size limit")
            return NEED_DATA
        if len(self._buffer) < end + 2:
            return NEED_DATA
        if end == 3 or xor_bcc(bytes(self._buffer[: end + 1])) != self._buffer[end + 1]:
            self._discard(1)
            return CorruptFrame("dispenser frame BCC mismatch")
        frame = self._consume(end + 2)
        return Frame(frame[3:end])


class DispenserCommand(Enum):
    """CMD byte of each command."""

    PURGE = b"D"  # 0x44: clear notes from the transport into the reject bin
    DISPENSE = b"E"  # 0x45: dispense per cassette (LCDM upper dispense, extended to four)
    STATUS = b"F"  # 0x46: error code, sensors, cassettes, exit
    CASSETTE_INFO = b"I"  # 0x49 (extension): denomination and currency per cassette
    RETRACT = b"R"  # 0x52 (extension): pull notes left in the exit into the retract bin
    TEST_DISPENSE = b"v"  # 0x76: one note from each cassette into the reject bin


class DispenserError(Enum):
    """Error code byte of every reply (LCDM-2000 codes; 'K' is an extension)."""

    GOOD = b"0"  # 0x30
    NORMAL_STOP = b"1"  # 0x31
    PICKUP_ERROR = b"2"  # 0x32: no note picked from the cassette
    JAM_AT_CHECK_SENSOR = b"3"  # 0x33
    JAM_AT_EXIT_SENSOR = b"5"  # 0x35
    UNDEFINED_COMMAND = b"7"  # 0x37
    CASSETTE_EMPTY = b"8"  # 0x38: "upper bill-end", for any cassette here
    NOTE_REQUEST_ERROR = b";"  # 0x3B: count out of range
    OVER_REJECT = b"D"  # 0x44: too many rejected notes in one dispense
    CASSETTE_NOT_RECOGNISED = b"E"  # 0x45: cassette missing
    NOTES_IN_EXIT = b"K"  # 0x4B (extension): notes still wait in the exit


class CassetteState(Enum):
    """One character per cassette in STATUS and CASSETTE_INFO replies."""

    OK = b"0"
    LOW = b"1"  # near-end sensor
    EMPTY = b"2"
    MISSING = b"3"


@dataclass(frozen=True, slots=True)
class CassetteResult:
    """Notes of one cassette in one dispense: picked past the check sensor, out of the exit,
    diverted to the reject bin. checked = exited + rejected (+ a note stuck in a jam)."""

    checked: int = 0
    exited: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class DispenseReply:
    """Reply to DISPENSE or TEST_DISPENSE. `failed_cassette` is 1-4, or 0 when none failed."""

    command: DispenserCommand
    error: DispenserError
    failed_cassette: int
    cassettes: tuple[CassetteResult, ...]

    def encode(self) -> bytes:
        counts = b"".join(
            _two_digits(c.checked) + _two_digits(c.exited) + _two_digits(c.rejected)
            for c in self.cassettes
        )
        return self.command.value + self.error.value + str(self.failed_cassette).encode() + counts


@dataclass(frozen=True, slots=True)
class StatusReply:
    """Reply to STATUS: check sensor and exit sensor blocked, cassette states, notes in exit."""

    error: DispenserError
    check_sensor_blocked: bool
    exit_sensor_blocked: bool
    cassettes: tuple[CassetteState, ...]
    notes_in_exit: bool

    def encode(self) -> bytes:
        flags = _flag(self.check_sensor_blocked) + _flag(self.exit_sensor_blocked)
        states = b"".join(state.value for state in self.cassettes)
        return DispenserCommand.STATUS.value + self.error.value + flags + states + (
            _flag(self.notes_in_exit)
        )


@dataclass(frozen=True, slots=True)
class CassetteInfo:
    """What CASSETTE_INFO says of one cassette (the denomination is in minor units)."""

    denomination: int
    currency: str
    state: CassetteState


@dataclass(frozen=True, slots=True)
class CassetteInfoReply:
    error: DispenserError
    cassettes: tuple[CassetteInfo, ...]

    def encode(self) -> bytes:
        body = b"".join(
            str(c.denomination).zfill(denomination_digits).encode()
            + c.currency.encode()
            + c.state.value
            for c in self.cassettes
        )
        return DispenserCommand.CASSETTE_INFO.value + self.error.value + body


@dataclass(frozen=True, slots=True)
class SimpleReply:
    """Reply to PURGE and RETRACT (RETRACT adds the number of notes pulled back)."""

    command: DispenserCommand
    error: DispenserError
    notes: int | None = None

    def encode(self) -> bytes:
        notes = b"" if self.notes is None else _two_digits(self.notes)
        return self.command.value + self.error.value + notes


Reply = DispenseReply | StatusReply | CassetteInfoReply | SimpleReply


def encode_dispense(counts: Sequence[int], *, test: bool = False) -> bytes:
    """DISPENSE text: four two-digit counts (TEST_DISPENSE has no data)."""
    if test:
        return DispenserCommand.TEST_DISPENSE.value
    if len(counts) != cassettes_count:
        raise LocalProtocolError(f"dispense needs {cassettes_count} counts")
    if any(not 0 <= n <= notes_per_cassette_per_dispense_max for n in counts):
        raise LocalProtocolError(f"counts must be 0..{notes_per_cassette_per_dispense_max}")
    return DispenserCommand.DISPENSE.value + b"".join(_two_digits(n) for n in counts)


def decode_command(text: bytes) -> tuple[DispenserCommand, bytes]:
    """(command, data); RemoteProtocolError for an unknown CMD byte."""
    try:
        return DispenserCommand(bytes(text[:1])), bytes(text[1:])
    except ValueError:
        raise RemoteProtocolError(f"unknown dispenser command {text[:1]!r}") from None


def decode_dispense_counts(data: bytes) -> tuple[int, ...]:
    """The four counts of a DISPENSE; RemoteProtocolError if malformed or out of range."""
    if len(data) != 2 * cassettes_count or not data.isdigit():
        raise RemoteProtocolError("dispense data must be 8 digits")
    counts = tuple(int(data[i : i + 2]) for i in range(0, len(data), 2))
    if any(n > notes_per_cassette_per_dispense_max for n in counts):
        raise RemoteProtocolError("dispense count over the per-cassette limit")
    return counts


def decode_reply(text: bytes) -> Reply:
    """Parse any reply text; RemoteProtocolError when it does not fit its command's layout."""
    try:
        command, error = DispenserCommand(bytes(text[:1])), DispenserError(bytes(text[1:2]))
        body = bytes(text[2:])
        if command in (DispenserCommand.DISPENSE, DispenserCommand.TEST_DISPENSE):
            return _decode_dispense(command, error, body)
        if command is DispenserCommand.STATUS:
            return _decode_status(error, body)
        if command is DispenserCommand.CASSETTE_INFO:
            return _decode_info(error, body)
        return _decode_simple(command, error, body)
    except (ValueError, IndexError):
        raise RemoteProtocolError(f"malformed dispenser reply {text[:16]!r}") from None


def _decode_dispense(command: DispenserCommand, error: DispenserError, body: bytes) -> Reply:
    if len(body) != 1 + 6 * cassettes_count or not body.isdigit():
        raise ValueError("dispense reply length")
    numbers = [int(body[i : i + 2]) for i in range(1, len(body), 2)]
    cassettes = tuple(CassetteResult(*numbers[i : i + 3]) for i in range(0, len(numbers), 3))
    return DispenseReply(command, error, int(body[:1]), cassettes)


def _decode_status(error: DispenserError, body: bytes) -> Reply:
    if len(body) != 2 + cassettes_count + 1:
        raise ValueError("status reply length")
    states = tuple(CassetteState(body[i : i + 1]) for i in range(2, 2 + cassettes_count))
    return StatusReply(
        error, _read_flag(body[0:1]), _read_flag(body[1:2]), states, _read_flag(body[-1:])
    )


def _decode_info(error: DispenserError, body: bytes) -> Reply:
    width = denomination_digits + 3 + 1
    if len(body) != width * cassettes_count:
        raise ValueError("cassette info reply length")
    cassettes = []
    for i in range(0, len(body), width):
        chunk = body[i : i + width]
        if not chunk[: denomination_digits + 3].isdigit():
            raise ValueError("cassette info digits")
        cassettes.append(
            CassetteInfo(
                int(chunk[:denomination_digits]),
                chunk[denomination_digits : denomination_digits + 3].decode(),
                CassetteState(chunk[-1:]),
            )
        )
    return CassetteInfoReply(error, tuple(cassettes))


def _decode_simple(command: DispenserCommand, error: DispenserError, body: bytes) -> Reply:
    if command is DispenserCommand.RETRACT:
        if len(body) != 2 or not body.isdigit():
            raise ValueError("retract reply length")
        return SimpleReply(command, error, int(body))
    if body:
        raise ValueError("unexpected reply data")
    return SimpleReply(command, error)


def _two_digits(value: int) -> bytes:
    if not 0 <= value <= 99:
        raise LocalProtocolError(f"count {value} does not fit two digits")
    return b"%02d" % value


def _flag(value: bool) -> bytes:
    return b"1" if value else b"0"


def _read_flag(value: bytes) -> bool:
    if value not in (b"0", b"1"):
        raise ValueError(value)
    return value == b"1"
