"""Receipt printer protocol: an ESC/POS subset, with the parser the emulator uses.

Host to printer (bytes; Epson ESC/POS command reference)::

    ESC @        1B 40         initialise
    ESC a n      1B 61 n       justification: 0 left, 1 centre, 2 right ('0'..'2' also accepted)
    ESC E n      1B 45 n       emphasised (bold) on when n's lowest bit is 1
    ESC d n      1B 64 n       print the buffer and feed n lines
    LF           0A            print the buffer and feed one line
    GS V m       1D 56 m       cut: m 0/48 full, 1/49 partial
    GS V m n     1D 56 m n     feed n lines then cut: m 65 full, 66 partial
    FS &         1C 26         Chinese (Kanji) mode on: text is GBK double-byte
    FS .         1C 2E         Chinese mode off: text is ASCII
    DLE EOT n    10 04 n       real-time status: 1 printer, 2 offline cause, 3 errors, 4 paper

The printer answers DLE EOT with one status byte (bit 1 and bit 4 always set, bits 0 and 7
clear). Everything else is one way. See docs/devices.md for the status bits and a worked receipt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Final

from terminals.devices.errors import FrameTooLarge, LocalProtocolError, RemoteProtocolError

ESC: Final = 0x1B
GS: Final = 0x1D
FS: Final = 0x1C
DLE: Final = 0x10
EOT: Final = 0x04
LF: Final = 0x0A
# Bytes of one text run (between control codes) before it is flushed as an event anyway.
text_run_bytes_max: Final = 512
# The parser never holds more than a few command bytes plus one text run.
buffer_size_bytes_max: Final = 4096
feed_lines_max: Final = 255
status_fixed_bits: Final = 0x12  # bits 1 and 4 are always 1 in a real-time status byte
status_fixed_mask: Final = 0x93  # bits 0, 1, 4, 7 must read 0, 1, 1, 0
paper_near_end_bits: Final = 0x0C  # DLE EOT 4, bits 2-3
paper_end_bits: Final = 0x60  # DLE EOT 4, bits 5-6
offline_bit: Final = 0x08  # DLE EOT 1, bit 3
paper_stop_bit: Final = 0x20  # DLE EOT 2, bit 5: printing stopped at paper end


class Alignment(IntEnum):
    LEFT = 0
    CENTRE = 1
    RIGHT = 2


class StatusKind(IntEnum):
    """n of DLE EOT n."""

    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    PAPER = 4


# -- events the parser produces (emulator side) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Initialise:
    pass


@dataclass(frozen=True, slots=True)
class SetAlignment:
    alignment: Alignment


@dataclass(frozen=True, slots=True)
class SetBold:
    on: bool


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class PrintAndFeed:
    lines: int


@dataclass(frozen=True, slots=True)
class Cut:
    partial: bool
    feed_lines: int = 0


@dataclass(frozen=True, slots=True)
class ChineseMode:
    on: bool


@dataclass(frozen=True, slots=True)
class StatusRequest:
    kind: StatusKind


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A command outside the subset (skipped, like a real printer ignores unknown codes)."""

    data: bytes


PrinterEvent = (
    Initialise
    | SetAlignment
    | SetBold
    | Text
    | PrintAndFeed
    | Cut
    | ChineseMode
    | StatusRequest
    | Unsupported
)

# -- encoding (host side) ------------------------------------------------------------------


def initialise() -> bytes:
    return bytes([ESC, 0x40])


def align(alignment: Alignment) -> bytes:
    return bytes([ESC, 0x61, alignment])


def bold(on: bool) -> bytes:
    return bytes([ESC, 0x45, 1 if on else 0])


def feed(lines: int) -> bytes:
    if not 0 <= lines <= feed_lines_max:
        raise LocalProtocolError(f"feed must be 0..{feed_lines_max} lines")
    return bytes([ESC, 0x64, lines])


def cut(*, partial: bool = True, feed_lines: int = 0) -> bytes:
    if feed_lines:
        if not 0 <= feed_lines <= feed_lines_max:
            raise LocalProtocolError(f"feed must be 0..{feed_lines_max} lines")
        return bytes([GS, 0x56, 66 if partial else 65, feed_lines])
    return bytes([GS, 0x56, 1 if partial else 0])


def status_request(kind: StatusKind) -> bytes:
    return bytes([DLE, EOT, kind])


def text(value: str) -> bytes:
    """ASCII as is; runs of other characters in Chinese mode as GBK (unknown ones as '?')."""
    out = bytearray()
    chinese = False
    for char in value:
        wide = not char.isascii()
        if char in "\r\n" or (char.isascii() and not char.isprintable()):
            raise LocalProtocolError("receipt text holds printable characters only")
        if wide != chinese:
            out += bytes([FS, 0x26]) if wide else bytes([FS, 0x2E])
            chinese = wide
        out += char.encode("gbk", "replace") if wide else char.encode("ascii")
    if chinese:
        out += bytes([FS, 0x2E])
    return bytes(out)


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    """One printed line: what the ATM asks for and what the emulator reads back."""

    text: str
    alignment: Alignment = Alignment.LEFT
    bold: bool = False


