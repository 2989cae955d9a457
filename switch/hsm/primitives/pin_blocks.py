"""ISO 9564-1 PIN block formats 0, 1, 3 (8-byte, TDES) and 4 (16-byte, AES).

Clear PIN blocks exist only inside ``switch/hsm`` and on the terminal side
(the EPP emulator), never on the wire or in logs.

- Format 0: ``0 L PIN F..F`` XOR ``0000 + 12 rightmost PAN digits without the check digit``.
- Format 1: ``1 L PIN`` then a unique/random fill (no PAN binding).
- Format 3: like format 0 but the fill is random nibbles A-F.
- Format 4: the plain-text PIN field ``4 L PIN A..A`` + 8 random bytes, and the
  PAN field ``M PAN 0..0`` (M = PAN length - 12), enciphered as
  E(K, E(K, pin_field) XOR pan_field).
Decoding checks every rule and raises ``PinFormatError`` with no detail about
which digit failed (an oracle would help an attacker).
"""

from __future__ import annotations

import secrets

from switch.hsm.primitives.aes import aes_ecb_decrypt, aes_ecb_encrypt
from switch.hsm.primitives.des import tdes_ecb_decrypt, tdes_ecb_encrypt, xor_bytes
from switch.hsm.primitives.errors import PinFormatError

pin_digits_min = 4
pin_digits_max = 12
pan_digits_min = 12  # ISO 9564 format 4 allows 12-19; format 0 uses the 12 rightmost
pan_digits_max = 19
pin_block_bytes_tdes = 8
pin_block_bytes_aes = 16
supported_formats = (0, 1, 3, 4)


def check_pin(pin: str) -> None:
    """A PIN is 4-12 decimal digits (ISO 9564-1)."""
    if not (pin_digits_min <= len(pin) <= pin_digits_max) or not _is_decimal(pin):
        raise PinFormatError("a PIN is 4 to 12 decimal digits")


def check_pan(pan: str) -> None:
    """A PAN for PIN block purposes is 12-19 decimal digits."""
    if not (pan_digits_min <= len(pan) <= pan_digits_max) or not _is_decimal(pan):
        raise PinFormatError("a PAN is 12 to 19 decimal digits")


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def pan_field_format0(pan: str) -> bytes:
    """``0000`` + the 12 rightmost PAN digits excluding the check digit."""
    check_pan(pan)
    return bytes.fromhex("0000" + pan[-13:-1].rjust(12, "0"))


def _pin_field(control: int, pin: str, fill_nibbles: str) -> str:
    check_pin(pin)
    text = f"{control:X}{len(pin):X}{pin}"
    return text + fill_nibbles[: 16 - len(text)]


def _random_nibbles(alphabet: str, count: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(count))


def pin_block_format0(pin: str, pan: str) -> bytes:
    """Clear ISO format 0 PIN block (8 bytes)."""
    field = bytes.fromhex(_pin_field(0, pin, "F" * 16))
    return xor_bytes(field, pan_field_format0(pan))


def pin_block_format1(pin: str, fill: str | None = None) -> bytes:
    """Clear ISO format 1 PIN block; ``fill`` (hex) is for known-answer tests only."""
    fill = _random_nibbles("0123456789ABCDEF", 16) if fill is None else fill.upper()
    return bytes.fromhex(_pin_field(1, pin, fill))


def pin_block_format3(pin: str, pan: str, fill: str | None = None) -> bytes:
    """Clear ISO format 3 PIN block; the fill is random nibbles A-F."""
    fill = _random_nibbles("ABCDEF", 16) if fill is None else fill.upper()
    if any(c not in "ABCDEF" for c in fill):
        raise PinFormatError("format 3 fill digits are A-F")
    field = bytes.fromhex(_pin_field(3, pin, fill))
    return xor_bytes(field, pan_field_format0(pan))


def pin_field_format4(pin: str, random_bytes: bytes | None = None) -> bytes:
    """Format 4 plain-text PIN field (16 bytes): ``4 L PIN A..A`` + 8 random bytes."""
    filler = secrets.token_bytes(8) if random_bytes is None else random_bytes
    if len(filler) != 8:
        raise PinFormatError("format 4 random part is 8 bytes")
    return bytes.fromhex(_pin_field(4, pin, "A" * 16)) + filler


def pan_field_format4(pan: str) -> bytes:
    """Format 4 PAN field (16 bytes): ``M`` + PAN + zero nibbles, M = len(PAN) - 12."""
    check_pan(pan)
    return bytes.fromhex(f"{len(pan) - 12:X}{pan}".ljust(32, "0"))


