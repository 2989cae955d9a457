"""PIN verification values: IBM 3624 natural PIN / offset and Visa PVV.

IBM 3624: encrypt 16 hex digits of validation data under the PVK, decimalise
the result with a 16-entry table, take the leftmost PIN-length digits as the
"natural PIN"; the offset is (customer PIN - natural PIN) digit by digit mod 10.

Validation data convention (docs/hsm.md): the 12 rightmost PAN digits
excluding the check digit, right-padded with ``F`` to 16 hex digits (the usual
payShield "12 digits + pad character" setup).

Visa PVV: the transformed security parameter is the 11 rightmost PAN digits
excluding the check digit + PVKI + the 4 leftmost PIN digits; encrypt under the
PVK, collect decimal digits left to right, then A-F as 0-5, keep 4.
"""

from __future__ import annotations

from switch.hsm.primitives.des import tdes_ecb_encrypt
from switch.hsm.primitives.errors import PinFormatError
from switch.hsm.primitives.pin_blocks import check_pan, check_pin

decimalization_table_default = "0123456789012345"
pvv_digits = 4
validation_pad_char = "F"


_HEX_DIGITS = frozenset("0123456789ABCDEFabcdef")


def _check_hex(text: str, length: int, what: str) -> None:
    if len(text) != length or not _HEX_DIGITS.issuperset(text):
        raise PinFormatError(f"{what} is {length} hex digits")


def ibm3624_validation_data(pan: str) -> str:
    """The 16 hex digits fed to the PVK for a PAN (see module docstring)."""
    check_pan(pan)
    return pan[-13:-1].ljust(16, validation_pad_char)


def ibm3624_natural_pin(
    pvk: bytes,
    validation_data: str,
    pin_length: int,
    decimalization_table: str = decimalization_table_default,
) -> str:
    """Intermediate ("natural") PIN of ``pin_length`` digits."""
    _check_hex(validation_data, 16, "IBM 3624 validation data")
    if len(decimalization_table) != 16 or not decimalization_table.isdigit():
        raise PinFormatError("a decimalisation table is 16 decimal digits")
    if not 4 <= pin_length <= 12:
        raise PinFormatError("a PIN is 4 to 12 digits")
    enciphered = tdes_ecb_encrypt(pvk, bytes.fromhex(validation_data)).hex()
    # Decimalise with one str.translate (hex digit -> its table entry) instead of a loop.
    table = str.maketrans("0123456789abcdef", decimalization_table)
    return enciphered[:pin_length].translate(table)


def ibm3624_offset(
    pvk: bytes,
    pin: str,
    validation_data: str,
    decimalization_table: str = decimalization_table_default,
) -> str:
    """Offset of ``pin`` (same length as the PIN)."""
    check_pin(pin)
    natural = ibm3624_natural_pin(pvk, validation_data, len(pin), decimalization_table)
    return "".join(str((int(p) - int(n)) % 10) for p, n in zip(pin, natural, strict=True))


def ibm3624_pin_from_offset(
    pvk: bytes,
    offset: str,
    validation_data: str,
    decimalization_table: str = decimalization_table_default,
) -> str:
    """The customer PIN an offset stands for (used to check a PIN against an offset)."""
    if not offset.isdigit():
        raise PinFormatError("an IBM 3624 offset is decimal digits")
    natural = ibm3624_natural_pin(pvk, validation_data, len(offset), decimalization_table)
    return "".join(str((int(n) + int(o)) % 10) for n, o in zip(natural, offset, strict=True))


def visa_pvv(pvk: bytes, pan: str, pin: str, pvki: str) -> str:
    """Visa PIN Verification Value (4 digits) for the 4 leftmost PIN digits."""
    check_pan(pan)
    check_pin(pin)
    if len(pvki) != 1 or not pvki.isdigit():
        raise PinFormatError("a PVKI is one decimal digit")
    tsp = pan[-12:-1] + pvki + pin[:4]
    enciphered = tdes_ecb_encrypt(pvk, bytes.fromhex(tsp)).hex().upper()
    digits = [c for c in enciphered if c.isdigit()]
    digits += [str(int(c, 16) - 10) for c in enciphered if not c.isdigit()]
    return "".join(digits[:pvv_digits])
