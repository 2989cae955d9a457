"""Events the frame parsers produce, shared by every serial device protocol.

A parser turns bytes into these; the link layers (driver and emulator) act on them. They are
small frozen, slotted dataclasses, as in h11.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final


class ControlCode(IntEnum):
    """Single-byte transmission control characters (ASCII C0 names)."""

    SOH = 0x01
    STX = 0x02
    ETX = 0x03
    EOT = 0x04
    ENQ = 0x05
    ACK = 0x06
    DLE = 0x10
    NAK = 0x15


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame whose checksum was right: `text` is its payload (without framing bytes)."""

    text: bytes


@dataclass(frozen=True, slots=True)
class Control:
    """A control byte received between frames (ACK, NAK, EOT...)."""

    code: ControlCode


@dataclass(frozen=True, slots=True)
class CorruptFrame:
    """Something shaped like a frame whose checksum or structure was wrong: answer NAK."""

    reason: str


class _NeedData:
    """Sentinel: the parser has no complete event yet (h11's NEED_DATA)."""

    _instance: _NeedData | None = None

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()

Event = Frame | Control | CorruptFrame
ACK: Final = Control(ControlCode.ACK)
NAK: Final = Control(ControlCode.NAK)
EOT: Final = Control(ControlCode.EOT)