def _decode_pin_field(text: str, control: int, fill_ok: str | None) -> str:
    """Check control nibble, length and fill of a hex PIN field; return the PIN."""
    if text[0] != f"{control:X}":
        raise PinFormatError("PIN block control field does not match its format")
    length = int(text[1], 16)
    if not pin_digits_min <= length <= pin_digits_max:
        raise PinFormatError("PIN block has an invalid PIN length")
    pin = text[2 : 2 + length]
    if not _is_decimal(pin):
        raise PinFormatError("PIN block has a non-decimal PIN digit")
    fill = text[2 + length : 16]
    if fill_ok is not None and any(c not in fill_ok for c in fill):
        raise PinFormatError("PIN block fill digits are invalid")
    return pin


def decode_pin_block_format0(block: bytes, pan: str) -> str:
    """Recover the PIN from a clear format 0 block (checks the F fill)."""
    _check_length(block, pin_block_bytes_tdes)
    text = xor_bytes(block, pan_field_format0(pan)).hex().upper()
    return _decode_pin_field(text, 0, "F")


def decode_pin_block_format1(block: bytes) -> str:
    """Recover the PIN from a clear format 1 block."""
    _check_length(block, pin_block_bytes_tdes)
    return _decode_pin_field(block.hex().upper(), 1, None)


def decode_pin_block_format3(block: bytes, pan: str) -> str:
    """Recover the PIN from a clear format 3 block (checks the A-F fill)."""
    _check_length(block, pin_block_bytes_tdes)
    text = xor_bytes(block, pan_field_format0(pan)).hex().upper()
    return _decode_pin_field(text, 3, "ABCDEF")


def decode_pin_field_format4(field: bytes) -> str:
    """Recover the PIN from a format 4 plain-text PIN field (checks the A fill)."""
    _check_length(field, pin_block_bytes_aes)
    return _decode_pin_field(field[:8].hex().upper(), 4, "A")


def _check_length(block: bytes, expected: int) -> None:
    if len(block) != expected:
        raise PinFormatError(f"a PIN block here is {expected} bytes")


def encipher_format4(key: bytes, pin: str, pan: str, random_bytes: bytes | None = None) -> bytes:
    """ISO 9564-1 format 4 encipherment under an AES key (16 bytes out)."""
    intermediate = aes_ecb_encrypt(key, pin_field_format4(pin, random_bytes))
    return aes_ecb_encrypt(key, xor_bytes(intermediate, pan_field_format4(pan)))


def decipher_format4(key: bytes, block: bytes, pan: str) -> str:
    """Reverse ``encipher_format4``; returns the PIN or raises ``PinFormatError``."""
    _check_length(block, pin_block_bytes_aes)
    intermediate = xor_bytes(aes_ecb_decrypt(key, block), pan_field_format4(pan))
    return decode_pin_field_format4(aes_ecb_decrypt(key, intermediate))


def clear_pin_block(pin: str, pan: str, fmt: int) -> bytes:
    """Build a clear TDES-format PIN block (0, 1 or 3)."""
    if fmt == 0:
        return pin_block_format0(pin, pan)
    if fmt == 1:
        return pin_block_format1(pin)
    if fmt == 3:
        return pin_block_format3(pin, pan)
    raise PinFormatError(f"format {fmt} is not a TDES PIN block format (0, 1, 3)")


def decode_clear_pin_block(block: bytes, pan: str, fmt: int) -> str:
    """Recover the PIN from a clear TDES-format PIN block (0, 1 or 3)."""
    if fmt == 0:
        return decode_pin_block_format0(block, pan)
    if fmt == 1:
        return decode_pin_block_format1(block)
    if fmt == 3:
        return decode_pin_block_format3(block, pan)
    raise PinFormatError(f"format {fmt} is not a TDES PIN block format (0, 1, 3)")


def encrypt_pin_block(key: bytes, pin: str, pan: str, fmt: int = 0) -> bytes:
    """Build and encrypt a PIN block: TDES-ECB for formats 0/1/3, AES format 4."""
    if fmt == 4:
        return encipher_format4(key, pin, pan)
    return tdes_ecb_encrypt(key, clear_pin_block(pin, pan, fmt))


def decrypt_pin_block(key: bytes, block: bytes, pan: str, fmt: int = 0) -> str:
    """Decrypt a PIN block and return the PIN (HSM-internal and terminal tests only)."""
    if fmt == 4:
        return decipher_format4(key, block, pan)
    _check_length(block, pin_block_bytes_tdes)
    return decode_clear_pin_block(tdes_ecb_decrypt(key, block), pan, fmt)
