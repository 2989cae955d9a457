"""Encrypting PIN pad (EPP) protocol, modelled on SZZT-style serial framing.

Frame (both directions)::

    STX(0x02) | LLL (3 ASCII digits: bytes of TEXT) | TEXT | ETX(0x03) | CC

CC is the XOR of every byte from the first L through ETX, as two upper-case hex digits. TEXT is
printable ASCII. There is no ACK/NAK: every command gets a reply frame (`code + status + data`);
a corrupt frame is dropped and the host's timeout resends safe commands. During PIN entry the
EPP also sends unsolicited frames: a key event per key press (digits shown only as '*') and one
final PIN result. Command table and status codes: docs/devices.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from ops.masking import masked_repr
from terminals.devices.checksums import xor_bcc
from terminals.devices.errors import LocalProtocolError, RemoteProtocolError
from terminals.devices.events import NEED_DATA, ControlCode, CorruptFrame, Event, Frame, _NeedData
from terminals.devices.framing import FrameParser, receive_chunk_bytes_max

text_size_bytes_max: Final = 999  # what three length digits can say
frame_overhead_bytes: Final = 7  # STX, LLL, ETX, CC
buffer_size_bytes_max: Final = text_size_bytes_max + frame_overhead_bytes + receive_chunk_bytes_max
# MAC data travels hex-encoded in chunks that fit one frame: "MC" + more-flag + hex.
mac_chunk_bytes_max: Final = 480
pin_length_min: Final = 4
pin_length_max: Final = 12
pin_entry_timeout_seconds_max: Final = 999


def encode_frame(text: bytes) -> bytes:
    """STX + LLL + TEXT + ETX + CC."""
    if not text or len(text) > text_size_bytes_max:
        raise LocalProtocolError(f"PIN pad text must be 1..{text_size_bytes_max} bytes")
    if any(byte < 0x20 or byte > 0x7E for byte in text):
        raise LocalProtocolError("PIN pad text must be printable ASCII")
    covered = b"%03d" % len(text) + text + bytes([ControlCode.ETX])
    return bytes([ControlCode.STX]) + covered + b"%02X" % xor_bcc(covered)


class PinPadFrameParser(FrameParser):
    """Frames only; bytes outside a frame are skipped."""

    def __init__(self) -> None:
        super().__init__(buffer_size_bytes_max=buffer_size_bytes_max)

    def _parse_head(self) -> Event | _NeedData | None:
        if self._buffer[0] != ControlCode.STX:
            self._discard(1)
            return None
        if len(self._buffer) < 4:
            return NEED_DATA
        digits = bytes(self._buffer[1:4])
        if not digits.isdigit() or int(digits) == 0:
            self._discard(1)
            return None
        length = int(digits)
        total = 1 + 3 + length + 1 + 2
        if len(self._buffer) < total:
            return NEED_DATA
        etx_at = 4 + length
        checksum = bytes(self._buffer[etx_at + 1 : total])
        if self._buffer[etx_at] != ControlCode.ETX or checksum != b"%02X" % xor_bcc(
            bytes(self._buffer[1 : etx_at + 1])
        ):
            self._discard(1)
            return CorruptFrame("PIN pad frame ETX or XOR mismatch")
        frame = self._consume(total)
        return Frame(frame[4:etx_at])


class PinPadCommand(Enum):
    """Two-character command codes (host to EPP)."""

    RESET = "RS"  # abort any PIN entry, clear MAC state; keys stay
    STATUS = "ST"  # which keys are loaded, whether PIN entry is active
    LOAD_COMPONENT = "LC"  # one clear TMK component (key ceremony, dual control)
    COMBINE_TMK = "LT"  # XOR the components into the TMK if its KCV matches
    IMPORT_KEY = "IK"  # a TPK or TAK as a TR-31 key block under the TMK
    PIN_ENTRY = "PE"  # start PIN entry for a PAN
    CANCEL_ENTRY = "CE"  # host aborts PIN entry
    MAC = "MC"  # MAC data with the TAK (ISO 9797-1 algorithm 3)


class PinPadStatus(Enum):
    """Two-digit status of every reply and of the final PIN result."""

    OK = "00"
    UNKNOWN_COMMAND = "10"
    BAD_PARAMETER = "11"
    BUSY = "12"  # a PIN entry is running
    TMK_NOT_LOADED = "20"
    KEY_NOT_LOADED = "21"  # no TPK for PIN entry / no TAK for MAC
    KCV_MISMATCH = "30"
    KEY_BLOCK_INVALID = "31"  # MAC of the key block fails, wrong version, bad length
    WRONG_KEY_USAGE = "32"  # a TPK must be P0, a TAK M3
    CANCELLED = "40"  # the customer pressed CANCEL (or the host sent CE)
    TIMEOUT = "41"  # no key within the entry timeout


class KeySlot(Enum):
    """Where IMPORT_KEY stores a working key."""

    TPK = "P"
    TAK = "A"


class DisplayKey(Enum):
    """What a key event shows: never the digit itself."""

    DIGIT = "*"
    CLEAR = "C"
    BACKSPACE = "B"
    ENTER = "E"
    CANCEL = "X"


KEY_EVENT_CODE: Final = "EV"
PIN_RESULT_CODE: Final = "PB"


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer to a command: its code, a status, and data (KCV, MAC, flags)."""

    command: PinPadCommand
    status: PinPadStatus
    data: str = ""

    def encode(self) -> bytes:
        return (self.command.value + self.status.value + self.data).encode("ascii")


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """Unsolicited: the customer pressed a key."""

    key: DisplayKey

    def encode(self) -> bytes:
        return (KEY_EVENT_CODE + self.key.value).encode("ascii")


