"""Checksums used by the device protocols.

- CRC-16/XMODEM (Sankyo ICT3 card readers): polynomial 0x1021, initial value 0x0000, no reflection,
  no final XOR. Check value over b"123456789" is 0x31C3 (the standard CRC catalogue value).
- Block check character (Puloon LCDM dispensers, SZZT-style PIN pads): XOR of the covered bytes.
"""

from __future__ import annotations

crc16_xmodem_polynomial = 0x1021


def _crc16_table() -> tuple[int, ...]:
    """Precomputed table: the CRC of each possible leading byte, so the loop does one lookup."""
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ crc16_xmodem_polynomial) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC16_TABLE = _crc16_table()


def crc16_xmodem(data: bytes, crc: int = 0x0000) -> int:
    """CRC-16/XMODEM of `data` (pass a previous result as `crc` to continue a running CRC)."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16_TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def xor_bcc(data: bytes) -> int:
    """XOR of all bytes (an 8-bit longitudinal parity, called BCC by Puloon and LRC by others)."""
    result = 0
    for byte in data:
        result ^= byte
    return result
