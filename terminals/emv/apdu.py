"""Command and response APDUs (ISO/IEC 7816-4, case 2/4 short form) and the five commands of an
EMV contact transaction at an ATM (EMV Book 1 11, Book 3 6.5).

An R-APDU is data || SW1 SW2; ``9000`` is success. Only what the terminal and the emulated card
need is here; both sides share it, the way the device protocols are shared by driver and
emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

# Short APDUs: Lc and Le are one byte.
apdu_data_bytes_max: Final = 255
SW_OK: Final = 0x9000
SW_WRONG_LENGTH: Final = 0x6700
SW_CONDITIONS_NOT_SATISFIED: Final = 0x6985
SW_FILE_NOT_FOUND: Final = 0x6A82
SW_RECORD_NOT_FOUND: Final = 0x6A83
SW_WRONG_P1P2: Final = 0x6A86
SW_INS_NOT_SUPPORTED: Final = 0x6D00
SW_CLA_NOT_SUPPORTED: Final = 0x6E00


class Ins(IntEnum):
    SELECT = 0xA4
    READ_RECORD = 0xB2
    GET_PROCESSING_OPTIONS = 0xA8
    GENERATE_AC = 0xAE


class CryptogramType(IntEnum):
    """P1 of GENERATE AC and bits 8-7 of 9F27 (EMV Book 3 6.5.5)."""

    AAC = 0x00
    TC = 0x40
    ARQC = 0x80


class ApduError(ValueError):
    """An APDU that cannot be parsed (wrong lengths)."""


@dataclass(frozen=True, slots=True)
class CommandApdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = 0  # 0 = up to 256 bytes expected; None = no Le (case 1/3)

    def encode(self) -> bytes:
        if len(self.data) > apdu_data_bytes_max:
            raise ApduError("command data longer than 255 bytes")
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if self.data:
            out += bytes([len(self.data)]) + self.data
        if self.le is not None:
            out += bytes([self.le])
        return out

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        """Cases 1-4 short form."""
        if len(raw) < 4:
            raise ApduError("APDU shorter than its header")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2, le=None)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0])
        lc = body[0]
        if lc == 0 or len(body) not in (1 + lc, 2 + lc):
            raise ApduError("Lc does not match the APDU's length")
        le = body[1 + lc] if len(body) == 2 + lc else None
        return cls(cla, ins, p1, p2, data=bytes(body[1 : 1 + lc]), le=le)


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def decode(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise ApduError("response APDU shorter than SW1 SW2")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))


def select(aid: bytes) -> CommandApdu:
    """SELECT by DF name, first occurrence (Book 1 11.3)."""
    return CommandApdu(0x00, Ins.SELECT, 0x04, 0x00, aid)


def get_processing_options(pdol_data: bytes = b"") -> CommandApdu:
    """GPO with command template 83 holding the PDOL data (empty PDOL: 83 00)."""
    return CommandApdu(0x80, Ins.GET_PROCESSING_OPTIONS, 0x00, 0x00,
                       bytes([0x83, len(pdol_data)]) + pdol_data)


def read_record(sfi: int, record: int) -> CommandApdu:
    """READ RECORD: P1 = record number, P2 = SFI << 3 | 4 (Book 3 6.5.11)."""
    if not 1 <= sfi <= 30 or not 1 <= record <= 255:
        raise ApduError("SFI must be 1..30 and record 1..255")
    return CommandApdu(0x00, Ins.READ_RECORD, record, (sfi << 3) | 0x04)


def generate_ac(kind: CryptogramType, cdol_data: bytes) -> CommandApdu:
    """GENERATE AC asking for ``kind`` with the CDOL1 or CDOL2 data (no CDA here)."""
    return CommandApdu(0x80, Ins.GENERATE_AC, int(kind), 0x00, cdol_data)


def afl_records(afl: bytes) -> list[tuple[int, int]]:
    """(SFI, record) pairs of an application file locator (4 bytes per entry, Book 3 10.2)."""
    if not afl or len(afl) % 4:
        raise ApduError("AFL must be a non-empty multiple of 4 bytes")
    records: list[tuple[int, int]] = []
    for i in range(0, len(afl), 4):
        sfi, first, last = afl[i] >> 3, afl[i + 1], afl[i + 2]
        if not 1 <= sfi <= 30 or first == 0 or last < first:
            raise ApduError(f"bad AFL entry {afl[i:i + 4].hex().upper()}")
        records.extend((sfi, number) for number in range(first, last + 1))
    return records
