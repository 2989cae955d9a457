"""Card reader protocol, modelled on the Sankyo ICT3 series (ICT3Q8 / ICT3K5) serial protocol.

Frame (both directions)::

    STX(0xF2) | LEN (2 bytes, big-endian, bytes of TEXT) | TEXT | CRC (2 bytes, big-endian)

CRC is CRC-16/XMODEM over STX, LEN and TEXT. The receiver answers every frame with ACK (0x06) or,
when the CRC is wrong, NAK (0x15); the sender retries a NAKed frame (3 times here). TEXT is:

- command:  'C' + command code + parameter code + data
- positive: 'P' + command code + parameter code + st1 + st0 + data  (st1: retain bin, st0: card)
- negative: 'N' + command code + parameter code + e1 + e0 + data    (error code)

Chip (ICC) commands carry binary data in TEXT: 'I0' powers the contacts on (cold reset; the
positive reply's data is the ATR), 'I3' sends one command APDU (data) and answers with the
response APDU (data || SW1 SW2), 'I1' powers the contacts off. A card without a working chip
answers 'I0' with error 60 (no ATR); a chip that stops answering an APDU gives error 61.

See docs/devices.md for the command and error tables and a worked golden frame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum
from typing import Final

from terminals.devices.checksums import crc16_xmodem
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

STX: Final = 0xF2
# The ICT3 receive buffer is 1024 bytes: 3 header + TEXT + 2 CRC.
text_size_bytes_max: Final = 1019
frame_overhead_bytes: Final = 5
buffer_size_bytes_max: Final = text_size_bytes_max + frame_overhead_bytes + receive_chunk_bytes_max
# Track 2 data, sentinels excluded (ISO/IEC 7813: 40 characters with SS, ES and LRC).
track2_characters_max: Final = 37
# Short APDU: CLA INS P1 P2 Lc data(255) Le; a response is up to 256 bytes + SW1 SW2.
apdu_bytes_max: Final = 261

_CONTROL_BYTES: Final = frozenset(
    {ControlCode.ACK, ControlCode.NAK, ControlCode.EOT, ControlCode.DLE}
)
_TEXT_TYPES: Final = frozenset(b"CPN")


def encode_frame(text: bytes) -> bytes:
    """STX + LEN + TEXT + CRC for one command or reply text."""
    if not text or len(text) > text_size_bytes_max:
        raise LocalProtocolError(f"card reader text must be 1..{text_size_bytes_max} bytes")
    head = bytes([STX]) + struct.pack(">H", len(text)) + text
    return head + struct.pack(">H", crc16_xmodem(head))


class CardReaderFrameParser(FrameParser):
    """Frames and the ACK/NAK/EOT/DLE bytes between them; anything else is skipped."""

    def __init__(self) -> None:
        super().__init__(buffer_size_bytes_max=buffer_size_bytes_max)

    def _parse_head(self) -> Event | _NeedData | None:
        head = self._buffer[0]
        if head in _CONTROL_BYTES:
            self._consume(1)
            return Control(ControlCode(head))
        if head != STX:
            self._discard(1)
            return None
        return self._parse_frame()

    def _parse_frame(self) -> Event | _NeedData | None:
        if len(self._buffer) < 4:
            return NEED_DATA
        (length,) = struct.unpack_from(">H", self._buffer, 1)
        if length == 0 or length > text_size_bytes_max or self._buffer[3] not in _TEXT_TYPES:
            # Not a frame start after all (noise that looked like STX): rescan from the next byte.
            self._discard(1)
            return None
        total = 3 + length + 2
        if len(self._buffer) < total:
            return NEED_DATA
        (received_crc,) = struct.unpack_from(">H", self._buffer, 3 + length)
        if crc16_xmodem(bytes(self._buffer[: 3 + length])) != received_crc:
            # Skip only the STX: the real frame may start inside what we took for this one.
            self._discard(1)
            return CorruptFrame("card reader frame CRC mismatch")
        frame = self._consume(total)
        return Frame(frame[3 : 3 + length])


class ReaderCommand(Enum):
    """Command code + parameter code pairs (ICT3Q8 command table, the subset an ATM uses)."""

    INITIALISE_EJECT = "00"  # initialise; a card inside is ejected to the gate
    INITIALISE_CAPTURE = "01"  # initialise; a card inside is captured to the retain bin
    INITIALISE_NO_MOVE = "02"  # initialise; a card inside stays where it is
    STATUS = "10"  # report st1/st0
    EJECT = "30"  # carry the card to the gate (the customer takes it there)
    CAPTURE = "31"  # carry the card to the rear retain bin
    ENABLE_ENTRY = ":0"  # shutter open: accept a card
    INHIBIT_ENTRY = ":1"  # shutter closed
    READ_TRACK2 = "62"  # read track 2 of the card in position
    ICC_ACTIVATE = "I0"  # contacts down, power on, cold reset: data = ATR
    ICC_DEACTIVATE = "I1"  # power off, contacts up
    ICC_APDU = "I3"  # one command APDU in, the response APDU out (T=0/T=1 handled inside)


class CardPosition(Enum):
    """st0 of a positive reply."""

    NO_CARD = "0"
    AT_GATE = "1"
    INSIDE = "2"


class ReaderErrorCode(Enum):
    """e1e0 of a negative reply (grouped like the ICT3Q8 error table)."""

    UNDEFINED_COMMAND = "00"
    PARAMETER_ERROR = "01"
    SEQUENCE_ERROR = "02"  # e.g. read or eject with no card inside
    CARD_JAM = "10"
    READ_ERROR = "20"  # track unreadable: no start sentinel, parity or LRC error
    CARD_PULLED_OUT = "40"  # card removed while the reader was carrying it
    RETAIN_BIN_FULL = "50"
    ICC_NO_ATR = "60"  # no answer to reset: no chip, or a mute one
    ICC_NO_RESPONSE = "61"  # the chip stopped answering an APDU (character waiting time)


@dataclass(frozen=True, slots=True)
class ReaderStatus:
    """st1 (retain bin) and st0 (card position)."""

    card: CardPosition
    retain_bin_full: bool = False

    def encode(self) -> bytes:
        return (b"1" if self.retain_bin_full else b"0") + self.card.value.encode()


@dataclass(frozen=True, slots=True)
class Command:
    """A host-to-reader command text."""

    command: ReaderCommand
    data: bytes = b""

    def encode(self) -> bytes:
        return b"C" + self.command.value.encode() + self.data


@dataclass(frozen=True, slots=True)
class PositiveReply:
    """'P': the command succeeded; `data` is the track for READ_TRACK2."""

    command: ReaderCommand
    status: ReaderStatus
    data: bytes = b""

    def encode(self) -> bytes:
        return b"P" + self.command.value.encode() + self.status.encode() + self.data


@dataclass(frozen=True, slots=True)
class NegativeReply:
    """'N': the command failed with `error`."""

    command: ReaderCommand
    error: ReaderErrorCode
    data: bytes = b""

    def encode(self) -> bytes:
        return b"N" + self.command.value.encode() + self.error.value.encode() + self.data


Reply = PositiveReply | NegativeReply


def decode_command(text: bytes) -> Command:
    """Parse a command text; raises RemoteProtocolError for anything the reader would reject."""
    if len(text) < 3 or text[:1] != b"C":
        raise RemoteProtocolError(f"not a card reader command: {text[:8]!r}")
    return Command(_reader_command(text[1:3]), bytes(text[3:]))


def decode_reply(text: bytes) -> Reply:
    """Parse a positive or negative reply text."""
    if len(text) < 5 or text[:1] not in (b"P", b"N"):
        raise RemoteProtocolError(f"not a card reader reply: {text[:8]!r}")
    command = _reader_command(text[1:3])
    code, data = text[3:5].decode("ascii", "replace"), bytes(text[5:])
    if text[:1] == b"N":
        try:
            return NegativeReply(command, ReaderErrorCode(code), data)
        except ValueError:
            raise RemoteProtocolError(f"unknown card reader error code {code!r}") from None
    try:
        status = ReaderStatus(CardPosition(code[1]), retain_bin_full=_flag(code[0]))
    except ValueError:
        raise RemoteProtocolError(f"bad card reader status {code!r}") from None
    return PositiveReply(command, status, data)


def undefined_command_reply(text: bytes) -> bytes:
    """The 'N' reply a reader gives to a command code it does not know (error 00)."""
    code = (bytes(text[1:3]) + b"??")[:2]
    return b"N" + code + ReaderErrorCode.UNDEFINED_COMMAND.value.encode()


def validate_apdu(apdu: bytes) -> bytes:
    """A command APDU fits one reader TEXT: 4-byte header, at most 5 + 255 + 1 bytes."""
    if not 4 <= len(apdu) <= apdu_bytes_max:
        raise LocalProtocolError(f"a command APDU is 4..{apdu_bytes_max} bytes")
    return apdu


def validate_track2(track: str) -> str:
    """Track 2 data as a reader returns it: digits and '=' only, at most 37 characters."""
    if not track or len(track) > track2_characters_max or set(track) - set("0123456789="):
        raise LocalProtocolError("track 2 must be 1..37 characters of digits and '='")
    return track


def _reader_command(code: bytes) -> ReaderCommand:
    try:
        return ReaderCommand(code.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise RemoteProtocolError(f"unknown card reader command {code!r}") from None


def _flag(char: str) -> bool:
    if char not in "01":
        raise ValueError(char)
    return char == "1"