@dataclass(frozen=True, slots=True)
class PinResult:
    """Unsolicited: PIN entry ended; `pin_block` (16 hex, under the TPK) when status is OK."""

    __repr__ = masked_repr  # PAN 6+4, secrets wiped (issue 11 item 5)

    status: PinPadStatus
    pin_block: str = ""

    def encode(self) -> bytes:
        return (PIN_RESULT_CODE + self.status.value + self.pin_block).encode("ascii")


DeviceMessage = Reply | KeyEvent | PinResult


def encode_command(command: PinPadCommand, data: str = "") -> bytes:
    return (command.value + data).encode("ascii")


def decode_command(text: bytes) -> tuple[PinPadCommand, str]:
    """(command, data); RemoteProtocolError for an unknown code."""
    try:
        return PinPadCommand(text[:2].decode("ascii")), text[2:].decode("ascii")
    except (UnicodeDecodeError, ValueError):
        raise RemoteProtocolError(f"unknown PIN pad command {text[:2]!r}") from None


def decode_device_message(text: bytes) -> DeviceMessage:
    """A reply, a key event or a PIN result; RemoteProtocolError if it is none of those."""
    try:
        decoded = text.decode("ascii")
        code = decoded[:2]
        if code == KEY_EVENT_CODE:
            return KeyEvent(DisplayKey(decoded[2:]))
        if code == PIN_RESULT_CODE:
            return _pin_result(PinPadStatus(decoded[2:4]), decoded[4:])
        return Reply(PinPadCommand(code), PinPadStatus(decoded[2:4]), decoded[4:])
    except (UnicodeDecodeError, ValueError):
        raise RemoteProtocolError(f"malformed PIN pad message {text[:12]!r}") from None


def _pin_result(status: PinPadStatus, block: str) -> PinResult:
    if status is PinPadStatus.OK and not _is_hex(block, 16):
        raise ValueError("PIN block must be 16 hex digits")
    return PinResult(status, block)


# -- request data layouts (shared by the driver that builds and the emulator that parses) --


@dataclass(frozen=True, slots=True)
class PinEntryRequest:
    """PE data: min length (2) + max length (2) + timeout seconds (3) + PAN length (2) + PAN."""

    __repr__ = masked_repr  # PAN 6+4, secrets wiped (issue 11 item 5)

    pan: str
    length_min: int = pin_length_min
    length_max: int = 6
    timeout_seconds: int = 30

    def encode(self) -> str:
        if not (pin_length_min <= self.length_min <= self.length_max <= pin_length_max):
            raise LocalProtocolError("PIN lengths must satisfy 4 <= min <= max <= 12")
        if not 1 <= self.timeout_seconds <= pin_entry_timeout_seconds_max:
            raise LocalProtocolError("PIN entry timeout must be 1..999 seconds")
        if not (self.pan.isdigit() and 13 <= len(self.pan) <= 19):
            raise LocalProtocolError("PAN must be 13..19 digits")
        return (
            f"{self.length_min:02d}{self.length_max:02d}{self.timeout_seconds:03d}"
            f"{len(self.pan):02d}{self.pan}"
        )

    @classmethod
    def decode(cls, data: str) -> PinEntryRequest:
        if len(data) < 9 or not data.isdigit() or len(data) != 9 + int(data[7:9]):
            raise RemoteProtocolError("malformed PIN entry request")
        request = cls(data[9:], int(data[0:2]), int(data[2:4]), int(data[4:7]))
        try:
            request.encode()
        except LocalProtocolError as error:
            raise RemoteProtocolError(str(error)) from None
        return request


def load_component_data(index: int, component_hex: str) -> str:
    """LC data: component number (1 digit) + 32 hex (a double-length TDES component)."""
    if not 1 <= index <= 9 or not _is_hex(component_hex, 32):
        raise LocalProtocolError("component index 1..9 and 32 hex digits")
    return f"{index}{component_hex.upper()}"


def import_key_data(slot: KeySlot, key_block: str) -> str:
    """IK data: slot letter + TR-31 key block."""
    if not key_block.isascii() or len(key_block) > text_size_bytes_max - 3:
        raise LocalProtocolError("key block too long or not ASCII")
    return slot.value + key_block


def mac_chunk_data(chunk: bytes, *, last: bool) -> str:
    """MC data: '0' for the last chunk ('1' more follows) + the chunk as hex."""
    if len(chunk) > mac_chunk_bytes_max:
        raise LocalProtocolError(f"MAC chunks are at most {mac_chunk_bytes_max} bytes")
    return ("0" if last else "1") + chunk.hex().upper()


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789ABCDEFabcdef" for c in text)


def is_hex(text: str, length: int) -> bool:
    """True when `text` is exactly `length` hex digits."""
    return _is_hex(text, length)