def encode_receipt(lines: list[ReceiptLine], *, partial_cut: bool = True) -> bytes:
    """A whole receipt: initialise, each line with its alignment and weight, feed, cut."""
    out = bytearray(initialise())
    for line in lines:
        out += align(line.alignment) + bold(line.bold) + text(line.text) + bytes([LF])
    out += bold(False) + align(Alignment.LEFT) + cut(partial=partial_cut, feed_lines=3)
    return bytes(out)


# -- status bytes (host side) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaperStatus:
    near_end: bool
    out: bool


def check_status_byte(value: int) -> int:
    """RemoteProtocolError unless the fixed bits of a real-time status byte are right."""
    if value & status_fixed_mask != status_fixed_bits:
        raise RemoteProtocolError(f"not a printer status byte: {value:#04x}")
    return value


def decode_paper_status(value: int) -> PaperStatus:
    check_status_byte(value)
    return PaperStatus(
        near_end=bool(value & paper_near_end_bits), out=bool(value & paper_end_bits)
    )


def encode_paper_status(status: PaperStatus) -> int:
    return (
        status_fixed_bits
        | (paper_near_end_bits if status.near_end else 0)
        | (paper_end_bits if status.out else 0)
    )


# -- parsing (emulator side) -----------------------------------------------------------------


class _Need(Enum):
    MORE = "more"


class EscPosParser:
    """Bytes in, `PrinterEvent`s out. Unknown commands become `Unsupported` and are skipped."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._chinese = False

    def receive_data(self, data: bytes) -> None:
        if len(self._buffer) + len(data) > buffer_size_bytes_max:
            raise FrameTooLarge("printer input buffer full: drain events between reads")
        self._buffer += data

    def events(self) -> list[PrinterEvent]:
        found: list[PrinterEvent] = []
        while self._buffer:
            event = self._parse_head()
            if event is _Need.MORE:
                break
            found.append(event)
        return found

    def _parse_head(self) -> PrinterEvent | _Need:
        head = self._buffer[0]
        if head == LF:
            self._take(1)
            return PrintAndFeed(1)
        if head in (ESC, GS, FS, DLE):
            return self._parse_command()
        return self._parse_text()

    def _parse_command(self) -> PrinterEvent | _Need:
        if len(self._buffer) < 2:
            return _Need.MORE
        head, code = self._buffer[0], self._buffer[1]
        if (head, code) == (ESC, 0x40):
            self._take(2)
            self._chinese = False
            return Initialise()
        if (head, code) == (FS, 0x26) or (head, code) == (FS, 0x2E):
            self._take(2)
            self._chinese = code == 0x26
            return ChineseMode(self._chinese)
        if (head, code) in ((ESC, 0x61), (ESC, 0x45), (ESC, 0x64), (DLE, EOT), (GS, 0x56)):
            return self._parse_with_argument(head, code)
        self._take(2)
        return Unsupported(bytes([head, code]))

    def _parse_with_argument(self, head: int, code: int) -> PrinterEvent | _Need:
        if len(self._buffer) < 3:
            return _Need.MORE
        n = self._buffer[2]
        if (head, code) == (GS, 0x56) and n in (65, 66):
            if len(self._buffer) < 4:
                return _Need.MORE
            return Cut(partial=n == 66, feed_lines=self._take(4)[3])
        raw = self._take(3)
        if (head, code) == (ESC, 0x61):
            return SetAlignment(Alignment(n % 0x30)) if n % 0x30 <= 2 else Unsupported(raw)
        if (head, code) == (ESC, 0x45):
            return SetBold(bool(n & 1))
        if (head, code) == (ESC, 0x64):
            return PrintAndFeed(n)
        if (head, code) == (DLE, EOT):
            return StatusRequest(StatusKind(n)) if 1 <= n <= 4 else Unsupported(raw)
        if n in (0, 1, 48, 49):
            return Cut(partial=n in (1, 49))
        return Unsupported(raw)

    def _parse_text(self) -> PrinterEvent | _Need:
        end = 0
        while end < len(self._buffer) and end < text_run_bytes_max:
            byte = self._buffer[end]
            if byte in (LF, ESC, GS, FS, DLE):
                break
            if self._chinese and byte >= 0x81:
                if end + 1 >= len(self._buffer):
                    if end == 0:
                        return _Need.MORE  # the second byte of a character is still coming
                    break
                end += 2
                continue
            end += 1
        raw = self._take(end)
        decoded = raw.decode("gbk" if self._chinese else "ascii", "replace")
        return Text("".join(char for char in decoded if char.isprintable()))  # CR, HT: dropped

    def _take(self, count: int) -> bytes:
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        return taken
